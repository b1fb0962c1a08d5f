use std::fs;

use yuqing_model::Level;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    p
}

const MAIN: &str = r#"
data_dir = "${DATA:-/tmp/yq}"

[alert]
min_level = "orange"

[[source]]
id = "news"
kind = "feed"
url = "https://example.com/rss.xml"
source_type = "新闻"

[[source]]
id = "weibo"
kind = "json"
url = "http://127.0.0.1:1/api"
url_template = "http://127.0.0.1:1/s/{id}"
"#;

const RULES: &str = r#"
[[rule]]
id = "a"
name = "甲"
query = "坍塌 AND 伤亡"
level = "red"
weight = 60
"#;

#[test]
fn loads_main_file_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.toml", MAIN);
    write(dir.path(), "rules/a.toml", RULES);
    let cfg = Loader::default().load(&main).unwrap();
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/tmp/yq"));
    assert_eq!(cfg.settings.alert.min_level, Level::Orange);
    assert_eq!(cfg.settings.sources.len(), 2);
    assert_eq!(
        cfg.settings.sources[0].source_type(),
        yuqing_model::SourceType::News
    );
    assert_eq!(cfg.rules.len(), 1);
    assert_eq!(cfg.rules[0].level, Level::Red);
    // The query offset points inside the quotes.
    let o = &cfg.rules[0].origin;
    let off = o.query_offset.unwrap();
    assert!(RULES[off..].starts_with("坍塌"));
}

#[test]
fn variables_and_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.toml", MAIN);
    write(dir.path(), "rules/a.toml", RULES);
    let cfg = Loader::default()
        .var("DATA", "/srv/yq")
        .override_value("YUQING__SERVER__LISTEN", "0.0.0.0:9000")
        .override_value("YUQING__INDEX__COMMIT_EVERY_DOCS", "7")
        .load(&main)
        .unwrap();
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/srv/yq"));
    assert_eq!(cfg.settings.server.listen, "0.0.0.0:9000");
    assert_eq!(cfg.settings.index.commit_every_docs, 7);
}

#[test]
fn type_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.toml", "[alert]\nmin_level = \"purple\"\n");
    write(dir.path(), "rules/a.toml", RULES);
    let err = Loader::default().load(&main).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("main.toml:2:"), "{text}");
    assert!(text.contains("purple"), "{text}");
}

#[test]
fn semantic_errors_are_all_reported_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "main.toml",
        r#"[alert]
timezone = "Mars/Olympus"
simhash_max_distance = 30

[[source]]
id = "x"
kind = "feed"
url = "ftp://example.com/feed"

[[source]]
id = "x"
kind = "feed"
url = "https://example.com/feed"
"#,
    );
    write(dir.path(), "rules/a.toml", RULES);
    let errs = Loader::default().load(&main).unwrap_err().0;
    let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let joined = all.join("\n");
    assert!(
        joined.contains("main.toml:2:12: alert.timezone: unknown time zone"),
        "{joined}"
    );
    assert!(
        joined.contains("main.toml:3:24: alert.simhash_max_distance: 30 is too far"),
        "{joined}"
    );
    assert!(joined.contains("main.toml:8:7: source[0].url"), "{joined}");
    assert!(
        joined.contains("main.toml:11:6: source[1].id: duplicate source id `x`"),
        "{joined}"
    );
}

#[test]
fn broken_rule_files_are_reported_and_left_out_while_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.toml", "");
    write(dir.path(), "rules/a.toml", RULES);
    write(dir.path(), "rules/b.toml", RULES);
    write(
        dir.path(),
        "rules/c.toml",
        "[[rule]]\nid = \"c\"\nquery = \"x\"\nlevel = \"purple\"\n",
    );
    let cfg = Loader::default().load(&main).unwrap();
    assert_eq!(cfg.rules.len(), 1, "the first `a` stays");
    let joined: Vec<String> = cfg.rule_errors.iter().map(|e| e.to_string()).collect();
    let joined = joined.join("\n");
    assert!(
        joined.contains("b.toml:3:6: rule[0].id: duplicate rule id `a`"),
        "{joined}"
    );
    assert!(joined.contains("c.toml:4:9"), "{joined}");
    assert!(joined.contains("purple"), "{joined}");
}

#[test]
fn unknown_fields_and_kinds_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/a.toml", RULES);
    let main = write(
        dir.path(),
        "main.toml",
        "[[source]]\nid = \"x\"\nkind = \"feed\"\nurl = \"https://e.com/\"\nintervall = 5\n",
    );
    let text = Loader::default().load(&main).unwrap_err().to_string();
    assert!(text.contains("intervall"), "{text}");
    assert!(text.contains("main.toml:"), "{text}");
    let main = write(
        dir.path(),
        "main.toml",
        "[[source]]\nid = \"x\"\nkind = \"telegram\"\n",
    );
    let text = Loader::default().load(&main).unwrap_err().to_string();
    assert!(text.contains("telegram"), "{text}");
}

#[test]
fn unset_variables_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "main.toml",
        "data_dir = \"${NOPE_NOT_SET_XYZ}\"\n",
    );
    let text = Loader::default().load(&main).unwrap_err().to_string();
    assert!(text.contains("main.toml:1:13"), "{text}");
    assert!(text.contains("NOPE_NOT_SET_XYZ"), "{text}");
}

#[test]
fn embedded_files_load_like_disk_files() {
    static FILES: &[(&str, &str)] = &[("cfg/main.toml", MAIN), ("cfg/rules/a.toml", RULES)];
    let cfg = Loader::default()
        .load_embedded(FILES, "cfg/main.toml")
        .unwrap();
    assert_eq!(cfg.rules.len(), 1);
}

#[test]
fn every_broken_rule_of_a_file_is_reported_and_its_good_rules_load() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.toml", "");
    write(
        dir.path(),
        "rules/mixed.toml",
        "[[rule]]\nid = \"ok\"\nquery = \"x\"\nlevel = \"red\"\n\n\
         [[rule]]\nid = \"bad-level\"\nquery = \"y\"\nlevel = \"purple\"\n\n\
         [[rule]]\nid = \"typo\"\nqeury = \"z\"\nlevel = \"blue\"\n\n\
         [[rule]]\nid = \"heavy\"\nquery = \"w\"\nlevel = \"blue\"\nweight = \"a lot\"\n",
    );
    let cfg = Loader::default().load(&main).unwrap();
    let ids: Vec<&str> = cfg.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["ok"]);
    let errors: Vec<String> = cfg.rule_errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("mixed.toml:9:9: rule[1].level") && errors[0].contains("purple"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("rule[2]") && errors[1].contains("qeury"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("mixed.toml:20:10: rule[3].weight"),
        "{}",
        errors[2]
    );
}
