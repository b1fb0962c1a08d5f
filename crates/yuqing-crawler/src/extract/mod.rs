//! Article extraction: title, author, published time and main text of a
//! web page, without navigation, comment boxes or boilerplate.
//!
//! The text comes from the best of several candidates: the `articleBody`
//! a page declares in JSON-LD (publishers put the exact body there), and
//! dom_smoothie's readability scoring of the DOM as the fallback. Metadata
//! comes from meta tags and JSON-LD, then from the visible text, where
//! Chinese sites write dates as `2024年3月5日 14:30`, `发布时间：…`,
//! `昨天 08:12` or `3小时前`.

mod dates;
pub mod eval;
pub mod score;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use scraper::{Html, Selector};
use serde::Serialize;
use serde_json::Value;

pub use dates::parse_visible_time;

use crate::text::{html_to_text, parse_time, tidy};

/// What was extracted from one page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extracted {
    pub title: String,
    pub author: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub text: String,
    /// Where the text came from: `json-ld` or `readability`, or `none`.
    pub method: &'static str,
}

/// The readability fallback alone, for comparison in benchmarks.
pub fn readability_text(html: &str, url: Option<&str>) -> Option<String> {
    readability(html, url).map(|a| a.text_content.to_string())
}

fn readability_config() -> dom_smoothie::Config {
    dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        max_elements_to_parse: 0,
        ..Default::default()
    }
}

fn http_url(url: Option<&str>) -> Option<&str> {
    url.filter(|u| u.starts_with("http://") || u.starts_with("https://"))
}

fn readability(html: &str, url: Option<&str>) -> Option<dom_smoothie::Article> {
    let mut r =
        dom_smoothie::Readability::new(html, http_url(url), Some(readability_config())).ok()?;
    r.parse().ok()
}

/// Elements that are page furniture, not article text, wherever they sit:
/// captions and photo credits, share bars, bylines, breadcrumbs, related
/// links, newsletter boxes, comment sections.
const FURNITURE: &[&str] = &[
    "figcaption",
    "figure",
    "aside",
    "nav",
    "footer",
    "form",
    "button",
    "noscript",
    "[class*=caption]",
    "[class*=credit]",
    "[class*=share]",
    "[class*=social]",
    "[class*=byline]",
    "[class*=breadcrumb]",
    "[class*=related]",
    "[class*=newsletter]",
    "[class*=subscribe]",
    "[class*=promo]",
    "[class*=comment]",
    "[id*=comment]",
    "[class*=gallery]",
    "[class*=slideshow]",
    "[class*=modal]",
    "[class*=tags]",
    "[aria-hidden=true]",
    "[hidden]",
];

/// Readability with furniture pruned, unless pruning took most of the text
/// with it (the article sat inside something named like furniture): then
/// readability of the page as it is.
fn best_readability(html: &str, url: Option<&str>) -> Option<dom_smoothie::Article> {
    let raw = readability(html, url);
    let pruned = pruned_readability(html, url);
    match (raw, pruned) {
        (Some(r), Some(p))
            if p.text_content.chars().count() * 10 >= r.text_content.chars().count() * 6 =>
        {
            Some(p)
        }
        (Some(r), _) => Some(r),
        (None, p) => p,
    }
}

/// Readability after removing furniture. An element holding 40% or more of
/// the page's text is never removed, so a wrongly named container cannot
/// take the article with it.
fn pruned_readability(html: &str, url: Option<&str>) -> Option<dom_smoothie::Article> {
    let doc = dom_query::Document::from(html);
    let total = doc.select("body").text().chars().count().max(1);
    for css in FURNITURE {
        let Some(sel) = doc.try_select(css) else {
            continue;
        };
        for node in sel.nodes() {
            if node.text().chars().count() * 10 < total * 4 {
                node.remove_from_parent();
            }
        }
    }
    let mut r =
        dom_smoothie::Readability::with_document(doc, http_url(url), Some(readability_config()))
            .ok()?;
    r.parse().ok()
}

