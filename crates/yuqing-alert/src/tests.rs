use chrono::{Duration, TimeZone, Utc};
use yuqing_model::{AnalyzedItem, Item, Level, RuleHit, SourceKind, SourceType};

use yuqing_analysis::events::ReprintThresholds;

use crate::store::{AlertStore, Channel, Policy};

pub(crate) fn analyzed(
    id: &str,
    level: Option<Level>,
    rule: Option<&str>,
    simhash: u64,
    minutes_ago: i64,
) -> AnalyzedItem {
    let item = Item {
        id: id.into(),
        source: "s".into(),
        source_kind: SourceKind::Feed,
        source_type: SourceType::News,
        site: "e.com".into(),
        url: format!("https://e.com/{id}"),
        title: format!("标题 {id}"),
        text: "正文".into(),
        author: None,
        published_at: Some(Utc::now() - Duration::minutes(minutes_ago)),
        fetched_at: Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    };
    let tok = yuqing_model::Token {
        text: "词".into(),
        start: 0,
        end: 3,
    };
    AnalyzedItem {
        item,
        title_tokens: vec![],
        text_tokens: vec![tok; 20],
        hits: rule
            .map(|r| RuleHit {
                rule_id: r.into(),
                rule_name: r.into(),
                topic: "专题".into(),
                level: level.unwrap_or(Level::Blue),
                weight: 10,
                terms: vec![],
                marks: vec![],
            })
            .into_iter()
            .collect(),
        lexicon_hits: Vec::new(),
        keywords: Vec::new(),
        sentiment: None,
        score: 10,
        level,
        simhash,
        simhash_pairs: simhash,
    }
}

/// Word SimHashes within 3 bits, and 6 with word pairs, are one article.
const T: ReprintThresholds = ReprintThresholds {
    max_distance: 3,
    max_combined: 6,
};

pub(crate) fn policy(min_level: Level) -> Policy {
    Policy {
        min_level,
        reprints: T,
        spike: yuqing_config::SpikeConfig::default(),
        regions: Default::default(),
        source_types: Default::default(),
    }
}

fn channels() -> Vec<Channel> {
    vec![Channel {
        name: "ops".into(),
        min_level: None,
    }]
}

