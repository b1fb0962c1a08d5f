//! Console logins and API tokens, as an administrator sets them up: made by
//! `yuqing passwd` and `yuqing token new`, checked by `yuqing check`, and
//! required by `yuqing run`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::spawn_listening;

fn yuqing() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yuqing"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c.env_remove("RUST_LOG");
    c
}

/// Runs `cmd` with `input` on stdin: success, stdout, stderr.
fn run_with(cmd: &mut Command, input: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn logins_are_made_checked_and_required() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let main = dir.path().join("main.toml");

    let (ok, user, err) = run_with(
        yuqing().args(["passwd", "zhang", "--name", "张伟"]),
        "correct horse battery\n",
    );
    assert!(ok, "{err}");
    assert!(
        !user.contains("correct horse"),
        "the password is never printed"
    );
    assert!(user.contains("password_hash = \"$argon2id$"), "{user}");
    let (ok, _, err) = run_with(yuqing().args(["passwd", "li"]), "short\n");
    assert!(!ok && err.contains("at least 8 characters"), "{err}");
    let (ok, token_block, err) = run_with(yuqing().args(["token", "new", "grafana"]), "");
    assert!(ok, "{err}");
    let token = token_block
        .lines()
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("yq_"))
        .map(|t| format!("yq_{t}"))
        .unwrap();
    assert!(
        !token_block.contains(&format!("\"{token}\"")),
        "only its hash goes in the config"
    );

    // Both go into the config as printed.
    let config = format!("data_dir = \"data\"\n\n{user}\n{token_block}");
    std::fs::write(&main, &config).unwrap();
    let (ok, out, err) = run_with(yuqing().args(["check", "--config"]).arg(&main), "");
    assert!(ok, "{err}");
    assert!(out.contains("1 logins, 1 tokens"), "{out}");

    // A password written down instead of its hash, a token instead of its
    // SHA-256, a second `zhang`: each named where it is.
    std::fs::write(
        &main,
        format!(
            "{config}\n[[server.user]]\nid = \"zhang\"\nrole = \"observer\"\npassword_hash = \"hunter22\"\n\n[[server.token]]\nid = \"ops\"\nrole = \"responder\"\nsha256 = \"{token}\"\n"
        ),
    )
    .unwrap();
    let (ok, _, err) = run_with(yuqing().args(["check", "--config"]).arg(&main), "");
    assert!(!ok);
    for expected in [
        "server.user[1].id: `zhang` is also server.user[0].id",
        "server.user[1].password_hash: not a password hash in PHC form",
        "server.token[1].sha256: must be the token's SHA-256",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.contains("main.toml:"), "{err}");

    // No logins at all: the console runs on loopback only.
    let open = dir.path().join("open.toml");
    std::fs::write(&open, "data_dir = \"data-open\"\n").unwrap();
    let (ok, _, err) = run_with(
        yuqing()
            .args(["check", "--config"])
            .arg(&open)
            .env("YUQING__SERVER__LISTEN", "0.0.0.0:8080"),
        "",
    );
    assert!(
        ok && err.contains("warning: the console would listen on"),
        "{err}"
    );
    let (ok, _, err) = run_with(
        yuqing()
            .args(["run", "--config"])
            .arg(&open)
            .current_dir(dir.path())
            .env("YUQING__SERVER__LISTEN", "0.0.0.0:0"),
        "",
    );
    assert!(!ok, "an open console on every address must not start");
    assert!(err.contains("Add [[server.user]] logins"), "{err}");

    // With logins, the running console and API ask for them.
    std::fs::write(&main, &config).unwrap();
    let (mut child, addr) = spawn_listening(
        yuqing()
            .args(["run", "--config"])
            .arg(&main)
            .current_dir(dir.path()),
    )
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    let r = client
        .get(format!("{base}/api/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{base}/api/incidents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2F");
    let r = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=zhang&password=correct+horse+battery")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = client
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("张伟（处置）"));
    let _ = child.kill();
    let _ = child.wait();
}
