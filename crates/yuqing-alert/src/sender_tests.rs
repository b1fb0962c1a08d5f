//! The sender against local stand-ins for the platforms: DingTalk, WeCom
//! and Feishu robots that check signatures the way the platforms document
//! them and refuse messages over their rate limits, an SMTP server, and a
//! webhook receiver.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use base64::Engine;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use yuqing_config::AlertConfig;
use yuqing_model::Level;

use crate::duty::Duty;
use crate::metrics::AlertMetrics;
use crate::notify::{Outlets, run_sender};
use crate::store::AlertStore;
use crate::tests::{analyzed, policy};

/// What a fake platform saw.
#[derive(Default)]
struct Seen {
    /// Accepted bodies.
    accepted: Vec<Value>,
    /// Refusals, with the platform's error code.
    refused: Vec<i64>,
    /// Times of accepted messages, for the rate limit.
    times: VecDeque<std::time::Instant>,
}

type Shared = Arc<Mutex<Seen>>;

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl Seen {
    /// Records a message as the platform's `code` (0 accepts) says.
    fn answer(&mut self, code: i64, v: Value) {
        if code == 0 {
            self.accepted.push(v);
        } else {
            self.refused.push(code);
        }
    }
}

/// Counts a message against a per-minute limit and, where the platform
/// has one, a per-second limit; false when over either.
fn within_limit(seen: &mut Seen, per_minute: usize, per_second: Option<usize>) -> bool {
    let now = std::time::Instant::now();
    while seen
        .times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        seen.times.pop_front();
    }
    if seen.times.len() >= per_minute {
        return false;
    }
    let last_second = seen
        .times
        .iter()
        .rev()
        .take_while(|t| now.duration_since(**t) < Duration::from_secs(1))
        .count();
    if per_second.is_some_and(|p| last_second >= p) {
        return false;
    }
    seen.times.push_back(now);
    true
}

const DING_SECRET: &str = "SECding-test-secret";
const FEISHU_SECRET: &str = "feishu-test-secret";
const WECOM_KEY: &str = "wecom-key-123";