#[test]
fn reprints_share_one_incident_raised_to_the_highest_level_and_replays_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let h = 0xdead_beef_0123_4567u64;
    let a = analyzed("a", Some(Level::Yellow), Some("r1"), h, 60);
    let b = analyzed("b", Some(Level::Red), Some("r1"), h ^ 0b101, 90); // 2 bits away, earlier
    let c = analyzed("c", Some(Level::Yellow), Some("r1"), !h, 10); // far away: another event

    let oa = store
        .process(&a, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_eq!(oa.opened.len(), 1);
    assert_eq!(oa.notifications, 1);
    let ob = store
        .process(&b, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_eq!(ob.event_id, oa.event_id, "reprint joins the event");
    assert!(ob.opened.is_empty());
    assert_eq!(ob.raised, oa.opened, "a red reprint raises the incident");
    assert_eq!(ob.notifications, 1, "raising notifies again");
    let oc = store
        .process(&c, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_ne!(oc.event_id, oa.event_id);
    assert_eq!(oc.opened.len(), 1);

    let incidents = store.incidents(10).unwrap();
    assert_eq!(incidents.len(), 2);
    let first = incidents
        .iter()
        .find(|i| i.event_id == oa.event_id)
        .unwrap();
    assert_eq!(first.level, Level::Red);
    assert_eq!(first.item_count, 2);
    let event = store.event(&oa.event_id).unwrap().unwrap();
    assert_eq!(
        event.first_url, "https://e.com/b",
        "earliest item is the first publisher"
    );
    assert_eq!(event.item_count, 2);

    // Replays: nothing new.
    for x in [&a, &b, &c] {
        let o = store
            .process(x, &policy(Level::Blue), &channels(), &p)
            .unwrap();
        assert!(o.opened.is_empty() && o.raised.is_empty() && o.notifications == 0);
    }
    assert_eq!(store.incidents(10).unwrap().len(), 2);
    assert_eq!(store.notification_counts().unwrap(), (0, 3, 0));

    // Once resolved, a replay of its items (a bus rewound, an outbox
    // published again) is not news: no new incident, no message.
    for id in [oa.opened[0], oc.opened[0]] {
        assert_eq!(
            store.resolve_by(id, "duty", "console", Utc::now()).unwrap(),
            Some(true)
        );
    }
    let sent = store.notification_counts().unwrap();
    for x in [&a, &b, &c] {
        let o = store
            .process(x, &policy(Level::Blue), &channels(), &p)
            .unwrap();
        assert!(
            o.opened.is_empty() && o.raised.is_empty() && o.notifications == 0,
            "{o:?}"
        );
    }
    assert_eq!(store.incidents(10).unwrap().len(), 2);
    assert_eq!(store.notification_counts().unwrap(), sent);
    // A new reprint of the event is news again, and opens a new incident.
    let d = analyzed("d", Some(Level::Yellow), Some("r1"), h ^ 0b1, 5);
    let od = store
        .process(&d, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_eq!(od.event_id, oa.event_id);
    assert_eq!(od.opened.len(), 1);
    // Replays of the items of the resolved incident do not grow the new one.
    for x in [&a, &b] {
        let o = store
            .process(x, &policy(Level::Blue), &channels(), &p)
            .unwrap();
        assert!(o.raised.is_empty() && o.notifications == 0, "{o:?}");
    }
    assert_eq!(store.incident(od.opened[0]).unwrap().unwrap().item_count, 1);
}

#[test]
fn reprint_chains_survive_restarts_and_follow_drift() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.db");
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let h = 0x0123_4567_89ab_cdefu64;
    let mut a = analyzed("a", None, None, h, 300);
    a.item.source_type = SourceType::Government;
    let mut b = analyzed("b", None, None, h ^ 0b111, 200);
    b.item.source_type = SourceType::Forum;
    b.item.engagement.reposts = Some(40);
    // 6 bits from a, 3 from b: joins through b.
    let c = analyzed("c", None, None, h ^ 0b11_1111, 100);
    // Near in words, far in word pairs: a distinct article.
    let mut d = analyzed("d", None, None, h ^ 0b1, 50);
    d.simhash_pairs = !h;
    let e;
    {
        let store = AlertStore::open(&path).unwrap();
        e = store
            .process(&a, &policy(Level::Blue), &channels(), &p)
            .unwrap()
            .event_id;
        assert_eq!(
            store
                .process(&b, &policy(Level::Blue), &channels(), &p)
                .unwrap()
                .event_id,
            e
        );
    }
    // A new process loads the fingerprints from the database.
    let store = AlertStore::open(&path).unwrap();
    assert_eq!(
        store
            .process(&c, &policy(Level::Blue), &channels(), &p)
            .unwrap()
            .event_id,
        e
    );
    assert_ne!(
        store
            .process(&d, &policy(Level::Blue), &channels(), &p)
            .unwrap()
            .event_id,
        e
    );

    let chain = store.event_chain(&e).unwrap();
    let ids: Vec<&str> = chain.iter().map(|l| l.item_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(chain[0].reprint_of, None);
    assert_eq!(chain[1].reprint_of.as_deref(), Some("a"));
    assert_eq!(chain[1].distance, Some(6));
    assert_eq!(chain[2].reprint_of.as_deref(), Some("b"));
    assert_eq!(chain[2].site, "e.com");
    let event = store.event(&e).unwrap().unwrap();
    assert_eq!(event.item_count, 3);
    let heats: f64 = chain.iter().map(|l| l.heat).sum();
    assert!((event.heat - heats).abs() < 1e-9);
    // Government 3 + forum 1 with log2(81) for 40 reposts + news 2.
    assert!(
        (event.heat - (3.0 + 1.0 + 81f64.log2() + 2.0)).abs() < 1e-9,
        "{}",
        event.heat
    );
}

#[test]
fn items_below_the_level_open_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let o = store
        .process(
            &analyzed("a", Some(Level::Blue), Some("r"), 1, 1),
            &policy(Level::Yellow),
            &channels(),
            &p,
        )
        .unwrap();
    assert!(o.opened.is_empty());
    let o = store
        .process(
            &analyzed("b", None, None, 2, 1),
            &policy(Level::Blue),
            &channels(),
            &p,
        )
        .unwrap();
    assert!(o.opened.is_empty());
    assert_eq!(store.item_count().unwrap(), 2);
}

#[test]
fn notifications_retry_then_die() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    store
        .process(
            &analyzed("a", Some(Level::Red), Some("r"), 1, 1),
            &policy(Level::Blue),
            &channels(),
            &p,
        )
        .unwrap();
    let now = Utc::now();
    let due = store.due_notifications(now, 10).unwrap();
    assert_eq!(due.len(), 1);
    store
        .mark_failed(
            due[0].id,
            "HTTP 500",
            now,
            Some(now + Duration::seconds(30)),
        )
        .unwrap();
    assert!(store.due_notifications(now, 10).unwrap().is_empty());
    let later = store
        .due_notifications(now + Duration::seconds(31), 10)
        .unwrap();
    assert_eq!(later[0].attempts, 1);
    store.mark_failed(due[0].id, "HTTP 500", now, None).unwrap();
    assert_eq!(store.notification_counts().unwrap(), (0, 0, 1));
}

#[test]
fn report_log_is_once_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let t = Utc.with_ymd_and_hms(2026, 11, 26, 0, 30, 0).unwrap();
    let record = yuqing_model::ReportRecord {
        kind: yuqing_model::ReportKind::Nil,
        period_start: t - Duration::hours(24),
        period_end: t,
        incidents: 0,
        items: 3,
        markdown_path: "a.md".into(),
        html_path: "a.html".into(),
        created_at: t,
    };
    assert!(store.record_report(&record).unwrap());
    assert!(!store.record_report(&record).unwrap());
    assert_eq!(store.last_report().unwrap(), Some(t));
    assert_eq!(store.reports(10).unwrap(), vec![record]);
}

