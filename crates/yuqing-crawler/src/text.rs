//! HTML to plain text, and the time formats Chinese sites use.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use scraper::{ElementRef, Html, Node};

const BLOCK: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "blockquote",
    "section",
    "article",
    "pre",
    "hr",
];

/// Visible text of an element: block elements become line breaks, runs of
/// whitespace collapse, and scripts and styles are dropped.
pub fn element_text(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    walk(el, &mut out);
    tidy(&out)
}

/// Visible text of an HTML fragment (feed content, API text).
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return tidy(html);
    }
    let frag = Html::parse_fragment(html);
    element_text(frag.root_element())
}

fn walk(el: ElementRef<'_>, out: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                let name = e.name();
                if matches!(name, "script" | "style" | "noscript" | "template") {
                    continue;
                }
                let block = BLOCK.contains(&name);
                if block {
                    out.push('\n');
                }
                if let Some(c) = ElementRef::wrap(child) {
                    walk(c, out);
                }
                if block {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
}

/// Collapses whitespace within lines, drops empty lines.
pub(crate) fn tidy(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses the time formats found on Chinese sites and APIs: RFC 3339,
/// RFC 2822, the Weibo API format, Unix seconds, and local wall-clock times
/// such as `2024-03-05 14:30`, `2024/3/5 14:30:05`, `2024年3月5日 14:30`,
/// with prefixes like `发表于` or `发布时间：`. Wall-clock times are in `tz`.
pub fn parse_time(raw: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    let s = s
        .trim_start_matches("发表于")
        .trim_start_matches("发布于")
        .trim_start_matches("发布时间")
        .trim_start_matches(['：', ':'])
        .trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y") {
        return Some(t.with_timezone(&Utc));
    }
    if s.len() >= 9 && s.chars().all(|c| c.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|n| Utc.timestamp_opt(n, 0).single());
    }
    let normalized: String = s
        .replace(['年', '月', '/'], "-")
        .replace('日', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&normalized, fmt) {
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(&normalized, "%Y-%m-%d") {
        return tz
            .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&Utc));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_blocks_become_lines() {
        let t = html_to_text("<p>第一段 <b>加粗</b></p><p>第二段<br>换行</p><script>x()</script>");
        assert_eq!(t, "第一段 加粗\n第二段\n换行");
        assert_eq!(html_to_text("a &amp; b"), "a & b");
    }

    #[test]
    fn chinese_and_api_time_formats() {
        let sh = chrono_tz::Asia::Shanghai;
        let want = Utc.with_ymd_and_hms(2024, 3, 5, 6, 30, 0).unwrap();
        assert_eq!(parse_time("2024-03-05 14:30", sh), Some(want));
        assert_eq!(parse_time("发表于 2024-3-5 14:30", sh), Some(want));
        assert_eq!(parse_time("2024年3月5日 14:30", sh), Some(want));
        assert_eq!(parse_time("发布时间：2024/03/05 14:30:00", sh), Some(want));
        assert_eq!(parse_time("Tue Mar 05 14:30:00 +0800 2024", sh), Some(want));
        assert_eq!(parse_time("2024-03-05T06:30:00Z", sh), Some(want));
        assert_eq!(parse_time("1709620200", sh), Some(want));
        assert_eq!(parse_time("昨天下午", sh), None);
    }
}
