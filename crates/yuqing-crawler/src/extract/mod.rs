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

pub use dates::{chinese_byline, parse_visible_time};

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

/// Readability of the page with hidden article text shown again.
fn unhidden_readability(html: &str, url: Option<&str>) -> Option<dom_smoothie::Article> {
    let doc = dom_query::Document::from(html);
    unhide_text(&doc);
    let mut r =
        dom_smoothie::Readability::with_document(doc, http_url(url), Some(readability_config()))
            .ok()?;
    r.parse().ok()
}

/// Shows text that a page hides until a script runs or a button is
/// pressed: WeChat articles (`#js_content` is `visibility: hidden`) and
/// mobile pages that fold the rest of an article behind "打开APP阅读全文".
/// Only elements holding paragraphs of Chinese prose are shown again, not
/// hidden menus and dialogs, which are mostly links.
fn unhide_text(doc: &dom_query::Document) {
    let Some(sel) = doc.try_select("[style]") else {
        return;
    };
    for node in sel.nodes() {
        let style = node
            .attr("style")
            .map(|s| s.to_ascii_lowercase().replace(' ', ""))
            .unwrap_or_default();
        if !(style.contains("display:none") || style.contains("visibility:hidden")) {
            continue;
        }
        let content = node.text();
        let text = content.chars().filter(|c| !c.is_whitespace()).count();
        // Folded articles are a Chinese mobile-web habit; elsewhere hidden
        // prose is mostly promotions.
        let han = content
            .chars()
            .filter(|c| matches!(c, '\u{4e00}'..='\u{9fff}'))
            .count();
        let links: usize = node
            .find(&["a"])
            .iter()
            .map(|a| a.text().chars().filter(|c| !c.is_whitespace()).count())
            .sum();
        let paragraphs = node.find(&["p"]).len() + node.find(&["section"]).len();
        if text >= 100 && han * 2 >= text && paragraphs >= 1 && links * 10 < text * 3 {
            node.remove_attr("style");
        }
    }
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
    let raw = unhidden_readability(html, url);
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
    unhide_text(&doc);
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
///
/// A page nested deeper than [`crate::text::MAX_NESTING`] is not parsed:
/// nothing is extracted from it (callers refuse it first, with
/// [`crate::text::parse_document`], to say why).
pub fn extract(html: &str, url: Option<&str>, tz: Tz, now: DateTime<Utc>) -> Extracted {
    match crate::text::parse_document(html) {
        Ok(doc) => extract_parsed(html, &doc, url, tz, now),
        Err(_) => Extracted {
            title: String::new(),
            author: None,
            published_at: None,
            text: String::new(),
            method: "none",
        },
    }
}

/// [`extract`] of a page parsed already by
/// [`crate::text::parse_document`].
pub fn extract_parsed(
    html: &str,
    doc: &Html,
    url: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Extracted {
    crate::text::off_the_runtime(|| extract_off_runtime(html, doc, url, tz, now))
}

fn extract_off_runtime(
    html: &str,
    doc: &Html,
    url: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Extracted {
    let ld = json_ld(doc);
    let article = best_readability(html, url);
    let fallback = article
        .as_ref()
        .map(|a| drop_boilerplate(&tidy(&a.text_content)))
        .unwrap_or_default();
    let declared = ld
        .iter()
        .filter_map(|v| find_str(v, "articleBody"))
        .map(|b| tidy(&html_to_text(&b)))
        .max_by_key(|b| b.chars().count());
    let (text, method) = choose(declared, fallback);

    let page_title = first_text(doc, "title").unwrap_or_default();
    let title = meta(doc, &["og:title", "twitter:title"])
        .or_else(|| ld.iter().find_map(|v| find_str(v, "headline")))
        // The headline without the site name that <title> adds.
        .or_else(|| headline_in_title(doc, &page_title))
        .or_else(|| {
            article
                .as_ref()
                .map(|a| a.title.clone())
                .filter(|t| !t.is_empty())
        })
        .or_else(|| first_text(doc, "h1"))
        .or_else(|| first_text(doc, "title"))
        .map(|t| without_site_name(t.trim()))
        .unwrap_or_default();
    let visible = visible_text(doc);

    let author = ld
        .iter()
        .find_map(|v| find_key(v, "author").and_then(author_name))
        .or_else(|| chinese_byline(&visible))
        .or_else(|| meta(doc, &["author", "article:author", "byl", "dc.creator"]))
        .into_iter()
        .chain(article.as_ref().and_then(|a| a.byline.clone()))
        .filter_map(|a| clean_author(&a))
        .next();

    let meta_time = meta(
        doc,
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
    .and_then(|t| parse_time(&t, tz));
    let visible_time = parse_visible_time(&visible, tz, now);
    // A date without a time (local midnight) gives way to the visible time
    // of the same day.
    let meta_time = match (meta_time, visible_time) {
        (Some(m), Some(v))
            if m.with_timezone(&tz).time() == chrono::NaiveTime::MIN
                && m.with_timezone(&tz).date_naive() == v.with_timezone(&tz).date_naive() =>
        {
            Some(v)
        }
        (m, _) => m,
    };
    let published_at = meta_time
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
        .or_else(|| wechat_time(html))
        .or(visible_time);

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

/// Labels of the metadata line Chinese article pages put above the text
/// (`时间:2024-03-21 10:32 来源:禾川新闻网 作者:张涛 点击:1286次`).
const DATELINE_LABELS: &[&str] = &[
    "发布时间",
    "发表时间",
    "发布日期",
    "发稿时间",
    "更新时间",
    "时间：",
    "时间:",
    "日期：",
    "日期:",
    "来源：",
    "来源:",
    "作者：",
    "作者:",
    "点击：",
    "点击:",
    "浏览次数",
    "阅读量",
    "字号",
];

/// Lines that end an article on Chinese sites: what follows is the
/// editor's name, disclaimers, related links or comments.
const TAIL_MARKERS: &[&str] = &[
    "责任编辑",
    "（责任编辑",
    "(责任编辑",
    "【责任编辑",
    "[责任编辑",
    "责编：",
    "责编:",
    "本文来源",
    "文章来源",
    "免责声明",
    "特别声明",
    "版权声明",
    "相关推荐",
    "热门推荐",
    "相关新闻",
    "相关阅读",
    "相关文章",
    "相关链接",
    "延伸阅读",
    "推荐阅读",
    "网友评论",
    "热门评论",
    "最新评论",
    "全部评论",
    "发表评论",
    "我要评论",
    "上一篇",
    "下一篇",
    "即时新闻",
    "------",
    "本文为作者原创",
    "举报/反馈",
    "【纠错】",
    "打印本页",
    "往期推荐",
    "往期回顾",
    "来源丨",
    "编辑丨",
    "审核丨",
    "責任編輯",
    "相關新聞",
    "相關閱讀",
    "相關文章",
    "延伸閱讀",
    "推薦閱讀",
    "熱門推薦",
    "網友評論",
    "免責聲明",
    "即時新聞",
    "上一篇：",
];

/// Short lines that are app promotions, share bars and buttons.
const PROMO_PHRASES: &[&str] = &[
    "扫码下载",
    "扫一扫",
    "客户端",
    "打开APP",
    "打开App",
    "打开app",
    "阅读原文",
    "关注公众号",
    "长按识别",
    "点击关注",
    "我要反馈",
    "分享到",
    "收藏本文",
    "关闭窗口",
    "向上滑动",
    "继续滑动",
    "预览时标签不可点",
    "点击蓝字",
    "关注我们",
    "本帖最后由",
];

/// Cleans what readability kept of a Chinese article page: the dateline
/// above the text, a repeated lead (`[导读]`), app promotions and share
/// bars, and everything from a tail marker (`责任编辑`, `相关推荐`,
/// `网友评论`, ...) on, when the marker comes after most of the text.
fn drop_boilerplate(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let total: usize = lines.iter().map(|l| l.chars().count()).sum();
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut seen = 0;
    for line in lines {
        let t = line.trim();
        let n = t.chars().count();
        seen += line.chars().count();
        let sentence =
            t.ends_with('。') || t.ends_with('！') || t.ends_with('？') || t.ends_with('”');
        if n <= 100 && DATELINE_LABELS.iter().filter(|x| t.contains(*x)).count() >= 2 {
            continue;
        }
        if n <= 80 && !sentence && DATELINE_LABELS[..5].iter().any(|x| t.contains(x)) {
            continue;
        }
        if ["[导读]", "【导读】", "导读：", "摘要：", "【摘要】"]
            .iter()
            .any(|p| t.starts_with(p))
        {
            continue;
        }
        if n <= 40 && !sentence && PROMO_PHRASES.iter().any(|p| t.contains(p)) {
            continue;
        }
        // A marker ends the article only past the first third of the text,
        // so a 相关新闻 link above the article does not swallow it.
        let limit = if t.contains("声明") || t.contains("聲明") {
            300
        } else {
            80
        };
        if n <= limit && TAIL_MARKERS.iter().any(|m| t.starts_with(m)) && seen * 3 >= total {
            break;
        }
        out.push(line);
    }
    out.join("\n")
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

/// The longest heading or title-classed element that the page's `<title>`
/// contains: the headline, where the first `<h1>` may be the site's logo.
fn headline_in_title(doc: &Html, page_title: &str) -> Option<String> {
    let sel = Selector::parse("h1, h2, h3, [class*=title], [id*=title]").expect("static selector");
    let title_len = page_title.chars().count();
    doc.select(&sel)
        .map(|e| {
            e.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|h| {
            let n = h.chars().count();
            n >= 4 && n * 10 >= title_len * 3 && page_title.contains(h.as_str())
        })
        .max_by_key(|h| h.chars().count())
}

/// A title without the site and section names that pages join to it
/// (`标题_栏目_站点`, `Headline - Site`, `标题 | 站点`): the longest part.
fn without_site_name(title: &str) -> String {
    for sep in [" - ", "_", " | ", "｜", " — ", " – ", "--"] {
        if title.contains(sep) {
            let best = title
                .split(sep)
                .map(str::trim)
                .max_by_key(|p| p.chars().count())
                .unwrap_or(title);
            return best.to_string();
        }
    }
    title.to_string()
}

/// An author as pages give it, or `None` when it is not a person's or
/// outlet's name: a number, forum software, an editor's credit, a URL.
fn clean_author(raw: &str) -> Option<String> {
    let a = raw.trim();
    let a = a
        .strip_prefix("本报记者")
        .or_else(|| a.strip_prefix("记者"))
        .or_else(|| a.strip_prefix("作者："))
        .or_else(|| a.strip_prefix("作者:"))
        .unwrap_or(a)
        .trim();
    // `云川生活观察 昨天 08:12` : the name without the time after it.
    let a = match a.split_once(char::is_whitespace) {
        Some((first, rest))
            if rest.chars().any(|c| c.is_ascii_digit())
                || ["昨天", "今天", "前天"].iter().any(|w| rest.contains(w)) =>
        {
            first
        }
        _ => a,
    };
    let junk = a.is_empty()
        || a.starts_with("http")
        || a.chars().all(|c| c.is_ascii_digit() || c.is_whitespace())
        || a.contains("Discuz")
        || a.contains("Comsenz")
        || a.contains("编辑")
        || a.chars().count() > 40;
    (!junk).then(|| a.to_string())
}

/// WeChat articles carry their time only in a script: `var ct = "1718186700"`.
fn wechat_time(html: &str) -> Option<DateTime<Utc>> {
    let i = html
        .find("var ct = \"")
        .map(|i| i + 10)
        .or_else(|| html.find("var ct=\"").map(|i| i + 8))?;
    let digits: String = html[i..].chars().take_while(char::is_ascii_digit).collect();
    if digits.len() != 10 {
        return None;
    }
    chrono::TimeZone::timestamp_opt(&Utc, digits.parse().ok()?, 0).single()
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
