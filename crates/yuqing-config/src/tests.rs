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
    let span = o.query_span.clone().unwrap();
    assert!(RULES[span.start..].starts_with("\"坍塌"));
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

[crawler]
seen_ttl_days = 3
quiet_expected = 0
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
    assert!(
        joined.contains(
            "main.toml:16:17: crawler.seen_ttl_days: 3 days is too short for quiet sources"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("main.toml:17:18: crawler.quiet_expected: must be at least 1"),
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

const DUTY: &str = r#"
[[alert.person]]
id = "zhang"
name = "张伟"
mobile = "13800000001"
channels = ["duty-ding"]

[[alert.person]]
id = "li"
name = "李娜"
mobile = "13800000002"
email = "li@example.org"
channels = ["duty-ding", "mail"]

[[alert.channel]]
id = "duty-ding"
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"
secret = "SECabc"

[[alert.channel]]
id = "mail"
kind = "email"
smtp = "smtp.example.org:465"
from = "舆情 <yq@example.org>"

[[alert.roster]]
id = "duty"
[[alert.roster.shift]]
when = "mon-fri 09:00-21:00"
person = "zhang"
[[alert.roster.shift]]
when = "mon-fri 21:00-09:00"
person = "li"
[[alert.roster.shift]]
when = "sat,sun 09:00-21:00"
person = "li"
[[alert.roster.shift]]
when = "sat,sun 21:00-09:00"
person = "zhang"

[[alert.policy]]
id = "default"
loops = 2
[[alert.policy.step]]
targets = ["roster:duty"]
ack_timeout = "15m"
[[alert.policy.step]]
targets = ["person:li", "channel:mail"]
ack_timeout = "30m"

[[alert.route]]
id = "red"
min_level = "red"
policy = "default"
group_wait = "10s"

[[alert.route]]
id = "all"
policy = "default"
quiet_hours = ["22:00-07:00"]
"#;

#[test]
fn loads_duty_and_routing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/a.toml", RULES);
    let main = write(dir.path(), "main.toml", &format!("{MAIN}{DUTY}"));
    let cfg = Loader::default().load(&main).unwrap();
    let a = &cfg.settings.alert;
    assert_eq!(a.person.len(), 2);
    assert_eq!(a.roster[0].shift.len(), 4);
    assert_eq!(
        a.policy[0].step[1].targets[1],
        Target::Channel("mail".into())
    );
    assert_eq!(a.policy[0].step[1].ack_timeout, Dur(1_800));
    assert_eq!(a.route[0].group_wait, Dur(10));
    assert_eq!(a.route[1].group_wait, Dur(30));
    assert!(a.route[1].quiet_hours[0].contains(23 * 60));
}

#[test]
fn every_routing_problem_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let broken = DUTY
        // A gap on weekday evenings and an overlap at the weekend.
        .replace("mon-fri 21:00-09:00", "mon-fri 22:00-09:00")
        .replace("sat,sun 21:00-09:00", "sat,sun 20:00-09:00")
        .replace("secret = \"SECabc\"\n", "")
        .replace("\"person:li\"", "\"person:wang\"")
        .replace(
            "channels = [\"duty-ding\"]",
            "channels = [\"duty-ding\", \"mail\"]",
        )
        .replace(
            "id = \"all\"\npolicy = \"default\"",
            "id = \"all\"\npolicy = \"nightly\"",
        );
    write(dir.path(), "rules/a.toml", RULES);
    let main = write(dir.path(), "main.toml", &format!("{MAIN}{broken}"));
    let err = Loader::default().load(&main).unwrap_err();
    let text = err.to_string();
    for expected in [
        "alert.channel[0].secret: a DingTalk robot needs its signing `secret`",
        "roster `duty`: no one is on duty from mon 21:00 to mon 22:00",
        "roster `duty`: no one is on duty from fri 21:00 to fri 22:00",
        "roster `duty`: shift[2] and shift[3] overlap from sat 20:00 to sat 21:00",
        "alert.policy[0].step[1].targets: `person:wang` names an unknown person",
        "alert.route[1].policy: unknown policy `nightly`",
        "alert.person[0].channels: `zhang` is reached on email channel `mail` but has no `email`",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    // Each is located in the file.
    assert!(
        err.0.iter().all(|e| e.line.is_some()),
        "{:?}",
        err.0
            .iter()
            .filter(|e| e.line.is_none())
            .collect::<Vec<_>>()
    );
    // Without a catch-all route some incidents would reach no one.
    let no_catch_all = DUTY.replace(
        "id = \"all\"\npolicy",
        "id = \"all\"\nmin_level = \"blue\"\npolicy",
    );
    let main = write(dir.path(), "main.toml", &format!("{MAIN}{no_catch_all}"));
    let text = Loader::default().load(&main).unwrap_err().to_string();
    assert!(
        text.contains("alert.route[1]: no route takes every incident"),
        "{text}"
    );
}

#[test]
fn kafka_settings_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/a.toml", RULES);
    let good = write(
        dir.path(),
        "good.toml",
        "[bus]\nkind = \"kafka\"\n[bus.kafka]\nbrokers = \"k1:9092, k2:9092\"\npartitions = 12\n[bus.kafka.properties]\n\"security.protocol\" = \"sasl_ssl\"\n",
    );
    let cfg = Loader::default().load(&good).unwrap();
    assert_eq!(cfg.settings.bus.kind, crate::BusKind::Kafka);
    assert_eq!(cfg.settings.bus.kafka.partitions, 12);
    assert_eq!(cfg.settings.bus.kafka.replication, 1);
    assert_eq!(
        cfg.settings.bus.kafka.properties["security.protocol"],
        "sasl_ssl"
    );
    let bad = write(
        dir.path(),
        "bad.toml",
        "[bus]\nkind = \"kafka\"\n[bus.kafka]\nbrokers = \"k1\"\npartitions = 0\n",
    );
    let text = Loader::default().load(&bad).unwrap_err().to_string();
    assert!(
        text.contains("bad.toml:4:") && text.contains("host:port"),
        "{text}"
    );
    assert!(
        text.contains("bad.toml:5:") && text.contains("at least 1"),
        "{text}"
    );
    let unknown = write(dir.path(), "unknown.toml", "[bus]\nkind = \"rabbitmq\"\n");
    let text = Loader::default().load(&unknown).unwrap_err().to_string();
    assert!(text.contains("unknown.toml:2:"), "{text}");
}

