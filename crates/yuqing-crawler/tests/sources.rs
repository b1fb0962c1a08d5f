//! Sources against local fixture servers: conditional GET, cursors, GBK
//! forums, and errors that name the source.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use yuqing_crawler::Crawler;

#[derive(Default)]
struct Log {
    feed_200: usize,
    feed_304: usize,
    timeline_queries: Vec<String>,
}

type Shared = Arc<Mutex<Log>>;

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>t</title><link>http://x/</link><description>d</description>
<item><title>第一条</title><link>http://news.example.com/a?utm_source=rss</link><description>正文一</description></item>
<item><title>第二条</title><link>http://news.example.com/b#top</link><description>正文二</description></item>
</channel></rss>"#;

async fn feed(State(log): State<Shared>, headers: HeaderMap) -> Response {
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some("\"v1\"")
    {
        log.lock().unwrap().feed_304 += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, "\"v1\"")]).into_response();
    }
    log.lock().unwrap().feed_200 += 1;
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml"),
            (header::ETAG, "\"v1\""),
        ],
        FEED,
    )
        .into_response()
}

async fn timeline(
    State(log): State<Shared>,
    RawQuery(q): RawQuery,
    Query(p): Query<std::collections::HashMap<String, String>>,
) -> Response {
    log.lock()
        .unwrap()
        .timeline_queries
        .push(q.unwrap_or_default());
    let since: u64 = p.get("since_id").and_then(|s| s.parse().ok()).unwrap_or(0);
    let posts: Vec<_> = [(12u64, "新的一条"), (11, "旧的一条")]
        .into_iter()
        .filter(|(id, _)| *id > since)
        .map(|(id, text)| serde_json::json!({"id": id, "text": text, "user": {"screen_name": "江州发布"}, "created_at": "Thu Nov 26 10:00:00 +0800 2026", "reposts_count": 3}))
        .collect();
    axum::Json(serde_json::json!({ "statuses": posts })).into_response()
}

fn gbk(html: &str) -> Response {
    let (bytes, _, _) = encoding_rs::GBK.encode(html);
    ([(header::CONTENT_TYPE, "text/html")], bytes.into_owned()).into_response()
}

async fn forum_list() -> Response {
    gbk(
        "<html><head><meta charset=\"gbk\"></head><body><a class=\"t\" href=\"thread?id=1\">标题</a><a class=\"t\" href=\"thread?id=2\">坏帖</a></body></html>",
    )
}

async fn forum_thread(Query(p): Query<std::collections::HashMap<String, String>>) -> Response {
    if p.get("id").map(String::as_str) == Some("2") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    gbk(
        "<html><head><meta charset=\"gbk\"></head><body><h1>江州论坛：停水三天了</h1>\
         <div class=\"post\" data-pid=\"7\"><span class=\"a\">居民甲</span><em>发表于 2026-11-26 08:30</em><div class=\"c\">小区停水三天，没有通知。</div></div>\
         <div class=\"post\" data-pid=\"8\"><span class=\"a\">居民乙</span><em>2026-11-26 09:00</em><div class=\"c\">同问，多久恢复？</div></div></body></html>",
    )
}

