//! Who may use the console and the API: logins (`[[server.user]]`, with an
//! argon2 password hash), API tokens (`[[server.token]]`, kept as their
//! SHA-256), and what a request without either may do.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, PathSeg};
use crate::routing::{At, Dur};

/// What a login or a token may do. Roles are ordered: a responder may do
/// everything an observer may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the console, search, reports, incidents and who is on duty
    /// (leaders, analysts, dashboards).
    Observer,
    /// Also acknowledges and resolves incidents, adds and ends silences,
    /// and writes handover notes (officers on duty).
    Responder,
}

impl std::str::FromStr for Role {
    type Err = String;

    /// `observer` or `responder`, as the config writes them.
    fn from_str(s: &str) -> Result<Role, String> {
        [Role::Observer, Role::Responder]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "observer or responder".to_string())
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::Responder => "responder",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Role::Observer => "只读",
            Role::Responder => "处置",
        }
    }
}

/// `server.anonymous`: what a request with neither a login nor a token may
/// do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anonymous {
    None,
    Observer,
    Responder,
}

/// One login of the console: `[[server.user]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name, recorded as who acknowledged, resolved or silenced.
    pub id: String,
    /// Shown in the console; defaults to the id.
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// An argon2 PHC string (`$argon2id$v=19$m=…`), as `yuqing passwd`
    /// prints it. The password itself is never written down.
    pub password_hash: String,
}

impl UserConfig {
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// One API token: `[[server.token]]`. Clients send it as
/// `Authorization: Bearer <token>`; the config keeps only its SHA-256, as
/// `yuqing token new` prints it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Names the client (`grafana`, `ops-script`); recorded as who acted.
    pub id: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
}

/// Whether `id` can name a login or token: 1-64 characters, without
/// spaces, control characters or `:`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= 64
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':')
}

/// The costliest password hash a login may verify: 256 MiB of memory.
/// More would let a few wrong passwords exhaust the machine.
pub const MAX_HASH_MEMORY_KIB: u32 = 256 * 1024;
/// The most passes and lanes of a password hash.
pub const MAX_HASH_PASSES: u32 = 16;
pub const MAX_HASH_LANES: u32 = 8;

/// Checks a PHC string: an argon2 hash whose parameters a login can
/// afford.
pub fn check_password_hash(s: &str) -> Result<(), String> {
    use argon2::PasswordHash;
    let make = "make one with `yuqing passwd`";
    let hash = PasswordHash::new(s)
        .map_err(|e| format!("not a password hash in PHC form ({e}): {make}"))?;
    let ident = hash.algorithm.as_str();
    if ![
        argon2::ARGON2ID_IDENT,
        argon2::ARGON2I_IDENT,
        argon2::ARGON2D_IDENT,
    ]
    .iter()
    .any(|a| a.as_str() == ident)
    {
        return Err(format!("`{ident}` is not argon2: {make}"));
    }
    let params =
        argon2::Params::try_from(&hash).map_err(|e| format!("argon2 parameters: {e}: {make}"))?;
    if params.m_cost() > MAX_HASH_MEMORY_KIB {
        return Err(format!(
            "m={} KiB: every login would take that much memory; at most {MAX_HASH_MEMORY_KIB}",
            params.m_cost()
        ));
    }
    // Logins are checked one at a time: a hash that takes long holds up
    // everyone's.
    if params.t_cost() > MAX_HASH_PASSES || params.p_cost() > MAX_HASH_LANES {
        return Err(format!(
            "t={}, p={}: at most t={MAX_HASH_PASSES} and p={MAX_HASH_LANES}, so a login takes no more than a moment",
            params.t_cost(),
            params.p_cost()
        ));
    }
    if hash.hash.is_none() || hash.salt.is_none() {
        return Err(format!("the hash has no salt or no output: {make}"));
    }
    Ok(())
}

pub(crate) fn validate(
    users: &[UserConfig],
    tokens: &[TokenConfig],
    session_ttl: Dur,
    at: &At<'_>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    // An error at `key` of the `i`-th `[[server.<kind>]]`.
    let located = |kind: &'static str, i: usize, key: &'static str, message: String| {
        at(
            &[
                PathSeg::Key("server"),
                PathSeg::Key(kind),
                PathSeg::Index(i),
                PathSeg::Key(key),
            ],
            format!("server.{kind}[{i}].{key}"),
            message,
        )
    };
    let mut seen: HashMap<&str, String> = HashMap::new();
    let ids = (users.iter().enumerate()).map(|(i, u)| ("user", i, u.id.as_str()));
    let ids = ids.chain((tokens.iter().enumerate()).map(|(i, t)| ("token", i, t.id.as_str())));
    for (kind, i, id) in ids {
        if !valid_id(id) {
            errors.push(located(
                kind,
                i,
                "id",
                format!("`{id}` must be 1-64 characters, without spaces or `:`"),
            ));
        }
        if let Some(first) = seen.insert(id, format!("server.{kind}[{i}].id")) {
            errors.push(located(
                kind,
                i,
                "id",
                format!("`{id}` is also {first}: users and tokens need ids of their own, as the timeline records who acted by id"),
            ));
        }
    }
    for (i, u) in users.iter().enumerate() {
        if let Err(m) = check_password_hash(&u.password_hash) {
            errors.push(located("user", i, "password_hash", m));
        }
    }
    for (i, t) in tokens.iter().enumerate() {
        if t.sha256.len() != 64
            || !t
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            errors.push(located(
                "token",
                i,
                "sha256",
                "must be the token's SHA-256 in 64 lowercase hex digits, as `yuqing token new` prints it (never the token itself)".into(),
            ));
        }
    }
    if session_ttl < Dur::secs(300) || session_ttl > Dur::secs(30 * 86_400) {
        errors.push(at(
            &[PathSeg::Key("server"), PathSeg::Key("session_ttl")],
            "server.session_ttl".into(),
            format!("{session_ttl}: a login lasts between 5m and 30d"),
        ));
    }
    errors
}