#[test]
fn literal_offsets_follow_escapes_and_multi_line_strings() {
    use crate::rules::literal_offset;
    // `(` is at byte 15 of the decoded `"电梯 故障" AND (`.
    let lit = r#""\"电梯 故障\" AND (困人""#;
    let decoded = "\"电梯 故障\" AND (困人";
    let pos = decoded.find('(').unwrap();
    assert_eq!(&lit[literal_offset(lit, pos).unwrap()..][..1], "(");
    let lit = r#""\u5750塌 AND (x""#;
    let pos = "坐塌 AND (x".find('(').unwrap();
    assert_eq!(&lit[literal_offset(lit, pos).unwrap()..][..1], "(");
    let lit = "\"\"\"\n坍塌 AND \\\n   (被困\"\"\"";
    let pos = "坍塌 AND (被困".find('(').unwrap();
    assert_eq!(&lit[literal_offset(lit, pos).unwrap()..][..1], "(");
    let lit = "'C:\\x (y'";
    assert_eq!(literal_offset(lit, 5), Some(6));
    // \U, \x and \e decode to one character each; a multi-line literal
    // string has no escapes.
    let lit = r#""\U0001F600\x41\e (z""#;
    let pos = "\u{1F600}A\u{1b} (z".find('(').unwrap();
    assert_eq!(&lit[literal_offset(lit, pos).unwrap()..][..1], "(");
    let lit = "'''\n\\d+ (x'''";
    let pos = "\\d+ (x".find('(').unwrap();
    assert_eq!(&lit[literal_offset(lit, pos).unwrap()..][..1], "(");
    // A broken escape is no position rather than a panic.
    assert_eq!(literal_offset("\"\\中 (\"", 4), None);
    // An ad-hoc query is its own literal; past the end there is nothing.
    assert_eq!(literal_offset("a (b", 2), Some(2));
    assert_eq!(literal_offset("\"ab\"", 5), None);
}

#[test]
fn reports_go_to_channels_that_can_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "main.toml",
        r#"[report]
