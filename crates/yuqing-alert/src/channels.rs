//! Rendering a message for each platform, within its size limits, and
//! reading each platform's answer.
//!
//! - DingTalk: markdown, signed (`timestamp` and `sign` query parameters:
//!   base64 of HMAC-SHA256 keyed by the secret over `timestamp\nsecret`),
//!   `@` by mobile (the number must also appear in the text).
//! - WeCom: markdown of at most 4096 bytes; the key in the URL is the
//!   secret. Markdown cannot mention, so mentions follow as a text message
//!   with `mentioned_mobile_list`.
//! - Feishu: a rich-text post, signed in the body (base64 of HMAC-SHA256
//!   keyed by `timestamp\nsecret` over nothing), at most 20 KB.
//! - Email: an HTML body.
//! - Webhook: Alertmanager's webhook JSON (version 4).
//! - SMS: one request per mobile from the configured body template.
//!
//! Crawled titles are hostile: they are escaped for markdown and HTML, so
//! a title cannot add a link or markup to a message.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use yuqing_config::{ChannelConfig, ChannelKind};
use yuqing_model::{IncidentStatus, ReportKind};

use crate::escalation::{Message, MessageIncident, MessageReport};

/// One request to make for a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Http {
        url: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    Email {
        to: Vec<String>,
        subject: String,
        html: String,
    },
}

/// WeCom's limit on a markdown message, in bytes.
pub const WECOM_MAX_BYTES: usize = 4096;
/// DingTalk's limit on a message body, in bytes (documented as 20000).
pub const DINGTALK_MAX_BYTES: usize = 20_000;
/// Feishu's limit on a request body, in bytes.
pub const FEISHU_MAX_BYTES: usize = 20 * 1024;
/// An SMS text, in characters: three parts of a long message. The
/// acknowledgement link is kept whole; the headline is cut to fit.
pub const SMS_MAX_CHARS: usize = 200;

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk's signature for `timestamp_ms`.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    hmac_b64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

/// Feishu's signature for `timestamp_s`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    hmac_b64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

/// Crawled text with its web addresses made unclickable: chat apps, mail
/// clients and phones turn a bare `https://…` or `www.…` into a link,
/// which in a title would sit beside the alert's own acknowledgement link.
/// The colon, the dot after `www`, and the dot before a host's last label
/// (`evil．example/ack`, `10.0.0．1`, `a@b．com`) become full-width ones,
/// so the address stays readable. Numbers (`3.5`, `v1.2`) and
/// abbreviations (`U.S.`) are left alone.
pub fn defang(s: &str) -> String {
    defang_hosts(&defang_schemes(s))
}

fn defang_schemes(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if !lower.contains("://") && !lower.contains("www.") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while !rest.is_empty() {
        if rest.starts_with("://") {
            out.push_str("：//");
            rest = &rest[3..];
        } else if rest.len() >= 4 && rest.as_bytes()[..4].eq_ignore_ascii_case(b"www.") {
            out.push_str(&rest[..3]);
            out.push('．');
            rest = &rest[4..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Every run of ASCII letters, digits, dots and hyphens that reads as a
/// host name (`evil.example`, `10.0.0.1`) gets a full-width dot before its
/// last label.
fn defang_hosts(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut run_start = None;
    let flush = |out: &mut String, run: &str| match host_dot(run) {
        Some(i) => {
            out.push_str(&run[..i]);
            out.push('．');
            out.push_str(&run[i + 1..]);
        }
        None => out.push_str(run),
    };
    for (i, c) in s.char_indices() {
        let in_run = c.is_ascii_alphanumeric() || c == '.' || c == '-';
        match (in_run, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                flush(&mut out, &s[start..i]);
                run_start = None;
                out.push(c);
            }
            (false, None) => out.push(c),
            (true, Some(_)) => {}
        }
    }
    if let Some(start) = run_start {
        flush(&mut out, &s[start..]);
    }
    defang_unicode_labels(&out)
}

/// Dots between a name and a label where one side is in another script:
/// `evil.中国/ack` (an internationalised top-level domain) and
/// `点击确认.com/ack` (an internationalised name) become full-width.
fn defang_unicode_labels(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let wide = |c: &char| !c.is_ascii() && c.is_alphabetic();
    for (i, &c) in chars.iter().enumerate() {
        let before = if i > 0 { chars.get(i - 1) } else { None };
        let after = chars.get(i + 1);
        let idn = c == '.'
            && match (before, after) {
                // An ASCII name (with a letter in its last 63 characters)
                // before a label in another script.
                (Some(b), Some(a)) if b.is_ascii_alphanumeric() && wide(a) => chars[..i]
                    .iter()
                    .rev()
                    .take(63)
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '-')
                    .any(char::is_ascii_alphabetic),
                // A name in another script before 2-24 ASCII letters that
                // end there.
                (Some(b), Some(a)) if wide(b) && a.is_ascii_alphabetic() => {
                    let tld = chars[i + 1..]
                        .iter()
                        .take(25)
                        .take_while(|c| c.is_ascii_alphabetic())
                        .count();
                    (2..=24).contains(&tld)
                        && chars
                            .get(i + 1 + tld)
                            .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != '-')
                }
                _ => false,
            };
        out.push(if idn { '．' } else { c });
    }
    out
}

/// Where the dot before the last label of a host name is in `run`: a name
/// whose last label is 2-24 letters (`example`, `com`, `cn`), or four
/// numbers of an IPv4 address.
fn host_dot(run: &str) -> Option<usize> {
    let name = run.trim_end_matches('.');
    let dot = name.rfind('.')?;
    // The labels after any leading dots or `..`, which a client would
    // skip to find the name.
    let start = name.rfind("..").map_or(0, |k| k + 2);
    let labels: Vec<&str> = name[start..].trim_start_matches('.').split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let last = labels[labels.len() - 1];
    let named = ((2..=24).contains(&last.len()) && last.bytes().all(|b| b.is_ascii_alphabetic()))
        || (last.len() > 4 && last[..4].eq_ignore_ascii_case("xn--"));
    let ipv4 = labels.len() == 4
        && labels
            .iter()
            .all(|l| l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
    (named || ipv4).then_some(dot)
}

/// Crawled text for any message: addresses defanged, on one line (line and
/// paragraph separators of every kind become spaces), and without the
/// lenticular brackets (【】 become 〔〕) that messages put around levels
/// and states, so a title cannot pass for a level (`【红色预警】`), a
/// state (`【已解除】`) or another incident's line.
pub fn plain(s: &str) -> String {
    defang(s)
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            '【' => '〔',
            '】' => '〕',
            c => c,
        })
        .collect()
}

