//! Kill -9 the running binary in the middle of a crawl, start it again on
//! the same data directory: every item is collected exactly once and the
//! incidents are the same as in an uninterrupted run.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use yuqing::demo_site::{DemoSite, Site};

use common::spawn_listening;

/// `yuqing run` on the demo config, and the base URL of its API.
async fn start(
    site: std::net::SocketAddr,
    data: &std::path::Path,
    delay_ms: u64,
) -> (Child, String) {
    let (child, addr) = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_yuqing"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args(["run", "--config", "config/demo.toml"])
            .env("DEMO_SITE", site.to_string())
            .env("DEMO_DATA", data)
            .env("YUQING__CRAWLER__PER_HOST_DELAY_MS", delay_ms.to_string())
            // No notifications leave the test.
            .env("YUQING__ALERT__WEBHOOK", "[]")
            .env_remove("RUST_LOG")
            .stderr(Stdio::null()),
    )
    .await;
    (child, format!("http://{addr}"))
}

async fn json(url: &str) -> Option<serde_json::Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mid_crawl_then_restart_collects_everything_once() {
    let site = Site::bundled();
    let demo = DemoSite::start(site.clone(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Slow enough (a quarter second between requests to the one host) that
    // the kill lands in the middle of the first run.
    let (mut first, api) = start(demo.addr, &data, 250).await;
    let mut partial = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(v) = json(&format!("{api}/api/sources")).await {
            partial = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["total_new_items"].as_u64().unwrap())
                .sum::<u64>();
            if partial > 0 {
                break;
            }
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        partial > 0 && (partial as usize) < site.item_count(),
        "killed mid-run after {partial} items"
    );

    let (mut second, api) = start(demo.addr, &data, 0).await;
    let mut total = 0;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(v) = json(&format!("{api}/api/search?limit=500")).await {
            total = v["total"].as_u64().unwrap() as usize;
            if total == site.item_count() {
                break;
            }
        }
    }
    assert_eq!(total, site.item_count(), "every item indexed once");
    // Let the alerter catch up, then compare with an uninterrupted run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let incidents = json(&format!("{api}/api/incidents")).await.unwrap();
    let mut got: Vec<(String, u64)> = incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["rule_id"].as_str().unwrap().to_string(),
                i["item_count"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    second.kill().unwrap();
    second.wait().unwrap();

    let state = yuqing_crawler::state::CrawlState::open(&data.join("crawl.db")).unwrap();
    assert_eq!(
        state.seen_count().unwrap() as usize,
        site.item_count(),
        "each item emitted once"
    );

    let expected_total: usize = site
        .news
        .iter()
        .map(|n| n.expect_rules.len())
        .chain(site.thread.iter().map(|t| {
            t.expect_rules.len() + t.reply.iter().map(|r| r.expect_rules.len()).sum::<usize>()
        }))
        .chain(site.post.iter().map(|p| p.expect_rules.len()))
        .sum();
    assert_eq!(
        got.iter().map(|(_, n)| *n as usize).sum::<usize>(),
        expected_total,
        "{got:?}"
    );
    demo.stop().await;
}

/// Mentions of each DingTalk message the sample site's robot took.
fn mentions(demo: &DemoSite) -> Vec<Vec<String>> {
    demo.robot_messages()
        .iter()
        .map(|m| {
            m["at"]["atMobiles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The value of an unlabelled metric on a `/metrics` page (0 when absent).
async fn metric(url: &str, name: &str) -> f64 {
    let Ok(r) = reqwest::get(url).await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn query_i64(data: &std::path::Path, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(data.join("alert.db")).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every notification row, for a failing assertion to show.
fn notification_rows(data: &std::path::Path) -> Vec<String> {
    let db = rusqlite::Connection::open(data.join("alert.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT id, incident_id, channel, reason, level, created_at, attempts, sent_at, dead_at
             FROM notifications ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(format!(
            "#{} incident {} {} {} {} created {} attempts {} sent {:?} dead {:?}",
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Each incident's id and item count.
fn incident_counts(data: &std::path::Path) -> Vec<(i64, i64)> {
    let db = rusqlite::Connection::open(data.join("alert.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT id, item_count FROM incidents WHERE rule_id NOT IN ('delivery', 'collector') ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_due_while_the_alerter_was_down_is_sent_once_after_restarts() {
    let site = Site::bundled();
    let demo = DemoSite::start(site.clone(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // First run: every item is processed and the officer on duty gets the
    // first message, recorded as sent (a kill between the robot's answer and
    // that record would rightly send it again).
    let (mut first, _) = start(demo.addr, &data, 0).await;
    let unsent = "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL AND dead_at IS NULL";
    for _ in 0..600 {
        if !demo.robot_messages().is_empty()
            && data.join("alert.db").exists()
            && query_i64(&data, "SELECT COUNT(*) FROM items") as usize == site.item_count()
            && query_i64(&data, unsent) == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        query_i64(&data, "SELECT COUNT(*) FROM items") as usize,
        site.item_count(),
        "the first run processed every item"
    );
    let before = mentions(&demo);
    assert_eq!(
        before.first(),
        Some(&vec!["13800000000".to_string()]),
        "{before:?}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        query_i64(&data, unsent),
        0,
        "the first message recorded as sent: {:?}",
        notification_rows(&data)
    );
    let incidents = incident_counts(&data);
    assert!(!incidents.is_empty());

    // While it is down, the acknowledgement timeout passes: the stored
    // escalation times fall due.
    {
        let db = rusqlite::Connection::open(data.join("alert.db")).unwrap();
        let due = db
            .execute(
                "UPDATE incidents SET next_escalation_at = strftime('%s','now') - 60
                 WHERE status = 'triggered' AND next_escalation_at IS NOT NULL",
                [],
            )
            .unwrap();
        assert!(due > 0, "escalation timers are stored");
    }
    let sent_before = demo.robot_messages().len();

    // Second run, with the robot's platform down: the escalation is
    // written to the outbox and fails; kill -9 before it is sent.
    demo.set_robot_down(true);
    let (mut second, _) = start(demo.addr, &data, 0).await;
    let owed = "SELECT COUNT(*) FROM notifications WHERE channel = 'demo-dingtalk'
                AND sent_at IS NULL AND dead_at IS NULL AND attempts >= 1";
    for _ in 0..300 {
        if demo.robot_refusals() > 0 && query_i64(&data, owed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(demo.robot_refusals() > 0, "the escalation was attempted");
    assert_eq!(
        query_i64(&data, owed),
        1,
        "one escalation message owed: {:?}",
        notification_rows(&data)
    );
    assert_eq!(demo.robot_messages().len(), sent_before);

    // Third run, the platform back up, and every item replayed: the crawl
    // state is gone, so the crawler collects all of it again.
    demo.set_robot_down(false);
    std::fs::remove_file(data.join("crawl.db")).unwrap();
    let (mut third, api) = start(demo.addr, &data, 0).await;
    let mut after = Vec::new();
    for _ in 0..300 {
        after = mentions(&demo)[sent_before..].to_vec();
        if !after.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The overdue escalation reaches the director once, in one message.
    assert_eq!(after, vec![vec!["13900000000".to_string()]]);
    let text = demo.robot_messages().last().unwrap()["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("未确认，升级通知"), "{text}");
    // The replay ends: every item collected again.
    let mut replayed = 0;
    for _ in 0..300 {
        if let Some(v) = json(&format!("{api}/api/sources")).await {
            replayed = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["total_new_items"].as_u64().unwrap())
                .sum::<u64>() as usize;
            if replayed == site.item_count() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replayed, site.item_count(), "every item replayed");
    // The alerter has taken every replayed item...
    let mut processed = 0.0;
    for _ in 0..300 {
        processed = metric(&format!("{api}/metrics"), "yuqing_alert_items_total").await;
        if processed >= site.item_count() as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        processed,
        site.item_count() as f64,
        "the alerter saw the replay"
    );
    // ...and a few ticks later: no new incident, no incident grown,
    // nothing more sent, nothing owed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(incident_counts(&data), incidents);
    assert_eq!(demo.robot_messages().len(), sent_before + 1, "sent once");
    assert_eq!(query_i64(&data, unsent), 0, "nothing owed");
    third.kill().unwrap();
    third.wait().unwrap();
    demo.stop().await;
}
