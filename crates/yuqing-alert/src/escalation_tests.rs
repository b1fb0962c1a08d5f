//! The escalation engine with an injected clock: every tick is given its
//! time, so nothing waits.

use chrono::{DateTime, Duration, TimeZone, Utc};
use yuqing_config::AlertConfig;
use yuqing_model::{IncidentStatus, Level, SourceState, SourceStatus, SourceType};

use crate::duty::Duty;
use crate::escalation::{AckOutcome, Matchers, Message};
use crate::store::AlertStore;
use crate::tests::{analyzed, policy};

const CONFIG: &str = r#"
[[person]]
id = "zhang"
name = "张伟"
mobile = "13800000001"
channels = ["ding"]

[[person]]
id = "li"
name = "李娜"
mobile = "13800000002"
email = "li@example.org"
channels = ["ding", "mail"]

[[channel]]
id = "ding"
kind = "dingtalk"
url = "http://127.0.0.1:9/robot/send?access_token=t"
secret = "SECabc"

[[channel]]
id = "mail"
kind = "email"
smtp = "127.0.0.1:25"
from = "yq@example.org"

[[roster]]
id = "duty"
[[roster.shift]]
when = "mon-sun 00:00-24:00"
person = "zhang"

[[policy]]
id = "default"
loops = 2
ack_expires = "4h"
[[policy.step]]
targets = ["roster:duty"]
ack_timeout = "15m"
[[policy.step]]
targets = ["person:li"]
ack_timeout = "30m"

[[route]]
id = "all"
policy = "default"
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"
"#;

fn duty_with(extra_route: &str) -> Duty {
    let text = format!("{}{CONFIG}", extra_route);
    let alert: AlertConfig = toml::from_str(&text).unwrap();
    Duty::new(
        &alert,
        chrono_tz::Asia::Shanghai,
        "http://console.test",
        b"test key".to_vec(),
    )
}

fn duty() -> Duty {
    duty_with("")
}

/// Opens an incident of `rule` at `level` on its own event.
fn open(store: &AlertStore, id: &str, rule: &str, level: Level, simhash: u64) -> i64 {
    let a = analyzed(id, Some(level), Some(rule), simhash, 5);
    let out = store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    out.opened.first().copied().unwrap_or(0)
}

/// Routed messages in the outbox after notification `after`.
fn messages(store: &AlertStore, after: i64) -> Vec<(i64, String, Message)> {
    let far = Utc::now() + Duration::days(400);
    store
        .due_notifications(far, 1000)
        .unwrap()
        .into_iter()
        .filter(|n| n.id > after)
        .filter_map(|n| {
            serde_json::from_str::<Message>(&n.payload)
                .ok()
                .map(|m| (n.id, n.channel, m))
        })
        .collect()
}

fn last_id(store: &AlertStore) -> i64 {
    messages(store, 0).last().map_or(0, |m| m.0)
}

fn ids(m: &Message) -> Vec<i64> {
    m.incidents.iter().map(|i| i.id).collect()
}

fn store() -> (tempfile::TempDir, AlertStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    (dir, store)
}

#[test]
fn a_burst_waits_for_its_group_and_becomes_one_message() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now();
    let a = open(&store, "a", "r1", Level::Orange, 0x1111_0000_0000_0000);
    let b = open(&store, "b", "r1", Level::Yellow, 0x0000_1111_0000_0000);
    let c = open(&store, "c", "r2", Level::Red, 0x0000_0000_1111_0000);
    assert_eq!(store.tick(&duty, t0).unwrap().messages, 0, "group_wait");
    let out = store.tick(&duty, t0 + Duration::seconds(31)).unwrap();
    assert_eq!(out.messages, 1);
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1);
    let (_, channel, msg) = &m[0];
    assert_eq!(channel, "ding");
    // Most severe first; the officer on duty is mentioned.
    assert_eq!(ids(msg), vec![c, a, b]);
    assert_eq!(msg.level, Level::Red);
    assert_eq!(msg.mentions.len(), 1);
    assert_eq!(msg.mentions[0].name, "张伟");
    assert!(msg.incidents.iter().all(|i| i.reason == "opened"));
    assert!(
        msg.incidents[0]
            .ack_link
            .as_deref()
            .unwrap()
            .starts_with("http://console.test/ack/")
    );
    // Another tick sends nothing more.
    assert_eq!(
        store
            .tick(&duty, t0 + Duration::seconds(40))
            .unwrap()
            .messages,
        0
    );

    // A new incident in the group waits for group_interval after the last
    // message, then goes alone.
    let d = open(&store, "d", "r1", Level::Orange, 0x0000_0000_0000_1111);
    assert_eq!(
        store
            .tick(&duty, t0 + Duration::seconds(100))
            .unwrap()
            .messages,
        0
    );
    assert_eq!(
        store
            .tick(&duty, t0 + Duration::seconds(31 + 300))
            .unwrap()
            .messages,
        1
    );
    let m = messages(&store, 0);
    assert_eq!(ids(&m[1].2), vec![d]);
}