async fn start(log: Shared) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/feed.xml", get(feed))
        .route("/timeline", get(timeline))
        .route("/list", get(forum_list))
        .route("/thread", get(forum_thread))
        .with_state(log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn crawler(dir: &std::path::Path, addr: std::net::SocketAddr) -> Crawler {
    common::crawler(
        dir,
        &format!(
            r#"
[crawler]
per_host_delay_ms = 0

[[source]]
id = "feed"
kind = "feed"
allow_private = true
url = "http://{addr}/feed.xml"

[[source]]
id = "weibo"
kind = "json"
allow_private = true
url = "http://{addr}/timeline"
platform = "test"
url_template = "http://{addr}/s/{{id}}"

[[source]]
id = "bbs"
kind = "forum"
allow_private = true
list_url = "http://{addr}/list"
thread_link = "a.t"
title = "h1"
post = "div.post"
post_id_attr = "data-pid"
post_author = ".a"
post_content = ".c"
post_time = "em"
"#
        ),
    )
    .0
}

#[tokio::test]
async fn conditional_get_cursor_and_restart() {
    let log: Shared = Default::default();
    let addr = start(log.clone()).await;
    let dir = tempfile::tempdir().unwrap();

    let c = crawler(dir.path(), addr);
    assert_eq!(c.run_source(0).await.unwrap(), 2, "two feed items");
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(c.run_source(1).await.unwrap(), 2, "two posts");
    assert_eq!(c.outbox_len(), 4);
    drop(c);

    // A restart keeps validators, cursors and the seen-set.
    let c = crawler(dir.path(), addr);
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(c.run_source(1).await.unwrap(), 0);
    let log = log.lock().unwrap();
    assert_eq!(log.feed_200, 1);
    assert_eq!(log.feed_304, 2, "the feed was fetched conditionally");
    assert_eq!(
        log.timeline_queries,
        vec!["".to_string(), "since_id=12".to_string()]
    );
}

#[tokio::test]
async fn gbk_forum_posts_and_a_failing_thread() {
    let addr = start(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = crawler(dir.path(), addr);
    assert_eq!(
        c.run_source(2).await.unwrap(),
        2,
        "thread and reply; the broken thread is skipped"
    );
    let h = &c.health()[2];
    assert_eq!(h.consecutive_failures, 0);
    assert_eq!(h.last_warnings.len(), 1);
    assert!(
        h.last_warnings[0].contains("HTTP 500"),
        "{:?}",
        h.last_warnings
    );
}

#[tokio::test]
async fn unreachable_source_is_named_in_its_health() {
    let dir = tempfile::tempdir().unwrap();
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = crawler(dir.path(), gone);
    let err = c.run_source(0).await.unwrap_err().to_string();
    assert!(
        err.contains("cannot connect") && err.contains(&gone.to_string()),
        "{err}"
    );
    let h = &c.health()[0];
    assert_eq!(h.id, "feed");
    assert_eq!(h.consecutive_failures, 1);
    assert!(h.last_error.as_deref().unwrap().contains("cannot connect"));
}

#[tokio::test]
async fn walls_blocks_failures_and_empty_runs_set_the_source_state() {
    use yuqing_model::SourceState;
    let app = Router::new()
        .route(
            "/wall",
            get(|| async { "<html><body><form><input name=u><input type=\"password\"></form>请先登录</body></html>" }),
        )
        .route("/forbidden", get(|| async { StatusCode::FORBIDDEN }))
        .route("/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/empty",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], "<rss version=\"2.0\"><channel><title>t</title></channel></rss>") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "[crawler]\nper_host_delay_ms = 0\nretries = 0\nfailing_after = 2\nempty_after = 2\n",
    );
    for id in ["wall", "forbidden", "broken", "empty"] {
        text.push_str(&format!(
            "\n[[source]]\nid = \"{id}\"\nkind = \"feed\"\nallow_private = true\nurl = \"http://{addr}/{id}\"\n"
        ));
    }
    let (c, _) = common::crawler(dir.path(), &text);
    for i in 0..4 {
        let _ = c.run_source(i).await;
    }
    let h = c.health();
    assert_eq!(h[0].state, SourceState::Blocked, "{:?}", h[0].last_error);
    assert!(h[0].last_error.as_deref().unwrap().contains("login wall"));
    assert_eq!(h[1].state, SourceState::Blocked, "403 is a block");
    assert_eq!(
        h[2].state,
        SourceState::Ok,
        "one failure is not yet failing"
    );
    assert_eq!(h[3].state, SourceState::Ok);
    for i in 0..4 {
        let _ = c.run_source(i).await;
    }
    let h = c.health();
    assert_eq!(h[2].state, SourceState::Failing);
    assert_eq!(h[2].runs_by_result["http_5xx"], 2);
    assert_eq!(h[3].state, SourceState::Empty);
    assert!(
        h[3].status()
            .reason
            .unwrap()
            .contains("2 runs in a row found nothing")
    );
}

