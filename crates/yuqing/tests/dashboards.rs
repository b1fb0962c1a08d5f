//! The monitoring that ships in `dashboards/`: every metric its Grafana
//! dashboard and Prometheus rules name exists in the code (a renamed metric
//! leaves a panel silently empty), and the rules pass their promtool unit
//! tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `yuqing_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("yuqing_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        out.insert(name);
    }
    out
}

/// The text of every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_metric_the_dashboards_name_exists() {
    let root = root();
    let dashboard =
        std::fs::read_to_string(root.join("dashboards/grafana/yuqing-overview.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let rules = std::fs::read_to_string(root.join("dashboards/prometheus/alerts.yml")).unwrap();
    let mut code = String::new();
    sources(&root.join("crates"), &mut code);
    let defined = |name: &str| code.contains(&format!("\"{name}\""));
    let mut named = metric_names(&dashboard);
    named.extend(metric_names(&rules));
    assert!(named.len() > 10, "{named:?}");
    let missing: Vec<_> = named
        .iter()
        .filter(|n| {
            // A histogram's series carry suffixes its definition does not.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            !defined(n) && !defined(base)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "named in dashboards/ but defined nowhere: {missing:?}"
    );
}

#[test]
fn the_alert_rules_pass_their_unit_tests() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!(
            "skipped: promtool is not installed (Debian's prometheus package has it; .ci/run installs it)"
        );
        return;
    }
    let dir = root().join("dashboards/prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"],
        &["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