/// Crawled text made inert in markdown: [`plain`], and no links (bare
/// addresses and entities included), images, emphasis, strike-through,
/// headings or HTML.
pub fn md_escape(s: &str) -> String {
    plain(s)
        .chars()
        .map(|c| match c {
            '[' => '［',
            ']' => '］',
            '(' => '（',
            ')' => '）',
            '<' => '＜',
            '>' => '＞',
            '*' => '＊',
            '_' => '＿',
            '#' => '＃',
            '`' => '｀',
            '!' => '！',
            '|' => '｜',
            '&' => '＆',
            '~' => '～',
            c => c,
        })
        .collect()
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn reason_zh(r: &str) -> &'static str {
    match r {
        "opened" => "新预警",
        "raised" => "级别上调",
        "spread" => "事件扩散",
        "escalated" => "未确认，升级通知",
        "repeat" => "仍未处置",
        "retriggered" => "确认后超时未处置",
        "resolved" => "已解除",
        _ => "通知",
    }
}

/// The headline of a message: one incident's title, or a count.
pub fn headline(m: &Message) -> String {
    headline_cut(m, 60)
}

/// [`headline`] with an incident's title cut to `title_chars` (before it
/// is escaped: cut after, `evil.com12345` would become a link at
/// `evil.com…`).
fn headline_cut(m: &Message, title_chars: usize) -> String {
    if let Some(r) = &m.report {
        return md_escape(&r.title);
    }
    match m.incidents.as_slice() {
        [one] => {
            let state = if one.status == IncidentStatus::Resolved {
                "【已解除】"
            } else {
                ""
            };
            format!(
                "{state}【{}预警】{}",
                one.level.zh(),
                md_escape(&truncate_chars(&one.title, title_chars))
            )
        }
        many => format!("【{}预警】共 {} 起事件", m.level.zh(), many.len()),
    }
}

fn truncate_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn incident_md(i: &MessageIncident) -> String {
    let mut s = format!(
        "#### 【{}】{}\n- {}：规则「{}」 专题「{}」 {} 条\n",
        i.level.zh(),
        md_escape(&truncate_chars(&i.title, 80)),
        reason_zh(&i.reason),
        md_escape(&i.rule_name),
        md_escape(&i.topic),
        i.item_count,
    );
    if i.reason == "escalated" || i.reason == "retriggered" {
        s.push_str(&format!("- 第 {} 级通知（第 {} 轮）\n", i.step, i.loop_));
    }
    match source_link(i) {
        Some(u) => s.push_str(&format!("- [原文]({u}) · ")),
        None => s.push_str("- "),
    }
    s.push_str(&links_md(i));
    s
}

/// An incident in as few bytes as it can be: level, title, and the links
/// to act on it.
fn incident_md_short(i: &MessageIncident) -> String {
    format!(
        "#### 【{}】{}\n- {}",
        i.level.zh(),
        md_escape(&truncate_chars(&i.title, 30)),
        links_md(i)
    )
}

fn links_md(i: &MessageIncident) -> String {
    let mut s = format!("[详情]({})", i.link);
    if let Some(ack) = &i.ack_link {
        s.push_str(&format!(" · [确认处理]({ack})"));
    }
    s.push('\n');
    s
}

/// Links to crawled pages longer than this are left out of messages: an
/// address of kilobytes would take the room of the incidents after it.
const MAX_SOURCE_LINK_BYTES: usize = 500;

/// The crawled page of an incident as a link, unless it is no web address
/// or too long for a message.
fn source_link(i: &MessageIncident) -> Option<String> {
    safe_link(&i.url).filter(|u| u.len() <= MAX_SOURCE_LINK_BYTES)
}