#[test]
fn a_report_written_now_includes_what_opened_this_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    store
        .process(
            &analyzed("a", Some(Level::Red), Some("r"), 1, 0),
            &policy(Level::Blue),
            &channels(),
            &p,
        )
        .unwrap();
    let now = Utc::now();
    let found = store
        .incidents_between(now - Duration::hours(24), now, Level::Blue)
        .unwrap();
    assert_eq!(found.len(), 1);
    let counts = store
        .item_counts_by_source_type(now - Duration::hours(24), now)
        .unwrap();
    assert_eq!(counts, vec![("news".to_string(), 1)]);
}

/// A report whose period the alerter was partly down for says so, in the
/// files and in the brief the robots get; one after it does not.
#[test]
fn a_report_covering_downtime_says_it_may_be_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let now = Utc::now();
    store.heartbeat(now - Duration::hours(10)).unwrap();
    store
        .record_start(now - Duration::hours(2), Duration::minutes(3))
        .unwrap();
    let cfg = yuqing_config::ReportConfig::default();
    let tz = chrono_tz::Asia::Shanghai;
    let build = |end: chrono::DateTime<Utc>| {
        crate::report::build_report(&store, &cfg, tz, end - Duration::hours(24), end).unwrap()
    };
    let r = build(now);
    for text in [&r.markdown, &r.html, &r.brief] {
        assert!(text.contains("停止运行"), "{text}");
    }
    let later = build(now + Duration::hours(23));
    assert!(!later.markdown.contains("停止运行"), "{}", later.markdown);
}

fn status(state: yuqing_model::SourceState) -> yuqing_model::SourceStatus {
    yuqing_model::SourceStatus {
        source: "bbs".into(),
        name: "江州论坛".into(),
        state,
        consecutive_failures: if state == yuqing_model::SourceState::Ok {
            0
        } else {
            3
        },
        reason: (state != yuqing_model::SourceState::Ok).then(|| "login wall".to_string()),
        last_success_at: None,
        at: Utc::now(),
    }
}