send_to = ["hook", "nope", "mail"]

[[alert.channel]]
id = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"

[[alert.channel]]
id = "mail"
kind = "email"
smtp = "127.0.0.1:25"
from = "yq@example.org"
"#,
    );
    write(dir.path(), "rules/a.toml", RULES);
    let errs = Loader::default().load(&main).unwrap_err().0;
    let joined: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let joined = joined.join("\n");
    assert!(
        joined.contains("main.toml:2:20: report.send_to[1]: unknown channel `nope`"),
        "{joined}"
    );
    assert!(
        joined.contains("main.toml:2:28: report.send_to[2]: channel `mail` has no `to`"),
        "{joined}"
    );
    assert_eq!(errs.len(), 2, "{joined}");
}

/// `DUTY` with `overrides` (and any other rosters) before its policies.
fn duty_with_overrides(overrides: &str) -> String {
    DUTY.replacen(
        "[[alert.policy]]",
        &format!("{overrides}\n[[alert.policy]]"),
        1,
    )
}

#[test]
fn roster_overrides_load_and_each_problem_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/a.toml", RULES);
    let good = duty_with_overrides(
        "[[alert.roster.override]]\nfrom = \"2026-10-01\"\nuntil = \"2026-10-08 09:00\"\nperson = \"li\"\nnote = \"国庆值班\"\n",
    );
    let main = write(dir.path(), "main.toml", &format!("{MAIN}{good}"));
    let cfg = Loader::default().load(&main).unwrap();
    let o = &cfg.settings.alert.roster[0].overrides[0];
    assert_eq!(o.from.at.to_string(), "2026-10-01 00:00:00");
    assert_eq!(o.until.text, "2026-10-08 09:00");
    assert_eq!((o.person.as_str(), o.note.as_str()), ("li", "国庆值班"));

    let over = |from: &str, until: &str, person: &str| {
        format!(
            "[[alert.roster.override]]\nfrom = \"{from}\"\nuntil = \"{until}\"\nperson = \"{person}\"\n"
        )
    };
    let broken = duty_with_overrides(
        &[
            over("2026-10-01 09:00", "2026-10-03 09:00", "wang"),
            over("2026-11-01 09:00", "2026-11-01 08:00", "li"),
            over("2026-10-02 21:00", "2026-10-04 09:00", "li"),
            "[[alert.roster]]\nid = \"ny\"\ntimezone = \"America/New_York\"\n\
             [[alert.roster.shift]]\nwhen = \"mon-sun 00:00-24:00\"\nperson = \"li\"\n"
                .to_string(),
            over("2026-03-08 02:30", "2026-03-09", "zhang"),
        ]
        .concat(),
    );
    let main = write(dir.path(), "main.toml", &format!("{MAIN}{broken}"));
    let err = Loader::default().load(&main).unwrap_err();
    let text = err.to_string();
    for expected in [
        "alert.roster[0].override[0].person: unknown person `wang`",
        "alert.roster[0].override[1].until: ends at `2026-11-01 08:00`, not after it starts (`2026-11-01 09:00`)",
        "alert.roster[0].override[2].from: overlaps override[0] of roster `duty`",
        "alert.roster[1].override[0].from: `2026-03-08 02:30` does not occur in America/New_York",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert_eq!(err.0.len(), 4, "{text}");
    assert!(err.0.iter().all(|e| e.line.is_some()), "{:?}", err.0);

    let malformed = duty_with_overrides(&over("2026-13-01", "2026-10-08", "li"));
    let main = write(dir.path(), "main.toml", &format!("{MAIN}{malformed}"));
    let err = Loader::default().load(&main).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`2026-13-01` is not a local time like `2026-10-01 09:00`"),
        "{text}"
    );
    assert!(err.0[0].line.is_some(), "{:?}", err.0);
}