#[test]
fn unacknowledged_incidents_escalate_step_by_step_loop_after_loop_then_repeat() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let a = open(&store, "a", "r1", Level::Orange, 1);
    store.tick(&duty, t0).unwrap();
    let mut seen = last_id(&store);
    let mentioned = |store: &AlertStore, after: i64| -> Vec<(String, Vec<String>)> {
        messages(store, after)
            .into_iter()
            .map(|(_, ch, m)| (ch, m.mentions.iter().map(|p| p.person.clone()).collect()))
            .collect()
    };
    // 15 minutes without an acknowledgement: step 2, Li on both her channels.
    let t1 = t0 + Duration::minutes(15);
    let out = store.tick(&duty, t1 - Duration::seconds(1)).unwrap();
    assert!(out.escalated.is_empty(), "not before the timeout");
    let out = store.tick(&duty, t1).unwrap();
    assert_eq!(out.escalated, vec![a]);
    let got = mentioned(&store, seen);
    assert_eq!(
        got,
        vec![
            ("ding".to_string(), vec!["li".to_string()]),
            ("mail".to_string(), vec!["li".to_string()])
        ]
    );
    let msg = &messages(&store, seen)[0].2;
    assert_eq!(msg.incidents[0].reason, "escalated");
    assert_eq!((msg.incidents[0].step, msg.incidents[0].loop_), (2, 1));
    seen = last_id(&store);
    // 30 more minutes: the second loop starts at step 1 again.
    let t2 = t1 + Duration::minutes(30);
    store.tick(&duty, t2).unwrap();
    assert_eq!(
        mentioned(&store, seen),
        vec![("ding".into(), vec!["zhang".into()])]
    );
    let msg = &messages(&store, seen)[0].2;
    assert_eq!((msg.incidents[0].step, msg.incidents[0].loop_), (1, 2));
    seen = last_id(&store);
    let t3 = t2 + Duration::minutes(15);
    store.tick(&duty, t3).unwrap();
    assert_eq!(mentioned(&store, seen).len(), 2, "loop 2, step 2");
    seen = last_id(&store);
    // After the last step of the last loop, nothing more escalates...
    let t4 = t3 + Duration::minutes(30);
    let out = store.tick(&duty, t4).unwrap();
    assert!(out.escalated.is_empty());
    assert_eq!(out.messages, 0);
    assert!(
        store
            .timeline(a)
            .unwrap()
            .iter()
            .any(|t| t.action == "exhausted")
    );
    // ...but the open incident is sent again after repeat_interval.
    let out = store.tick(&duty, t3 + Duration::hours(4)).unwrap();
    assert_eq!(out.messages, 2);
    let msg = &messages(&store, seen)[0].2;
    assert_eq!(msg.incidents[0].reason, "repeat");
}

#[test]
fn acknowledgement_stops_escalation_until_it_expires() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let a = open(&store, "a", "r1", Level::Orange, 1);
    store.tick(&duty, t0).unwrap();
    assert_eq!(
        store
            .acknowledge(&duty, a, "zhang", "console", t0 + Duration::minutes(5))
            .unwrap(),
        AckOutcome::Acknowledged
    );
    assert_eq!(
        store
            .acknowledge(&duty, a, "li", "api", t0 + Duration::minutes(6))
            .unwrap(),
        AckOutcome::Already
    );
    let seen = last_id(&store);
    let out = store.tick(&duty, t0 + Duration::minutes(20)).unwrap();
    assert!(out.escalated.is_empty());
    assert_eq!(out.messages, 0);
    // Acknowledged but unresolved for 4 hours: triggered again, from step 1.
    let out = store
        .tick(&duty, t0 + Duration::minutes(5) + Duration::hours(4))
        .unwrap();
    assert_eq!(out.retriggered, vec![a]);
    let m = messages(&store, seen);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].2.incidents[0].reason, "retriggered");
    assert_eq!(m[0].2.mentions[0].person, "zhang");
    let actions: Vec<String> = store
        .timeline(a)
        .unwrap()
        .into_iter()
        .map(|t| t.action)
        .collect();
    for expected in ["triggered", "notified", "acknowledged", "retriggered"] {
        assert!(actions.contains(&expected.to_string()), "{actions:?}");
    }
    // Resolved: whoever was told hears it is over; a link cannot ack it.
    assert_eq!(
        store
            .resolve_by(a, "zhang", "console", t0 + Duration::hours(5))
            .unwrap(),
        Some(true)
    );
    let seen = last_id(&store);
    store.tick(&duty, t0 + Duration::hours(5)).unwrap();
    let m = messages(&store, seen);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].2.incidents[0].reason, "resolved");
    assert!(m[0].2.incidents[0].ack_link.is_none());
    assert_eq!(
        store
            .acknowledge(&duty, a, "zhang", "link", t0 + Duration::hours(6))
            .unwrap(),
        AckOutcome::Resolved
    );
}

