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

/// Deepest element nesting a page may have to be parsed. No real page
/// comes near it (browsers stop nesting at 512); past it html5ever's time
/// grows with the square of the depth, and a tree walk that recurses would
/// overflow its stack.
pub const MAX_NESTING: usize = 1_000;

/// Elements without content, and elements whose end tag may be left out:
/// neither makes an unclosed start tag nest what follows.
const NOT_NESTING: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "image",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr", "p", "li", "dt", "dd",
    "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption", "rb",
    "rt", "rtc", "rp", "html", "head", "body",
];

/// Elements whose content is text, not markup.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
];

/// How deep `html` nests its elements, estimated from above without
/// parsing it: start tags of elements that need an end tag, less their end
/// tags (a table counts four levels: itself, its body, a row and a cell). Comments and the content of scripts and styles are skipped; a
/// self-closing tag nests nothing only inside SVG or MathML, as in a
/// browser.
pub fn nesting_depth(html: &str) -> usize {
    let b = html.as_bytes();
    let (mut i, mut depth, mut deepest, mut foreign) = (0usize, 0usize, 0usize, 0usize);
    let find = |from: usize, pat: &[u8]| -> usize {
        b[from.min(b.len())..]
            .windows(pat.len())
            .position(|w| w.eq_ignore_ascii_case(pat))
            .map_or(b.len(), |p| from + p)
    };
    while let Some(lt) = b[i..].iter().position(|&c| c == b'<') {
        i += lt + 1;
        if b[i..].starts_with(b"!--") {
            // `<!-->` and `<!--->` end where they start; a comment ends at
            // the first `-->` or `--!>`.
            let body = i + 3;
            i = if b[body..].starts_with(b">") {
                body + 1
            } else if b[body..].starts_with(b"->") {
                body + 2
            } else {
                let end = find(body, b"-->").min(find(body, b"--!>"));
                (end + if b[end..].starts_with(b"--!>") { 4 } else { 3 }).min(b.len())
            };
            continue;
        }
        let closing = b.get(i) == Some(&b'/');
        let start = i + usize::from(closing);
        let len = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b':')
            .count();
        if len == 0 || !b[start].is_ascii_alphabetic() {
            continue;
        }
        let name = html[start..start + len].to_ascii_lowercase();
        let gt = find(start + len, b">");
        let self_closing = gt > 0 && gt < b.len() && b[gt - 1] == b'/';
        i = (gt + 1).min(b.len());
        let nests = !NOT_NESTING.contains(&name.as_str());
        // A table nests its body, row and cell too, whose tags may be left
        // out.
        let levels = if name == "table" { 4 } else { 1 };
        if closing {
            if nests {
                depth = depth.saturating_sub(levels);
            }
            if name == "svg" || name == "math" {
                foreign = foreign.saturating_sub(1);
            }
            continue;
        }
        if RAW_TEXT.contains(&name.as_str()) && !(self_closing && foreign > 0) {
            let end = format!("</{name}");
            i = find(i, end.as_bytes());
            continue;
        }
        if self_closing && foreign > 0 {
            continue;
        }
        if name == "svg" || name == "math" {
            foreign += 1;
        }
        if nests {
            depth += levels;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// Refuses a page nested deeper than [`MAX_NESTING`], before anything
/// parses it.
pub fn check_nesting(html: &str) -> Result<(), String> {
    let depth = nesting_depth(html);
    if depth > MAX_NESTING {
        return Err(format!(
            "elements nested about {depth} deep (at most {MAX_NESTING} are parsed); not read"
        ));
    }
    Ok(())
}

/// Visible text of an element: block elements become line breaks, runs of
/// whitespace collapse, and scripts and styles are dropped.
pub fn element_text(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    walk(el, &mut out);
    tidy(&out)
}

/// Visible text of an HTML fragment (feed content, API text). A fragment
/// nested too deep to parse keeps its text between tags.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return tidy(html);
    }
    if check_nesting(html).is_err() {
        return tidy(&strip_tags(html));
    }
    let frag = Html::parse_fragment(html);
    element_text(frag.root_element())
}

