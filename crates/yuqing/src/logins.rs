//! `yuqing passwd` and `yuqing token new`: the config blocks of a console
//! login and of an API token. Neither the password nor the token is ever
//! written to the config, only their hashes.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use yuqing_config::Role;

/// NIST SP 800-63B's minimum for a password a person chooses.
const MIN_PASSWORD_CHARS: usize = 8;

/// Reads the password: twice, unechoed, from a terminal; else the first
/// line of stdin (for scripts).
fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ").context("reading the password")?;
        let again = rpassword::prompt_password("again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Quotes a value as a TOML basic string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn check_id(id: &str) -> Result<()> {
    if !yuqing_config::valid_id(id) {
        bail!("`{id}`: an id is 1-64 characters, without spaces or `:`");
    }
    Ok(())
}

/// `yuqing passwd ID`: prints a `[[server.user]]` block.
pub fn passwd(id: &str, name: Option<&str>, role: Role) -> Result<ExitCode> {
    check_id(id)?;
    let password = read_password()?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("a password needs at least {MIN_PASSWORD_CHARS} characters");
    }
    let hash = yuqing_server::hash_password(&password).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "[[server.user]]")?;
    writeln!(out, "id = {}", quoted(id))?;
    if let Some(n) = name {
        writeln!(out, "name = {}", quoted(n))?;
    }
    writeln!(out, "role = \"{}\"", role.as_str())?;
    writeln!(out, "password_hash = {}", quoted(&hash))?;
    Ok(ExitCode::SUCCESS)
}

/// `yuqing token new ID`: prints the token once, and the
/// `[[server.token]]` block that admits it.
pub fn new_token(id: &str, role: Role) -> Result<ExitCode> {
    check_id(id)?;
    let token = yuqing_server::new_token().map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# The token, shown only now: clients send `Authorization: Bearer <token>`."
    )?;
    writeln!(out, "#   {token}")?;
    writeln!(out, "[[server.token]]")?;
    writeln!(out, "id = {}", quoted(id))?;
    writeln!(out, "role = \"{}\"", role.as_str())?;
    writeln!(
        out,
        "sha256 = \"{}\"",
        yuqing_server::sha256_hex(token.as_bytes())
    )?;
    Ok(ExitCode::SUCCESS)
}