#[test]
fn ack_links_are_signed_per_incident_and_expire() {
    let duty = duty();
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap();
    let link = duty.ack_link(42, "zhang", now);
    let url = url::Url::parse(&link).unwrap();
    assert_eq!(url.path(), "/ack/42");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let exp: i64 = q["exp"].parse().unwrap();
    assert_eq!(exp, (now + Duration::hours(24)).timestamp());
    assert!(duty.verify_ack(42, exp, "zhang", &q["sig"], now).is_ok());
    // Another incident, another person, a later expiry, another key: refused.
    assert!(duty.verify_ack(43, exp, "zhang", &q["sig"], now).is_err());
    assert!(duty.verify_ack(42, exp, "li", &q["sig"], now).is_err());
    assert!(
        duty.verify_ack(42, exp + 3600, "zhang", &q["sig"], now)
            .is_err()
    );
    assert!(duty.verify_ack(42, exp, "zhang", "zz", now).is_err());
    let other = Duty::new(
        &toml::from_str::<AlertConfig>(CONFIG).unwrap(),
        chrono_tz::Asia::Shanghai,
        "http://console.test",
        b"another key".to_vec(),
    );
    assert!(other.verify_ack(42, exp, "zhang", &q["sig"], now).is_err());
    assert_eq!(
        duty.verify_ack(42, exp, "zhang", &q["sig"], now + Duration::hours(25)),
        Err(crate::duty::AckLinkError::Expired)
    );
}

#[test]
fn silences_hold_messages_until_they_end() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now();
    let sid = store
        .add_silence(
            &Matchers {
                rule: Some("r1".into()),
                ..Default::default()
            },
            t0 - Duration::minutes(1),
            t0 + Duration::hours(1),
            "王主任",
            "已知事件，正在处置",
            t0,
        )
        .unwrap();
    let a = open(&store, "a", "r1", Level::Red, 1);
    let b = open(&store, "b", "r2", Level::Orange, 0xffff_0000_0000_0000);
    store.tick(&duty, t0 + Duration::seconds(31)).unwrap();
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1);
    assert_eq!(ids(&m[0].2), vec![b], "r1 is silenced, r2 is not");
    let held = store.timeline(a).unwrap();
    assert!(held.iter().any(|t| t.action == "held"
        && t.detail.contains(&format!("silence {sid}"))
        && t.detail.contains("王主任")));
    assert_eq!(store.silences(t0).unwrap().len(), 1);
    // The silence is lifted early: the held incident goes out.
    assert!(
        store
            .expire_silence(sid, t0 + Duration::minutes(10))
            .unwrap()
    );
    assert!(
        store
            .silences(t0 + Duration::minutes(10))
            .unwrap()
            .is_empty()
    );
    let seen = last_id(&store);
    store.tick(&duty, t0 + Duration::minutes(11)).unwrap();
    assert_eq!(ids(&messages(&store, seen)[0].2), vec![a]);
}

#[test]
fn quiet_hours_hold_all_but_red() {
    let (_d, store) = store();
    // Quiet all week long, so the test does not depend on the hour.
    let duty = duty_with(
        r#"
[[route]]
id = "quiet"
topics = ["专题"]
policy = "default"
group_wait = "0s"
quiet_hours = ["00:00-24:00"]
"#,
    );
    let orange = open(&store, "a", "r1", Level::Orange, 1);
    let red = open(&store, "b", "r2", Level::Red, 0xffff_0000_0000_0000);
    // After the incidents open: times are whole seconds, and a tick in the
    // second before they opened would find nothing due yet.
    let t0 = Utc::now();
    store.tick(&duty, t0).unwrap();
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1);
    assert_eq!(ids(&m[0].2), vec![red]);
    assert_eq!(m[0].2.route, "quiet");
    let tl = store.timeline(orange).unwrap();
    assert!(
        tl.iter()
            .any(|t| t.action == "held" && t.detail.contains("quiet hours 00:00-24:00"))
    );
    // Held, not lost: it is still owed, and no escalation started for it
    // (the red one escalates).
    let out = store.tick(&duty, t0 + Duration::hours(1)).unwrap();
    assert_eq!(out.escalated, vec![red]);
    assert!(
        messages(&store, 0)
            .iter()
            .all(|m| !ids(&m.2).contains(&orange))
    );
    assert_eq!(
        store
            .timeline(orange)
            .unwrap()
            .iter()
            .filter(|t| t.action == "held")
            .count(),
        1,
        "held once, not at every tick"
    );
}

