//! The roles in four processes over Kafka: against librdkafka's mock
//! cluster, a Kafka-protocol broker on 127.0.0.1 inside this test process,
//! and against the broker `YUQING_TEST_KAFKA` names (`host:port`), on topics
//! of the test's own. `.ci/run` starts one (Tansu, from crates.io).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use yuqing::demo_site::{DemoSite, Site};

use common::{free_port, spawn_listening};

/// The brokers the roles talk to, and the topic prefix of this run.
struct Broker {
    brokers: String,
    prefix: String,
    _mock: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
}

impl Broker {
    /// The broker `YUQING_TEST_KAFKA` names, if any.
    fn external() -> Option<Broker> {
        let brokers = std::env::var("YUQING_TEST_KAFKA").ok()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Some(Broker {
            brokers,
            prefix: format!("yuqing-test-{nanos}."),
            _mock: None,
        })
    }

    fn mock() -> Broker {
        let mock = MockCluster::new(1).unwrap();
        // The mock broker has no CreateTopics: the topics are made here.
        for t in [
            "crawl.tasks",
            "items.raw",
            "items.analyzed",
            "items.dead",
            "sources.status",
        ] {
            mock.create_topic(&format!("yuqing.{t}"), 2, 1).unwrap();
        }
        Broker {
            brokers: mock.bootstrap_servers(),
            prefix: "yuqing.".into(),
            _mock: Some(mock),
        }
    }
}

/// A running `yuqing`, killed (-9) when dropped, so that a failing test
/// leaves no process behind.
struct Proc(Child);