/// Markdown of a message within `max_bytes`: every incident when it fits;
/// an incident that does not fit the room left is shortened to its links,
/// and when even that does not fit, a line sends the reader to the console
/// for the rest.
pub fn markdown(m: &Message, max_bytes: usize, mentions: &str) -> String {
    if let Some(r) = &m.report {
        return report_markdown(r, max_bytes);
    }
    let head = format!("### {}\n", headline(m));
    let tail = if mentions.is_empty() {
        String::new()
    } else {
        format!("\n{mentions}")
    };
    let mut body = String::new();
    let mut shown = 0;
    for i in &m.incidents {
        let more = m.incidents.len() - shown - 1;
        let reserve = if more > 0 { 200 } else { 0 };
        let fits =
            |part: &str| head.len() + body.len() + part.len() + tail.len() + reserve <= max_bytes;
        // In full if it fits, else with just its links to act on.
        let Some(part) = [incident_md(i), incident_md_short(i)]
            .into_iter()
            .find(|p| fits(p))
        else {
            break;
        };
        body.push_str(&part);
        shown += 1;
    }
    if shown < m.incidents.len() {
        let line = format!(
            "\n另有 {} 起未列出，请到[控制台]({}/#incidents)查看。\n",
            m.incidents.len() - shown,
            m.console_url
        );
        body.push_str(&line);
    }
    let mut out = format!("{head}{body}{tail}");
    if out.len() > max_bytes {
        // Even the summary is too long (a huge mention list): cut on a
        // character boundary.
        let mut end = max_bytes;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// A report's brief within `max_bytes`: whole lines while they fit, then
/// the link to the whole report, which is always there.
fn report_markdown(r: &MessageReport, max_bytes: usize) -> String {
    let link = format!("\n[查看完整报告]({})\n", r.link);
    let mut out = String::new();
    let mut cut = false;
    for line in r.brief.lines() {
        // One overlong line is cut, so it does not take the rest with it.
        let line = if line.len() > 600 {
            let mut end = 600;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &line[..end])
        } else {
            line.to_string()
        };
        if out.len() + line.len() + 1 + link.len() + 20 > max_bytes {
            cut = true;
            break;
        }
        out.push_str(&line);
        out.push('\n');
    }
    if cut {
        out.push_str("……（未完）\n");
    }
    out.push_str(&link);
    out
}

/// A report's brief as plain lines, for platforms that show text as it is.
fn report_lines(r: &MessageReport) -> Vec<String> {
    r.brief
        .lines()
        .map(|l| {
            let l = l.trim_start_matches('#').trim_start();
            let mut plain = String::with_capacity(l.len());
            let mut escaped = false;
            for c in l.chars() {
                if escaped {
                    plain.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c != '*' {
                    plain.push(c);
                }
            }
            plain
        })
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// A short plain text for SMS: the headline, cut to leave the link whole.
pub fn sms_text(m: &Message) -> String {
    if let Some(r) = &m.report {
        let text = match r.kind {
            ReportKind::Nil => format!(
                "{}：零报告，无达到报送标准的事件，监测信息 {} 条。",
                r.title, r.items
            ),
            ReportKind::Daily => format!(
                "{}：预警事件 {} 起，监测信息 {} 条。",
                r.title, r.incidents, r.items
            ),
            ReportKind::Special => format!("{}，涉及信息 {} 条。", r.title, r.items),
        };
        let link = format!(" 详情：{}", r.link);
        let room = SMS_MAX_CHARS.saturating_sub(link.chars().count()).max(20);
        return format!("{}{link}", truncate_chars(&text, room));
    }
    let link = match m.incidents.as_slice() {
        [one] if one.ack_link.is_some() => {
            format!(" 确认：{}", one.ack_link.as_deref().unwrap_or(""))
        }
        _ => format!(" 详情：{}/#incidents", m.console_url),
    };
    let room = SMS_MAX_CHARS.saturating_sub(link.chars().count()).max(20);
    // The title is cut before it is escaped; the level and state before it
    // take at most 12 characters.
    let head = headline_cut(m, room.saturating_sub(12).clamp(8, 60));
    format!("{}{link}", truncate_chars(&head, room))
}

/// A crawled URL that may be a link: http(s), normalized by the URL parser,
/// and without user info (`https://console.example@evil.example/` reads
/// as the console).
pub fn web_url(raw: &str) -> Option<url::Url> {
    let u = url::Url::parse(raw).ok()?;
    ((u.scheme() == "http" || u.scheme() == "https")
        && u.username().is_empty()
        && u.password().is_none())
    .then_some(u)
}

/// A crawled URL as a link target: only http(s), normalized by the URL
/// parser (which drops line breaks and tabs), with the characters that
/// would end a markdown link or an HTML attribute percent-encoded.
pub fn safe_link(raw: &str) -> Option<String> {
    let u = web_url(raw)?;
    Some(
        u.as_str()
            .replace('(', "%28")
            .replace(')', "%29")
            .replace('<', "%3C")
            .replace('>', "%3E")
            .replace('"', "%22")
            .replace('\'', "%27")
            .replace(' ', "%20")
            // A bar would end a Markdown table's cell; a backslash would
            // escape the `)` that ends a Markdown link.
            .replace('|', "%7C")
            .replace('\\', "%5C")
            .replace('[', "%5B")
            .replace(']', "%5D")
            .replace('`', "%60"),
    )
}

/// The Alertmanager-compatible webhook body for a message.
pub fn webhook_body(m: &Message, now: DateTime<Utc>) -> Value {
    if let Some(r) = &m.report {
        // Not an alert: its own shape, named by `kind`.
        return json!({
            "kind": "report",
            "receiver": m.channel,
            "report": {
                "kind": r.kind.as_str(),
                // The most severe level of its incidents (blue for none).
                "level": m.level.as_str(),
                "title": r.title,
                "period_start": r.period_start.to_rfc3339(),
                "period_end": r.period_end.to_rfc3339(),
                "incidents": r.incidents,
                "items": r.items,
                "markdown": r.brief,
                "url": r.link,
            },
        });
    }
    let firing = m
        .incidents
        .iter()
        .any(|i| i.status != IncidentStatus::Resolved);
    let status = if firing { "firing" } else { "resolved" };
    let alerts: Vec<Value> = m
        .incidents
        .iter()
        .map(|i| {
            let resolved = i.status == IncidentStatus::Resolved;
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": {
                    "alertname": i.rule_name,
                    "incident": i.id.to_string(),
                    "level": i.level.as_str(),
                    "topic": i.topic,
                    "route": m.route,
                },
                "annotations": {
                    "summary": format!("【{}预警】{}", i.level.zh(), i.title),
                    "reason": i.reason,
                    "url": i.url,
                    "ack_url": i.ack_link,
                },
                "startsAt": i.opened_at.to_rfc3339(),
                // As Alertmanager: the zero time while firing. A resolved
                // incident's message is rendered when it is sent, within a
                // tick of the resolution unless it had to wait.
                "endsAt": if resolved { now.to_rfc3339() } else { "0001-01-01T00:00:00Z".to_string() },
                "generatorURL": i.link,
                "fingerprint": format!("yuqing-{}", i.id),
            })
        })
        .collect();
    // Labels and annotations every alert has with the same value (the
    // group's label, the route, among them).
    let common = |key: &str| -> Value {
        let mut maps = alerts.iter().filter_map(|a| a[key].as_object());
        let Some(first) = maps.next() else {
            return json!({});
        };
        let mut shared = first.clone();
        for other in maps {
            shared.retain(|k, v| other.get(k) == Some(v));
        }
        shared.retain(|_, v| !v.is_null());
        Value::Object(shared)
    };
    json!({
        "version": "4",
        "status": status,
        "receiver": m.channel,
        "groupKey": format!("route:{}", m.route),
        "truncatedAlerts": 0,
        "groupLabels": {"route": m.route},
        "commonLabels": common("labels"),
        "commonAnnotations": common("annotations"),
        "externalURL": m.console_url,
        "alerts": alerts,
        "yuqing": {"mentions": m.mentions},
    })
}