#[test]
fn an_open_red_incident_inhibits_lower_ones_of_its_event() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    // A red article, and a reprint of it that only a yellow rule fires
    // on: a red and a yellow incident of the same event.
    let red_item = analyzed("a", Some(Level::Red), Some("r-red"), 7, 5);
    let reprint = analyzed("b", Some(Level::Yellow), Some("r-yellow"), 7, 4);
    let red = store
        .process(&red_item, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    let out = store
        .process(&reprint, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    assert_eq!(out.event_id, red.event_id, "one event");
    let yellow = out.opened[0];
    assert_eq!(
        store.incident(yellow).unwrap().unwrap().level,
        Level::Yellow
    );
    let out = red;
    store.tick(&duty, t0).unwrap();
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1);
    assert_eq!(ids(&m[0].2), vec![out.opened[0]]);
    assert!(
        store
            .timeline(yellow)
            .unwrap()
            .iter()
            .any(|t| t.action == "held" && t.detail.contains("inhibited by red incident"))
    );
    // Once the red one resolves, the other is no longer held back.
    store
        .resolve_by(out.opened[0], "zhang", "console", t0)
        .unwrap();
    let seen = last_id(&store);
    store.tick(&duty, t0 + Duration::minutes(6)).unwrap();
    let m = messages(&store, seen);
    assert!(
        m.iter().any(|(_, _, msg)| ids(msg).contains(&yellow)),
        "{m:?}"
    );
}

#[test]
fn a_restart_between_due_and_sent_sends_the_escalation_once_and_replays_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.db");
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let item = analyzed("a", Some(Level::Orange), Some("r1"), 1, 5);
    {
        let store = AlertStore::open(&path).unwrap();
        store
            .process(&item, &policy(Level::Blue), &[], &|_, r| r.to_string())
            .unwrap();
        store.tick(&duty, t0).unwrap();
        // The escalation falls due; the alerter is killed before its tick.
    }
    let store = AlertStore::open(&path).unwrap();
    let seen = last_id(&store);
    let late = t0 + Duration::minutes(40);
    let out = store.tick(&duty, late).unwrap();
    assert_eq!(out.escalated.len(), 1, "overdue escalation fires at once");
    assert_eq!(messages(&store, seen).len(), 2, "li on ding and mail");
    // Ticking again, or replaying the item, writes nothing new.
    assert_eq!(store.tick(&duty, late).unwrap().messages, 0);
    let out = store
        .process(&item, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    assert!(out.opened.is_empty() && out.raised.is_empty());
    assert_eq!(
        store
            .tick(&duty, late + Duration::seconds(1))
            .unwrap()
            .messages,
        0
    );
    assert_eq!(messages(&store, seen).len(), 2);
}

#[test]
fn quiet_rule_incidents_resolve_themselves_and_say_so() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let a = open(&store, "a", "r1", Level::Orange, 1);
    store.tick(&duty, t0).unwrap();
    store.acknowledge(&duty, a, "zhang", "console", t0).unwrap();
    let seen = last_id(&store);
    let out = store.tick(&duty, t0 + Duration::hours(25)).unwrap();
    assert_eq!(out.auto_resolved, vec![a]);
    let m = messages(&store, seen);
    assert_eq!(m[0].2.incidents[0].reason, "resolved");
    assert_eq!(
        store.incident(a).unwrap().unwrap().status,
        yuqing_model::IncidentStatus::Resolved
    );
}

/// Time the alerter was down does not count towards auto-resolving: an
/// incident is resolved a day after its last item, in the alerter's time.
#[test]
fn downtime_does_not_count_towards_auto_resolving() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let a = open(&store, "a", "r1", Level::Orange, 1);
    store.tick(&duty, t0).unwrap();
    // No start recorded yet: nothing to count out.
    assert_eq!(store.record_start(t0, Duration::minutes(3)).unwrap(), None);
    // Up for an hour, then down for 20 hours.
    store.heartbeat(t0 + Duration::hours(1)).unwrap();
    let back = t0 + Duration::hours(21);
    assert_eq!(
        store.record_start(back, Duration::minutes(3)).unwrap(),
        Some((
            crate::store::from_ts((t0 + Duration::hours(1)).timestamp()),
            back
        ))
    );
    let out = store.tick(&duty, t0 + Duration::hours(25)).unwrap();
    assert!(out.auto_resolved.is_empty(), "5 hours watched, not 25");
    let out = store.tick(&duty, t0 + Duration::hours(45)).unwrap();
    assert_eq!(out.auto_resolved, vec![a]);
    // A quick restart is not downtime.
    store.heartbeat(back + Duration::minutes(5)).unwrap();
    assert_eq!(
        store
            .record_start(back + Duration::minutes(6), Duration::minutes(3))
            .unwrap(),
        None
    );
}