/// DingTalk: `timestamp` (ms, within an hour) and `sign` =
/// base64(HMAC-SHA256(secret, timestamp + "\n" + secret)) in the query;
/// 20 messages a minute; every `atMobiles` number must be in the text.
async fn dingtalk(
    State(seen): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: String,
) -> axum::Json<Value> {
    let mut seen = seen.lock().unwrap();
    let refuse = |seen: &mut Seen, code: i64, msg: &str| {
        seen.refused.push(code);
        axum::Json(json!({"errcode": code, "errmsg": msg}))
    };
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    if (Utc::now().timestamp_millis() - ts).abs() > 3_600_000 {
        return refuse(&mut seen, 310_000, "timestamp expired");
    }
    let expected = hmac_b64(
        DING_SECRET.as_bytes(),
        format!("{ts}\n{DING_SECRET}").as_bytes(),
    );
    if q.get("sign") != Some(&expected) || q.get("access_token").map(String::as_str) != Some("t") {
        return refuse(&mut seen, 310_000, "sign not match");
    }
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let text = v["markdown"]["text"].as_str().unwrap_or("");
    if v["msgtype"] != "markdown" || text.is_empty() {
        return refuse(&mut seen, 40_035, "missing markdown");
    }
    for m in v["at"]["atMobiles"].as_array().into_iter().flatten() {
        if !text.contains(&format!("@{}", m.as_str().unwrap_or("?"))) {
            return refuse(&mut seen, 1, "mentioned mobile not in text");
        }
    }
    if !within_limit(&mut seen, 20, None) {
        return refuse(&mut seen, 130_101, "send too fast");
    }
    seen.accepted.push(v);
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// WeCom: the key in the URL; markdown content at most 4096 bytes; 20 a
/// minute.
async fn wecom(
    State(seen): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: String,
) -> axum::Json<Value> {
    let mut seen = seen.lock().unwrap();
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let code = if q.get("key").map(String::as_str) != Some(WECOM_KEY) {
        93_000
    } else if v["msgtype"] == "markdown"
        && v["markdown"]["content"]
            .as_str()
            .is_none_or(|c| c.len() > 4096)
    {
        40_058
    } else if !within_limit(&mut seen, 20, None) {
        45_009
    } else {
        0
    };
    seen.answer(code, v);
    axum::Json(json!({"errcode": code, "errmsg": if code == 0 { "ok" } else { "refused" }}))
}

/// Feishu: `timestamp` (s) and `sign` = base64(HMAC-SHA256(timestamp +
/// "\n" + secret, "")) in the body; at most 20 KB; 100 a minute and 5 a
/// second.
async fn feishu(State(seen): State<Shared>, body: String) -> axum::Json<Value> {
    let mut seen = seen.lock().unwrap();
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let ts: i64 = v["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let expected = hmac_b64(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"");
    let code = if (Utc::now().timestamp() - ts).abs() > 3_600 || v["sign"] != expected.as_str() {
        19_021
    } else if body.len() > 20 * 1024 {
        9_499
    } else if !within_limit(&mut seen, 100, Some(5)) {
        11_232
    } else {
        0
    };
    seen.answer(code, v);
    axum::Json(json!({"code": code, "msg": if code == 0 { "success" } else { "refused" }}))
}

/// An SMS gateway taking a JSON body with a token header.
async fn sms(
    State(seen): State<Shared>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (axum::http::StatusCode, &'static str) {
    let mut seen = seen.lock().unwrap();
    if headers.get("x-token").and_then(|v| v.to_str().ok()) != Some("tok") {
        seen.refused.push(401);
        return (axum::http::StatusCode::UNAUTHORIZED, "bad token");
    }
    match serde_json::from_str::<Value>(&body) {
        Ok(v) => {
            seen.accepted.push(v);
            (axum::http::StatusCode::OK, "ok")
        }
        Err(_) => {
            seen.refused.push(400);
            (axum::http::StatusCode::BAD_REQUEST, "bad json")
        }
    }
}

async fn webhook(State(seen): State<Shared>, body: String) -> &'static str {
    seen.lock()
        .unwrap()
        .accepted
        .push(serde_json::from_str(&body).unwrap_or_default());
    "ok"
}

/// Serves the fakes on 127.0.0.1; returns the address and what each saw:
/// (dingtalk, wecom, feishu, webhook, sms).
async fn robots() -> (String, [Shared; 5]) {
    let seen: [Shared; 5] = Default::default();
    let app = Router::new()
        .route("/robot/send", post(dingtalk).with_state(seen[0].clone()))
        .route(
            "/cgi-bin/webhook/send",
            post(wecom).with_state(seen[1].clone()),
        )
        .route(
            "/open-apis/bot/v2/hook/x",
            post(feishu).with_state(seen[2].clone()),
        )
        .route("/hook", post(webhook).with_state(seen[3].clone()))
        .route("/sms", post(sms).with_state(seen[4].clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// What is wrong with a message's data, as a server would refuse it: a
/// missing header, a line over RFC 5322's 998 characters, or a recipient
/// of the envelope not in its headers.
fn smtp_message_problem(data: &str, rcpts: &[String]) -> Option<String> {
    let (head, _) = data.split_once("\n\n")?;
    for h in ["From:", "To:", "Subject:", "Date:", "Content-Type:"] {
        if !head.lines().any(|l| l.starts_with(h)) {
            return Some(format!("no {h} header"));
        }
    }
    if data.lines().any(|l| l.len() > 998) {
        return Some("line longer than 998 characters".into());
    }
    rcpts
        .iter()
        .find(|r| !head.contains(r.as_str()))
        .map(|r| format!("recipient {r} not in the headers"))
}

/// Speaks enough SMTP on `sock` to take messages, keeping their data. It
/// holds clients to the protocol's order (EHLO, MAIL, RCPT, DATA) and
/// refuses a message whose data is malformed (554). After STARTTLS there
/// is no greeting: the client speaks first (RFC 3207).
async fn smtp_session<S>(sock: S, mails: Arc<Mutex<Vec<String>>>, greet: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (r, mut w) = tokio::io::split(sock);
    let mut lines = BufReader::new(r).lines();
    if greet {
        w.write_all(b"220 sink ESMTP\r\n").await.ok();
        w.flush().await.ok();
    }
    let mut data: Option<String> = None;
    let (mut greeted, mut from) = (false, false);
    let mut rcpts: Vec<String> = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(d) = data.as_mut() {
            if line == "." {
                let d = data.take().unwrap();
                let reply = match smtp_message_problem(&d, &rcpts) {
                    None => {
                        mails.lock().unwrap().push(d);
                        "250 queued\r\n".to_string()
                    }
                    Some(p) => format!("554 {p}\r\n"),
                };
                (from, rcpts) = (false, Vec::new());
                w.write_all(reply.as_bytes()).await.ok();
                w.flush().await.ok();
            } else {
                // Dot-stuffing: a leading dot was doubled by the client.
                d.push_str(line.strip_prefix('.').unwrap_or(&line));
                d.push('\n');
            }
            continue;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            greeted = true;
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") && greeted {
            from = true;
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") && from {
            let addr = line[8..].trim().trim_start_matches('<');
            rcpts.push(addr.split('>').next().unwrap_or("").to_string());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") && !rcpts.is_empty() {
            data = Some(String::new());
            b"354 go ahead\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await.ok();
            w.flush().await.ok();
            return;
        } else if upper.starts_with("RSET") {
            (from, rcpts) = (false, Vec::new());
            b"250 ok\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else {
            b"503 bad sequence of commands\r\n"
        };
        w.write_all(reply).await.ok();
        w.flush().await.ok();
    }
}

/// Until STARTTLS, the only commands taken are EHLO, STARTTLS and QUIT
/// (530 otherwise, as a server that requires TLS answers); then the
/// session goes on over TLS.
async fn smtp_starttls(
    sock: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    mails: Arc<Mutex<Vec<String>>>,
) {
    let mut sock = BufReader::new(sock);
    sock.write_all(b"220 sink ESMTP\r\n").await.ok();
    let mut line = String::new();
    loop {
        line.clear();
        if sock.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250 STARTTLS\r\n"
        } else if upper == "STARTTLS" {
            sock.write_all(b"220 go ahead\r\n").await.ok();
            break;
        } else if upper.starts_with("QUIT") {
            return;
        } else {
            b"530 must issue a STARTTLS command first\r\n"
        };
        sock.write_all(reply).await.ok();
    }
    // The client waits for the 220 before its handshake: nothing is
    // buffered.
    if let Ok(tls) = acceptor.accept(sock.into_inner()).await {
        smtp_session(tls, mails, false).await;
    }
}

/// How the sink secures its sessions.
#[derive(Clone)]
enum SinkTls {
    None,
    /// TLS from the first byte (port 465 style).
    Implicit(tokio_rustls::TlsAcceptor),
    /// Plain until STARTTLS, which it requires (port 587 style).
    Starttls(tokio_rustls::TlsAcceptor),
}

/// A minimal SMTP server that takes well-formed messages and keeps their
/// data.
async fn smtp_server(tls: SinkTls) -> (String, Arc<Mutex<Vec<String>>>) {
    let mails = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let m = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (m, tls) = (m.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    SinkTls::None => smtp_session(sock, m, true).await,
                    SinkTls::Implicit(acceptor) => {
                        if let Ok(s) = acceptor.accept(sock).await {
                            smtp_session(s, m, true).await;
                        }
                    }
                    SinkTls::Starttls(acceptor) => smtp_starttls(sock, acceptor, m).await,
                }
            });
        }
    });
    (addr, mails)
}