fn email_html(m: &Message) -> String {
    if let Some(r) = &m.report {
        return r.html.clone();
    }
    let mut s = format!(
        "<html><body style=\"font-family:sans-serif\"><h2>{}</h2>",
        html_escape(&headline(m))
    );
    if !m.mentions.is_empty() {
        s.push_str(&format!(
            "<p>致：{}</p>",
            m.mentions
                .iter()
                .map(|p| html_escape(&p.name))
                .collect::<Vec<_>>()
                .join("、")
        ));
    }
    s.push_str("<table border=\"1\" cellpadding=\"6\" style=\"border-collapse:collapse\"><tr><th>级别</th><th>事件</th><th>规则 / 专题</th><th>条数</th><th>状态</th><th>操作</th></tr>");
    for i in &m.incidents {
        let ack = i
            .ack_link
            .as_ref()
            .map(|a| format!(" · <a href=\"{}\">确认处理</a>", html_escape(a)))
            .unwrap_or_default();
        // The title is crawled text, so it is no link's text: it could
        // read as an instruction beside the acknowledgement link.
        let title = html_escape(&plain(&truncate_chars(&i.title, 200)));
        let title = match source_link(i) {
            Some(u) => format!(
                "{title}（<a href=\"{}\" rel=\"noopener noreferrer\">原文</a>）",
                html_escape(&u)
            ),
            None => title,
        };
        s.push_str(&format!(
            "<tr><td>{}</td><td>{title}</td><td>{} / {}</td><td>{}</td><td>{}</td><td><a href=\"{}\">详情</a>{ack}</td></tr>",
            i.level.zh(),
            html_escape(&i.rule_name),
            html_escape(&i.topic),
            i.item_count,
            reason_zh(&i.reason),
            html_escape(&i.link),
        ));
    }
    s.push_str("</table></body></html>");
    s
}