#[test]
fn collector_incidents_route_by_kind() {
    let (_d, store) = store();
    let duty = duty_with(
        r#"
[[route]]
id = "collectors"
kinds = ["collector"]
policy = "default"
group_wait = "0s"
"#,
    );
    let st = SourceStatus {
        source: "jzrb".into(),
        name: "江州日报".into(),
        state: SourceState::Blocked,
        consecutive_failures: 3,
        reason: Some("HTTP 403".into()),
        last_success_at: None,
        at: Utc::now(),
    };
    store
        .record_source_status(&st, Level::Yellow, &policy(Level::Blue), &[], &|_, r| {
            r.to_string()
        })
        .unwrap();
    store.tick(&duty, Utc::now()).unwrap();
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].2.route, "collectors");
    assert!(m[0].2.incidents[0].title.contains("江州日报"));
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn who_is_on_duty_follows_the_shifts_in_the_rosters_time_zone() {
    let text = CONFIG.replace(
        "[[roster.shift]]\nwhen = \"mon-sun 00:00-24:00\"\nperson = \"zhang\"",
        "[[roster.shift]]\nwhen = \"mon-fri 09:00-18:00\"\nperson = \"zhang\"\n\
         [[roster.shift]]\nwhen = \"mon-fri 18:00-09:00\"\nperson = \"li\"\n\
         [[roster.shift]]\nwhen = \"sat 09:00-24:00\"\nperson = \"li\"\n\
         [[roster.shift]]\nwhen = \"sun\"\nperson = \"zhang\"\n\
         [[roster.shift]]\nwhen = \"mon 00:00-09:00\"\nperson = \"zhang\"",
    );
    let alert: AlertConfig = toml::from_str(&text).unwrap();
    let duty = Duty::new(&alert, chrono_tz::Asia::Shanghai, "http://c", b"k".to_vec());
    // 2026-11-23 is a Monday.
    let d = duty.on_duty("duty", at(2026, 11, 24, 10, 30)).unwrap();
    assert_eq!(
        (d.person.as_str(), d.shift.as_str()),
        ("zhang", "mon-fri 09:00-18:00")
    );
    assert_eq!(d.since, at(2026, 11, 24, 9, 0));
    assert_eq!(d.until, at(2026, 11, 24, 18, 0));
    // Tuesday 02:00 is Monday night's shift.
    let n = duty.on_duty("duty", at(2026, 11, 25, 2, 0)).unwrap();
    assert_eq!(n.person, "li");
    assert_eq!(n.since, at(2026, 11, 24, 18, 0));
    assert_eq!(n.until, at(2026, 11, 25, 9, 0));
    // Sunday runs on through Monday's early and day shifts, all Zhang's:
    // one stretch of duty, until Monday 18:00.
    let s = duty.on_duty("duty", at(2026, 11, 29, 23, 0)).unwrap();
    assert_eq!(s.person, "zhang");
    assert_eq!(s.since, at(2026, 11, 29, 0, 0));
    assert_eq!(s.until, at(2026, 11, 30, 18, 0));
    let s = duty.on_duty("duty", at(2026, 11, 30, 8, 0)).unwrap();
    assert_eq!(s.since, at(2026, 11, 29, 0, 0));
    // Someone on duty all week is on duty for a week from now.
    let all = duty_with("");
    let d = all.on_duty("duty", at(2026, 11, 25, 2, 0)).unwrap();
    assert_eq!(d.until - d.since, Duration::days(7));
    // Escalation targets follow.
    let t = duty.expand(
        &yuqing_config::Target::Roster("duty".into()),
        at(2026, 11, 25, 2, 0),
    );
    assert_eq!(
        t,
        vec![
            (
                "ding".to_string(),
                Some("li".to_string()),
                "person:li".to_string()
            ),
            (
                "mail".to_string(),
                Some("li".to_string()),
                "person:li".to_string()
            )
        ]
    );
}