/// Extracts a page. `now` anchors relative dates (`3小时前`); `tz` reads
/// wall-clock times.
pub fn extract(html: &str, url: Option<&str>, tz: Tz, now: DateTime<Utc>) -> Extracted {
    let doc = Html::parse_document(html);
    let ld = json_ld(&doc);
    let article = best_readability(html, url);
    let fallback = article
        .as_ref()
        .map(|a| drop_dateline(&tidy(&a.text_content)))
        .unwrap_or_default();
    let declared = ld
        .iter()
        .filter_map(|v| find_str(v, "articleBody"))
        .map(|b| tidy(&html_to_text(&b)))
        .max_by_key(|b| b.chars().count());
    let (text, method) = choose(declared, fallback);

    let page_title = first_text(&doc, "title").unwrap_or_default();
    let title = meta(&doc, &["og:title", "twitter:title"])
        .or_else(|| ld.iter().find_map(|v| find_str(v, "headline")))
        // The headline without the site name that <title> appends.
        .or_else(|| first_text(&doc, "h1").filter(|h| page_title.contains(h.as_str())))
        .or_else(|| {
            article
                .as_ref()
                .map(|a| a.title.clone())
                .filter(|t| !t.is_empty())
        })
        .or_else(|| first_text(&doc, "h1"))
        .or_else(|| first_text(&doc, "title"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default();

    let author = meta(&doc, &["author", "article:author", "byl", "dc.creator"])
        .filter(|a| !a.starts_with("http"))
        .or_else(|| {
            ld.iter()
                .find_map(|v| find_key(v, "author").and_then(author_name))
        })
        .or_else(|| article.as_ref().and_then(|a| a.byline.clone()))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());

    let published_at = meta(
        &doc,
        &[
            "article:published_time",
            "og:published_time",
            "pubdate",
            "publishdate",
            "publish_date",
            "date",
            "dc.date",
            "sailthru.date",
        ],
    )
    .and_then(|t| parse_time(&t, tz))
    .or_else(|| {
        ld.iter()
            .filter_map(|v| find_str(v, "datePublished"))
            .find_map(|t| parse_time(&t, tz))
    })
    .or_else(|| {
        article
            .as_ref()
            .and_then(|a| a.published_time.as_deref())
            .and_then(|t| parse_time(t, tz))
    })
    .or_else(|| {
        doc.select(&Selector::parse("time[datetime]").expect("static selector"))
            .filter_map(|t| t.value().attr("datetime"))
            .find_map(|t| parse_time(t, tz))
    })
    .or_else(|| parse_visible_time(&visible_text(&doc), tz, now));

    Extracted {
        title,
        author,
        published_at,
        text,
        method,
    }
}

/// Prefers the declared body when it is a real body (not a teaser): at
/// least 200 characters and at least half as long as what readability found.
fn choose(declared: Option<String>, fallback: String) -> (String, &'static str) {
    match declared {
        Some(d)
            if d.chars().count() >= 200 && 2 * d.chars().count() >= fallback.chars().count() =>
        {
            (d, "json-ld")
        }
        _ if !fallback.is_empty() => (fallback, "readability"),
        Some(d) if !d.is_empty() => (d, "json-ld"),
        _ => (String::new(), "none"),
    }
}

/// Drops the dateline that Chinese article pages put above the text
/// (`发布时间：2024-03-05 14:30 来源：… 记者 …`): a short line with a
/// publication label is metadata, not body.
fn drop_dateline(text: &str) -> String {
    const LABELS: &[&str] = &["发布时间", "发表时间", "发布日期", "发稿时间", "更新时间"];
    text.lines()
        .filter(|l| !(l.chars().count() <= 80 && LABELS.iter().any(|x| l.contains(x))))
        .collect::<Vec<_>>()
        .join("\n")
}

fn json_ld(doc: &Html) -> Vec<Value> {
    let sel = Selector::parse("script[type=\"application/ld+json\"]").expect("static selector");
    doc.select(&sel)
        .filter_map(|s| {
            let raw: String = s.text().collect();
            let raw = raw
                .trim()
                .trim_start_matches("<![CDATA[")
                .trim_end_matches("]]>");
            serde_json::from_str::<Value>(raw).ok()
        })
        .collect()
}

/// The first string under `key` anywhere in a JSON-LD value (objects,
/// arrays, `@graph`).
fn find_str(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(s)) = m.get(key)
                && !s.trim().is_empty()
            {
                return Some(s.clone());
            }
            m.values().find_map(|x| find_str(x, key))
        }
        Value::Array(a) => a.iter().find_map(|x| find_str(x, key)),
        _ => None,
    }
}

/// The first value under `key` anywhere in a JSON-LD value.
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn author_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("name").and_then(Value::as_str).map(str::to_string),
        Value::Array(a) => {
            let names: Vec<String> = a.iter().filter_map(author_name).collect();
            (!names.is_empty()).then(|| names.join(", "))
        }
        _ => None,
    }
}

/// `<meta name|property="...">` content, for the first of `names` present.
fn meta(doc: &Html, names: &[&str]) -> Option<String> {
    let sel = Selector::parse("meta[content]").expect("static selector");
    for name in names {
        for m in doc.select(&sel) {
            let v = m.value();
            let key = v
                .attr("property")
                .or_else(|| v.attr("name"))
                .or_else(|| v.attr("itemprop"));
            if key.is_some_and(|k| k.eq_ignore_ascii_case(name))
                && let Some(c) = v.attr("content").map(str::trim).filter(|c| !c.is_empty())
            {
                return Some(c.to_string());
            }
        }
    }
    None
}

fn first_text(doc: &Html, css: &str) -> Option<String> {
    let sel = Selector::parse(css).ok()?;
    doc.select(&sel)
        .next()
        .map(|e| {
            e.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|t| !t.is_empty())
}

fn visible_text(doc: &Html) -> String {
    let body = Selector::parse("body").expect("static selector");
    doc.select(&body)
        .next()
        .map(crate::text::element_text)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