/// The text between tags, a space for each tag.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The text under `el`, depth first, with an explicit stack: a line break
/// around each block element, nothing of scripts and styles.
fn walk(el: ElementRef<'_>, out: &mut String) {
    // A node to enter, or the line break that closes a block element.
    enum Step<'a> {
        Enter(ego_tree::NodeRef<'a, Node>),
        Close,
    }
    let mut stack: Vec<Step<'_>> = el.children().rev().map(Step::Enter).collect();
    while let Some(step) = stack.pop() {
        let Step::Enter(node) = step else {
            out.push('\n');
            continue;
        };
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                let name = e.name();
                if matches!(name, "script" | "style" | "noscript" | "template") {
                    continue;
                }
                if BLOCK.contains(&name) {
                    out.push('\n');
                    stack.push(Step::Close);
                }
                stack.extend(node.children().rev().map(Step::Enter));
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
        let n = s.parse::<i64>().ok()?;
        // From 12 digits on, milliseconds, as many APIs give them (as
        // seconds they would be past the year 5000).
        return if n >= 100_000_000_000 {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        };
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
    fn nesting_counts_what_a_parser_would_nest() {
        assert_eq!(nesting_depth("<div><div><p>a</div></div>"), 2);
        assert_eq!(nesting_depth(&"<table><td>".repeat(300)), 1_200);
        assert_eq!(nesting_depth(&"<div>".repeat(5_000)), 5_000);
        // The slash of `<div/>` means nothing in HTML.
        assert_eq!(nesting_depth(&"<DIV/>".repeat(5_000)), 5_000);
        // Unclosed paragraphs, list items, cells and empty elements do not
        // nest; closed elements unwind.
        let flat = "<p>x<li>y<td>z<br><img src=a><hr>".repeat(5_000);
        assert_eq!(nesting_depth(&flat), 0);
        assert_eq!(nesting_depth(&"<span>a</span>".repeat(5_000)), 1);
        // Comments, scripts and styles hold text, not elements.
        let hidden = format!(
            "<!-- {} --><script>var s = '{}';</script><style>{}</style><div>x</div>",
            "<div>".repeat(5_000),
            "<div>".repeat(5_000),
            "<b>".repeat(5_000)
        );
        assert_eq!(nesting_depth(&hidden), 1);
        // Comments end as a parser ends them, so none hides what follows.
        for comment in ["<!-->", "<!--->", "<!-- a --!>", "<!---->"] {
            let after = format!("{comment}{}-->", "<div>".repeat(2_000));
            assert_eq!(nesting_depth(&after), 2_000, "{comment}");
        }
        // In SVG a slash closes.
        let svg = format!("<svg>{}</svg>", "<path d='M0 0'/>".repeat(5_000));
        assert_eq!(nesting_depth(&svg), 1);
        assert!(check_nesting(&"<div>".repeat(MAX_NESTING)).is_ok());
        let err = check_nesting(&"<div>".repeat(MAX_NESTING + 1)).unwrap_err();
        assert!(err.contains("nested about 1001 deep"), "{err}");
    }

    /// A fragment nested past the limit keeps its text; one just inside
    /// it is parsed and walked without recursion.
    #[test]
    fn deep_fragments_give_their_text() {
        let deep = format!("{}甲&amp;乙", "<div>".repeat(50_000));
        assert_eq!(html_to_text(&deep), "甲&amp;乙");
        let inside = format!("{}甲<b>乙</b>", "<span>".repeat(MAX_NESTING - 1));
        assert_eq!(html_to_text(&inside), "甲乙");
        let doc = Html::parse_document(&format!("{}丙", "<div>".repeat(MAX_NESTING)));
        assert_eq!(element_text(doc.root_element()), "丙");
    }

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