#[test]
fn an_override_takes_the_place_of_the_weekly_shifts_while_it_lasts() {
    // Zhang all week; Li over the National Day holiday, and Zhang's own
    // Saturday afternoon given to Li.
    let text = CONFIG.replace(
        "person = \"zhang\"\n",
        "person = \"zhang\"\n\
         [[roster.override]]\nfrom = \"2026-10-01\"\nuntil = \"2026-10-08 09:00\"\nperson = \"li\"\nnote = \"国庆值班\"\n\
         [[roster.override]]\nfrom = \"2026-10-10 12:00\"\nuntil = \"2026-10-10 18:00\"\nperson = \"li\"\n",
    );
    let alert: AlertConfig = toml::from_str(&text).unwrap();
    let duty = Duty::new(&alert, chrono_tz::Asia::Shanghai, "http://c", b"k".to_vec());
    let d = duty.on_duty("duty", at(2026, 10, 3, 2, 0)).unwrap();
    assert_eq!(
        (d.person.as_str(), d.shift.as_str(), d.note.as_deref()),
        ("li", "2026-10-01 – 2026-10-08 09:00", Some("国庆值班"))
    );
    assert_eq!(
        (d.since, d.until),
        (at(2026, 10, 1, 0, 0), at(2026, 10, 8, 9, 0))
    );
    // Before and after, the weekly shift, its stretch cut at the overrides.
    let before = duty.on_duty("duty", at(2026, 9, 30, 23, 59)).unwrap();
    assert_eq!((before.person.as_str(), before.note), ("zhang", None));
    assert_eq!(before.until, at(2026, 10, 1, 0, 0));
    let after = duty.on_duty("duty", at(2026, 10, 8, 9, 0)).unwrap();
    assert_eq!(after.person, "zhang");
    assert_eq!(
        (after.since, after.until),
        (at(2026, 10, 8, 9, 0), at(2026, 10, 10, 12, 0))
    );
    let swap = duty.on_duty("duty", at(2026, 10, 10, 17, 59)).unwrap();
    assert_eq!((swap.person.as_str(), swap.note), ("li", None));
    let back = duty.on_duty("duty", at(2026, 10, 10, 18, 0)).unwrap();
    assert_eq!(back.person, "zhang");
    assert_eq!(back.since, at(2026, 10, 10, 18, 0));
    // Escalation reaches whoever the override puts on duty.
    let roster = yuqing_config::Target::Roster("duty".into());
    let reached =
        |t| -> Vec<Option<String>> { duty.expand(&roster, t).into_iter().map(|x| x.1).collect() };
    assert!(
        reached(at(2026, 10, 3, 2, 0))
            .iter()
            .all(|p| p.as_deref() == Some("li"))
    );
    assert_eq!(
        reached(at(2026, 10, 9, 2, 0)),
        vec![Some("zhang".to_string())]
    );
}

#[test]
fn an_incident_that_spreads_is_sent_again() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let h = 0x5555_aaaa_5555_aaaau64;
    let add = |id: &str, negative: bool| {
        let mut a = analyzed(id, Some(Level::Orange), Some("r1"), h, 5);
        a.sentiment = Some(yuqing_model::Sentiment {
            label: if negative {
                yuqing_model::SentimentLabel::Negative
            } else {
                yuqing_model::SentimentLabel::Neutral
            },
            confidence: 0.9,
            positive: 0.1,
        });
        store
            .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
            .unwrap()
    };
    // Four reprints, half negative, then the first message.
    let first = add("a", false).opened[0];
    add("b", false);
    add("c", true);
    add("d", true);
    store.tick(&duty, t0).unwrap();
    store
        .acknowledge(&duty, first, "zhang", "console", t0)
        .unwrap();
    let seen = last_id(&store);
    // One more neutral item: 5 of 5 is not a spread, and the
    // acknowledgement holds.
    add("e", false);
    assert_eq!(
        store
            .tick(&duty, t0 + Duration::minutes(6))
            .unwrap()
            .messages,
        0
    );
    assert_eq!(
        store.incident(first).unwrap().unwrap().status,
        IncidentStatus::Acknowledged
    );
    // Two negative ones: 4 of 7 negative, a majority. The acknowledged
    // incident is raised again and its escalation starts over.
    add("f", true);
    add("g", true);
    let out = store.tick(&duty, t0 + Duration::minutes(12)).unwrap();
    assert_eq!(out.retriggered, vec![first]);
    let m = messages(&store, seen);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].2.incidents[0].reason, "spread");
    assert_eq!(m[0].2.incidents[0].step, 1);
    let inc = store.incident(first).unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Triggered);
    let tl = store.timeline(first).unwrap();
    let how = tl.iter().find(|t| t.action == "spread").unwrap();
    assert!(
        how.detail.contains("负面信息占比升至 57%（4/7）")
            && how.detail.contains("acknowledged before, raised again"),
        "{}",
        how.detail
    );
    // Doubling the items spreads it again.
    let seen = last_id(&store);
    for i in 0..7 {
        add(&format!("x{i}"), false);
    }
    store.tick(&duty, t0 + Duration::minutes(20)).unwrap();
    let m = messages(&store, seen);
    assert_eq!(m.len(), 1);
    let tl = store.timeline(first).unwrap();
    assert!(
        tl.iter().any(|t| t.detail == "信息量从 7 条增至 14 条"),
        "{tl:?}"
    );
}