#[test]
fn collector_incident_opens_once_and_resolves_on_recovery() {
    use yuqing_model::{IncidentStatus, SourceState};
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |i: &yuqing_model::Incident, r: &str| format!("{r}:{}", i.status.as_str());
    let record = |state: SourceState| {
        store
            .record_source_status(
                &status(state),
                Level::Orange,
                &policy(Level::Blue),
                &channels(),
                &p,
            )
            .unwrap()
    };
    let ok = record(SourceState::Ok);
    assert!(ok.opened.is_empty() && ok.notifications == 0);
    let down = record(SourceState::Blocked);
    assert_eq!(down.opened.len(), 1);
    assert_eq!(down.notifications, 1);
    let again = record(SourceState::Failing);
    assert!(
        again.opened.is_empty() && again.notifications == 0,
        "one incident while the source stays down"
    );
    let incident = store.incident(down.opened[0]).unwrap().unwrap();
    assert_eq!(incident.dedup_key, "collector:bbs");
    assert_eq!(incident.level, Level::Orange);
    assert!(
        incident.title.contains("江州论坛") && incident.title.contains("login wall"),
        "{}",
        incident.title
    );
    assert_eq!(
        store.source_statuses().unwrap()[0].state,
        SourceState::Failing
    );

    let back = record(SourceState::Ok);
    assert_eq!(back.notifications, 1, "recovery is announced");
    assert_eq!(
        store.incident(down.opened[0]).unwrap().unwrap().status,
        IncidentStatus::Resolved
    );
    let due = store.due_notifications(Utc::now(), 10).unwrap();
    assert_eq!(due.last().unwrap().payload, "resolved:resolved");
    // A later failure opens a new incident.
    let again = record(SourceState::Blocked);
    assert_eq!(again.opened.len(), 1);
    assert_ne!(again.opened, down.opened);

    // A replayed snapshot older than the last one recorded changes nothing:
    // the source stays blocked, its incident open, and nobody is told.
    let mut stale = status(SourceState::Ok);
    stale.at = Utc::now() - Duration::hours(1);
    let o = store
        .record_source_status(&stale, Level::Orange, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert!(o.opened.is_empty() && o.notifications == 0, "{o:?}");
    assert_eq!(
        store.source_statuses().unwrap()[0].state,
        SourceState::Blocked
    );
    assert_eq!(
        store.incident(again.opened[0]).unwrap().unwrap().status,
        IncidentStatus::Triggered
    );
}

/// An item of topic `topic` with no level (so it opens no rule incident),
/// published `hours_ago`.
fn topical(id: &str, topic: &str, hours_ago: i64) -> AnalyzedItem {
    let mut a = analyzed(id, None, Some("r"), 0, 0);
    a.hits[0].topic = topic.into();
    a.item.published_at = Some(Utc::now() - Duration::hours(hours_ago));
    a
}

#[test]
fn a_topic_spikes_against_its_own_hour_of_day_and_notifies_when_it_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let pol = policy(Level::Blue);
    let run = |a: &AnalyzedItem| store.process(a, &pol, &channels(), &p).unwrap();
    // A week of history: at this hour of the day, 暴雨 had 1 item a day and
    // 早高峰 had 30; six hours earlier each day, 暴雨 had 20.
    for d in 1..=7 {
        run(&topical(&format!("r{d}"), "暴雨", 24 * d));
        for n in 0..20 {
            run(&topical(&format!("r{d}-{n}"), "暴雨", 24 * d + 6));
        }
        for n in 0..30 {
            assert!(
                run(&topical(&format!("b{d}-{n}"), "早高峰", 24 * d))
                    .spikes
                    .is_empty()
            );
        }
    }
    // A busy hour at its usual volume is not a spike.
    for n in 0..30 {
        assert!(
            run(&topical(&format!("b0-{n}"), "早高峰", 0))
                .spikes
                .is_empty()
        );
    }
    // A backfill of old items raises nothing, however many.
    for n in 0..10 {
        assert!(
            run(&topical(&format!("old-{n}"), "暴雨", 50))
                .spikes
                .is_empty()
        );
    }
    // Now: 暴雨 at this hour, against its baseline of 1. The fifth item is
    // the spike (min_count 5, 5 times the baseline, 4 spreads above it).
    for n in 0..4 {
        assert!(
            run(&topical(&format!("now-{n}"), "暴雨", 0))
                .spikes
                .is_empty()
        );
    }
    let o = run(&topical("now-4", "暴雨", 0));
    assert_eq!(o.spikes.len(), 1, "{o:?}");
    let (id, topic) = o.spikes[0].clone();
    assert_eq!(topic, "暴雨");
    assert_eq!(o.notifications, 1);
    let i = store.incident(id).unwrap().unwrap();
    assert_eq!(i.level, Level::Orange);
    assert_eq!(i.dedup_key, "spike:暴雨");
    assert!(
        i.title.contains("本小时 5 条，同时段常态 1.0 条（5.0 倍）"),
        "{}",
        i.title
    );
    // Growing without doubling: no new notification; at 10 (twice 5), one.
    for n in 5..9 {
        let o = run(&topical(&format!("now-{n}"), "暴雨", 0));
        assert!(o.spikes.is_empty() && o.raised.is_empty() && o.notifications == 0);
    }
    let o = run(&topical("now-9", "暴雨", 0));
    assert_eq!((o.raised.clone(), o.notifications), (vec![id], 1));
    // A replay changes nothing.
    let o = run(&topical("now-9", "暴雨", 0));
    assert!(o.raised.is_empty() && o.notifications == 0);

    let spikes = store.spikes(Utc::now() - Duration::hours(1)).unwrap();
    assert_eq!(spikes.len(), 1);
    assert_eq!((spikes[0].items, spikes[0].expected), (10, 1.0));
    assert_eq!(spikes[0].incident_id, id);
    // Quiet for longer than quiet_hours: resolved.
    assert_eq!(store.resolve_quiet_spikes(Utc::now(), 2).unwrap(), 0);
    assert_eq!(
        store
            .resolve_quiet_spikes(Utc::now() + Duration::hours(3), 2)
            .unwrap(),
        1
    );
    let i = store.incident(id).unwrap().unwrap();
    assert_eq!(i.status, yuqing_model::IncidentStatus::Resolved);
}

