//! The bundled sample site of `yuqing demo`: a fictional city's news
//! outlets (RSS feeds and article pages), a Discuz!-style forum served in
//! GBK, a microblog JSON API, and a webhook receiver standing in for an IM
//! robot. Content is `demo/site.toml`, written for the project; published
//! times are `minutes_ago` before the moment the site starts.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The content file, compiled in.
pub const SITE_TOML: &str = include_str!("../demo/site.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Site {
    pub news: Vec<News>,
    pub thread: Vec<Thread>,
    pub post: Vec<Post>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct News {
    pub slug: String,
    pub minutes_ago: i64,
    pub outlet: String,
    pub author: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    #[serde(default)]
    pub expect_rules: Vec<String>,
    pub reprint_of: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Thread {
    pub tid: u64,
    pub board: String,
    pub minutes_ago: i64,
    pub author: String,
    pub title: String,
    pub body: String,
    pub views: u64,
    #[serde(default)]
    pub expect_rules: Vec<String>,
    pub reprint_of: Option<String>,
    #[serde(default)]
    pub reply: Vec<Reply>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    pub pid: u64,
    pub author: String,
    pub minutes_ago: i64,
    pub body: String,
    #[serde(default)]
    pub expect_rules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Post {
    pub id: u64,
    pub minutes_ago: i64,
    pub user: String,
    pub text: String,
    pub reposts: u64,
    pub comments: u64,
    pub likes: u64,
    #[serde(default)]
    pub expect_rules: Vec<String>,
    pub reprint_of: Option<String>,
}

impl Site {
    pub fn bundled() -> Site {
        toml::from_str(SITE_TOML).expect("bundled demo/site.toml parses")
    }

    /// Number of items the site publishes (articles, threads, replies, posts).
    pub fn item_count(&self) -> usize {
        self.news.len()
            + self.thread.iter().map(|t| 1 + t.reply.len()).sum::<usize>()
            + self.post.len()
    }
}

/// Feed path code of each outlet.
pub fn outlet_code(outlet: &str) -> &'static str {
    match outlet {
        "江州日报" => "jzrb",
        "江州晚报" => "jzwb",
        "江州新闻网" => "jzxw",
        "临江融媒" => "ljrm",
        _ => "other",
    }
}

struct SiteState {
    site: Site,
    started: DateTime<Utc>,
    webhooks: AtomicU64,
    received: std::sync::Mutex<Vec<serde_json::Value>>,
    /// Messages the DingTalk stand-in accepted.
    robot: std::sync::Mutex<Vec<serde_json::Value>>,
    /// The DingTalk stand-in answers 503 while set, as a platform outage.
    robot_down: std::sync::atomic::AtomicBool,
    /// Requests it turned away while down.
    robot_refused: AtomicU64,
}

impl SiteState {
    fn at(&self, minutes_ago: i64) -> DateTime<Utc> {
        self.started - Duration::minutes(minutes_ago)
    }
}

/// A running sample site.
pub struct DemoSite {
    pub addr: SocketAddr,
    state: Arc<SiteState>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DemoSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoSite")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DemoSite {
    /// Serves `site` on `127.0.0.1:port` (0 picks a free port).
    pub async fn start(site: Site, port: u16) -> std::io::Result<DemoSite> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SiteState {
            site,
            started: Utc::now(),
            webhooks: AtomicU64::new(0),
            received: Default::default(),
            robot: Default::default(),
            robot_down: Default::default(),
            robot_refused: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/", get(index))
            .route("/news/{outlet}/rss.xml", get(rss))
            .route("/news/{slug}", get(article))
            .route("/forum/forum.php", get(forum))
            .route("/api/statuses/public_timeline.json", get(timeline))
            .route("/status/{id}", get(status_page))
            .route("/webhook", post(webhook))
            .route("/robot/send", post(dingtalk_robot))
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        Ok(DemoSite {
            addr,
            state,
            stop,
            task,
        })
    }

    /// Notifications the site's webhook received.
    pub fn webhooks_received(&self) -> u64 {
        self.state.webhooks.load(Ordering::Relaxed)
    }

    /// The webhook bodies received, oldest first.
    pub fn webhook_bodies(&self) -> Vec<serde_json::Value> {
        self.state.received.lock().unwrap().clone()
    }

    /// The messages the DingTalk robot stand-in accepted, oldest first.
    pub fn robot_messages(&self) -> Vec<serde_json::Value> {
        self.state.robot.lock().unwrap().clone()
    }

    /// Takes the DingTalk stand-in down (it answers 503) or back up.
    pub fn set_robot_down(&self, down: bool) {
        self.state.robot_down.store(down, Ordering::SeqCst);
    }

    /// Requests the DingTalk stand-in turned away while down.
    pub fn robot_refusals(&self) -> u64 {
        self.state.robot_refused.load(Ordering::SeqCst)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn paragraphs(body: &str) -> String {
    body.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", esc(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Serves a body with a strong ETag, answering `If-None-Match` with 304.
fn cached(headers: &HeaderMap, content_type: &str, body: Vec<u8>) -> Response {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&body);
    let etag = format!("\"{}\"", yuqing_model::hex(&digest[..8]));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

async fn index(State(st): State<Arc<SiteState>>) -> Response {
    let mut outlets: Vec<&str> = st.site.news.iter().map(|n| n.outlet.as_str()).collect();
    outlets.sort();
    outlets.dedup();
    let links: String = outlets
        .iter()
        .map(|o| {
            format!(
                "<li><a href=\"/news/{}/rss.xml\">{}</a></li>",
                outlet_code(o),
                esc(o)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>江州示例站点</title><h1>江州示例站点</h1>\
         <ul>{links}<li><a href=\"/forum/forum.php?mod=guide&amp;view=newthread\">江州论坛</a></li>\
         <li><a href=\"/api/statuses/public_timeline.json\">微博接口</a></li></ul>"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn rss(
    State(st): State<Arc<SiteState>>,
    Path(outlet): Path<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut news: Vec<&News> = st
        .site
        .news
        .iter()
        .filter(|n| outlet_code(&n.outlet) == outlet)
        .collect();
    if news.is_empty() {
        return (StatusCode::NOT_FOUND, "no such feed").into_response();
    }
    news.sort_by_key(|n| n.minutes_ago);
    let name = &news[0].outlet;
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel>\n<title>{}</title>\n<link>http://{host}/</link>\n<description>{} 最新新闻</description>\n<language>zh-cn</language>\n",
        esc(name),
        esc(name)
    );
    for n in news {
        xml.push_str(&format!(
            "<item>\n<title>{}</title>\n<link>http://{host}/news/{}.html</link>\n<guid isPermaLink=\"true\">http://{host}/news/{}.html</guid>\n<dc:creator>{}</dc:creator>\n<pubDate>{}</pubDate>\n<description>{}</description>\n<content:encoded><![CDATA[{}]]></content:encoded>\n</item>\n",
            esc(&n.title),
            n.slug,
            n.slug,
            esc(&n.author),
            st.at(n.minutes_ago).to_rfc2822(),
            esc(&n.summary),
            paragraphs(&n.body),
        ));
    }
    xml.push_str("</channel>\n</rss>\n");
    cached(
        &headers,
        "application/rss+xml; charset=utf-8",
        xml.into_bytes(),
    )
}

async fn article(State(st): State<Arc<SiteState>>, Path(slug): Path<String>) -> Response {
    let Some(n) = st
        .site
        .news
        .iter()
        .find(|n| format!("{}.html", n.slug) == slug)
    else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let time = st
        .at(n.minutes_ago)
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M");
    let html = format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{t} - {o}</title></head>\n<body>\n<nav><a href=\"/\">首页</a> | 本地 | 民生 | 财经</nav>\n<article>\n<h1>{t}</h1>\n<div class=\"info\">发布时间：{time} 来源：{o} {a}</div>\n{p}\n</article>\n<footer>江州示例站点 版权所有</footer>\n</body></html>\n",
        t = esc(&n.title),
        o = esc(&n.outlet),
        a = esc(&n.author),
        p = paragraphs(&n.body),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

#[derive(Deserialize)]
struct ForumQuery {
    #[serde(rename = "mod")]
    module: Option<String>,
    tid: Option<u64>,
    fid: Option<u32>,
    page: Option<usize>,
}

/// Encodes forum pages in GBK, as most Chinese forums still are.
fn gbk_page(html: String) -> Response {
    let (bytes, _, _) = encoding_rs::GBK.encode(&html);
    (
        [(header::CONTENT_TYPE, "text/html; charset=GBK")],
        bytes.into_owned(),
    )
        .into_response()
}

/// Discuz! board id of each board.
pub fn board_fid(board: &str) -> u32 {
    match board {
        "民生热线" => 36,
        "房产家居" => 41,
        _ => 2,
    }
}

/// Posts per thread page, so longer threads have a second page as on a
/// real forum.
const POSTS_PER_PAGE: usize = 3;

async fn forum(State(st): State<Arc<SiteState>>, Query(q): Query<ForumQuery>) -> Response {
    let local = |m: i64| {
        st.at(m)
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    match (q.module.as_deref(), q.tid) {
        (Some("viewthread"), Some(tid)) => {
            let Some(t) = st.site.thread.iter().find(|t| t.tid == tid) else {
                return (StatusCode::NOT_FOUND, "thread not found").into_response();
            };
            // Discuz! X markup: the exact time sits in a `title`, the text
            // is relative.
            let post = |pid: u64, author: &str, minutes: i64, body: &str| {
                let ago = if minutes < 60 {
                    format!("{minutes} 分钟前")
                } else {
                    format!("{} 小时前", minutes / 60)
                };
                format!(
                    "<div id=\"post_{pid}\"><table id=\"pid{pid}\" class=\"plhin\" cellspacing=\"0\" cellpadding=\"0\"><tr>\n<td class=\"pls\"><div class=\"pi\"><div class=\"authi\"><a href=\"space-uid-1.html\" class=\"xw1\">{}</a></div></div></td>\n<td class=\"plc\"><div class=\"pi\"><div class=\"authi\"><em id=\"authorposton{pid}\">发表于 <span title=\"{}\">{ago}</span></em></div></div>\n<div class=\"pct\"><table cellspacing=\"0\" cellpadding=\"0\"><tr><td class=\"t_f\" id=\"postmessage_{pid}\">{}</td></tr></table></div></td>\n</tr></table></div>\n",
                    esc(author),
                    local(minutes),
                    paragraphs(body)
                )
            };
            let mut posts = vec![post(t.tid * 100, &t.author, t.minutes_ago, &t.body)];
            for r in &t.reply {
                posts.push(post(t.tid * 100 + r.pid, &r.author, r.minutes_ago, &r.body));
            }
            let pages = posts.len().div_ceil(POSTS_PER_PAGE);
            let page = q.page.unwrap_or(1).clamp(1, pages);
            let mut html = format!(
                "<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=gbk\"><title>{} - {} - 江州论坛</title></head>\n<body>\n<div id=\"pt\">江州论坛 › {}</div>\n<h1 class=\"ts\"><span id=\"thread_subject\">{}</span></h1>\n<div class=\"hm\">查看: {} | 回复: {}</div>\n<div id=\"postlist\">\n",
                esc(&t.title),
                esc(&t.board),
                esc(&t.board),
                esc(&t.title),
                t.views,
                t.reply.len()
            );
            for p in posts
                .iter()
                .skip((page - 1) * POSTS_PER_PAGE)
                .take(POSTS_PER_PAGE)
            {
                html.push_str(p);
            }
            html.push_str("</div>\n");
            if page < pages {
                html.push_str(&format!(
                    "<div class=\"pg\"><strong>{page}</strong><a href=\"forum.php?mod=viewthread&amp;tid={tid}&amp;page={}\" class=\"nxt\">下一页</a></div>\n",
                    page + 1
                ));
            }
            html.push_str("<div id=\"ft\">Powered by Discuz!</div>\n</body></html>\n");
            gbk_page(html)
        }
        (module, _) => {
            let fid = if module == Some("forumdisplay") {
                q.fid
            } else {
                None
            };
            let mut threads: Vec<&Thread> = st
                .site
                .thread
                .iter()
                .filter(|t| fid.is_none_or(|f| board_fid(&t.board) == f))
                .collect();
            threads.sort_by_key(|t| {
                t.reply
                    .iter()
                    .map(|r| r.minutes_ago)
                    .min()
                    .unwrap_or(t.minutes_ago)
            });
            let mut by_board: BTreeMap<&str, usize> = BTreeMap::new();
            for t in &st.site.thread {
                *by_board.entry(t.board.as_str()).or_default() += 1;
            }
            let rows: String = threads
                .iter()
                .map(|t| {
                    format!(
                        "<tbody id=\"normalthread_{tid}\"><tr><td class=\"by\">{b}</td><th class=\"new\"><a href=\"forum.php?mod=viewthread&amp;tid={tid}&amp;extra=page%3D1\" class=\"s xst\">{title}</a></th><td class=\"by\"><cite>{a}</cite><em>{time}</em></td><td class=\"num\">{r}/{v}</td></tr></tbody>\n",
                        tid = t.tid,
                        b = esc(&t.board),
                        title = esc(&t.title),
                        a = esc(&t.author),
                        time = local(t.minutes_ago),
                        r = t.reply.len(),
                        v = t.views
                    )
                })
                .collect();
            let boards: String = by_board
                .iter()
                .map(|(b, n)| {
                    format!(
                        "<li><a href=\"forum.php?mod=forumdisplay&amp;fid={}\">{}</a> ({n})</li>",
                        board_fid(b),
                        esc(b)
                    )
                })
                .collect();
            gbk_page(format!(
                "<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=gbk\"><title>江州论坛</title></head>\n<body>\n<ul class=\"boards\">{boards}</ul>\n<table id=\"threadlisttableid\">\n{rows}</table>\n</body></html>\n"
            ))
        }
    }
}

#[derive(Deserialize)]
struct TimelineQuery {
    since_id: Option<u64>,
    max_id: Option<u64>,
    count: Option<usize>,
}

async fn timeline(State(st): State<Arc<SiteState>>, Query(q): Query<TimelineQuery>) -> Response {
    let mut posts: Vec<&Post> = st
        .site
        .post
        .iter()
        .filter(|p| q.since_id.is_none_or(|s| p.id > s))
        .filter(|p| q.max_id.is_none_or(|m| p.id <= m))
        .collect();
    posts.sort_by_key(|p| std::cmp::Reverse(p.id));
    posts.truncate(q.count.unwrap_or(50).min(200));
    let statuses: Vec<serde_json::Value> = posts
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id,
                "idstr": p.id.to_string(),
                "created_at": st.at(p.minutes_ago).with_timezone(&chrono_tz::Asia::Shanghai).format("%a %b %d %H:%M:%S %z %Y").to_string(),
                "text": p.text,
                "user": {"screen_name": p.user},
                "reposts_count": p.reposts,
                "comments_count": p.comments,
                "attitudes_count": p.likes,
            })
        })
        .collect();
    let body = serde_json::json!({ "statuses": statuses, "total_number": st.site.post.len() });
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn status_page(State(st): State<Arc<SiteState>>, Path(id): Path<u64>) -> Response {
    match st.site.post.iter().find(|p| p.id == id) {
        Some(p) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!(
                "<!doctype html><meta charset=utf-8><title>{}的微博</title><p>{}</p>",
                esc(&p.user),
                esc(&p.text)
            ),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The demo config's DingTalk robot secret.
pub const DEMO_ROBOT_SECRET: &str = "SECyuqing-demo-robot";

/// A DingTalk group robot: it accepts a markdown message only with a fresh
/// timestamp and the right signature, and answers as DingTalk does. The
/// signature is checked as DingTalk documents it: `sign` =
/// base64(HMAC-SHA256(key = secret, timestamp + "\n" + secret)).
async fn dingtalk_robot(
    State(st): State<Arc<SiteState>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    if st.robot_down.load(Ordering::SeqCst) {
        st.robot_refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    let fresh = (Utc::now().timestamp_millis() - ts).abs() < 3_600_000;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(DEMO_ROBOT_SECRET.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{ts}\n{DEMO_ROBOT_SECRET}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if !fresh || q.get("sign") != Some(&expected) {
        return axum::Json(serde_json::json!({"errcode": 310000, "errmsg": "sign not match"}))
            .into_response();
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v["msgtype"] == "markdown" => {
            st.robot.lock().unwrap().push(v);
            axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok"})).into_response()
        }
        _ => axum::Json(serde_json::json!({"errcode": 40035, "errmsg": "bad message"}))
            .into_response(),
    }
}

async fn webhook(State(st): State<Arc<SiteState>>, body: Bytes) -> StatusCode {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => {
            st.webhooks.fetch_add(1, Ordering::Relaxed);
            st.received.lock().unwrap().push(v);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}
