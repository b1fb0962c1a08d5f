//! Scale-out: the scheduler publishes one task per source run on
//! `crawl.tasks`, keyed by host, and two workers share them. Every page is
//! fetched once, both workers work, and no host ever sees two requests at
//! once, although each worker has its own per-host politeness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use yuqing_bus::{InProcessBus, Topics};
use yuqing_config::Loader;
use yuqing_crawler::state::CrawlState;
use yuqing_crawler::{Crawler, CrawlerMetrics, WORKER_GROUP};

mod common;

const HOSTS: [&str; 4] = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
const ARTICLES_PER_LIST: usize = 3;

/// What the hosts saw: fetches per (host, path), requests in flight per
/// host, and the most in flight per host at any moment.
#[derive(Default)]
struct Seen {
    fetches: HashMap<(String, String), usize>,
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Seen>>;

fn host_of(headers: &HeaderMap) -> String {
    let h = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    h.split(':').next().unwrap_or_default().to_string()
}

async fn page(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Html<String> {
    let host = host_of(&headers);
    {
        let mut s = seen.lock().unwrap();
        *s.fetches.entry((host.clone(), path.clone())).or_default() += 1;
        let n = s.in_flight.entry(host.clone()).or_default();
        *n += 1;
        let n = *n;
        let max = s.max_in_flight.entry(host.clone()).or_default();
        *max = (*max).max(n);
    }
    // Long enough that two requests to one host would overlap.
    tokio::time::sleep(Duration::from_millis(40)).await;
    seen.lock()
        .unwrap()
        .in_flight
        .entry(host.clone())
        .and_modify(|n| *n -= 1);
    let body = match path.strip_suffix("/list.html") {
        Some(list) => {
            let links: String = (0..ARTICLES_PER_LIST)
                .map(|i| format!("<li><a href=\"/{list}/a{i}.html\">第{i}篇</a></li>"))
                .collect();
            format!("<html><body><ul class=\"list\">{links}</ul></body></html>")
        }
        None => format!(
            "<html><head><title>{host} {path}</title></head><body><article><h1>{host} {path}</h1>\
             <p>本市今天发布通知，{path} 所述道路维修工程将于下周一开始，预计持续三周。</p>\
             <p>施工期间，相关路段实行单向通行，公交线路临时调整，市民出行请提前规划路线。</p></article></body></html>"
        ),
    };
    Html(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_hosts_without_fetching_a_page_twice() {
    let seen: Shared = Default::default();
    let app = Router::new()
        .route("/{*path}", get(page))
        .with_state(seen.clone());
    // One server on several loopback addresses: several hosts.
    let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = first.local_addr().unwrap().port();
    tokio::spawn(axum::serve(first, app.clone()).into_future());
    for h in &HOSTS[1..] {
        let l = tokio::net::TcpListener::bind((*h, port)).await.unwrap();
        tokio::spawn(axum::serve(l, app.clone()).into_future());
    }

    let mut toml = String::from(
        "[crawler]\nworkers = 2\nper_host_delay_ms = 0\nrespect_robots = false\ninterval_secs = 3600\n",
    );
    for (i, h) in HOSTS.iter().enumerate() {
        for list in ["a", "b"] {
            toml.push_str(&format!(
                "\n[[source]]\nid = \"h{i}-{list}\"\nkind = \"page\"\nallow_private = true\n\
                 list_urls = [\"http://{h}:{port}/{list}/list.html\"]\nlink = \"ul.list\"\n"
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("main.toml"), &toml).unwrap();
    let config = Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    let state = CrawlState::open(&dir.path().join("crawl.db")).unwrap();
    let topics = Topics::default();
    let bus = InProcessBus::new(16);
    bus.set_partitions(&topics.crawl_tasks, 2);
    bus.declare(&topics.crawl_tasks, &[WORKER_GROUP]);
    let registry = prometheus::Registry::new();
    let crawler = Arc::new(
        Crawler::new(
            &config,
            state.clone(),
            Arc::new(bus.clone()),
            topics,
            CrawlerMetrics::new(&registry),
        )
        .unwrap(),
    );
    assert_eq!(crawler.workers(), 2);

    let stop = CancellationToken::new();
    let run = tokio::spawn(crawler.clone().run(stop.clone(), stop.clone()));
    let expected = HOSTS.len() * 2 * ARTICLES_PER_LIST;
    let mut waited = 0;
    while common::emitted(&state).len() < expected && waited < 600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // Every source has run (health is updated after the run is recorded).
    while crawler.health().iter().any(|h| h.runs == 0) && waited < 600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    stop.cancel();
    run.await.unwrap();

    let items = common::emitted(&state);
    assert_eq!(items.len(), expected, "every article emitted once");
    let seen = seen.lock().unwrap();
    for ((host, path), n) in &seen.fetches {
        assert_eq!(*n, 1, "{host}/{path} fetched {n} times");
    }
    assert_eq!(
        seen.fetches.len(),
        HOSTS.len() * 2 * (1 + ARTICLES_PER_LIST)
    );
    for h in HOSTS {
        assert_eq!(
            seen.max_in_flight.get(h).copied(),
            Some(1),
            "{h} got overlapping requests"
        );
    }
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    let tasks = |w: &str| -> u64 {
        let prefix = format!("yuqing_crawler_tasks_total{{worker=\"{w}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0)
    };
    let (w0, w1) = (tasks("0"), tasks("1"));
    assert_eq!(w0 + w1, 8, "one task per source run");
    assert!(w0 > 0 && w1 > 0, "both workers worked: {w0} and {w1}");
    for h in crawler.health() {
        assert_eq!(h.runs, 1, "{} ran {} times", h.id, h.runs);
        assert_eq!(h.http_responses.get("2xx"), Some(&4), "{}", h.id);
    }
}

/// A published item a consumer gives up (its acknowledgement dropped, as
/// when the broker loses it) is published again from the outbox while the
/// crawler runs, and leaves the outbox once it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_not_kept_downstream_is_published_again() {
    use yuqing_bus::Bus;
    let feed = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
        <item><title>一条</title><link>http://news.example.com/1</link><description>正文</description></item>\
        </channel></rss>";
    let app = Router::new().route(
        "/feed",
        get(move || async move { ([("content-type", "application/rss+xml")], feed) }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(axum::serve(l, app).into_future());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        format!(
            "[crawler]\nper_host_delay_ms = 0\nrespect_robots = false\ninterval_secs = 3600\n\n\
             [[source]]\nid = \"f\"\nkind = \"feed\"\nallow_private = true\nurl = \"http://{addr}/feed\"\n"
        ),
    )
    .unwrap();
    let config = Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    let state = CrawlState::open(&dir.path().join("crawl.db")).unwrap();
    let topics = Topics::default();
    let bus = InProcessBus::new(16);
    bus.set_partitions(&topics.crawl_tasks, 1);
    bus.declare(&topics.crawl_tasks, &[WORKER_GROUP]);
    let mut raw = bus.subscribe(&topics.items_raw, "analyzer").await.unwrap();
    let crawler = Arc::new(
        Crawler::new(
            &config,
            state.clone(),
            Arc::new(bus.clone()),
            topics,
            CrawlerMetrics::new(&prometheus::Registry::new()),
        )
        .unwrap(),
    );
    let stop = CancellationToken::new();
    let run = tokio::spawn(crawler.clone().run(stop.clone(), stop.clone()));
    let wait = Duration::from_secs(20);
    let first = tokio::time::timeout(wait, raw.recv())
        .await
        .unwrap()
        .unwrap();
    drop(first);
    let again = tokio::time::timeout(wait, raw.recv())
        .await
        .expect("published again")
        .unwrap();
    let item = yuqing_model::Envelope::<yuqing_model::Item>::from_bytes(&again.payload, "item.raw")
        .unwrap()
        .payload;
    assert_eq!(item.url, "http://news.example.com/1");
    again.ack.ack();
    let mut waited = 0;
    while state.outbox_len().unwrap() > 0 && waited < 400 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(
        state.outbox_len().unwrap(),
        0,
        "gone from the outbox once taken"
    );
    stop.cancel();
    run.await.unwrap();
}