#[test]
fn a_database_from_before_reprint_chains_upgrades_and_its_events_stay_joinable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.db");
    let h = 0x0f0f_0f0f_1234_5678u64;
    {
        // The schema as it was before migration 4, with one fingerprinted
        // event and its item.
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::from_slice(crate::store::MIGRATIONS)
            .to_version(&mut conn, 3)
            .unwrap();
        let now = Utc::now().timestamp();
        conn.execute(
            "INSERT INTO items (item_id, event_id, source, source_type, title, url, level, score, published_at, processed_at, sentiment)
             VALUES ('old', 'old', 's', 'news', '旧文', 'https://e.com/old', NULL, 0, ?1, ?1, NULL)",
            [now - 3_600],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO events (event_id, simhash, first_item_id, first_title, first_url, first_source, first_published_at, item_count, updated_at, fingerprinted)
             VALUES ('old', ?1, 'old', '旧文', 'https://e.com/old', 's', ?2, 1, ?2, 1)",
            rusqlite::params![h as i64, now - 3_600],
        )
        .unwrap();
    }
    let store = AlertStore::open(&path).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    // A reprint 2 bits away joins the old event through the fingerprint
    // the migration copied to its item.
    let reprint = analyzed("new", None, None, h ^ 0b11, 10);
    let o = store
        .process(&reprint, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_eq!(o.event_id, "old");
    let chain = store.event_chain("old").unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].reprint_of.as_deref(), Some("old"));
    assert_eq!(store.event("old").unwrap().unwrap().item_count, 2);
}

/// Makes `store` refuse to record the item `poison` (a trigger aborts
/// its insert), as a full disk or a broken row would.
fn refuse_poison(store: &AlertStore) {
    store
        .conn
        .lock()
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.item_id = 'poison'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
}

/// An alerter running on an in-process bus over a store of its own.
struct OnBus {
    _dir: tempfile::TempDir,
    store: AlertStore,
    metrics: crate::AlertMetrics,
    bus: std::sync::Arc<yuqing_bus::InProcessBus>,
    topics: yuqing_bus::Topics,
    stop: tokio_util::sync::CancellationToken,
    run: tokio::task::JoinHandle<Result<(), yuqing_bus::BusError>>,
}

fn alerter_on_bus() -> OnBus {
    alerter_on_bus_with("")
}