async fn smtp_sink() -> (String, Arc<Mutex<Vec<String>>>) {
    smtp_server(SinkTls::None).await
}

fn config(robots: &str, smtp: &str, extra_channel: &str) -> AlertConfig {
    let text = format!(
        r#"
[[person]]
id = "zhang"
name = "张伟"
mobile = "13800000001"
email = "zhang@example.org"
channels = ["ding", "wecom", "feishu", "mail", "sms"]

[[channel]]
id = "ding"
kind = "dingtalk"
url = "http://{robots}/robot/send?access_token=t"
secret = "{DING_SECRET}"

[[channel]]
id = "wecom"
kind = "wecom"
url = "http://{robots}/cgi-bin/webhook/send?key={WECOM_KEY}"

[[channel]]
id = "feishu"
kind = "feishu"
url = "http://{robots}/open-apis/bot/v2/hook/x"
secret = "{FEISHU_SECRET}"

[[channel]]
id = "mail"
kind = "email"
smtp = "{smtp}"
tls = "none"
from = "舆情值班 <yq@example.org>"

[[channel]]
id = "hook"
kind = "webhook"
url = "http://{robots}/hook"
{extra_channel}

[[channel]]
id = "sms"
kind = "sms"
url = "http://{robots}/sms"
body = '{{"phone": "{{mobile}}", "content": "{{text}}", "sign": "江州舆情"}}'
headers = {{ x-token = "tok" }}

[[roster]]
id = "duty"
[[roster.shift]]
when = "mon-sun 00:00-24:00"
person = "zhang"

[[policy]]
id = "p"
[[policy.step]]
targets = ["roster:duty", "channel:hook"]

[[route]]
id = "all"
policy = "p"
group_wait = "0s"
group_interval = "1s"
"#
    );
    toml::from_str(&text).unwrap()
}