#[test]
fn a_password_goes_in_clear_only_to_a_relay_on_this_host() {
    let channel = |id: &str, smtp: &str, auth: bool| {
        let auth = if auth {
            "username = \"yq\"\npassword = \"secret\"\n"
        } else {
            ""
        };
        format!(
            "[[alert.channel]]\nid = \"{id}\"\nkind = \"email\"\nsmtp = \"{smtp}\"\ntls = \"none\"\nfrom = \"yq@example.org\"\n{auth}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "main.toml",
        &[
            channel("remote", "mail.example.org:25", true),
            channel("local", "127.0.0.1:25", true),
            channel("named", "localhost:25", true),
            channel("v6", "[::1]:25", true),
            channel("relay", "relay.example.org:25", false),
        ]
        .concat(),
    );
    write(dir.path(), "rules/a.toml", RULES);
    let errs = Loader::default().load(&main).unwrap_err().0;
    let joined: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let joined = joined.join("\n");
    assert!(
        joined.contains(
            "main.toml:5:7: alert.channel[0].tls: `tls = \"none\"` would send the password in clear to `mail.example.org`"
        ),
        "{joined}"
    );
    assert_eq!(errs.len(), 1, "{joined}");
}

#[test]
fn alert_retention_keeps_what_the_alerter_reads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/a.toml", RULES);
    // The spike baseline looks back 14 days by default.
    for (days, ok) in [(0, true), (15, true), (365, true), (14, false), (7, false)] {
        let main = write(
            dir.path(),
            "main.toml",
            &format!("[alert]\nretention_days = {days}\n"),
        );
        match Loader::default().load(&main) {
            Ok(cfg) => {
                assert!(ok, "{days} days loaded");
                assert_eq!(cfg.settings.alert.retention_days, days);
            }
            Err(e) => {
                assert!(!ok, "{days}: {e}");
                assert!(
                    e.to_string().contains(&format!(
                        "main.toml:2:18: alert.retention_days: {days} days would delete what the alerter still reads"
                    )),
                    "{e}"
                );
            }
        }
    }
    let main = write(dir.path(), "main.toml", "");
    assert_eq!(
        Loader::default()
            .load(&main)
            .unwrap()
            .settings
            .alert
            .retention_days,
        365
    );
}

#[test]
fn the_console_address_and_its_public_url_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/a.toml", RULES);
    let main = write(
        dir.path(),
        "main.toml",
        "[server]\nlisten = \"8080\"\npublic_url = \"yuqing.example.gov.cn\"\nsession_ttl = \"1m\"\n",
    );
    let e = Loader::default().load(&main).unwrap_err().to_string();
    for expected in [
        "main.toml:2:10: server.listen: `8080` is not host:port",
        "main.toml:3:14: server.public_url: `yuqing.example.gov.cn` is not a valid URL",
        "main.toml:4:15: server.session_ttl: 1m: a login lasts between 5m and 30d",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
    let main = write(
        dir.path(),
        "main.toml",
        "[server]\npublic_url = \"https://yuqing.example.gov.cn/?from=dingtalk\"\n",
    );
    let e = Loader::default().load(&main).unwrap_err().to_string();
    assert!(e.contains("without a path, query or fragment"), "{e}");
    let main = write(
        dir.path(),
        "main.toml",
        "[server]\npublic_url = \"https://yuqing.example.gov.cn/console\"\n",
    );
    let e = Loader::default().load(&main).unwrap_err().to_string();
    assert!(e.contains("without a path, query or fragment"), "{e}");
    let main = write(
        dir.path(),
        "main.toml",
        "[server]\nlisten = \"[::1]:8080\"\npublic_url = \"https://yuqing.example.gov.cn:8443/\"\n",
    );
    Loader::default().load(&main).unwrap();
}

#[test]
fn password_hashes_must_be_argon2_a_login_can_afford() {
    let salt_and_hash = "c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    for (hash, problem) in [
        (
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt_and_hash}"),
            None,
        ),
        (
            format!("$argon2id$v=19$m=19456,t=100,p=1${salt_and_hash}"),
            Some("at most t=16"),
        ),
        (
            format!("$argon2id$v=19$m=1048576,t=2,p=1${salt_and_hash}"),
            Some("at most 262144"),
        ),
        (
            format!("$pbkdf2-sha256$i=1000${salt_and_hash}"),
            Some("is not argon2"),
        ),
        ("hunter22".into(), Some("not a password hash")),
    ] {
        match (check_password_hash(&hash), problem) {
            (Ok(()), None) => {}
            (Err(e), Some(p)) => assert!(e.contains(p), "{hash}: {e}"),
            (r, p) => panic!("{hash}: {r:?}, expected {p:?}"),
        }
    }
}