impl Proc {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `yuqing run --roles ROLES` on the demo config over Kafka, its log in
/// `logs/NAME.log`.
/// Returns it with the base URL of its console or metrics.
async fn start(
    roles: &str,
    name: &str,
    broker: &Broker,
    site: std::net::SocketAddr,
    dir: &Path,
) -> (Proc, String) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let log = std::fs::File::create(dir.join("logs").join(format!("{name}.log"))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yuqing"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["run", "--config", "config/demo.toml", "--roles", roles])
        .env("DEMO_SITE", site.to_string())
        .env("DEMO_DATA", dir.join("data"))
        // Slow enough that the indexer can be killed mid-stream.
        .env("YUQING__CRAWLER__PER_HOST_DELAY_MS", "150")
        .env("YUQING__ALERT__WEBHOOK", "[]")
        .env("YUQING__BUS__KIND", "kafka")
        .env("YUQING__BUS__KAFKA__BROKERS", &broker.brokers)
        .env("YUQING__BUS__TOPIC_PREFIX", &broker.prefix)
        .env("YUQING__BUS__KAFKA__PARTITIONS", "2")
        // The groups commit only when a consumer closes: a process killed
        // leaves its group's position where it was, so only the index's
        // stored position can say where to resume.
        .env(
            "YUQING__BUS__KAFKA__PROPERTIES",
            r#"{ "session.timeout.ms" = "6000", "auto.commit.interval.ms" = "3600000" }"#,
        )
        .env("RUST_LOG", "info")
        .stderr(log);
    let (child, addr) = spawn_listening(&mut cmd).await;
    (Proc(child), format!("http://{addr}"))
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap() {
        let p: PathBuf = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        out += &format!("== {}\n", p.display());
        for l in tail.into_iter().rev() {
            out += l;
            out.push('\n');
        }
    }
    out
}

/// The positions stored with the index's last commit, read from its
/// `meta.json` as any tool could.
fn stored_positions(dir: &Path, topic: &str) -> Option<Vec<(i32, i64)>> {
    let meta = std::fs::read_to_string(dir.join("data/index/meta.json")).ok()?;
    let meta: serde_json::Value = serde_json::from_str(&meta).ok()?;
    let payload: serde_json::Value = serde_json::from_str(meta["payload"].as_str()?).ok()?;
    assert_eq!(payload["topic"], topic);
    Some(
        payload["next"]
            .as_object()?
            .iter()
            .map(|(p, n)| (p.parse().unwrap(), n.as_i64().unwrap()))
            .collect(),
    )
}

async fn json(url: &str) -> Option<serde_json::Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

async fn metric(api: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{api}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn indexed(api: &str) -> Option<usize> {
    let v = json(&format!("{api}/api/search?limit=1")).await?;
    Some(v["total"].as_u64()? as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_mock_cluster_roles_index_everything_and_a_killed_indexer_resumes_from_its_commit() {
    roles_over_kafka(Broker::mock()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_broker_roles_index_everything_and_a_killed_indexer_resumes_from_its_commit() {
    let Some(broker) = Broker::external() else {
        eprintln!("skipping: set YUQING_TEST_KAFKA=host:port to run against a real broker");
        return;
    };
    roles_over_kafka(broker).await;
}

async fn roles_over_kafka(broker: Broker) {
    let topic = format!("{}items.analyzed", broker.prefix);
    let site = Site::bundled();
    let total = site.item_count();
    let demo = DemoSite::start(site, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let (_front, front) = start("crawler,analyzer", "front", &broker, demo.addr, d).await;
    let _alerter = start("alerter", "alerter", &broker, demo.addr, d).await;
    let (mut back, _) = start("indexer,server", "back", &broker, demo.addr, d).await;

    // Kill -9 the indexer once a commit stored a position, before the
    // last item is in.
    let mid_stream = |p: &[(i32, i64)]| {
        let covered: i64 = p.iter().map(|(_, n)| n).sum();
        covered > 0 && (covered as usize) < total
    };
    for _ in 0..1200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stored_positions(d, &topic).is_some_and(|p| mid_stream(&p)) {
            break;
        }
    }
    back.kill();
    let at_kill = stored_positions(d, &topic)
        .filter(|p| mid_stream(p))
        .unwrap_or_else(|| panic!("no commit mid-stream\n{}", logs(d)));
    let covered = at_kill.iter().map(|(_, n)| n).sum::<i64>() as usize;

    let (_back, api_again) = start("indexer,server", "back-again", &broker, demo.addr, d).await;
    // A console in a fourth process follows the index the indexer writes.
    let (_viewer, viewer) = start("server", "viewer", &broker, demo.addr, d).await;
    let mut seen = 0;
    for _ in 0..1200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = indexed(&viewer).await.unwrap_or(0);
        if seen == total {
            break;
        }
    }
    assert_eq!(seen, total, "every item indexed once\n{}", logs(d));
    assert_eq!(indexed(&api_again).await, Some(total));
    // The restarted indexer read on from the stored positions: only the
    // messages after them, where a restart from the group's position
    // (never committed) would have read all of them again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = metric(&api_again, "yuqing_index_documents_written_total")
        .await
        .unwrap() as usize;
    assert_eq!(written, total - covered, "{at_kill:?}\n{}", logs(d));
    let again = stored_positions(d, &topic).unwrap();
    assert_eq!(again.iter().map(|(_, n)| n).sum::<i64>() as usize, total);

    // The alerter, in its own process, opened the demo's incidents; the
    // console shows them from the shared alert state.
    let mut incidents = 0;
    for _ in 0..300 {
        if let Some(v) = json(&format!("{viewer}/api/incidents")).await {
            incidents = v.as_array().map_or(0, Vec::len);
            if incidents > 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(incidents > 0, "{}", logs(d));
    // A process without the server still answers for Prometheus.
    assert_eq!(
        metric(&front, "yuqing_analysis_items_total").await,
        Some(total as f64)
    );

    demo.stop().await;
}

#[test]
fn some_roles_without_kafka_is_refused_with_what_to_set() {
    let out = Command::new(env!("CARGO_BIN_EXE_yuqing"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["run", "--config", "config/demo.toml", "--roles", "indexer"])
        .env("DEMO_DATA", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kind = \"kafka\""), "{err}");
}

#[test]
fn unreachable_brokers_are_an_error_naming_them() {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_yuqing"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["run", "--config", "config/demo.toml", "--roles", "analyzer"])
        .env("DEMO_DATA", tempfile::tempdir().unwrap().path())
        .env("YUQING__BUS__KIND", "kafka")
        .env("YUQING__BUS__KAFKA__BROKERS", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