/// Routing and duty for `cfg`, with links to the console at `console`.
fn duty(cfg: &AlertConfig, console: &str) -> Arc<Duty> {
    Arc::new(Duty::new(
        cfg,
        chrono_tz::Asia::Shanghai,
        console,
        b"k".to_vec(),
    ))
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_sender(
    store: &AlertStore,
    duty: Arc<Duty>,
    registry: &prometheus::Registry,
) -> (CancellationToken, Arc<tokio::sync::Notify>) {
    let stop = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(run_sender(
        store.clone(),
        Outlets {
            webhooks: Default::default(),
            duty,
        },
        AlertMetrics::new(registry),
        wake.clone(),
        stop.clone(),
    ));
    (stop, wake)
}

#[tokio::test]
async fn every_channel_delivers_a_signed_message_the_platform_accepts() {
    let (robots, seen) = robots().await;
    let (smtp, mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let duty = duty(&config(&robots, &smtp, ""), "http://console.test");
    let mut a = analyzed("a", Some(Level::Red), Some("r1"), 1, 5);
    a.item.title = "[假链接](http://evil.example) 某桥梁垮塌 <b>粗体</b>".into();
    store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    assert_eq!(store.tick(&duty, Utc::now()).unwrap().messages, 6);
    let registry = prometheus::Registry::new();
    let (stop, _) = start_sender(&store, duty.clone(), &registry);
    wait_for(|| store.notification_counts().unwrap().0 == 6).await;
    stop.cancel();
    assert_eq!(store.notification_counts().unwrap(), (6, 0, 0));
    let sms = seen[4].lock().unwrap();
    assert_eq!((sms.accepted.len(), sms.refused.len()), (1, 0));
    assert_eq!(sms.accepted[0]["phone"], "13800000001");
    let text = sms.accepted[0]["content"].as_str().unwrap();
    assert!(
        text.starts_with("【红色预警】") && text.contains("确认："),
        "{text}"
    );
    assert!(text.chars().count() <= crate::channels::SMS_MAX_CHARS);

    let ding = seen[0].lock().unwrap();
    assert_eq!((ding.accepted.len(), ding.refused.len()), (1, 0));
    let text = ding.accepted[0]["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("@13800000001"), "{text}");
    assert!(text.contains("确认处理](http://console.test/ack/"));
    assert!(!text.contains("](http://evil.example)"), "{text}");
    let wecom = seen[1].lock().unwrap();
    // The markdown, then the mention as text.
    assert_eq!((wecom.accepted.len(), wecom.refused.len()), (2, 0));
    assert_eq!(
        wecom.accepted[1]["text"]["mentioned_mobile_list"][0],
        "13800000001"
    );
    let feishu = seen[2].lock().unwrap();
    assert_eq!((feishu.accepted.len(), feishu.refused.len()), (1, 0));
    assert_eq!(feishu.accepted[0]["msg_type"], "post");
    let hook = seen[3].lock().unwrap();
    assert_eq!(hook.accepted.len(), 1);
    // Alertmanager's webhook format, version 4, field by field.
    let h = &hook.accepted[0];
    assert_eq!(h["version"], "4");
    assert_eq!(h["status"], "firing");
    assert_eq!(h["truncatedAlerts"], 0);
    assert!(h["groupKey"].is_string() && h["receiver"] == "hook");
    assert!(h["groupLabels"].is_object() && h["commonAnnotations"].is_object());
    assert_eq!(h["commonLabels"]["level"], "red");
    let alert = &h["alerts"][0];
    assert_eq!(alert["labels"]["level"], "red");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    for field in ["startsAt", "generatorURL", "fingerprint"] {
        assert!(alert[field].is_string(), "{field}: {alert}");
    }
    assert!(alert["annotations"]["summary"].is_string());
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: zhang@example.org"), "{}", mails[0]);
    assert!(mails[0].contains("text/html"));
    assert!(!mails[0].contains("<b>粗体</b>"));
}

#[tokio::test]
async fn channels_keep_to_the_platforms_rate_limits() {
    let (robots, seen) = robots().await;
    let (smtp, _) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let cfg = config(&robots, &smtp, "");
    let duty = duty(&cfg, "http://c");
    // 25 incidents of unrelated events, each its own message a few
    // seconds apart.
    let t0 = Utc::now();
    for i in 0..25u64 {
        let a = analyzed(
            &format!("i{i}"),
            Some(Level::Red),
            Some("r1"),
            (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            5,
        );
        store
            .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
            .unwrap();
        store
            .tick(&duty, t0 + chrono::Duration::seconds(2 * i as i64))
            .unwrap();
    }
    // All of them due now.
    {
        let conn = store.conn.lock().unwrap();
        conn.execute("UPDATE notifications SET next_attempt_at = 0", [])
            .unwrap();
    }
    let registry = prometheus::Registry::new();
    let (stop, _) = start_sender(&store, duty, &registry);
    // Feishu takes all 25 within its 100 a minute, 5 a second at most.
    wait_for(|| {
        seen[0].lock().unwrap().accepted.len() >= 20
            && seen[1].lock().unwrap().accepted.len() >= 20
            && seen[2].lock().unwrap().accepted.len() >= 25
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let ding = seen[0].lock().unwrap();
    assert_eq!(ding.accepted.len(), 20, "DingTalk takes 20 a minute");
    assert!(ding.refused.is_empty(), "never refused: {:?}", ding.refused);
    let wecom = seen[1].lock().unwrap();
    assert_eq!(wecom.accepted.len(), 20, "WeCom takes 20 a minute");
    assert!(wecom.refused.is_empty(), "{:?}", wecom.refused);
    let feishu = seen[2].lock().unwrap();
    assert_eq!(feishu.accepted.len(), 25);
    assert!(feishu.refused.is_empty(), "{:?}", feishu.refused);
    // What waits is pending, not lost.
    let (_, pending, dead) = store.notification_counts().unwrap();
    assert!(pending >= 5, "{pending}");
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn a_failing_channel_alerts_elsewhere_and_its_message_is_retried_for_a_day() {
    let (robots, seen) = robots().await;
    let (smtp, _) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    // A webhook nobody listens on, as the policy's channel target.
    let mut cfg = config(&robots, &smtp, "");
    // Bound for the whole test but never listening: connections are
    // refused, and no other test's server can take the port meanwhile.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead_url = format!("http://{}/gone", closed.local_addr().unwrap());
    cfg.channel.iter_mut().find(|c| c.id == "hook").unwrap().url = Some(dead_url);
    let duty = duty(&cfg, "http://c");
    let a = analyzed("a", Some(Level::Orange), Some("r1"), 1, 5);
    store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    store.tick(&duty, Utc::now()).unwrap();
    // The webhook has failed seven times already: the next failure opens
    // the delivery incident.
    let set = |sql: &str| {
        let conn = store.conn.lock().unwrap();
        conn.execute(sql, []).unwrap();
    };
    set("UPDATE notifications SET attempts = 7 WHERE channel = 'hook'");
    let registry = prometheus::Registry::new();
    let (stop, _) = start_sender(&store, duty.clone(), &registry);
    let delivery = || {
        store
            .incidents(50)
            .unwrap()
            .into_iter()
            .find(|i| i.dedup_key == "delivery:hook")
    };
    wait_for(|| delivery().is_some()).await;
    // The message is not given up: it waits for its next attempt.
    let (_, pending, dead) = store.notification_counts().unwrap();
    assert_eq!(dead, 0);
    assert!(pending >= 1, "{pending}");
    let timeline = store.timeline(delivery().unwrap().id).unwrap();
    assert!(
        timeline
            .iter()
            .any(|t| t.detail.contains("keeps failing, still retried")),
        "{timeline:?}"
    );
    // The delivery incident goes out on the other channels, not the
    // failing one.
    let before = seen[0].lock().unwrap().accepted.len();
    store
        .tick(&duty, Utc::now() + chrono::Duration::seconds(5))
        .unwrap();
    // (The incident's own message may reach DingTalk meanwhile.)
    let told = || {
        seen[0].lock().unwrap().accepted[before..].iter().any(|m| {
            m["markdown"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("通知渠道 hook 发送失败"))
        })
    };
    wait_for(told).await;
    assert!(told(), "{:?}", seen[0].lock().unwrap().accepted);

    // A day after it was queued, the next failure is the last.
    set(
        "UPDATE notifications SET created_at = created_at - 86400, next_attempt_at = 0 WHERE channel = 'hook' AND sent_at IS NULL",
    );
    wait_for(|| store.notification_counts().unwrap().2 == 1).await;
    stop.cancel();
    let dead = store.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].channel, "hook");
    assert_eq!(dead[0].attempts, 9);
    let metrics = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        metrics.contains(r#"yuqing_alert_notifications_total{channel="hook",outcome="dead"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_message_of_several_requests_resumes_where_it_stopped() {
    let (robots, seen) = robots().await;
    let (smtp, _) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    // One request a minute: the markdown goes, the mention that follows
    // it has to wait.
    let mut cfg = config(&robots, &smtp, "");
    cfg.channel
        .iter_mut()
        .find(|c| c.id == "wecom")
        .unwrap()
        .rate_per_minute = Some(1);
    let duty = duty(&cfg, "http://c");
    let a = analyzed("a", Some(Level::Red), Some("r1"), 1, 5);
    store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    store.tick(&duty, Utc::now()).unwrap();
    let registry = prometheus::Registry::new();
    let (stop, _) = start_sender(&store, duty, &registry);
    wait_for(|| seen[1].lock().unwrap().accepted.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let wecom = seen[1].lock().unwrap();
    assert_eq!(wecom.accepted.len(), 1, "the markdown only, once");
    assert_eq!(wecom.accepted[0]["msgtype"], "markdown");
    assert!(wecom.refused.is_empty());
    let conn = store.conn.lock().unwrap();
    let (parts, sent, attempts): (i64, Option<i64>, i64) = conn
        .query_row(
            "SELECT parts_sent, sent_at, attempts FROM notifications WHERE channel = 'wecom'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (parts, sent, attempts),
        (1, None, 0),
        "waits for the mention, without using an attempt"
    );
}

/// A private CA and a certificate it issued for 127.0.0.1: the CA's PEM
/// and a TLS acceptor serving the certificate.
fn private_ca() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    use tokio_rustls::rustls;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "yuqing test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// An SMTP sink behind a private CA, secured as `sink` says, and configs
/// whose mail channel uses `tls`: one that does not know the CA, and one
/// that trusts it (its file is in `dir`).
struct TlsMail {
    dir: tempfile::TempDir,
    store: AlertStore,
    untrusting: AlertConfig,
    trusting: AlertConfig,
    mails: Arc<Mutex<Vec<String>>>,
}

async fn tls_mail(
    sink: fn(tokio_rustls::TlsAcceptor) -> SinkTls,
    tls: yuqing_config::SmtpTls,
) -> TlsMail {
    let (robots, _) = robots().await;
    let (ca_pem, acceptor) = private_ca();
    let (smtp, mails) = smtp_server(sink(acceptor)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let mut untrusting = config(&robots, &smtp, "");
    untrusting
        .channel
        .iter_mut()
        .find(|c| c.id == "mail")
        .unwrap()
        .tls = tls;
    let mut trusting = untrusting.clone();
    trusting
        .channel
        .iter_mut()
        .find(|c| c.id == "mail")
        .unwrap()
        .ca_file = Some(ca_file.display().to_string());
    TlsMail {
        dir,
        store,
        untrusting,
        trusting,
        mails,
    }
}

#[tokio::test]
async fn email_goes_over_tls_to_a_server_the_channel_trusts() {
    let TlsMail {
        dir: _dir,
        store,
        untrusting,
        trusting,
        mails,
    } = tls_mail(SinkTls::Implicit, yuqing_config::SmtpTls::Implicit).await;
    // Without the private CA the server is not trusted: nothing is sent.
    let untrusted = duty(&untrusting, "http://c");
    let trusted = duty(&trusting, "http://c");
    let a = analyzed("a", Some(Level::Red), Some("r1"), 1, 5);
    store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    store.tick(&trusted, Utc::now()).unwrap();
    let mail_row = || {
        let conn = store.conn.lock().unwrap();
        conn.query_row(
            "SELECT attempts, sent_at IS NOT NULL, COALESCE(last_error, '') FROM notifications WHERE channel = 'mail'",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?, r.get::<_, String>(2)?)),
        )
        .unwrap()
    };
    let registry = prometheus::Registry::new();
    let (stop, _) = start_sender(&store, untrusted, &registry);
    wait_for(|| mail_row().0 >= 1).await;
    stop.cancel();
    let (attempts, sent, error) = mail_row();
    assert_eq!((attempts, sent), (1, false), "{error}");
    assert!(error.to_lowercase().contains("cert"), "{error}");
    assert!(mails.lock().unwrap().is_empty());
    // Trusting the CA, the retry goes through.
    {
        let conn = store.conn.lock().unwrap();
        conn.execute(
            "UPDATE notifications SET next_attempt_at = 0 WHERE channel = 'mail'",
            [],
        )
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (stop, _) = start_sender(&store, trusted, &prometheus::Registry::new());
    wait_for(|| mail_row().1).await;
    stop.cancel();
    assert!(mail_row().1, "{:?}", mail_row());
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: zhang@example.org"));
}

/// (channel, incident) of each message a webhook received.
type Received = Arc<Mutex<Vec<(String, i64)>>>;

/// Items keep arriving while twenty channels send: reads of the outbox
/// overlap channels finishing their batches, and still each message goes
/// out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_while_channels_send_go_out_once() {
    let received: Received = Default::default();
    let app = Router::new()
        .route(
            "/hook/{channel}",
            post(
                |State(r): State<Received>,
                 axum::extract::Path(channel): axum::extract::Path<String>,
                 body: String| async move {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    r.lock().unwrap().push((channel, v["id"].as_i64().unwrap()));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let stop = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let duty = duty(&AlertConfig::default(), "http://console.test");
    let names: Vec<String> = (0..20).map(|c| format!("c{c}")).collect();
    tokio::spawn(run_sender(
        store.clone(),
        Outlets {
            webhooks: names
                .iter()
                .map(|c| (c.clone(), format!("http://{addr}/hook/{c}")))
                .collect(),
            duty,
        },
        AlertMetrics::new(&prometheus::Registry::new()),
        wake.clone(),
        stop.clone(),
    ));
    let channels: Vec<crate::store::Channel> = names
        .iter()
        .map(|c| crate::store::Channel {
            name: c.clone(),
            min_level: None,
        })
        .collect();
    let payload = |i: &yuqing_model::Incident, _: &str| json!({ "id": i.id }).to_string();
    for k in 0..200u64 {
        let a = analyzed(
            &format!("i{k}"),
            Some(Level::Red),
            Some("r1"),
            k.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            1,
        );
        let (s, channels) = (store.clone(), channels.clone());
        tokio::task::spawn_blocking(move || {
            s.process(&a, &policy(Level::Blue), &channels, &payload)
        })
        .await
        .unwrap()
        .unwrap();
        wake.notify_one();
    }
    wait_for(|| store.notification_counts().unwrap().1 == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let (sent, pending, dead) = store.notification_counts().unwrap();
    assert_eq!((pending, dead), (0, 0));
    assert_eq!(sent, 200 * 20);
    let mut got = received.lock().unwrap().clone();
    got.sort();
    let all = got.len();
    got.dedup();
    assert_eq!(all - got.len(), 0, "messages that went out twice");
    assert_eq!(all as u64, sent);
}

/// STARTTLS (port 587): the sink refuses mail before the upgrade, and the
/// message arrives over TLS verified against the channel's CA.
#[tokio::test]
async fn email_upgrades_with_starttls_before_it_sends() {
    let TlsMail {
        dir: _dir,
        store,
        trusting,
        mails,
        ..
    } = tls_mail(SinkTls::Starttls, yuqing_config::SmtpTls::Starttls).await;
    let duty = duty(&trusting, "http://c");
    let a = analyzed("a", Some(Level::Red), Some("r1"), 1, 5);
    store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    store.tick(&duty, Utc::now()).unwrap();
    let (stop, _) = start_sender(&store, duty, &prometheus::Registry::new());
    wait_for(|| !mails.lock().unwrap().is_empty()).await;
    stop.cancel();
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: zhang@example.org"), "{}", mails[0]);
    assert!(mails[0].contains("text/html"));
}

/// The scheduled report reaches every `report.send_to` channel once: a
/// brief with the link to the whole report on the robots and SMS, the
/// whole report by email, its own JSON on the webhook. Writing the same
/// period again sends nothing.
#[tokio::test]
async fn the_daily_report_reaches_every_channel_it_is_sent_to() {
    let (robots, seen) = robots().await;
    let (smtp, mails) = smtp_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let text = CONFIG_FOR_REPORTS
        .replace("{data}", &dir.path().join("data").display().to_string())
        .replace("{robots}", &robots)
        .replace("{smtp}", &smtp)
        .replace("{DING_SECRET}", DING_SECRET)
        .replace("{WECOM_KEY}", WECOM_KEY)
        .replace("{FEISHU_SECRET}", FEISHU_SECRET);
    std::fs::write(dir.path().join("main.toml"), text).unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let cfg = yuqing_config::Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let registry = prometheus::Registry::new();
    let alerter = crate::Alerter::new(
        &cfg,
        store.clone(),
        "http://console.test/".into(),
        AlertMetrics::new(&registry),
    );
    let mut a = analyzed("a", Some(Level::Red), Some("r1"), 1, 5);
    a.item.title = "[假链接](http://evil.example) 某桥梁垮塌 <b>粗体</b>".into();
    store
        .process(&a, &policy(Level::Blue), &[], &|_, r| r.to_string())
        .unwrap();
    let now = Utc::now();
    let (record, queued) = alerter.send_report(now).unwrap();
    assert_eq!(queued, 6);
    assert_eq!(record.incidents, 1);
    let (stop, _) = start_sender(&store, alerter.duty(), &registry);
    wait_for(|| store.notification_counts().unwrap().0 == 6).await;
    assert_eq!(store.notification_counts().unwrap(), (6, 0, 0));
    // The same period again: written before, not sent again.
    assert_eq!(alerter.send_report(now).unwrap().1, 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store.notification_counts().unwrap(), (6, 0, 0));
    // A special report of the incident goes the same way, each time one
    // is asked for.
    let incident = store.incidents(1).unwrap()[0].id;
    let (special, queued) = alerter
        .special_report(incident, now, true)
        .unwrap()
        .unwrap();
    assert_eq!(
        (queued, special.kind),
        (6, yuqing_model::ReportKind::Special)
    );
    assert!(
        alerter
            .special_report(999_999, now, true)
            .unwrap()
            .is_none()
    );
    wait_for(|| store.notification_counts().unwrap().0 == 12).await;
    stop.cancel();
    assert_eq!(store.notification_counts().unwrap(), (12, 0, 0));
    let ding = seen[0].lock().unwrap();
    let md = ding.accepted[1]["markdown"]["text"].as_str().unwrap();
    assert!(md.contains("（专报）") && md.contains("某桥梁垮塌"), "{md}");
    let special_link = format!("http://console.test/incidents/{incident}/report");
    assert!(md.contains(&special_link), "{md}");
    drop(ding);

    let link = format!("http://console.test/reports/{}", now.timestamp());
    let ding = seen[0].lock().unwrap();
    assert_eq!((ding.accepted.len(), ding.refused.len()), (2, 0));
    let md = ding.accepted[0]["markdown"]["text"].as_str().unwrap();
    assert!(md.contains("日报") && md.contains("预警事件 1 起"), "{md}");
    assert!(md.contains(&format!("[查看完整报告]({link})")), "{md}");
    assert!(!md.contains("](http://evil.example)"), "{md}");
    assert!(md.contains("［假链接］（http：//evil．example）"), "{md}");
    assert!(
        !md.contains('\\'),
        "robots show backslashes as they are: {md}"
    );
    assert!(!md.contains('|'), "no tables on a robot: {md}");
    let wecom = seen[1].lock().unwrap();
    assert_eq!((wecom.accepted.len(), wecom.refused.len()), (2, 0));
    let content = wecom.accepted[0]["markdown"]["content"].as_str().unwrap();
    assert!(
        content.len() <= 4096 && content.contains(&link),
        "{content}"
    );
    let feishu = seen[2].lock().unwrap();
    assert_eq!((feishu.accepted.len(), feishu.refused.len()), (2, 0));
    let post = &feishu.accepted[0]["content"]["post"]["zh_cn"];
    assert!(post["title"].as_str().unwrap().contains("日报"), "{post}");
    assert!(post.to_string().contains(&link), "{post}");
    let hook = seen[3].lock().unwrap();
    assert_eq!(hook.accepted[0]["kind"], "report");
    assert_eq!(hook.accepted[0]["report"]["kind"], "daily");
    assert_eq!(hook.accepted[0]["report"]["incidents"], 1);
    assert_eq!(hook.accepted[0]["report"]["level"], "red");
    assert_eq!(hook.accepted[0]["report"]["url"], link.as_str());
    let sms = seen[4].lock().unwrap();
    assert_eq!(sms.accepted.len(), 2);
    assert_eq!(sms.accepted[0]["phone"], "13900000009");
    let text = sms.accepted[0]["content"].as_str().unwrap();
    assert!(
        text.contains("预警事件 1 起") && text.contains(&link),
        "{text}"
    );
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 2);
    assert!(mails[0].contains("To: leaders@example.org"), "{}", mails[0]);
    assert!(mails[0].contains("text/html"));
    assert!(!mails[0].contains("<b>粗体</b>"), "crawled text escaped");
}

/// A whole config with the sender tests' channels, email and SMS with
/// recipients of their own, and reports going to all of them.
const CONFIG_FOR_REPORTS: &str = r#"
data_dir = "{data}"

[report]
title = "江州舆情"
send_to = ["ding", "wecom", "feishu", "mail", "hook", "sms"]

[[alert.channel]]
id = "ding"
kind = "dingtalk"
url = "http://{robots}/robot/send?access_token=t"
secret = "{DING_SECRET}"

[[alert.channel]]
id = "wecom"
kind = "wecom"
url = "http://{robots}/cgi-bin/webhook/send?key={WECOM_KEY}"

[[alert.channel]]
id = "feishu"
kind = "feishu"
url = "http://{robots}/open-apis/bot/v2/hook/x"
secret = "{FEISHU_SECRET}"

[[alert.channel]]
id = "mail"
kind = "email"
smtp = "{smtp}"
tls = "none"
from = "舆情值班 <yq@example.org>"
to = ["leaders@example.org"]

[[alert.channel]]
id = "hook"
kind = "webhook"
url = "http://{robots}/hook"

[[alert.channel]]
id = "sms"
kind = "sms"
url = "http://{robots}/sms"
body = '{"phone": "{mobile}", "content": "{text}", "sign": "江州舆情"}'
headers = { x-token = "tok" }
to = ["13900000009"]
"#;

/// An alerter over `report` (the `[report]` table and what follows it),
/// with its data and store in `dir`.
fn report_alerter(dir: &std::path::Path, report: &str) -> (crate::Alerter, AlertStore) {
    std::fs::write(
        dir.join("main.toml"),
        format!(
            "data_dir = {:?}\n[report]\n{report}",
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.join("rules")).unwrap();
    let cfg = yuqing_config::Loader::default()
        .load(&dir.join("main.toml"))
        .unwrap();
    let store = AlertStore::open(&dir.join("alert.db")).unwrap();
    let alerter = crate::Alerter::new(
        &cfg,
        store.clone(),
        "http://console.test".into(),
        AlertMetrics::new(&prometheus::Registry::new()),
    );
    (alerter, store)
}

/// The schedule writes the report due once, from the first start on, and
/// queues its deliveries with it.
#[test]
fn a_scheduled_report_is_written_once_and_queued_for_its_channels() {
    let dir = tempfile::tempdir().unwrap();
    let (alerter, store) = report_alerter(
        dir.path(),
        "schedule = \"30 8 * * *\"\nsend_to = [\"hook\"]\n\
         [[alert.channel]]\nid = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    );
    use chrono::Timelike;
    let start = Utc::now();
    // Nothing before the first start is owed.
    assert!(alerter.write_due_report(start).unwrap().is_empty());
    assert_eq!(store.notification_counts().unwrap(), (0, 0, 0));
    // One 08:30 in the 24 hours after the first start.
    let later = start + chrono::Duration::hours(24);
    // The 08:30 before `later`, written by hand first, without sending:
    // that does not stand in for the scheduled delivery.
    let mut due = later.with_timezone(&chrono_tz::Asia::Shanghai);
    while due.format("%H:%M").to_string() != "08:30" {
        due -= chrono::Duration::minutes(1);
    }
    let due = due
        .with_second(0)
        .and_then(|d| d.with_nanosecond(0))
        .unwrap()
        .with_timezone(&Utc);
    let by_hand = alerter.write_report(due).unwrap();
    assert_eq!(store.notification_counts().unwrap(), (0, 0, 0));
    let mut written = alerter.write_due_report(later).unwrap();
    assert_eq!(written.len(), 1, "{written:?}");
    let r = written.pop().unwrap();
    assert_eq!(r.period_end, due);
    assert_eq!(
        r.markdown_path, by_hand.markdown_path,
        "the files written stay"
    );
    assert!(r.period_end > start && r.period_end <= later);
    assert_eq!(r.kind, yuqing_model::ReportKind::Nil);
    assert_eq!(
        store.notification_counts().unwrap(),
        (0, 1, 0),
        "queued once"
    );
    assert!(alerter.write_due_report(later).unwrap().is_empty());
    assert_eq!(store.notification_counts().unwrap(), (0, 1, 0));

    // Down for three days: each missed morning's report is written, oldest
    // first, each for its own day.
    let back = later + chrono::Duration::days(3);
    let written = alerter.write_due_report(back).unwrap();
    let ends: Vec<_> = written.iter().map(|r| r.period_end).collect();
    assert_eq!(
        ends,
        (1..=3)
            .map(|d| due + chrono::Duration::days(d))
            .collect::<Vec<_>>()
    );
    assert!(
        written
            .iter()
            .all(|r| r.period_start == r.period_end - chrono::Duration::hours(24))
    );
    assert_eq!(store.notification_counts().unwrap(), (0, 4, 0));
    assert!(alerter.write_due_report(back).unwrap().is_empty());
    // Reports start going out somewhere new: nothing already past is owed.
    store
        .conn
        .lock()
        .unwrap()
        .execute("DELETE FROM notifications", [])
        .unwrap();
    assert!(
        alerter
            .write_due_report(back + chrono::Duration::minutes(1))
            .unwrap()
            .is_empty()
    );
}

/// A schedule that skips the weekend: Monday's report covers from
/// Friday's, so nothing of the weekend is left out of every report.
#[test]
fn a_report_after_days_without_one_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    let (alerter, _) = report_alerter(dir.path(), "schedule = \"30 8 * * 1-5\"\n");
    let at = |d: u32| {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 11, d, 8, 30, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    // Monday 30 November, after Friday 27.
    assert_eq!(alerter.period_start(at(30)), at(27));
    // Tuesday: the day before.
    assert_eq!(
        alerter.period_start(at(24)),
        at(24) - chrono::Duration::hours(24)
    );
    let r = alerter.build_report(at(30)).unwrap();
    assert_eq!(r.period_start, at(27));
}
