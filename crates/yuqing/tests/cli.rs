//! The `yuqing` binary, driven as a user drives it.

use std::path::Path;
use std::process::{Command, Stdio};

fn yuqing() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yuqing"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c.env_remove("RUST_LOG");
    c
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_shipped_configs() {
    for cfg in ["config/default.toml", "config/demo.toml"] {
        let (ok, out, err) = run(yuqing().args(["check", "--config", cfg]));
        assert!(ok, "{cfg}: {err}");
        assert!(out.contains("ok ("), "{out}");
    }
}

#[test]
fn check_names_file_line_and_field_of_every_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        "[report]\nschedule = \"every morning\"\n\n[[source]]\nid = \"bbs\"\nkind = \"forum\"\nlist_url = \"https://bbs.example.com/\"\nthread_link = \"a[\"\npost = \"div.post\"\npost_content = \".t_f\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules/r.toml"),
        "[[rule]]\nid = \"x\"\nquery = \"(a OR b\"\nlevel = \"red\"\n\n[[rule]]\nid = \"y\"\nquery = \"NOT c\"\nlevel = \"blue\"\n",
    )
    .unwrap();
    let main = dir.path().join("main.toml");
    let (ok, _, err) = run(yuqing().args(["check", "--config"]).arg(&main));
    assert!(!ok);
    assert!(
        err.contains("main.toml:2:12: report.schedule: invalid cron expression"),
        "{err}"
    );

    std::fs::write(
        &main,
        "[[source]]\nid = \"bbs\"\nkind = \"forum\"\nlist_url = \"https://bbs.example.com/\"\nthread_link = \"a[\"\npost = \"div.post\"\npost_content = \".t_f\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(yuqing().args(["check", "--config"]).arg(&main));
    assert!(!ok);
    assert!(
        err.contains("main.toml:5:15: source[0].thread_link: invalid CSS selector"),
        "{err}"
    );
    assert!(
        err.contains("r.toml:3:10: rule[0].query: unbalanced parenthesis"),
        "{err}"
    );
    assert!(
        err.contains("r.toml:8:10: rule[1].query: query only excludes"),
        "{err}"
    );
    assert!(err.contains("3 error(s)"), "{err}");
}

#[test]
fn analyze_reads_json_lines_and_reports_bad_ones() {
    let mut child = yuqing()
        .args(["analyze", "--config", "config/demo.toml"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(
            stdin,
            r#"{{"url": "https://news.example.com/1", "title": "老楼垮塌", "text": "三人被困"}}"#
        )
        .unwrap();
        writeln!(stdin, "{{not json").unwrap();
        writeln!(
            stdin,
            r#"{{"url": "https://news.example.com/2", "title": "读书节", "text": "图书馆活动"}}"#
        )
        .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "a bad line makes the exit status non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdin line 2"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "the good lines are still analyzed");
    assert_eq!(lines[0]["level"], "red");
    assert_eq!(lines[0]["hits"][0]["rule_id"], "building-collapse");
    assert!(lines[1]["hits"].as_array().unwrap().is_empty());
}

#[test]
fn demo_runs_offline_for_a_duration_and_summarizes() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(yuqing()
        .args([
            "demo",
            "--duration",
            "6",
            "--listen",
            "127.0.0.1:0",
            "--site-port",
            "0",
            "--data-dir",
        ])
        .arg(dir.path()));
    assert!(ok, "{err}");
    assert!(out.contains("console      http://127.0.0.1:"), "{out}");
    let summary = out
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(summary.contains("collected 88"), "{summary}");
    assert!(summary.contains("indexed 88"), "{summary}");
    // The demo's per-minute schedule may add one when a minute turns.
    let reports: u32 = summary
        .split("reports ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reports >= 1, "{summary}");
    assert!(
        std::fs::read_dir(dir.path().join("reports"))
            .unwrap()
            .count()
            >= 2,
        "markdown and html"
    );

    // Search the index it left behind.
    let (ok, out, err) = run(yuqing()
        .args(["search", "垮塌", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    assert!(out.lines().next().unwrap().ends_with("matches"), "{out}");
    assert!(out.contains("垮塌"), "{out}");
}

#[test]
fn run_refuses_partial_roles_without_kafka() {
    let (ok, _, err) = run(yuqing().args(["run", "--roles", "crawler"]));
    assert!(!ok);
    assert!(err.contains("Kafka"), "{err}");
    let (ok, _, err) = run(yuqing().args(["run", "--roles", "painter"]));
    assert!(!ok);
    assert!(err.contains("unknown role `painter`"), "{err}");
}