/// A real Discuz! thread says 您需要登录后才可以回帖 under its posts, as
/// every thread shown to a guest does: its posts are collected, not taken
/// for a login wall. A page with no posts and that notice is a wall.
#[tokio::test]
async fn a_thread_that_asks_guests_to_log_in_to_reply_is_read() {
    use yuqing_model::SourceState;
    let thread = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/extraction-zh/html/forum-discuz-1.html"),
    )
    .unwrap();
    let app = Router::new()
        .route(
            "/forum.php",
            get(move |Query(p): Query<std::collections::HashMap<String, String>>| {
                let thread = thread.clone();
                async move {
                    let html = |b: Vec<u8>| ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], b).into_response();
                    match (p.get("mod").map(String::as_str), p.get("tid").map(String::as_str)) {
                        // The board tells guests they must log in to post.
                        (Some("forumdisplay"), _) => html(
                            "<html><body><p>您需要登录后才可以发帖</p><a class=\"xst\" href=\"forum.php?mod=viewthread&tid=1\">t</a>\
                              <a class=\"xst\" href=\"forum.php?mod=viewthread&tid=2\">w</a></body></html>".as_bytes().to_vec(),
                        ),
                        (_, Some("1")) => html(thread),
                        _ => html("<html><body><p>您需要登录后才可以访问此版块</p><form><input name=u></form></body></html>".as_bytes().to_vec()),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = common::crawler(
        dir.path(),
        &format!(
            "[crawler]\nper_host_delay_ms = 0\nretries = 0\n\n[[source]]\nid = \"bbs\"\nkind = \"forum\"\n\
             preset = \"discuz\"\nallow_private = true\nbase_url = \"http://{addr}/\"\nforum_ids = [2]\n"
        ),
    );
    let n = c.run_source(0).await.unwrap();
    let items = common::emitted(&state);
    assert_eq!(n, 6, "{items:?}");
    assert!(
        items[0].title.contains("锦江苑小区停车费"),
        "{}",
        items[0].title
    );
    let h = &c.health()[0];
    assert_eq!(h.state, SourceState::Ok);
    assert!(
        h.last_warnings
            .iter()
            .any(|w| w.contains("tid=2") && w.contains("login wall")),
        "{:?}",
        h.last_warnings
    );
}

/// A feed that turns empty and then answers 304 is still empty: the
/// unchanged copy is the empty one.
#[tokio::test]
async fn an_empty_feed_that_answers_304_stays_empty() {
    use yuqing_model::SourceState;
    let app = Router::new().route(
        "/feed",
        get(|headers: HeaderMap| async move {
            if headers.get(header::IF_NONE_MATCH).is_some() {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, "\"e\"")]).into_response();
            }
            (
                [
                    (header::CONTENT_TYPE, "application/rss+xml"),
                    (header::ETAG, "\"e\""),
                ],
                "<rss version=\"2.0\"><channel><title>t</title></channel></rss>",
            )
                .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::crawler(
        dir.path(),
        &format!(
            "[crawler]\nper_host_delay_ms = 0\nempty_after = 3\n\n[[source]]\nid = \"f\"\nkind = \"feed\"\nallow_private = true\nurl = \"http://{addr}/feed\"\n"
        ),
    );
    for _ in 0..3 {
        c.run_source(0).await.unwrap();
    }
    let h = &c.health()[0];
    assert_eq!(h.http_responses.get("304"), Some(&2));
    assert_eq!(h.state, SourceState::Empty, "{}", h.consecutive_empty);
}

/// A feed of `items` entries named after `path`, the newest last.
fn feed_of(path: &str, items: usize) -> String {
    let entries: String = (0..items)
        .map(|i| format!("<item><title>{path}{i}</title><link>http://news.example.com/{path}/{i}</link><description>正文</description></item>"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{entries}</channel></rss>"
    )
}

#[tokio::test]
async fn a_source_whose_new_items_stop_at_a_busy_hour_is_quiet() {
    use yuqing_model::SourceState;
    // Two feeds, each showing its same two items run after run; `busy`
    // shows `more` items more once it is set.
    let more = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let busy_more = more.clone();
    let app = Router::new()
        .route(
            "/busy",
            get(move || {
                let n = 2 + busy_more.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/rss+xml")],
                        feed_of("busy", n),
                    )
                }
            }),
        )
        .route(
            "/nightly",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/rss+xml")],
                    feed_of("nightly", 2),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[crawler]\nper_host_delay_ms = 0\nretries = 0\n");
    for id in ["busy", "nightly"] {
        text.push_str(&format!(
            "\n[[source]]\nid = \"{id}\"\nkind = \"feed\"\nallow_private = true\nurl = \"http://{addr}/{id}\"\n"
        ));
    }
    let (c, _, registry) = common::crawler_with_metrics(dir.path(), &text);
    for i in 0..2 {
        assert_eq!(c.run_source(i).await.unwrap(), 2);
    }
    let state = |source, state| {
        common::metric(
            &registry,
            "yuqing_crawler_source_state",
            &[("source", source), ("state", state)],
        )
    };
    assert_eq!(state("busy", "ok"), Some(1.0));
    assert_eq!(state("busy", "quiet"), Some(0.0));

    // Both sources' items came two hours ago. On each of the previous seven
    // days, `busy` brought 20 items in those same two hours; `nightly`
    // brought its 20 in the small hours, six hours earlier.
    let now = chrono::Utc::now().timestamp();
    let db = rusqlite::Connection::open(dir.path().join("crawl.db")).unwrap();
    db.execute("UPDATE seen SET first_seen = first_seen - 7200", [])
        .unwrap();
    for day in 1..=7i64 {
        for n in 0..20i64 {
            for (source, before) in [("busy", 1800), ("nightly", 6 * 3600 + 3600)] {
                db.execute(
                    "INSERT INTO seen (item_id, source, first_seen) VALUES (?1, ?2, ?3)",
                    rusqlite::params![
                        format!("{source}-{day}-{n}"),
                        source,
                        now - day * 86_400 - before - n
                    ],
                )
                .unwrap();
            }
        }
    }
    drop(db);

    for i in 0..2 {
        assert_eq!(c.run_source(i).await.unwrap(), 0);
    }
    let h = c.health();
    assert_eq!(h[0].state, SourceState::Quiet);
    let reason = h[0].status().reason.unwrap();
    assert!(
        reason.starts_with("no new item for 2 h 0 min; the same hours brought 20 on the previous days (median) and 20 a week ago"),
        "{reason}"
    );
    assert_eq!(h[1].state, SourceState::Ok, "{:?}", h[1].quiet);
    assert_eq!(state("busy", "quiet"), Some(1.0));
    assert_eq!(state("busy", "ok"), Some(0.0));
    assert_eq!(state("nightly", "ok"), Some(1.0));

    // One new item, where the last hour usually brings 20, is not a
    // recovery.
    more.store(1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(c.run_source(0).await.unwrap(), 1);
    let h = c.health();
    assert_eq!(h[0].state, SourceState::Quiet);
    let reason = h[0].status().reason.unwrap();
    assert!(
        reason.starts_with("only 1 new item(s) in the last 1 h 0 min; the same hours brought 20"),
        "{reason}"
    );
    // Nor is the silence after it.
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(c.health()[0].state, SourceState::Quiet);
    // A quarter of the usual is.
    more.store(5, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(c.run_source(0).await.unwrap(), 4);
    let h = c.health();
    assert_eq!(h[0].state, SourceState::Ok, "{:?}", h[0].quiet);
    assert_eq!(h[0].status().reason, None);
}

#[tokio::test]
async fn forum_list_pages_are_followed_up_to_the_limit() {
    let page = |n: u32| {
        let next = if n < 3 {
            format!(
                "<div class=\"pg\"><a class=\"nxt\" href=\"list?page={}\">下一页</a></div>",
                n + 1
            )
        } else {
            String::new()
        };
        gbk(&format!(
            "<html><body><a class=\"t\" href=\"thread?id={n}\">帖子{n}</a>{next}</body></html>"
        ))
    };
    let app = Router::new()
        .route(
            "/list",
            get(
                move |Query(p): Query<std::collections::HashMap<String, String>>| {
                    let n: u32 = p.get("page").and_then(|x| x.parse().ok()).unwrap_or(1);
                    let body = page(n);
                    async move { body }
                },
            ),
        )
        .route("/thread", get(forum_thread));
    let addr = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = forum(
        dir.path(),
        addr,
        "max_list_pages = 2\npost_id_attr = \"data-pid\"\n",
    );
    // Thread 1 (two posts) is on the first list page. Thread 2, on the
    // second, is the fixture's broken thread: its failure shows the page was
    // followed. Thread 3 is on the third list page, past the limit.
    assert_eq!(c.run_source(0).await.unwrap(), 2);
    let warnings = &c.health()[0].last_warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("thread?id=2"), "{warnings:?}");
}

/// A thread longer than `max_thread_pages` is read up to the limit, and
/// the next runs read on from where it stopped, then from its last page,
/// where new replies come; its first page is not fetched again. Without
/// post ids to go by, the run says which replies it left.
#[tokio::test]
async fn a_long_thread_is_read_on_in_the_next_runs() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let pages = Arc::new(AtomicU32::new(7));
    let first_page_hits = Arc::new(AtomicU32::new(0));
    let (p, hits) = (pages.clone(), first_page_hits.clone());
    let app = Router::new()
        .route(
            "/list",
            get(|| async { gbk("<html><body><a class=\"t\" href=\"thread?page=1\">长帖</a></body></html>") }),
        )
        .route(
            "/thread",
            get(move |Query(q): Query<std::collections::HashMap<String, String>>| {
                let (p, hits) = (p.clone(), hits.clone());
                async move {
                    let n: u32 = q.get("page").and_then(|x| x.parse().ok()).unwrap_or(1);
                    if n == 1 {
                        hits.fetch_add(1, Ordering::SeqCst);
                    }
                    let next = if n < p.load(Ordering::SeqCst) {
                        format!("<div class=\"pg\"><a class=\"nxt\" href=\"thread?page={}\">下一页</a></div>", n + 1)
                    } else {
                        String::new()
                    };
                    gbk(&format!(
                        "<html><body><h1>长帖</h1><div class=\"post\" data-pid=\"{n}\"><div class=\"c\">第{n}页的回复</div></div>{next}</body></html>"
                    ))
                }
            }),
        );
    let addr = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = forum(
        dir.path(),
        addr,
        "max_thread_pages = 3\npost_id_attr = \"data-pid\"\n",
    );
    let warnings = |c: &yuqing_crawler::Crawler| c.health()[0].last_warnings.clone();
    assert_eq!(c.run_source(0).await.unwrap(), 3);
    assert_eq!(
        warnings(&c),
        [format!(
            "http://{addr}/thread?page=1: more than 3 pages (`max_thread_pages`) this run; the next run reads on from http://{addr}/thread?page=4"
        )]
    );
    assert_eq!(c.run_source(0).await.unwrap(), 3, "pages 4 to 6");
    assert_eq!(c.run_source(0).await.unwrap(), 1, "page 7, the end");
    assert!(warnings(&c).is_empty(), "{:?}", warnings(&c));
    assert_eq!(c.run_source(0).await.unwrap(), 0, "page 7 again");
    pages.store(8, Ordering::SeqCst);
    assert_eq!(c.run_source(0).await.unwrap(), 1, "pages 7 and 8");
    assert_eq!(first_page_hits.load(Ordering::SeqCst), 1);
    let mut texts: Vec<String> = common::emitted(&state)
        .into_iter()
        .map(|i| i.text)
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        (1..=8)
            .map(|n| format!("第{n}页的回复"))
            .collect::<Vec<_>>()
    );
    let titles: Vec<String> = common::emitted(&state)
        .into_iter()
        .filter(|i| i.parent_id.is_none())
        .map(|i| i.title)
        .collect();
    assert_eq!(titles, ["长帖"], "one thread, the rest replies");

    // Replies known only by position cannot be read from mid-thread.
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = forum(dir.path(), addr, "max_thread_pages = 3\n");
    assert_eq!(c.run_source(0).await.unwrap(), 3);
    assert_eq!(
        warnings(&c),
        [format!(
            "http://{addr}/thread?page=1: more than 3 pages (`max_thread_pages`); its replies from http://{addr}/thread?page=4 on are not read"
        )]
    );
    assert_eq!(c.run_source(0).await.unwrap(), 0, "the same three pages");
}

/// A one-page thread whose link redirects is read whole each time: its
/// first post is never taken for a reply of itself.
#[tokio::test]
async fn a_redirected_one_page_thread_is_not_resumed() {
    let app = Router::new()
        .route(
            "/list",
            get(|| async { gbk("<html><body><a class=\"t\" href=\"go?tid=9\">短帖</a></body></html>") }),
        )
        .route(
            "/go",
            get(|| async { axum::response::Redirect::to("/thread?tid=9&page=1") }),
        )
        .route(
            "/thread",
            get(|| async {
                gbk("<html><body><h1>短帖</h1><div class=\"post\" data-pid=\"1\"><div class=\"c\">只有一楼</div></div></body></html>")
            }),
        );
    let addr = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = forum(dir.path(), addr, "post_id_attr = \"data-pid\"\n");
    assert_eq!(c.run_source(0).await.unwrap(), 1);
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    let items = common::emitted(&state);
    assert_eq!(items.len(), 1);
    assert!(items[0].parent_id.is_none(), "the thread itself");
}

/// A later list page nested too deep to read is a warning: the threads of
/// the pages before it are read.
#[tokio::test]
async fn a_list_page_too_deep_to_read_leaves_the_others() {
    let app = Router::new()
        .route(
            "/list",
            get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
                if q.contains_key("page") {
                    return gbk(&"<div>".repeat(5_000));
                }
                gbk("<html><body><a class=\"t\" href=\"thread?id=1\">标题</a>\
                     <div class=\"pg\"><a class=\"nxt\" href=\"list?page=2\">下一页</a></div></body></html>")
            }),
        )
        .route("/thread", get(forum_thread));
    let addr = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = forum(
        dir.path(),
        addr,
        "max_list_pages = 2\npost_id_attr = \"data-pid\"\n",
    );
    assert_eq!(c.run_source(0).await.unwrap(), 2, "thread 1 and its reply");
    let warnings = &c.health()[0].last_warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("list?page=2") && warnings[0].contains("nested more than 1000 deep"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_unchanged_forum_list_skips_its_threads() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let thread_hits = Arc::new(AtomicUsize::new(0));
    let hits = thread_hits.clone();
    let app = Router::new()
        .route(
            "/list",
            get(|headers: HeaderMap| async move {
                if headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == Some("\"l1\"")
                {
                    return (StatusCode::NOT_MODIFIED, [(header::ETAG, "\"l1\"")]).into_response();
                }
                (
                    [(header::ETAG, "\"l1\"")],
                    gbk("<html><body><a class=\"t\" href=\"thread?id=1\">帖子</a></body></html>"),
                )
                    .into_response()
            }),
        )
        .route(
            "/thread",
            get(move |q: Query<std::collections::HashMap<String, String>>| {
                hits.fetch_add(1, Ordering::SeqCst);
                forum_thread(q)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::crawler(
        dir.path(),
        &format!(
            "[crawler]\nper_host_delay_ms = 0\nempty_after = 1\n\n[[source]]\nid = \"bbs\"\nkind = \"forum\"\nallow_private = true\nlist_url = \"http://{addr}/list\"\n\
             thread_link = \"a.t\"\ntitle = \"h1\"\npost = \"div.post\"\npost_content = \".c\"\npost_id_attr = \"data-pid\"\n"
        ),
    );
    assert_eq!(c.run_source(0).await.unwrap(), 2);
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(
        thread_hits.load(Ordering::SeqCst),
        1,
        "the thread is not fetched again"
    );
    assert_eq!(
        c.health()[0].state,
        yuqing_model::SourceState::Ok,
        "unchanged is not empty"
    );
}

/// A Weibo-like timeline over posts 1..=`newest`: newest first, five per
/// response, `since_id` exclusive and `max_id` inclusive.
async fn weibo_timeline(
    State(newest): State<Arc<Mutex<u64>>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> axum::Json<serde_json::Value> {
    let newest = *newest.lock().unwrap();
    let since: u64 = q.get("since_id").map_or(0, |v| v.parse().unwrap());
    let max: u64 = q.get("max_id").map_or(newest, |v| v.parse().unwrap());
    let statuses: Vec<serde_json::Value> = (since + 1..=max.min(newest))
        .rev()
        .take(5)
        .map(|id| {
            serde_json::json!({
                "id": id,
                "text": format!("第{id}条微博：市区道路施工信息更新。"),
                "user": {"screen_name": "江州发布"},
                "created_at": "Tue Nov 24 10:00:00 +0800 2026",
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "statuses": statuses }))
}

#[tokio::test]
async fn a_json_backlog_longer_than_one_response_is_caught_up() {
    let newest = Arc::new(Mutex::new(5u64));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/statuses", get(weibo_timeline))
        .with_state(newest.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = weibo_source(
        dir.path(),
        addr,
        "max_id_param = \"max_id\"\nmax_pages = 4\n",
    );
    let ids = |state: &yuqing_crawler::state::CrawlState| {
        let mut v: Vec<u64> = common::emitted(state)
            .iter()
            .map(|i| i.url.rsplit('/').next().unwrap().parse().unwrap())
            .collect();
        v.sort();
        v
    };
    // The first run reads the newest response only.
    assert_eq!(c.run_source(0).await.unwrap(), 5);
    // A day away: 25 new posts, five responses' worth. `max_id` is
    // inclusive, so each response after the first repeats one post.
    *newest.lock().unwrap() = 30;
    assert_eq!(c.run_source(0).await.unwrap(), 17, "four responses");
    assert!(
        c.health()[0].last_warnings[0].contains("next run"),
        "{:?}",
        c.health()[0].last_warnings
    );
    *newest.lock().unwrap() = 31;
    assert_eq!(c.run_source(0).await.unwrap(), 8, "the rest of the backlog");
    assert!(c.health()[0].last_warnings.is_empty());
    assert_eq!(
        c.run_source(0).await.unwrap(),
        1,
        "then what came meanwhile"
    );
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(ids(&state), (1..=31).collect::<Vec<_>>(), "all, once each");
}

/// A Weibo-style timeline of posts 2 to `newest` (5 at first), four a
/// response, that shows its pinned post 1 at the top of every response and
/// does not filter by `since_id`; it pages back by `max_id` only when
/// `honours_max_id`.
async fn pinned_timeline(honours_max_id: bool) -> (std::net::SocketAddr, Arc<Mutex<u64>>) {
    let newest = Arc::new(Mutex::new(5u64));
    let app = Router::new()
        .route(
            "/statuses",
            get(
                move |State(newest): State<Arc<Mutex<u64>>>,
                      Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let newest = *newest.lock().unwrap();
                    let max: u64 = q
                        .get("max_id")
                        .filter(|_| honours_max_id)
                        .map_or(newest, |v| v.parse().unwrap());
                    let post = |id: u64| serde_json::json!({"id": id, "text": format!("第{id}条"), "user": {"screen_name": "江州发布"}});
                    let statuses: Vec<serde_json::Value> = std::iter::once(1)
                        .chain((2..=max.min(newest)).rev().take(4))
                        .map(post)
                        .collect();
                    axum::Json(serde_json::json!({ "statuses": statuses }))
                },
            ),
        )
        .with_state(newest.clone());
    (serve(app).await, newest)
}

/// A timeline that shows its pinned post, however old, at the top of
/// every response, and does not filter by `since_id`: the backlog is read
/// down to the last post collected, not stopped at the pinned one.
#[tokio::test]
async fn a_pinned_old_post_does_not_stop_the_catch_up() {
    let (addr, newest) = pinned_timeline(true).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = weibo_source(
        dir.path(),
        addr,
        "max_id_param = \"max_id\"\nmax_pages = 10\n",
    );
    assert_eq!(c.run_source(0).await.unwrap(), 5);
    *newest.lock().unwrap() = 15;
    assert_eq!(
        c.run_source(0).await.unwrap(),
        10,
        "{:?}",
        c.health()[0].last_warnings
    );
    let mut ids: Vec<u64> = common::emitted(&state)
        .iter()
        .map(|i| i.url.rsplit('/').next().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (1..=15).collect::<Vec<_>>());
    assert_eq!(c.run_source(0).await.unwrap(), 0);
}

/// The same timeline, from an API that ignores `max_id` as well: the run
/// stops with a warning instead of reading the same page again and again.
#[tokio::test]
async fn a_pinned_post_and_an_ignored_max_id_end_the_run() {
    let (addr, newest) = pinned_timeline(false).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = weibo_source(
        dir.path(),
        addr,
        "max_id_param = \"max_id\"\nmax_pages = 10\n",
    );
    assert_eq!(c.run_source(0).await.unwrap(), 5);
    *newest.lock().unwrap() = 15;
    assert_eq!(c.run_source(0).await.unwrap(), 4);
    let h = &c.health()[0];
    assert!(
        h.last_warnings
            .iter()
            .any(|w| w.contains("did not page back")),
        "{:?}",
        h.last_warnings
    );
    assert_eq!(
        h.http_responses.get("2xx"),
        Some(&3),
        "one page a run, and one more"
    );
    assert_eq!(c.run_source(0).await.unwrap(), 0);
}

/// Publication times as APIs and pages get them wrong: milliseconds are
/// read as milliseconds, and a time before 1990 or after tomorrow leaves
/// the item undated, with one warning for the run. Control characters go
/// too.
#[tokio::test]
async fn implausible_publication_times_and_control_characters_are_cleared() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/statuses",
        get(|| async {
            let post = |id: u64, created: serde_json::Value| {
                serde_json::json!({"id": id, "text": format!("第{id}条"), "user": {"screen_name": "江州发布"}, "created_at": created})
            };
            axum::Json(serde_json::json!({ "statuses": [
                post(4, serde_json::json!(1_764_136_800_000u64)),
                post(3, serde_json::json!(9_999_999_999u64)),
                post(2, serde_json::json!("1970-01-02 08:00")),
                post(1, serde_json::json!("Thu Nov 26 10:00:00 +0800 2026")),
                serde_json::json!({"id": 5, "text": "第5条\u{1b}[2J\u{1b}]8;;https://evil.example\u{7}官方\u{202e}知通\u{2066}\r", "user": {"screen_name": "\u{202e}江州\u{0}发布"}}),
            ]}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = weibo_source(dir.path(), addr, "");
    assert_eq!(c.run_source(0).await.unwrap(), 5);
    let warnings = &c.health()[0].last_warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w
                .starts_with("2 item(s) gave a publication time before 1990 or after tomorrow")),
        "{warnings:?}"
    );
    let mut items = common::emitted(&state);
    items.sort_by(|a, b| a.text.cmp(&b.text));
    // Terminal controls and bidirectional overrides are taken out of
    // crawled text.
    let hostile = items.pop().unwrap();
    assert_eq!(hostile.text, "第5条[2J]8;;https://evil.example官方知通");
    assert_eq!(hostile.author.as_deref(), Some("江州发布"));
    let times: Vec<Option<String>> = items
        .iter()
        .map(|i| i.published_at.map(|t| t.to_rfc3339()))
        .collect();
    assert_eq!(
        times,
        [
            Some("2026-11-26T02:00:00+00:00".to_string()),
            None,
            None,
            Some("2025-11-26T06:00:00+00:00".to_string()),
        ]
    );
}

/// An advert's id and an id of more digits than the rest rank above every
/// real post; neither becomes the cursor, so the next run still asks for
/// (and collects) what is newer than the newest real post.
#[tokio::test]
async fn an_odd_post_id_does_not_become_the_cursor() {
    let newest = Arc::new(Mutex::new(4_000_000_000_000_012u64));
    let app = Router::new()
        .route(
            "/statuses",
            get(
                |State(newest): State<Arc<Mutex<u64>>>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let newest = *newest.lock().unwrap();
                    let since: u128 = q.get("since_id").map_or(0, |v| v.parse().unwrap());
                    let mut ids: Vec<String> = vec!["99999999999999999999".into()];
                    ids.extend((newest - 2..=newest).rev().map(|i| i.to_string()));
                    let mut statuses: Vec<serde_json::Value> = ids
                        .into_iter()
                        .filter(|id| id.parse::<u128>().unwrap() > since)
                        .map(|id| serde_json::json!({"id": id, "text": format!("微博{id}")}))
                        .collect();
                    // The advert comes whatever the cursor.
                    statuses.insert(
                        1,
                        serde_json::json!({"id": "ad_5012345678901234567", "text": "广告"}),
                    );
                    axum::Json(serde_json::json!({ "statuses": statuses }))
                },
            ),
        )
        .with_state(newest.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = weibo_source(dir.path(), addr, "");
    assert_eq!(c.run_source(0).await.unwrap(), 5);
    // The next pages hold the new post beside the two odd ones: no
    // majority, so the cursor's own length decides.
    for _ in 0..2 {
        *newest.lock().unwrap() += 1;
        assert_eq!(c.run_source(0).await.unwrap(), 1, "the new post");
    }
    let texts: Vec<String> = common::emitted(&state)
        .into_iter()
        .map(|i| i.text)
        .collect();
    for id in ["4000000000000013", "4000000000000014"] {
        assert!(texts.contains(&format!("微博{id}")), "{texts:?}");
    }
}

/// A crawler of one Weibo-like JSON source at `addr`'s `/statuses`.
/// A crawler of one Weibo-style JSON source at `addr`, with `extra` keys
/// for the source.
fn weibo_source(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    extra: &str,
) -> (yuqing_crawler::Crawler, yuqing_crawler::state::CrawlState) {
    common::crawler(
        dir,
        &format!(
            "[crawler]\nper_host_delay_ms = 0\nrespect_robots = false\n\n[[source]]\nid = \"wb\"\nkind = \"json\"\nallow_private = true\n\
             url = \"http://{addr}/statuses\"\nurl_template = \"http://{addr}/status/{{id}}\"\nplatform = \"weibo\"\n{extra}"
        ),
    )
}

/// Serves `app` on a port of its own.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A crawler of one forum at `addr`: threads `a.t` on `/list`, posts
/// `div.post`, with `extra` settings of the source.
fn forum(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    extra: &str,
) -> (yuqing_crawler::Crawler, yuqing_crawler::state::CrawlState) {
    common::crawler(
        dir,
        &format!(
            "[crawler]\nper_host_delay_ms = 0\n\n[[source]]\nid = \"bbs\"\nkind = \"forum\"\nallow_private = true\nlist_url = \"http://{addr}/list\"\n\
             thread_link = \"a.t\"\nnext_page = \"div.pg a.nxt\"\ntitle = \"h1\"\npost = \"div.post\"\npost_content = \".c\"\n{extra}"
        ),
    )
}