#[test]
fn other_messages_on_a_route_do_not_hold_back_its_group() {
    let (_d, store) = store();
    let duty = duty();
    let t1 = Utc::now() + Duration::seconds(31);
    let a = open(&store, "a", "r1", Level::Orange, 1);
    store.tick(&duty, t1).unwrap();
    let b = open(&store, "b", "r1", Level::Orange, !1);
    // A resolution on the route, inside the group interval...
    store
        .resolve_by(a, "zhang", "console", t1 + Duration::seconds(270))
        .unwrap();
    store.tick(&duty, t1 + Duration::seconds(270)).unwrap();
    let seen = last_id(&store);
    // ...does not restart it: the new incident goes 5 minutes after the
    // first message.
    store.tick(&duty, t1 + Duration::seconds(300)).unwrap();
    let m = messages(&store, seen);
    assert_eq!(m.len(), 1);
    assert_eq!(ids(&m[0].2), vec![b]);
}

#[test]
fn a_resolution_reaches_everyone_who_was_told() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let a = open(&store, "a", "r1", Level::Orange, 1);
    store.tick(&duty, t0).unwrap();
    // Escalated to Li on both her channels; Zhang had the first message.
    store.tick(&duty, t0 + Duration::minutes(15)).unwrap();
    store
        .resolve_by(a, "li", "console", t0 + Duration::minutes(20))
        .unwrap();
    let seen = last_id(&store);
    store.tick(&duty, t0 + Duration::minutes(20)).unwrap();
    let mut got: Vec<(String, Vec<String>)> = messages(&store, seen)
        .into_iter()
        .map(|(_, ch, m)| {
            assert_eq!(m.incidents[0].reason, "resolved");
            let mut p: Vec<String> = m.mentions.iter().map(|p| p.person.clone()).collect();
            p.sort();
            (ch, p)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "ding".to_string(),
                vec!["li".to_string(), "zhang".to_string()]
            ),
            ("mail".to_string(), vec!["li".to_string()]),
        ]
    );
}

#[test]
fn routes_choose_by_level_source_type_and_region_collectors_included() {
    let (_d, store) = store();
    // Routes are tried in order; "all" (from CONFIG) catches the rest.
    let duty = duty_with(
        r#"
[[route]]
id = "red"
min_level = "red"
policy = "default"
group_wait = "0s"

[[route]]
id = "qingshan"
regions = ["青山区"]
policy = "default"
group_wait = "0s"

[[route]]
id = "forums"
source_types = ["forum"]
policy = "default"
group_wait = "0s"
"#,
    );
    let mut p = policy(Level::Blue);
    p.regions.insert("qs".into(), "青山区".into());
    p.source_types.insert("qs".into(), SourceType::News);
    let open_from = |id: &str, source: &str, source_type: SourceType, level: Level, h: u64| {
        let mut a = analyzed(id, Some(level), Some(id), h, 5);
        a.item.source = source.into();
        a.item.source_type = source_type;
        store
            .process(&a, &p, &[], &|_, r| r.to_string())
            .unwrap()
            .opened[0]
    };
    let red = open_from("a", "qs", SourceType::Forum, Level::Red, 1);
    let regional = open_from("b", "qs", SourceType::Forum, Level::Yellow, 0xff00);
    let forum = open_from("c", "bbs", SourceType::Forum, Level::Yellow, 0xff_0000);
    let other = open_from("d", "bbs", SourceType::News, Level::Yellow, 0xff00_0000);
    // A collector incident is routed by its source's region too.
    let st = SourceStatus {
        source: "qs".into(),
        name: "青山发布".into(),
        state: SourceState::Failing,
        consecutive_failures: 3,
        reason: Some("HTTP 502".into()),
        last_success_at: None,
        at: Utc::now(),
    };
    let collector = store
        .record_source_status(&st, Level::Yellow, &p, &[], &|_, r| r.to_string())
        .unwrap()
        .opened[0];
    store
        .tick(&duty, Utc::now() + Duration::seconds(31))
        .unwrap();
    let mut routed: Vec<(String, Vec<i64>)> = messages(&store, 0)
        .into_iter()
        .filter(|m| m.1 == "ding")
        .map(|m| (m.2.route.clone(), ids(&m.2)))
        .collect();
    routed.sort();
    assert_eq!(
        routed,
        vec![
            ("all".to_string(), vec![other]),
            ("forums".to_string(), vec![forum]),
            ("qingshan".to_string(), vec![regional, collector]),
            ("red".to_string(), vec![red]),
        ]
    );
}