/// The requests that deliver `m` through channel `c` at `now`.
pub fn render(c: &ChannelConfig, m: &Message, now: DateTime<Utc>) -> Result<Vec<Request>, String> {
    let url = || {
        c.url
            .clone()
            .ok_or_else(|| format!("channel {} has no url", c.id))
    };
    let json_headers = || vec![("content-type".to_string(), "application/json".to_string())];
    let mobiles: Vec<String> = m.mentions.iter().filter_map(|p| p.mobile.clone()).collect();
    match c.kind {
        ChannelKind::Dingtalk => {
            let secret = c.secret.as_deref().unwrap_or("");
            let ts = now.timestamp_millis();
            let sign: String =
                url::form_urlencoded::byte_serialize(dingtalk_sign(secret, ts).as_bytes())
                    .collect();
            let base = url()?;
            let sep = if base.contains('?') { '&' } else { '?' };
            let at_line = mobiles
                .iter()
                .map(|m| format!("@{m}"))
                .collect::<Vec<_>>()
                .join(" ");
            // The limit is on the body, after JSON has escaped quotes and
            // backslashes: the text's budget shrinks until the body fits.
            let mut budget = DINGTALK_MAX_BYTES - 1_000;
            let body = loop {
                let text = markdown(m, budget, &at_line);
                let body = json!({
                    "msgtype": "markdown",
                    "markdown": {"title": headline(m), "text": text},
                    "at": {"atMobiles": mobiles, "isAtAll": false},
                })
                .to_string();
                if body.len() <= DINGTALK_MAX_BYTES || budget < 2_000 {
                    break body;
                }
                budget = budget.saturating_sub(body.len() - DINGTALK_MAX_BYTES + 200);
            };
            Ok(vec![Request::Http {
                url: format!("{base}{sep}timestamp={ts}&sign={sign}"),
                headers: json_headers(),
                body,
            }])
        }
        ChannelKind::Wecom => {
            let names = m
                .mentions
                .iter()
                .map(|p| format!("@{}", md_escape(&p.name)))
                .collect::<Vec<_>>()
                .join(" ");
            let mut out = vec![Request::Http {
                url: url()?,
                headers: json_headers(),
                body: json!({"msgtype": "markdown", "markdown": {"content": markdown(m, WECOM_MAX_BYTES, &names)}}).to_string(),
            }];
            if !mobiles.is_empty() {
                out.push(Request::Http {
                    url: url()?,
                    headers: json_headers(),
                    body: json!({
                        "msgtype": "text",
                        "text": {"content": format!("{}，请及时处理。", headline(m)), "mentioned_mobile_list": mobiles},
                    })
                    .to_string(),
                });
            }
            Ok(out)
        }
        ChannelKind::Feishu => {
            let secret = c.secret.as_deref().unwrap_or("");
            let ts = now.timestamp();
            // Incident lines (or a report's), then whom it is for.
            let mut lines: Vec<Value> = Vec::new();
            if let Some(r) = &m.report {
                lines.extend(
                    report_lines(r)
                        .into_iter()
                        .skip(1)
                        .map(|l| json!([{"tag": "text", "text": l}])),
                );
            }
            for i in &m.incidents {
                let mut line = vec![
                    json!({"tag": "text", "text": format!("【{}】{}（{}，{} 条）", i.level.zh(), plain(&truncate_chars(&i.title, 80)), reason_zh(&i.reason), i.item_count)}),
                ];
                line.push(json!({"tag": "a", "text": " 详情", "href": i.link}));
                if let Some(a) = &i.ack_link {
                    line.push(json!({"tag": "a", "text": " 确认处理", "href": a}));
                }
                lines.push(Value::Array(line));
            }
            let report_link = m
                .report
                .as_ref()
                .map(|r| json!([{"tag": "a", "text": "查看完整报告", "href": r.link}]));
            let mention = (!m.mentions.is_empty()).then(|| {
                json!([{"tag": "text", "text": format!("请 {} 处理", m.mentions.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join("、"))}])
            });
            // The first `keep` lines, what was left out, and the mention.
            let build = |keep: usize| {
                let mut content = lines[..keep].to_vec();
                match (&m.report, keep < lines.len()) {
                    (Some(r), true) => content.push(json!([{"tag": "text", "text": "……（未完）"}, {"tag": "a", "text": "查看完整报告", "href": r.link}])),
                    (None, true) => content.push(json!([{"tag": "text", "text": format!("另有 {} 起未列出，", lines.len() - keep)}, {"tag": "a", "text": "请到控制台查看", "href": format!("{}/#incidents", m.console_url)}])),
                    (_, false) => content.extend(report_link.clone()),
                }
                content.extend(mention.clone());
                json!({
                    "timestamp": ts.to_string(),
                    "sign": feishu_sign(secret, ts),
                    "msg_type": "post",
                    "content": {"post": {"zh_cn": {"title": headline(m), "content": content}}},
                })
                .to_string()
            };
            // Too large: keep the first incidents (or the first lines of a
            // report) and send the rest to the console.
            let mut keep = lines.len();
            let mut body = build(keep);
            while body.len() > FEISHU_MAX_BYTES && keep > 0 {
                keep -= 1;
                body = build(keep);
            }
            Ok(vec![Request::Http {
                url: url()?,
                headers: json_headers(),
                body,
            }])
        }
        ChannelKind::Email => {
            let mut to: Vec<String> = m.mentions.iter().filter_map(|p| p.email.clone()).collect();
            for t in &c.to {
                if !to.contains(t) {
                    to.push(t.clone());
                }
            }
            if to.is_empty() {
                return Err(format!(
                    "channel {}: no recipient (no email for {} and no `to`)",
                    c.id,
                    m.mentions
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(vec![Request::Email {
                to,
                subject: headline(m),
                html: email_html(m),
            }])
        }
        ChannelKind::Webhook => Ok(vec![Request::Http {
            url: url()?,
            headers: json_headers(),
            body: webhook_body(m, now).to_string(),
        }]),
        ChannelKind::Sms => {
            let template = c.body.clone().unwrap_or_default();
            let is_json = template.trim_start().starts_with('{');
            let text = sms_text(m);
            let mut numbers = mobiles;
            for t in &c.to {
                if !numbers.contains(t) {
                    numbers.push(t.clone());
                }
            }
            if numbers.is_empty() {
                return Err(format!("channel {}: no mobile to send to", c.id));
            }
            let esc = |s: &str| {
                if is_json {
                    let q = serde_json::to_string(s).unwrap_or_default();
                    q[1..q.len() - 1].to_string()
                } else {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                }
            };
            let mut headers: Vec<(String, String)> = c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            headers.sort();
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push((
                    "content-type".into(),
                    if is_json {
                        "application/json"
                    } else {
                        "application/x-www-form-urlencoded"
                    }
                    .into(),
                ));
            }
            Ok(numbers
                .iter()
                .map(|n| Request::Http {
                    url: c.url.clone().unwrap_or_default(),
                    headers: headers.clone(),
                    body: template
                        .replace("{mobile}", &esc(n))
                        .replace("{level}", &esc(m.level.zh()))
                        .replace("{text}", &esc(&text)),
                })
                .collect())
        }
    }
}

/// Why a send failed, and whether the platform asked to slow down.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    pub error: String,
    pub throttled: bool,
}

/// Reads a platform's answer: IM robots answer HTTP 200 with an error code
/// in the body, which is what says whether the message went out.
pub fn check_answer(kind: ChannelKind, status: u16, body: &str) -> Result<(), SendFailure> {
    if status == 429 {
        return Err(SendFailure {
            error: "HTTP 429".into(),
            throttled: true,
        });
    }
    if !(200..300).contains(&status) {
        return Err(SendFailure {
            error: format!("HTTP {status}: {}", truncate_chars(body, 200)),
            throttled: false,
        });
    }
    let code = |v: &Value, key: &str| v.get(key).and_then(Value::as_i64);
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let (code, msg, throttle_codes): (Option<i64>, String, &[i64]) = match (kind, &parsed) {
        (ChannelKind::Dingtalk, Some(v)) | (ChannelKind::Wecom, Some(v)) => (
            code(v, "errcode"),
            v.get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            // DingTalk 130101 "send too fast"; WeCom 45009 "api freq out of limit".
            &[130_101, 45_009],
        ),
        (ChannelKind::Feishu, Some(v)) => (
            code(v, "code").or_else(|| code(v, "StatusCode")),
            v.get("msg")
                .or_else(|| v.get("StatusMessage"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            // 9499 "too many request"; 11232 frequency limit.
            &[9_499, 11_232],
        ),
        (ChannelKind::Dingtalk | ChannelKind::Wecom | ChannelKind::Feishu, None) => {
            return Err(SendFailure {
                error: format!("unexpected answer: {}", truncate_chars(body, 200)),
                throttled: false,
            });
        }
        _ => return Ok(()),
    };
    match code {
        Some(0) => Ok(()),
        Some(c) => Err(SendFailure {
            error: format!("error {c}: {msg}"),
            throttled: throttle_codes.contains(&c),
        }),
        None => Err(SendFailure {
            error: format!(
                "answer without an error code: {}",
                truncate_chars(body, 200)
            ),
            throttled: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalation::Mention;
    use yuqing_model::Level;

    fn incident(id: i64, title: &str) -> MessageIncident {
        MessageIncident {
            id,
            level: Level::Red,
            status: IncidentStatus::Triggered,
            reason: "opened".into(),
            title: title.into(),
            url: "https://news.example/a".into(),
            rule_name: "坍塌".into(),
            topic: "安全生产".into(),
            item_count: 3,
            opened_at: Utc::now(),
            step: 1,
            loop_: 1,
            link: format!("http://c/incidents/{id}"),
            ack_link: Some(format!("http://c/ack/{id}?sig=x")),
        }
    }

    fn message(n: usize, title: &str) -> Message {
        Message {
            channel: "ch".into(),
            route: "all".into(),
            level: Level::Red,
            incidents: (0..n as i64).map(|i| incident(i + 1, title)).collect(),
            mentions: vec![Mention {
                person: "zhang".into(),
                name: "张伟".into(),
                mobile: Some("13800000001".into()),
                email: Some("zhang@example.org".into()),
            }],
            console_url: "http://c".into(),
            report: None,
        }
    }

    fn feishu() -> ChannelConfig {
        ChannelConfig {
            id: "f".into(),
            kind: ChannelKind::Feishu,
            url: Some("http://127.0.0.1:1/hook".into()),
            secret: Some("s".into()),
            smtp: None,
            tls: Default::default(),
            ca_file: None,
            username: None,
            password: None,
            from: None,
            to: vec![],
            body: None,
            headers: Default::default(),
            rate_per_minute: None,
            min_level: None,
        }
    }

    #[test]
    fn signatures_match_the_platforms_documented_recipes() {
        // Recomputed independently: HMAC-SHA256, key and message as each
        // platform documents them.
        let d = dingtalk_sign("SECxyz", 1_700_000_000_000);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"SECxyz").unwrap();
        mac.update(b"1700000000000\nSECxyz");
        assert_eq!(
            d,
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        let f = feishu_sign("abc", 1_700_000_000);
        let mac = Hmac::<Sha256>::new_from_slice(b"1700000000\nabc").unwrap();
        assert_eq!(
            f,
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_ne!(d, f);
    }

    #[test]
    fn hostile_titles_cannot_add_links_or_markup() {
        let m = message(
            1,
            "[点我](http://evil.example) <script>alert(1)</script>\n# 标题",
        );
        let md = markdown(&m, 4096, "");
        assert!(!md.contains("](http://evil"), "{md}");
        assert!(!md.contains("<script>"));
        assert!(!md.contains("\n# "));
        let html = email_html(&m);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        // A bare address in a title is no link in any channel.
        assert_eq!(
            defang("见 WWW.evil.example 与 http://a.example"),
            "见 WWW．evil．example 与 http：//a．example"
        );
        assert_eq!(
            defang("登录evil.example/ack或10.0.0.1:8080，联系a@b.com.cn。"),
            "登录evil．example/ack或10.0.0．1:8080，联系a@b.com．cn。"
        );
        // Numbers, versions and abbreviations stay as they are.
        for plain in [
            "涨幅3.5%",
            "v1.2.3版本",
            "U.S. 与 e.g. 和 i.e.",
            "第1.期",
            "1.2.3.4.5",
        ] {
            assert_eq!(defang(plain), plain);
        }
        let mut m = message(
            1,
            "紧急 请点此确认处理 https://evil.example/ack/812?exp=1&sig=ab",
        );
        m.incidents[0].url = "not a url".into();
        let sms = sms_text(&m);
        let texts = [
            markdown(&m, 4096, ""),
            email_html(&m),
            sms.clone(),
            headline(&m),
        ];
        for t in &texts {
            assert!(!t.contains("https://evil"), "{t}");
            assert!(t.contains("https：//evil．example"), "{t}");
        }
        let c = feishu();
        let Request::Http { body, .. } = &render(&c, &m, Utc::now()).unwrap()[0] else {
            panic!()
        };
        assert!(!body.contains("https://evil"), "{body}");
        // The acknowledgement link itself is whole.
        assert!(sms.ends_with("确认：http://c/ack/1?sig=x"), "{sms}");
    }

    #[test]
    fn crawled_urls_cannot_break_out_of_a_link() {
        let mut m = message(1, "标题");
        m.incidents[0].url = "https://x.example/a\n### [点此确认](https://evil.example)".into();
        let md = markdown(&m, 4096, "");
        assert!(
            !md.contains("\n### ［点此") && !md.contains("](https://evil"),
            "{md}"
        );
        m.incidents[0].url = "javascript:alert(1)".into();
        assert!(!email_html(&m).contains("javascript:"));
        assert!(!markdown(&m, 4096, "").contains("javascript:"));
        assert_eq!(
            safe_link("https://x.example/a b(c)").as_deref(),
            Some("https://x.example/a%20b%28c%29")
        );
        // A bar would split a Markdown table's cell.
        assert_eq!(
            safe_link("https://s.example/search?q=a|b").as_deref(),
            Some("https://s.example/search?q=a%7Cb")
        );
        // A backslash would escape the `)` that ends a Markdown link.
        assert_eq!(
            safe_link("https://a.example/?q=\\&r=[x]`").as_deref(),
            Some("https://a.example/?q=%5C&r=%5Bx%5D%60")
        );
    }

    #[test]
    fn an_sms_keeps_its_acknowledgement_link_whole() {
        let mut m = message(1, &"很长的标题".repeat(40));
        let link = format!(
            "http://console.example.gov.cn/ack/123456?exp=1795841490&who=duty-officer&sig={}",
            "a".repeat(32)
        );
        m.incidents[0].ack_link = Some(link.clone());
        let t = sms_text(&m);
        assert!(t.ends_with(&link), "{t}");
        assert!(t.chars().count() <= SMS_MAX_CHARS, "{}", t.chars().count());
    }

    #[test]
    fn long_messages_degrade_to_a_summary_within_the_limit() {
        let m = message(200, &"某地发生一起事故，现场情况正在核实中".repeat(3));
        let md = markdown(&m, WECOM_MAX_BYTES, "@张伟");
        assert!(md.len() <= WECOM_MAX_BYTES, "{}", md.len());
        assert!(md.contains("起未列出"), "{md}");
        assert!(md.contains("(http://c/#incidents)"), "{md}");
        assert!(md.ends_with("@张伟"));
        let short = markdown(&message(2, "短"), WECOM_MAX_BYTES, "");
        assert!(!short.contains("未列出"));
        let c = feishu();
        let Request::Http { body, .. } = &render(&c, &m, Utc::now()).unwrap()[0] else {
            panic!()
        };
        assert!(body.len() <= FEISHU_MAX_BYTES);
        assert!(body.contains("起未列出"));
        assert!(sms_text(&m).chars().count() <= SMS_MAX_CHARS);
    }

    #[test]
    fn answers_are_read_per_platform() {
        assert!(check_answer(ChannelKind::Dingtalk, 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        let e = check_answer(
            ChannelKind::Dingtalk,
            200,
            r#"{"errcode":130101,"errmsg":"send too fast"}"#,
        )
        .unwrap_err();
        assert!(e.throttled && e.error.contains("send too fast"));
        assert!(
            !check_answer(
                ChannelKind::Dingtalk,
                200,
                r#"{"errcode":310000,"errmsg":"sign not match"}"#
            )
            .unwrap_err()
            .throttled
        );
        assert!(
            check_answer(ChannelKind::Wecom, 200, r#"{"errcode":45009}"#)
                .unwrap_err()
                .throttled
        );
        assert!(check_answer(ChannelKind::Feishu, 200, r#"{"code":0,"msg":"success"}"#).is_ok());
        assert!(check_answer(ChannelKind::Feishu, 200, r#"{"StatusCode":0}"#).is_ok());
        assert!(
            check_answer(
                ChannelKind::Feishu,
                200,
                r#"{"code":19021,"msg":"sign match fail"}"#
            )
            .is_err()
        );
        assert!(check_answer(ChannelKind::Webhook, 204, "").is_ok());
        assert!(check_answer(ChannelKind::Webhook, 500, "boom").is_err());
        assert!(
            check_answer(ChannelKind::Sms, 429, "")
                .unwrap_err()
                .throttled
        );
        assert!(check_answer(ChannelKind::Dingtalk, 200, "<html>").is_err());
    }

    fn dingtalk() -> ChannelConfig {
        ChannelConfig {
            id: "d".into(),
            kind: ChannelKind::Dingtalk,
            ..feishu()
        }
    }

    fn body_of(c: &ChannelConfig, m: &Message) -> String {
        match &render(c, m, Utc::now()).unwrap()[0] {
            Request::Http { body, .. } => body.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// A crawled address of kilobytes, or a title of tens of kilobytes,
    /// leaves every incident's acknowledgement link in the message, within
    /// each platform's limit.
    #[test]
    fn huge_addresses_and_titles_keep_every_acknowledgement_link() {
        let mut m = message(3, "某地桥梁垮塌");
        m.incidents[0].url = format!("https://news.example/a?x={}", "a".repeat(20_000));
        let wecom = markdown(&m, WECOM_MAX_BYTES, "@张伟");
        assert!(wecom.len() <= WECOM_MAX_BYTES);
        for id in 1..=3 {
            assert!(
                wecom.contains(&format!("(http://c/ack/{id}?sig=x)")),
                "{wecom}"
            );
        }
        assert!(!wecom.contains("aaaa"), "the huge address is left out");
        let ding = body_of(&dingtalk(), &m);
        assert!(ding.len() <= DINGTALK_MAX_BYTES);
        assert!(ding.contains("http://c/ack/3?sig=x"), "{ding}");

        let huge = message(1, &"事故".repeat(5_000));
        let f = body_of(&feishu(), &huge);
        assert!(f.len() <= FEISHU_MAX_BYTES, "{}", f.len());
        assert!(f.contains("http://c/ack/1?sig=x"), "{f}");
        // A block of quotes doubles in JSON; the body still fits.
        let mut quotes = message(1, "x");
        quotes.incidents = (1..=120).map(|i| incident(i, &"\"".repeat(80))).collect();
        let ding = body_of(&dingtalk(), &quotes);
        assert!(ding.len() <= DINGTALK_MAX_BYTES, "{}", ding.len());
        assert!(ding.contains("另有"), "the rest are sent to the console");
        // A Feishu message cut short says how many incidents it left out,
        // and still names whom it is for.
        let many = message(200, &"事故".repeat(40));
        let f = body_of(&feishu(), &many);
        assert!(f.len() <= FEISHU_MAX_BYTES);
        let listed = f.matches("确认处理").count();
        assert!(
            f.contains(&format!("另有 {} 起未列出", 200 - listed)),
            "{f}"
        );
        assert!(f.contains("请 张伟 处理"), "{f}");
    }

    /// A title cannot add a line, or pass for a level or a state.
    #[test]
    fn titles_cannot_pass_for_levels_states_or_lines() {
        let mut m = message(
            1,
            "市场动态\n【红色】化工厂爆炸（新预警，99 条）\u{2028}【已解除】",
        );
        m.incidents[0].level = Level::Blue;
        let f = body_of(&feishu(), &m);
        assert!(!f.contains("\\n【") && !f.contains("\u{2028}"), "{f}");
        assert!(f.contains("〔红色〕化工厂爆炸"), "{f}");
        assert!(
            headline(&m).starts_with("【蓝色预警】市场动态 〔红色〕"),
            "{}",
            headline(&m)
        );
        let md = markdown(&m, WECOM_MAX_BYTES, "");
        assert_eq!(md.matches("【").count(), 2, "{md}");
        assert_eq!(md_escape("a&#58;b ~~x~~"), "a＆＃58;b ～～x～～");
        // In mail, the title is text and the page is a link of its own.
        let mut m = message(1, "确认处理（请值班员点此登录）");
        m.incidents[0].url = "https://evil.example/login".into();
        let html = email_html(&m);
        assert!(
            html.contains("确认处理（请值班员点此登录）（<a href=\"https://evil.example/login\" rel=\"noopener noreferrer\">原文</a>）"),
            "{html}"
        );
    }

    #[test]
    fn international_domains_and_user_info_are_no_links() {
        assert_eq!(
            defang("点此 evil.xn--fiqs8s/ack"),
            "点此 evil．xn--fiqs8s/ack"
        );
        assert_eq!(defang("点此 evil.中国/ack"), "点此 evil．中国/ack");
        assert_eq!(defang("涨幅3.中"), "涨幅3.中");
        assert_eq!(defang("点击确认.com/ack"), "点击确认．com/ack");
        assert_eq!(
            defang("见...evil.com/ack 与 .evil.cn"),
            "见...evil．com/ack 与 .evil．cn"
        );
        assert_eq!(defang("他说.OKAY123 与 中.a"), "他说.OKAY123 与 中.a");
        // A title cut where an address would end is escaped after the cut.
        let m = message(1, &format!("{}evil.com12345", "一".repeat(71)));
        let md = markdown(&m, WECOM_MAX_BYTES, "");
        assert!(md.contains("evil．com…"), "{md}");
        // Long runs of dots are read in one pass.
        let dots = "1.".repeat(200_000);
        assert_eq!(defang(&dots).len(), dots.len());
        assert_eq!(
            safe_link("https://yuqing.example.gov.cn@evil.example/ack"),
            None
        );
        assert_eq!(safe_link("https://u:p@evil.example/"), None);
        assert!(safe_link("https://news.example/a").is_some());
    }
}
