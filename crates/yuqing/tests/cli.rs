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
    assert!(out.contains("«垮塌»"), "matched terms are marked: {out}");
    assert!(out.contains("source types: "), "facets: {out}");
    assert!(out.contains("; sites: "), "facets: {out}");
    assert!(out.contains("  hits 1-"), "{out}");

    // Everything: the second page of one hit, and the histogram by day.
    let (ok, out, err) = run(yuqing()
        .args(["search", "", "--offset", "1", "--limit", "1"])
        .args(["--interval", "day", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    let total: usize = out.split(' ').next().unwrap().parse().unwrap();
    assert!(total >= 2, "{out}");
    assert!(out.contains("  hits 2-2:"), "{out}");
    assert!(out.contains("  by day:"), "{out}");
    let days: u64 = out
        .lines()
        .skip_while(|l| *l != "  by day:")
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        days as usize, total,
        "the days add up to the matches: {out}"
    );

    // The rule language, filters and sorting.
    let (ok, out, err) = run(yuqing()
        .args([
            "search",
            "坍塌 NEAR/30 被困",
            "--sentiment",
            "负面",
            "--sort",
            "score",
            "--json",
            "--config",
            "config/demo.toml",
        ])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["total"].as_u64().unwrap() >= 1, "{out}");
    assert!(v["verified"]["candidates"].as_u64().unwrap() >= 1, "{out}");
    assert!(
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["sentiment"] == "negative"),
        "{out}"
    );
    let (ok, _, err) = run(yuqing()
        .args(["search", "垮塌 AND (被困", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(!ok);
    assert!(err.contains("invalid query") && err.contains("^"), "{err}");

    // Backtests of a saved rule and of a draft.
    let (ok, out, err) = run(yuqing()
        .args([
            "rules",
            "backtest",
            "--rule",
            "building-collapse",
            "--since",
            "2d",
        ])
        .args(["--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    assert!(out.contains("matches among 88 items"), "{out}");
    let single: u64 = out
        .lines()
        .find(|l| l.contains("matches among"))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .unwrap();
    // A backtest counts what the analyzer fired: the items the index
    // holds with the rule among their hits.
    let (ok, out, err) = run(yuqing()
        .args(["search", "", "--rule", "building-collapse", "--since", "2d"])
        .args(["--json", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"].as_u64().unwrap(), single, "{out}");
    assert!(single >= 1);
    // Every configured rule at once, each with its own count.
    let (ok, out, err) = run(yuqing()
        .args(["rules", "backtest", "--since", "2d", "--json"])
        .args(["--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rules = v["backtest"]["rules"].as_array().unwrap();
    assert!(rules.len() > 1, "{out}");
    let collapse = rules
        .iter()
        .find(|r| r["id"] == "building-collapse")
        .unwrap();
    assert_eq!(collapse["matches"].as_u64().unwrap(), single, "{out}");
    let any = v["backtest"]["matches"].as_u64().unwrap();
    let most = rules.iter().map(|r| r["matches"].as_u64().unwrap()).max();
    let sum: u64 = rules.iter().map(|r| r["matches"].as_u64().unwrap()).sum();
    assert!(most <= Some(any) && any <= sum, "{out}");
    // The report of the demo's data, and --send without channels to send
    // to.
    let (ok, out, err) = run(yuqing()
        .args(["report", "daily", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    assert!(out.starts_with("daily report (日报)"), "{out}");
    let md = out.lines().find(|l| l.ends_with(".md")).unwrap();
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("## 预警事件"), "{md}");
    let (ok, _, err) = run(yuqing()
        .args(["report", "daily", "--send", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(!ok);
    assert!(err.contains("report.send_to names no channel"), "{err}");
    // The special report of the first incident, and of one that is not.
    let (ok, out, err) = run(yuqing()
        .args(["report", "incident", "1", "--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    assert!(
        out.starts_with("special report (专报) of incident 1"),
        "{out}"
    );
    let md = out.lines().find(|l| l.ends_with(".md")).unwrap();
    assert!(md.contains("/special-1-"), "named after its incident: {md}");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("（专报）") && md.contains("## 处置经过"),
        "{md}"
    );
    let (ok, _, err) = run(yuqing()
        .args([
            "report",
            "incident",
            "999999",
            "--config",
            "config/demo.toml",
        ])
        .env("DEMO_DATA", dir.path()));
    assert!(!ok);
    assert!(err.contains("no incident 999999"), "{err}");
    check_report_formats(dir.path());
    let (ok, out, err) = run(yuqing()
        .args(["rules", "backtest", "--query", "垮塌 | 坍塌", "--json"])
        .args(["--config", "config/demo.toml"])
        .env("DEMO_DATA", dir.path()));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["backtest"]["matches"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(v["backtest"]["days"].as_array().unwrap().len(), 31, "{out}");
}

/// The demo's reports as Word and PDF, to the reports directory and to a
/// file; a nil report refused for a period with incidents.
fn check_report_formats(data: &std::path::Path) {
    let report = |args: &[&str]| {
        run(yuqing()
            .arg("report")
            .args(args)
            .args(["--config", "config/demo.toml"])
            .env("DEMO_DATA", data))
    };
    // Beside the Markdown and HTML in the reports directory.
    let (ok, out, err) = report(&["daily", "--format", "docx"]);
    assert!(ok, "{err}");
    let docx = out.lines().find(|l| l.ends_with(".docx")).unwrap();
    let xml = docx_text(&std::fs::read(docx).unwrap());
    assert!(
        xml.contains("预警事件") && xml.contains("江州市舆情监测（演示）"),
        "{xml}"
    );
    // One format to a file, by its extension.
    let out_dir = tempfile::tempdir().unwrap();
    let special = out_dir.path().join("special.docx");
    let (ok, out, err) = report(&["incident", "1", "--out", special.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("special.docx"), "{out}");
    assert!(docx_text(&std::fs::read(&special).unwrap()).contains("传播链"));
    // Markdown to standard output.
    let (ok, out, err) = report(&["incident", "1", "--out", "-"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("# 江州市舆情监测（演示）（专报）"), "{out}");
    // The period has incidents: no nil report for it. A period before the
    // demo's items has none, and its nil report is written.
    let (ok, _, err) = report(&["nil"]);
    assert!(!ok);
    assert!(err.contains("not a nil report"), "{err}");
    let nil = out_dir.path().join("nil.md");
    let (ok, _, err) = report(&[
        "nil",
        "--at",
        "2020-01-01 08:30",
        "--out",
        nil.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let md = std::fs::read_to_string(&nil).unwrap();
    assert!(
        md.contains("（零报告）") && md.contains("2019-12-31 08:30"),
        "{md}"
    );
    // --date: the demo writes every minute, so the day's first report ends
    // at midnight.
    let (ok, out, err) = report(&["daily", "--date", "2020-01-02", "--out", "-"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2020-01-01 00:00 至 2020-01-02 00:00"),
        "{out}"
    );
    let (ok, _, err) = report(&["daily", "--date", "2999-01-01"]);
    assert!(!ok && err.contains("in the future"), "{err}");
    let (ok, _, err) = report(&["daily", "--format", "odt"]);
    assert!(!ok && err.contains("--format `odt`"), "{err}");
    // PDF, where a Chinese font is installed (.ci/run installs one).
    let pdf = out_dir.path().join("daily.pdf");
    let (ok, _, err) = report(&["daily", "--out", pdf.to_str().unwrap()]);
    if !ok && err.contains("no font with Chinese characters") && std::env::var_os("CI").is_none() {
        eprintln!("skipping the PDF: {err}");
        return;
    }
    assert!(ok, "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
}

/// The text of a Word document's body.
fn docx_text(docx: &[u8]) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(docx)).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("word/document.xml").unwrap(), &mut xml)
        .unwrap();
    xml
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

#[test]
fn check_lints_every_rule_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("main.toml"), "").unwrap();
    std::fs::write(
        dir.path().join("rules/a.toml"),
        "[[rule]]\nid = \"scoped\"\nquery = \"坍塌 AND titel:被困\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"near\"\nquery = \"坍塌 NEAR/5 (被困 AND 伤亡)\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"empty\"\nquery = \"欠薪 AND ()\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"good\"\nquery = \"[和平] NEAR/10 示威\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"phrase\"\nquery = \"\\\"电梯 故障\\\" AND (困人\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"onlynot\"\nquery = \"NOT 演习\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"multi\"\nquery = \"\"\"\n坍塌 AND\n  (被困\"\"\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"excl\"\nquery = \"火灾\"\nexclude = [\"演习\", \"电影 AND (\"]\nlevel = \"red\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules/b.toml"),
        "[[rule]]\nid = \"good\"\nquery = \"x\"\nlevel = \"blue\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(yuqing()
        .args(["check", "--config"])
        .arg(dir.path().join("main.toml")));
    assert!(!ok);
    for want in [
        "a.toml:3:17: rule[0].query: unknown field `titel`",
        "a.toml:8:20: rule[1].query: NEAR/5 joins terms",
        "a.toml:13:17: rule[2].query: empty group",
        "b.toml:2:6: rule[0].id: duplicate rule id `good`",
        // Escaped quotes, a multi-line string and an exclusion still get
        // the line and column of the problem.
        "a.toml:23:24: rule[4].query:",
        "a.toml:28:10: rule[5].query:",
        "a.toml:35:3: rule[6].query:",
        "a.toml:41:27: rule[7].exclude[1]: exclude `电影 AND (`: query ends",
        "8 error(s)",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    // The caret sits under the problem, counting CJK characters as two
    // terminal cells.
    let caret = format!("query = \"坍塌 AND titel:被困\"\n{}^", " ".repeat(4 + 18));
    assert!(err.contains(&caret), "{err}");
}

#[test]
fn rules_test_explains_why_a_rule_fires_or_not() {
    let (ok, out, err) = run(yuqing().args([
        "rules",
        "test",
        "--config",
        "config/demo.toml",
        "--title",
        "江州一小区楼房垮塌",
        "--text",
        "今天上午，一居民楼发生垮塌，消防员救出三名被困群众。",
    ]));
    assert!(ok, "{err}");
    assert!(out.contains("✓ building-collapse"), "{out}");
    assert!(out.contains("✓ \"垮塌\": at character 7"), "{out}");
    assert!(out.contains("✗ \"坍塌\": not found"), "{out}");
    assert!(out.contains("score 60"), "{out}");
    let (ok, out, _) = run(yuqing().args([
        "rules",
        "test",
        "--config",
        "config/demo.toml",
        "--text",
        "工地欠薪",
        "--rule",
        "building-collapse",
    ]));
    assert!(!ok, "exit status 1 when the rule does not fire");
    assert!(out.contains("✗ building-collapse"), "{out}");
}

#[test]
fn bench_analysis_compares_with_plain_segmentation() {
    let (ok, out, err) = run(yuqing().args(["bench", "analysis", "--seconds", "0.2"]));
    assert!(ok, "{err}");
    assert!(out.contains("200 rules, 10000 lexicon words"), "{out}");
    assert!(out.contains("jieba-rs cut (baseline)"), "{out}");
    assert!(out.contains("analysis time by stage: normalize"), "{out}");
    let ratio: f64 = out
        .split("runs at ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(ratio > 0.0, "{out}");
    // The generated rules and lexicon do match the corpus.
    assert!(!out.contains("(0 rule hits"), "{out}");
}

#[test]
fn bench_pipeline_runs_items_through_every_stage() {
    let (ok, out, err) = run(yuqing().args([
        "bench", "pipeline", "--items", "300", "--paced", "4", "--rate", "20",
    ]));
    assert!(ok, "{err}");
    assert!(
        out.contains("analysis alone, one thread (baseline)"),
        "{out}"
    );
    assert!(
        out.contains("whole pipeline (analyze, index, alert)"),
        "{out}"
    );
    let ratio: f64 = out
        .split("runs at ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(ratio > 0.0, "{out}");
    assert!(
        out.contains("latency, arrival to searchable and alerted (4 items"),
        "{out}"
    );
    // The rules fire, so the alerter has work to do.
    assert!(!out.contains("(0 incidents opened)"), "{out}");
}

fn sentiment_data() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("YUQING_SENTIMENT_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sentiment")
        });
    if dir.join("chnsenticorp-dev.tsv").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: no sentiment corpora at ../shared/data/sentiment (set YUQING_SENTIMENT_DATA to the folder)"
        );
        None
    }
}

fn accuracy_of(out: &str) -> f64 {
    out.split("accuracy ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn sentiment_models_reach_their_accuracy_on_chnsenticorp() {
    let Some(data) = sentiment_data() else { return };
    let dev = data.join("chnsenticorp-dev.tsv");
    let (ok, out, err) = run(yuqing().args(["sentiment", "eval", "--data"]).arg(&dev));
    assert!(ok, "{err}");
    let bundled = accuracy_of(&out);
    assert!(bundled >= 0.85, "bundled model: {out}");

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("chn.model");
    let (ok, out, err) = run(yuqing()
        .args(["sentiment", "train", "--data"])
        .arg(data.join("chnsenticorp-train.tsv"))
        .arg("--out")
        .arg(&model));
    assert!(ok, "{err}");
    assert!(out.contains("trained on 9600 texts"), "{out}");
    let (ok, out, err) = run(yuqing()
        .args(["sentiment", "eval", "--data"])
        .arg(&dev)
        .arg("--model")
        .arg(&model));
    assert!(ok, "{err}");
    let trained = accuracy_of(&out);
    assert!(trained >= 0.92, "trained model: {out}");
    eprintln!("bundled {bundled:.4}, trained on ChnSentiCorp {trained:.4}");
}

#[test]
fn sentiment_train_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.tsv");
    std::fs::write(&data, "1\t很好\n5\t很差\n").unwrap();
    let (ok, _, err) = run(yuqing()
        .args(["sentiment", "train", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("m")));
    assert!(!ok);
    assert!(err.contains("bad.tsv:2: label `5`"), "{err}");
    std::fs::write(&data, "1\t很好\n0\t很差\n").unwrap();
    let (ok, _, err) = run(yuqing()
        .args(["sentiment", "train", "--keep", "0", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("m")));
    assert!(!ok);
    assert!(
        err.contains("--keep 0 would leave the model no weights"),
        "{err}"
    );
}

#[test]
fn bench_reprints_groups_the_reprint_set_precisely() {
    let (ok, out, err) = run(yuqing().args(["bench", "reprints"]));
    assert!(ok, "{err}");
    assert!(out.contains("60 articles in 20 topics"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("configured"))
        .unwrap_or_else(|| panic!("{out}"));
    let figure = |name: &str| -> f64 {
        let rest = &line[line.find(name).unwrap() + name.len()..];
        rest.trim_start()
            .split(|c: char| c == ',' || c.is_whitespace())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (p, r) = (figure("precision"), figure("recall"));
    assert!(p >= 0.95 && r >= 0.90, "precision {p}, recall {r}\n{out}");
    // The sweep shows what the word-pair check adds: with any combined
    // distance, precision falls.
    let any = out
        .lines()
        .find(|l| l.contains(" any "))
        .unwrap_or_else(|| panic!("{out}"));
    let any_p: f64 = any.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(any_p < p, "{out}");
}

#[test]
fn bench_index_compares_ingest_and_reports_query_latency() {
    let (ok, out, err) = run(yuqing().args([
        "bench",
        "index",
        "--docs",
        "300",
        "--query-docs",
        "2000",
        "--runs",
        "3",
        "--join",
        "2",
        "--rounds",
        "2",
    ]));
    assert!(ok, "{err}");
    assert!(out.contains("joined 2 at a time"), "{out}");
    assert!(out.contains("segmenting again (2 rounds: "), "{out}");
    assert!(out.contains("pre-tokenized (analyzer's tokens)"), "{out}");
    assert!(out.contains("tantivy-jieba segmenting again"), "{out}");
    assert!(out.contains("ratio: pre-tokenized indexing is"), "{out}");
    assert!(out.contains("built an index of 2000 items"), "{out}");
    for q in [
        "term query",
        "boolean query with filters",
        "date histogram, 30 days",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(q))
            .unwrap_or_else(|| panic!("{q}: {out}"));
        let matches: u64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert!(matches > 0 || q.starts_with("boolean"), "{line}");
    }
}

#[test]
fn check_names_every_routing_problem_and_run_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(
        &main,
        r#"data_dir = "data"

[[alert.person]]
id = "wang"
channels = ["ding"]

[[alert.channel]]
id = "ding"
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=x"

[[alert.roster]]
id = "duty"
[[alert.roster.shift]]
when = "mon-fri 09:00-18:00"
person = "wang"
[[alert.roster.shift]]
when = "mon-sun 17:00-09:00"
person = "wang"

[[alert.policy]]
id = "p"
[[alert.policy.step]]
targets = ["roster:duty", "person:zhao"]

[[alert.route]]
id = "all"
policy = "p"
"#,
    )
    .unwrap();
    let (ok, _, err) = run(yuqing().args(["check", "--config"]).arg(&main));
    assert!(!ok);
    for expected in [
        "main.toml:9:8: alert.channel[0].secret: a DingTalk robot needs its signing `secret`",
        "roster `duty`: shift[0] and shift[1] overlap from mon 17:00 to mon 18:00",
        "roster `duty`: no one is on duty from sat 09:00 to sat 17:00",
        "alert.policy[0].step[0].targets: `person:zhao` names an unknown person",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    // The alerter will not start on it.
    let (ok, _, err) = run(yuqing().args(["run", "--config"]).arg(&main));
    assert!(!ok);
    assert!(
        err.contains("a DingTalk robot needs its signing `secret`"),
        "{err}"
    );
}

#[test]
fn oncall_says_who_is_on_duty_at_any_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(
        &main,
        r#"data_dir = "data"

[[alert.person]]
id = "wang"
name = "王磊"
mobile = "13800000001"
channels = ["hook"]

[[alert.person]]
id = "li"
name = "李娜"
channels = ["hook"]

[[alert.channel]]
id = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"

[[alert.roster]]
id = "duty"
name = "总值班"
[[alert.roster.shift]]
when = "mon-fri 09:00-18:00"
person = "wang"
[[alert.roster.shift]]
when = "mon-thu 18:00-09:00"
person = "li"
[[alert.roster.shift]]
when = "fri 18:00-24:00"
person = "li"
[[alert.roster.shift]]
when = "sat,sun"
person = "li"
[[alert.roster.shift]]
when = "mon 00:00-09:00"
person = "li"
[[alert.roster.override]]
from = "2026-10-01"
until = "2026-10-08 09:00"
person = "wang"
note = "国庆值班"
"#,
    )
    .unwrap();
    // Wednesday 10:00 and Saturday 10:00 in Shanghai.
    let (ok, out, err) = run(yuqing()
        .args(["oncall", "--at", "2026-11-25T10:00:00+08:00", "--config"])
        .arg(&main));
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "总值班: 王磊 13800000001 (shift mon-fri 09:00-18:00, 11-25 09:00 to 11-25 18:00 Asia/Shanghai)"
    );
    let (ok, out, _) = run(yuqing()
        .args(["oncall", "--at", "2026-11-28T10:00:00+08:00", "--config"])
        .arg(&main));
    assert!(ok);
    // Friday night runs into the weekend and on to Monday 09:00.
    assert_eq!(
        out.trim(),
        "总值班: 李娜 (shift sat,sun, 11-27 18:00 to 11-30 09:00 Asia/Shanghai)"
    );
    // The holiday's override, in place of the weekend shift.
    let (ok, out, _) = run(yuqing()
        .args(["oncall", "--at", "2026-10-03T10:00:00+08:00", "--config"])
        .arg(&main));
    assert!(ok);
    assert_eq!(
        out.trim(),
        "总值班: 王磊 13800000001 (override 国庆值班, 10-01 00:00 to 10-08 09:00 Asia/Shanghai)"
    );
}

/// A page's text reaches the terminal without the escape sequences and
/// bidirectional overrides a hostile page can hide in it.
#[test]
fn extract_prints_crawled_text_without_terminal_controls() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    let body = "江州市青山区今天发布通知，全区将于本周末开展供水管网检修。".repeat(6);
    std::fs::write(
        &page,
        format!(
            "<html><head><title>通知\u{1b}[2J\u{1b}]0;pwned\u{7}标题\u{202e}txt.exe</title></head>\
             <body><article><h1>通知</h1><p>{body}\u{1b}[31m红色\u{1b}[0m</p><p>{body}</p></article></body></html>"
        ),
    )
    .unwrap();
    let (ok, out, err) = run(yuqing().arg("extract").arg(&page));
    assert!(ok, "{err}");
    assert!(out.contains("江州市青山区"), "{out}");
    assert!(out.contains("红色"), "{out}");
    for bad in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} reached the terminal: {out:?}");
    }
}