/// The next time after `from` that is `weekday` at `hour`:00 in Shanghai.
fn next_local(from: DateTime<Utc>, weekday: chrono::Weekday, hour: u32) -> DateTime<Utc> {
    use chrono::Datelike;
    let local = from.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    (1..=8)
        .map(|d| local + Duration::days(d))
        .find(|d| d.weekday() == weekday)
        .and_then(|d| {
            chrono_tz::Asia::Shanghai
                .from_local_datetime(&d.and_hms_opt(hour, 0, 0).unwrap())
                .single()
        })
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_route_with_active_intervals_holds_messages_outside_them_except_red() {
    let (_d, store) = store();
    // The test's days lie up to 9 days ahead: no auto-resolution meanwhile.
    let duty = duty_with(
        r#"
auto_resolve = "30d"

[[route]]
id = "office"
topics = ["专题"]
policy = "default"
group_wait = "0s"
active_intervals = ["mon-fri 09:00-18:00"]
"#,
    );
    let yellow = open(&store, "a", "r1", Level::Yellow, 1);
    let red = open(&store, "b", "r2", Level::Red, 0xffff_0000_0000_0000);
    let saturday = next_local(Utc::now(), chrono::Weekday::Sat, 11);
    store.tick(&duty, saturday).unwrap();
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1, "only red goes out on a Saturday");
    assert_eq!(ids(&m[0].2), vec![red]);
    assert!(
        store
            .timeline(yellow)
            .unwrap()
            .iter()
            .any(|t| t.action == "held" && t.detail == "outside active intervals")
    );
    // Monday morning, inside the interval, the held message goes out.
    let seen = last_id(&store);
    let monday = next_local(saturday, chrono::Weekday::Mon, 9);
    store
        .acknowledge(&duty, red, "zhang", "console", monday)
        .unwrap();
    store.tick(&duty, monday).unwrap();
    let m = messages(&store, seen);
    assert_eq!(m.len(), 1);
    assert_eq!(ids(&m[0].2), vec![yellow]);
}

#[test]
fn a_delivery_incident_with_no_other_channel_says_so_and_escalates() {
    let (_d, store) = store();
    let duty = duty();
    // Zhang, on duty, has DingTalk only, and DingTalk is what failed.
    let id = store
        .record_delivery_failure(7, "ding", "HTTP 503", true, Utc::now())
        .unwrap();
    let t = Utc::now() + Duration::seconds(31);
    store.tick(&duty, t).unwrap();
    assert!(messages(&store, 0).is_empty());
    let tl = store.timeline(id).unwrap();
    assert!(
        tl.iter().any(|e| e.action == "unreachable"
            && e.detail == "step 1 of 2: no target reachable on any channel"),
        "{tl:?}"
    );
    // Its escalation goes on: Li is told by email.
    store.tick(&duty, t + Duration::minutes(16)).unwrap();
    let m = messages(&store, 0);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].1, "mail");
}

#[test]
fn an_acknowledgement_takes_in_what_the_incident_has_grown_to() {
    let (_d, store) = store();
    let duty = duty();
    let t0 = Utc::now() + Duration::seconds(31);
    let h = 0x1234_5678_9abc_def0u64;
    let add = |id: &str| {
        store
            .process(
                &analyzed(id, Some(Level::Orange), Some("r1"), h, 5),
                &policy(Level::Blue),
                &[],
                &|_, r| r.to_string(),
            )
            .unwrap()
    };
    let first = add("a").opened[0];
    store.tick(&duty, t0).unwrap();
    // Seven reprints before anyone looks: a spread, owed a message...
    for i in 0..7 {
        add(&format!("r{i}"));
    }
    // ...but the officer acknowledges the incident as it now is.
    store
        .acknowledge(&duty, first, "zhang", "console", t0 + Duration::seconds(10))
        .unwrap();
    let seen = last_id(&store);
    let out = store.tick(&duty, t0 + Duration::minutes(1)).unwrap();
    assert!(out.retriggered.is_empty());
    assert!(messages(&store, seen).is_empty());
    assert_eq!(
        store.incident(first).unwrap().unwrap().status,
        IncidentStatus::Acknowledged
    );
    // Doubling from there raises it again.
    for i in 0..8 {
        add(&format!("s{i}"));
    }
    let out = store.tick(&duty, t0 + Duration::minutes(2)).unwrap();
    assert_eq!(out.retriggered, vec![first]);
}

#[test]
fn a_delivery_incident_resolves_when_its_channel_delivers_again() {
    let (_d, store) = store();
    let id = store
        .record_delivery_failure(7, "ding", "HTTP 503", true, Utc::now())
        .unwrap();
    assert!(!store.resolve_delivery("mail", Utc::now()).unwrap());
    assert!(store.resolve_delivery("ding", Utc::now()).unwrap());
    let inc = store.incident(id).unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert!(!store.resolve_delivery("ding", Utc::now()).unwrap());
}