/// [`alerter_on_bus`], with `alert` (tables under `[alert]`) in its config.
fn alerter_on_bus_with(alert: &str) -> OnBus {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        format!("data_dir = \"data\"\n[alert]\nmin_level = \"blue\"\n{alert}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let config = yuqing_config::Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let registry = prometheus::Registry::new();
    let metrics = crate::AlertMetrics::new(&registry);
    let alerter = crate::Alerter::new(&config, store.clone(), "http://c".into(), metrics.clone());
    let bus = std::sync::Arc::new(yuqing_bus::InProcessBus::new(16));
    let topics = yuqing_bus::Topics::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(alerter.run(bus.clone(), topics.clone(), stop.clone()));
    OnBus {
        _dir: dir,
        store,
        metrics,
        bus,
        topics,
        stop,
        run,
    }
}

/// Publishes an orange item of rule `r1` on `items.analyzed`, once the
/// alerter has subscribed.
async fn publish_orange(
    bus: &yuqing_bus::InProcessBus,
    topics: &yuqing_bus::Topics,
    id: &str,
    simhash: u64,
) -> yuqing_bus::Receipt {
    use yuqing_bus::Bus;
    let a = analyzed(id, Some(Level::Orange), Some("r1"), simhash, 5);
    let bytes = yuqing_model::Envelope::new("item.analyzed", a).to_bytes();
    loop {
        match bus.publish(&topics.items_analyzed, id, bytes.clone()).await {
            Ok(r) => break r,
            // The alerter has not subscribed yet.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// The alerter on an in-process bus, its store made read-only while an
/// item arrives: the item is retried until the store takes it, then
/// acknowledged; nothing waits for a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_the_store_refuses_is_retried_until_it_is_recorded() {
    let OnBus {
        _dir,
        store,
        metrics,
        bus,
        topics,
        stop,
        run,
    } = alerter_on_bus();
    // Writes fail until the pragma is lifted.
    store
        .conn
        .lock()
        .unwrap()
        .pragma_update(None, "query_only", true)
        .unwrap();
    let receipt = publish_orange(&bus, &topics, "a", 1).await;
    let mut receipt = Box::pin(receipt.durable());
    for _ in 0..200 {
        if metrics.store_errors.get() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(metrics.store_errors.get() >= 2, "retried while refused");
    assert!(
        futures_now(&mut receipt).is_none(),
        "not acknowledged while unrecorded"
    );
    assert!(store.incidents(10).unwrap().is_empty());
    store
        .conn
        .lock()
        .unwrap()
        .pragma_update(None, "query_only", false)
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), receipt)
        .await
        .expect("acknowledged once recorded")
        .unwrap();
    assert_eq!(store.incidents(10).unwrap().len(), 1);
    stop.cancel();
    run.await.unwrap().unwrap();
}

/// Items that arrive together are recorded in one transaction; when the
/// store refuses one of them, the others are recorded one at a time and
/// acknowledged, the refused one is retried in place, and what comes after
/// it waits its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_refused_in_a_batch_does_not_take_the_others_down_with_it() {
    let OnBus {
        _dir,
        store,
        metrics,
        bus,
        topics,
        stop,
        run,
    } = alerter_on_bus();
    refuse_poison(&store);
    let publish = |id: &'static str, simhash: u64| publish_orange(&bus, &topics, id, simhash);
    // While the store is held the items queue up, and are taken together
    // (with or without the first, whichever the alerter was waiting on).
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let holder = {
        let store = store.clone();
        std::thread::spawn(move || {
            let _conn = store.conn.lock().unwrap();
            locked.send(()).unwrap();
            let _ = held.recv();
        })
    };
    is_locked.recv().unwrap();
    let first = Box::pin(publish("first", 0x1111).await.durable());
    let good = Box::pin(publish("good", 0x2222_0000).await.durable());
    let mut poison = Box::pin(publish("poison", 0x3333_0000_0000).await.durable());
    let mut after = Box::pin(publish("after", 0x4444_0000_0000_0000).await.durable());
    release.send(()).unwrap();
    holder.join().unwrap();
    let wait = std::time::Duration::from_secs(10);
    tokio::time::timeout(wait, first).await.unwrap().unwrap();
    tokio::time::timeout(wait, good)
        .await
        .expect("recorded on its own after the batch failed")
        .unwrap();
    for _ in 0..200 {
        if metrics.store_errors.get() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        metrics.store_errors.get() >= 2,
        "the batch, then the item alone"
    );
    assert!(
        futures_now(&mut poison).is_none(),
        "refused: not acknowledged"
    );
    assert!(futures_now(&mut after).is_none(), "waits its turn");
    store
        .conn
        .lock()
        .unwrap()
        .execute_batch("DROP TRIGGER refuse")
        .unwrap();
    tokio::time::timeout(wait, poison).await.unwrap().unwrap();
    tokio::time::timeout(wait, after).await.unwrap().unwrap();
    let items: i64 = store
        .conn
        .lock()
        .unwrap()
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(items, 4);
    stop.cancel();
    run.await.unwrap().unwrap();
}

/// An item the store refuses for longer than its retries in place is
/// parked: the items after it are recorded and acknowledged, and it is
/// retried in the background until the store takes it, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_refused_for_long_is_parked_and_recorded_once_the_store_takes_it() {
    let OnBus {
        _dir,
        store,
        metrics,
        bus,
        topics,
        stop,
        run,
    } = alerter_on_bus();
    refuse_poison(&store);
    let publish = |id: &'static str, simhash: u64| publish_orange(&bus, &topics, id, simhash);
    let mut poison = Box::pin(publish("poison", 0x3333_0000_0000).await.durable());
    let after = Box::pin(publish("after", 0x4444_0000_0000_0000).await.durable());
    let wait = std::time::Duration::from_secs(30);
    tokio::time::timeout(wait, after)
        .await
        .expect("the item after a parked one goes on")
        .unwrap();
    assert_eq!(metrics.parked.get(), 1);
    assert!(futures_now(&mut poison).is_none(), "parked, unacknowledged");
    let errors = metrics.store_errors.get();
    for _ in 0..200 {
        if metrics.store_errors.get() > errors {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(metrics.store_errors.get() > errors, "retried while parked");
    store
        .conn
        .lock()
        .unwrap()
        .execute_batch("DROP TRIGGER refuse")
        .unwrap();
    tokio::time::timeout(wait, poison)
        .await
        .expect("recorded and acknowledged once the store takes it")
        .unwrap();
    assert_eq!(metrics.parked.get(), 0);
    let items: i64 = store
        .conn
        .lock()
        .unwrap()
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(items, 2);
    stop.cancel();
    run.await.unwrap().unwrap();
}

/// While an item the store refuses is retried in place, the escalation
/// engine still runs: an incident opened meanwhile gets its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_item_holds_up_no_escalation() {
    use yuqing_bus::Bus;
    let OnBus {
        _dir,
        store,
        metrics,
        bus,
        topics,
        stop,
        run,
    } = alerter_on_bus_with(
        r#"
[[alert.person]]
id = "zhang"
name = "张伟"
channels = ["ding"]

[[alert.channel]]
id = "ding"
kind = "dingtalk"
url = "http://127.0.0.1:9/robot/send?access_token=t"
secret = "SECabc"

[[alert.roster]]
id = "duty"
[[alert.roster.shift]]
when = "mon-sun 00:00-24:00"
person = "zhang"

[[alert.policy]]
id = "default"
[[alert.policy.step]]
targets = ["roster:duty"]
ack_timeout = "15m"

[[alert.route]]
id = "all"
policy = "default"
group_wait = "1s"
"#,
    );
    refuse_poison(&store);
    let a = analyzed("poison", Some(Level::Orange), Some("r1"), 0x1111, 5);
    let bytes = yuqing_model::Envelope::new("item.analyzed", a).to_bytes();
    let mut poison = loop {
        match bus
            .publish(&topics.items_analyzed, "poison", bytes.clone())
            .await
        {
            Ok(r) => break Box::pin(r.durable()),
            // The alerter has not subscribed yet.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let pause = std::time::Duration::from_millis(50);
    while metrics.store_errors.get() == 0 {
        tokio::time::sleep(pause).await;
    }
    // An incident opened while the item stream is held.
    let opened = analyzed("other", Some(Level::Orange), Some("r1"), !0x1111, 5);
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    store
        .process(&opened, &policy(Level::Blue), &[], &p)
        .unwrap();
    let outbox = || -> i64 {
        store
            .conn
            .lock()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))
            .unwrap()
    };
    // The item is retried for half a minute; the message is owed after
    // the route's group_wait and the next tick.
    for _ in 0..300 {
        if outbox() > 0 {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    assert!(outbox() > 0, "the engine ticked while the item was retried");
    assert!(
        futures_now(&mut poison).is_none(),
        "the refused item is still being retried"
    );
    store
        .conn
        .lock()
        .unwrap()
        .execute_batch("DROP TRIGGER refuse")
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(40), poison)
        .await
        .unwrap()
        .unwrap();
    stop.cancel();
    run.await.unwrap().unwrap();
}

/// The value of `f` if it is ready now.
fn futures_now<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn items_recorded_together_are_recorded_as_one_at_a_time_and_a_failed_batch_leaves_nothing() {
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let h = 0x0123_4567_89ab_cdefu64;
    let a = analyzed("a", Some(Level::Yellow), Some("r1"), h, 60);
    let b = analyzed("b", Some(Level::Red), Some("r1"), h ^ 0b11, 90);
    let c = analyzed("c", Some(Level::Yellow), Some("r1"), !h, 10);
    let summary = |store: &AlertStore| {
        let mut v: Vec<(Level, u64, String)> = store
            .incidents(10)
            .unwrap()
            .into_iter()
            .map(|i| (i.level, i.item_count, i.title))
            .collect();
        v.sort_by(|x, y| x.2.cmp(&y.2));
        v
    };

    let dir = tempfile::tempdir().unwrap();
    let one = AlertStore::open(&dir.path().join("one.db")).unwrap();
    let singly: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|x| {
            one.process(x, &policy(Level::Blue), &channels(), &p)
                .unwrap()
        })
        .collect();
    let all = AlertStore::open(&dir.path().join("all.db")).unwrap();
    let together = all
        .process_all(&[&a, &b, &c], &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_eq!(
        together[1].event_id, together[0].event_id,
        "b joins a's event in the same call"
    );
    assert_ne!(together[2].event_id, together[0].event_id);
    for (s, t) in singly.iter().zip(&together) {
        assert_eq!(
            (s.opened.len(), s.raised.len(), s.notifications),
            (t.opened.len(), t.raised.len(), t.notifications)
        );
    }
    assert_eq!(summary(&one), summary(&all));
    assert_eq!(summary(&all).len(), 2);

    // A batch the store refuses part of is not recorded at all, and what
    // the event cache took from it is forgotten: a reprint of its first
    // item, recorded later, starts an event of its own.
    let db = rusqlite::Connection::open(dir.path().join("all.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.item_id = 'poison'
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();
    let g = 0x5555_aaaa_5555_aaaau64;
    let fresh = analyzed("fresh", Some(Level::Yellow), Some("r2"), g, 5);
    let poison = analyzed("poison", Some(Level::Yellow), Some("r2"), !g, 5);
    let err = all
        .process_all(&[&fresh, &poison], &policy(Level::Blue), &channels(), &p)
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM items"), 3);
    assert_eq!(count("SELECT COUNT(*) FROM events"), 2);
    let reprint = analyzed("reprint", Some(Level::Yellow), Some("r2"), g ^ 1, 4);
    let o = all
        .process(&reprint, &policy(Level::Blue), &channels(), &p)
        .unwrap();
    assert_eq!(o.opened.len(), 1);
    assert_eq!(count("SELECT COUNT(*) FROM events"), 3);
    assert_eq!(
        count("SELECT COUNT(*) FROM items WHERE item_id = 'fresh'"),
        0
    );
}

/// Past its retention `alert.db` keeps open incidents with their items and
/// events, and lets go of everything else: resolved incidents with their
/// timeline and messages, items, events and hourly counts.
#[test]
fn pruning_keeps_open_incidents_and_deletes_the_rest_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let open = analyzed("open", Some(Level::Orange), Some("r1"), 0x1111, 5);
    let quiet = analyzed("quiet", None, None, 0x2222_0000, 5);
    let done = analyzed("done", Some(Level::Orange), Some("r2"), 0x3333_0000_0000, 5);
    let mut ids = Vec::new();
    for a in [&open, &quiet, &done] {
        let o = store
            .process(a, &policy(Level::Blue), &channels(), &p)
            .unwrap();
        ids.extend(o.opened);
    }
    let [kept, resolved] = ids[..] else {
        panic!("{ids:?}")
    };
    let now = Utc::now();
    store.resolve_by(resolved, "张伟", "console", now).unwrap();
    let count = |table: &str| -> i64 {
        store
            .conn
            .lock()
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let before: Vec<i64> = ["timeline", "notifications", "topic_hours"]
        .iter()
        .map(|t| count(t))
        .collect();
    assert!(before.iter().all(|&n| n > 0), "{before:?}");

    // Within the retention nothing goes.
    assert_eq!(store.prune(now, 365).unwrap(), crate::Pruned::default());

    // A year and more later: the open incident and its item and event stay.
    let later = now + Duration::days(400);
    let pruned = store.prune(later, 365).unwrap();
    assert_eq!(
        (pruned.items, pruned.events, pruned.incidents),
        (2, 2, 1),
        "{pruned:?}"
    );
    assert!(pruned.other > 0, "the hourly counts");
    assert_eq!(count("items"), 1);
    assert_eq!(store.event_of("open").unwrap().as_deref(), Some("open"));
    assert!(store.event("open").unwrap().is_some());
    assert!(store.incident(kept).unwrap().is_some());
    assert!(store.incident(resolved).unwrap().is_none());
    assert!(!store.timeline(kept).unwrap().is_empty());
    assert!(store.timeline(resolved).unwrap().is_empty());
    let left: i64 = store
        .conn
        .lock()
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM notifications WHERE incident_id = ?1",
            [resolved],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(count("topic_hours"), 0);
    // Again: nothing more.
    assert_eq!(store.prune(later, 365).unwrap(), crate::Pruned::default());
}
