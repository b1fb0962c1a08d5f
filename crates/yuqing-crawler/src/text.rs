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

/// Elements without content: their start tag opens nothing.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "image",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is text, not markup (outside SVG and MathML).
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

/// Elements an end tag does not reach past: the parser ignores `</div>`
/// while a table opened inside the div is still open.
const SCOPE_BOUNDARY: &[&str] = &[
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template",
];

/// SVG and MathML elements whose content is HTML again: scope boundaries
/// and special elements both.
const INTEGRATION: &[&str] = &[
    "title",
    "desc",
    "foreignobject",
    "mi",
    "mo",
    "mn",
    "ms",
    "mtext",
    "annotation-xml",
];

/// The HTML standard's "special" elements: an end tag of any other
/// element does not reach past one.
const SPECIAL: &[&str] = &[
    "address",
    "applet",
    "area",
    "article",
    "aside",
    "base",
    "basefont",
    "bgsound",
    "blockquote",
    "body",
    "br",
    "button",
    "caption",
    "center",
    "col",
    "colgroup",
    "dd",
    "details",
    "dir",
    "div",
    "dl",
    "dt",
    "embed",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "frame",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "iframe",
    "img",
    "input",
    "keygen",
    "li",
    "link",
    "listing",
    "main",
    "marquee",
    "menu",
    "meta",
    "nav",
    "noembed",
    "noframes",
    "noscript",
    "object",
    "ol",
    "p",
    "param",
    "plaintext",
    "pre",
    "script",
    "search",
    "section",
    "select",
    "source",
    "style",
    "summary",
    "table",
    "tbody",
    "td",
    "template",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "track",
    "ul",
    "wbr",
    "xmp",
];

/// Start tags that close an open `<p>` first.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "hgroup",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "search",
    "section",
    "summary",
    "ul",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "listing",
    "form",
    "li",
    "dd",
    "dt",
    "plaintext",
    "table",
    "hr",
    "xmp",
];

/// Elements that exist only inside a table: outside one the parser drops
/// their tags.
const TABLE_PARTS: &[&str] = &[
    "caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th",
];

/// Formatting elements: the parser opens them again, inside each new
/// block, until their end tag comes.
const FORMATTING: &[&str] = &[
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u",
];

/// Elements that keep the formatting opened inside them from leaking out.
const MARKERS: &[&str] = &[
    "applet", "object", "marquee", "template", "td", "th", "caption",
];

/// HTML start tags that end SVG or MathML content.
const BREAKOUT: &[&str] = &[
    "b",
    "big",
    "blockquote",
    "body",
    "br",
    "center",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "embed",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "i",
    "img",
    "li",
    "listing",
    "menu",
    "meta",
    "nobr",
    "ol",
    "p",
    "pre",
    "ruby",
    "s",
    "small",
    "span",
    "strong",
    "strike",
    "sub",
    "sup",
    "table",
    "tt",
    "u",
    "ul",
    "var",
];

/// The elements a parser would hold open, simulated from the tags alone.
/// Where the parser's rules are subtler than these, the simulation keeps
/// more open than the parser would, never fewer.
#[derive(Default)]
struct OpenElements {
    /// Names, outermost first, with the levels each counts (a table also
    /// opens the body and row its cells need), whether it is an SVG or
    /// MathML element, and its entry among the formatting elements.
    stack: Vec<(String, usize, bool, Option<u64>)>,
    /// The active formatting elements: name and attributes, whether open
    /// on the stack, and an id; `None` marks where a marker element opened.
    formatting: Vec<Option<(String, String, bool, u64)>>,
    next_id: u64,
    /// Where each name is open on the stack.
    at: std::collections::HashMap<String, Vec<usize>>,
    /// Where scope boundaries, special elements, and special elements
    /// other than address, div and p are open.
    boundaries: Vec<usize>,
    specials: Vec<usize>,
    blocks: Vec<usize>,
    /// Where scope boundaries and buttons are open.
    button_scope: Vec<usize>,
    depth: usize,
}

/// Whether an element open at `i` is reached from the top of the stack
/// without crossing one of `blockers`.
fn reached(i: usize, blockers: &[usize]) -> bool {
    blockers.last().is_none_or(|&b| b <= i)
}

impl OpenElements {
    /// Whether a tag now is read as SVG or MathML: the innermost open
    /// element is one, and not one whose content is HTML again (SVG's
    /// `title`, `desc` and `foreignObject`, MathML's text elements).
    fn in_foreign(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|(n, _, foreign, _)| *foreign && !INTEGRATION.contains(&n.as_str()))
    }

    fn push(&mut self, name: String) {
        self.push_formatting(name, None);
    }

    fn push_formatting(&mut self, name: String, entry: Option<u64>) {
        let i = self.stack.len();
        let foreign = self.in_foreign() || name == "svg" || name == "math";
        let n = name.as_str();
        if !foreign && MARKERS.contains(&n) {
            self.formatting.push(None);
        }
        let (boundary, special) = if foreign {
            let integration = INTEGRATION.contains(&n);
            (integration, integration)
        } else {
            (SCOPE_BOUNDARY.contains(&n), SPECIAL.contains(&n))
        };
        if boundary {
            self.boundaries.push(i);
        }
        if boundary || (!foreign && n == "button") {
            self.button_scope.push(i);
        }
        if special {
            self.specials.push(i);
            if foreign || !matches!(n, "address" | "div" | "p") {
                self.blocks.push(i);
            }
        }
        let levels = if n == "table" && !foreign { 3 } else { 1 };
        self.depth += levels;
        self.at.entry(name.clone()).or_default().push(i);
        self.stack.push((name, levels, foreign, entry));
    }

    fn pop(&mut self) {
        let Some((name, levels, foreign, entry)) = self.stack.pop() else {
            return;
        };
        if let Some(id) = entry
            && let Some(Some(e)) = self
                .formatting
                .iter_mut()
                .find(|e| e.as_ref().is_some_and(|e| e.3 == id))
        {
            e.2 = false;
        }
        if !foreign && MARKERS.contains(&name.as_str()) {
            while let Some(Some(_)) = self.formatting.pop() {}
        }
        let i = self.stack.len();
        self.depth -= levels;
        for v in [
            &mut self.boundaries,
            &mut self.button_scope,
            &mut self.specials,
            &mut self.blocks,
        ] {
            if v.last() == Some(&i) {
                v.pop();
            }
        }
        if let Some(v) = self.at.get_mut(&name) {
            v.pop();
        }
    }

    /// Where the innermost of `names` is open.
    fn innermost(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .filter_map(|n| self.at.get(*n).and_then(|v| v.last().copied()))
            .max()
    }

    fn pop_to(&mut self, i: usize) {
        while self.stack.len() > i {
            self.pop();
        }
    }

    /// Where the active formatting elements after the last marker start.
    fn formatting_from(&self) -> usize {
        self.formatting
            .iter()
            .rposition(Option::is_none)
            .map_or(0, |m| m + 1)
    }

    /// The innermost active formatting element named `name` after the
    /// last marker.
    fn active(&self, name: &str) -> Option<usize> {
        (self.formatting_from()..self.formatting.len())
            .rev()
            .find(|&k| self.formatting[k].as_ref().is_some_and(|e| e.0 == name))
    }

    /// Opens again, innermost last, the active formatting elements that
    /// were closed with the blocks around them, as the parser does before
    /// text and most start tags.
    fn reconstruct(&mut self) {
        for k in self.formatting_from()..self.formatting.len() {
            if let Some((name, _, open @ false, id)) = &mut self.formatting[k] {
                *open = true;
                let (name, id) = (name.clone(), *id);
                self.push_formatting(name, Some(id));
            }
        }
    }

    /// A formatting element's start tag, with its attributes (three alike
    /// at most stay active, as the parser's Noah's Ark clause keeps them).
    fn start_formatting(&mut self, name: String, attrs: String) {
        // A new link, or a `<nobr>` inside one, ends the one still open,
        // and what that closed opens again.
        if (name == "a" || name == "nobr")
            && let Some(k) = self.active(&name)
        {
            self.end_formatting(k);
            self.reconstruct();
        }
        let alike: Vec<usize> = (self.formatting_from()..self.formatting.len())
            .filter(|&k| {
                self.formatting[k]
                    .as_ref()
                    .is_some_and(|e| e.0 == name && e.1 == attrs)
            })
            .collect();
        if alike.len() >= 3 {
            self.formatting.remove(alike[0]);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.formatting.push(Some((name.clone(), attrs, true, id)));
        self.push_formatting(name, Some(id));
    }

    /// A formatting element's end: its entry goes, and the element closes
    /// when nothing special is open inside it (else the parser moves
    /// things around it, and it is counted as still open).
    fn end_formatting(&mut self, k: usize) {
        let Some(Some((_, _, _, id))) = self.formatting.get(k).cloned() else {
            return;
        };
        self.formatting.remove(k);
        if let Some(i) = self.stack.iter().rposition(|e| e.3 == Some(id))
            && reached(i, &self.specials)
        {
            self.pop_to(i);
        }
    }

    /// An end tag: closes the innermost element of that name, and what is
    /// open inside it, when the parser would reach it.
    fn end_tag(&mut self, name: &str) {
        // `</form>` takes the form off the stack and leaves what it holds
        // open: counted as still open.
        if name == "form" {
            return;
        }
        // In SVG or MathML an end tag closes the innermost foreign element
        // of its name, if one is open before the first HTML element; else
        // it is read as HTML.
        let mut k = self.stack.len();
        while k > 0 && self.stack[k - 1].2 {
            k -= 1;
            if self.stack[k].0 == name {
                self.pop_to(k);
                return;
            }
        }
        if let Some(i) = self.innermost(&["select"])
            && reached(i, &self.boundaries)
            && !matches!(name, "select" | "option" | "optgroup")
        {
            // Inside a select only its own end tags count.
            return;
        }
        if FORMATTING.contains(&name)
            && let Some(k) = self.active(name)
        {
            self.end_formatting(k);
            return;
        }
        let Some(i) = self.innermost(&[name]) else {
            return;
        };
        let blockers = if SPECIAL.contains(&name) {
            &self.boundaries
        } else {
            &self.specials
        };
        if reached(i, blockers) {
            self.pop_to(i);
        }
    }

    /// A start tag: what it closes first, and whether it opens anything
    /// (table parts outside a table open nothing).
    fn start_tag(&mut self, name: &str) -> bool {
        if CLOSES_P.contains(&name)
            && let Some(i) = self.innermost(&["p"])
            && reached(i, &self.button_scope)
        {
            self.pop_to(i);
        }
        let table = self.innermost(&["table"]);
        match name {
            "li" | "dd" | "dt" => {
                let same: &[&str] = if name == "li" { &["li"] } else { &["dd", "dt"] };
                if let Some(i) = self.innermost(same)
                    && reached(i, &self.blocks)
                {
                    self.pop_to(i);
                }
            }
            // Ruby annotations close the implied-end elements open inside
            // their ruby.
            "rb" | "rtc" | "rt" | "rp" => {
                if let Some(i) = self.innermost(&["ruby"])
                    && reached(i, &self.boundaries)
                {
                    let keep_rtc = matches!(name, "rt" | "rp");
                    while let Some((top, ..)) = self.stack.last() {
                        let implied = matches!(
                            top.as_str(),
                            "p" | "li" | "dd" | "dt" | "option" | "optgroup" | "rb" | "rp" | "rt"
                        ) || (top == "rtc" && !keep_rtc);
                        if !implied {
                            break;
                        }
                        self.pop();
                    }
                }
            }
            "option" | "optgroup" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let top = self.stack.last().map(|(n, ..)| n.as_str());
                let heading = |n: &str| n.len() == 2 && n.starts_with('h');
                if top == Some(name) || (heading(name) && top.is_some_and(heading)) {
                    self.pop();
                }
            }
            _ if TABLE_PARTS.contains(&name) => {
                // A template holds table parts of its own, table or not.
                let template = self.innermost(&["template"]);
                let Some(t) = table.max(template) else {
                    return false;
                };
                let same: &[&str] = match name {
                    "td" | "th" => &["td", "th"],
                    "tr" => &["tr"],
                    _ => &["tbody", "thead", "tfoot", "caption", "colgroup"],
                };
                if let Some(i) = self.innermost(same).filter(|&i| i > t) {
                    self.pop_to(i);
                }
            }
            _ => {}
        }
        true
    }
}

/// How deep `html` nests its elements, estimated without parsing it, by
/// keeping the elements a parser would hold open ([`OpenElements`]): end
/// tags close only what is open and in reach, empty elements open nothing,
/// comments and the content of scripts and styles are skipped, and a tag's
/// name runs to a space, `/` or `>` as a parser reads it. Stops counting
/// past `cap`.
fn nesting_depth_capped(html: &str, cap: usize) -> usize {
    let b = html.as_bytes();
    let (mut i, mut deepest) = (0usize, 0usize);
    let mut open = OpenElements::default();
    // Framesets nest among themselves, whatever else is open: counted on
    // their own.
    let (mut framesets, mut frames) = (false, 0usize);
    let find = |from: usize, pat: &[u8]| -> usize {
        b[from.min(b.len())..]
            .windows(pat.len())
            .position(|w| w.eq_ignore_ascii_case(pat))
            .map_or(b.len(), |p| from + p)
    };
    while let Some(lt) = b[i..].iter().position(|&c| c == b'<') {
        if deepest > cap {
            break;
        }
        // Text reopens the active formatting elements.
        if b[i..i + lt].iter().any(|c| !c.is_ascii_whitespace()) {
            open.reconstruct();
            deepest = deepest.max(open.depth);
        }
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
        if !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let len = b[start..]
            .iter()
            .take_while(|c| !c.is_ascii_whitespace() && **c != b'/' && **c != b'>')
            .count();
        let name = String::from_utf8_lossy(&b[start..start + len]).to_ascii_lowercase();
        let gt = find(start + len, b">");
        let self_closing = gt < b.len() && b[gt - 1] == b'/';
        let attrs = String::from_utf8_lossy(&b[start + len..gt]).into_owned();
        i = (gt + 1).min(b.len());
        if name == "frameset" {
            frames = if closing {
                frames.saturating_sub(1)
            } else {
                frames + 1
            };
            deepest = deepest.max(frames);
            framesets = true;
            continue;
        }
        // The document's own elements are implied, and their tags within
        // the body change nothing that is open (but end SVG and MathML).
        let document = matches!(name.as_str(), "html" | "head" | "body");
        if closing {
            if !document {
                open.end_tag(&name);
            }
            continue;
        }
        if open.in_foreign() && BREAKOUT.contains(&name.as_str()) {
            while open.in_foreign() {
                open.pop();
            }
        }
        if document {
            continue;
        }
        let foreign = open.in_foreign();
        // A frameset ignores every tag but its own, raw text ones too, and
        // inside SVG or MathML they may not hold text either: their
        // content is counted as tags there.
        let in_foreign_tree = open.stack.iter().any(|e| e.2);
        if !in_foreign_tree && !framesets && RAW_TEXT.contains(&name.as_str()) {
            let end = format!("</{name}");
            i = find(i, end.as_bytes());
            continue;
        }
        // SVG and MathML elements close themselves with a slash, `<svg/>`
        // included.
        if self_closing && (foreign || name == "svg" || name == "math") {
            continue;
        }
        // In SVG and MathML every tag that is not self-closing opens an
        // element, HTML's rules aside.
        if !foreign {
            open.reconstruct();
            if !open.start_tag(&name) || VOID.contains(&name.as_str()) {
                deepest = deepest.max(open.depth);
                continue;
            }
        }
        if !foreign && FORMATTING.contains(&name.as_str()) {
            open.start_formatting(name, attrs);
        } else {
            open.push(name);
        }
        deepest = deepest.max(open.depth);
    }
    deepest
}

/// How deep `html` nests its elements, estimated as
/// [`check_nesting`] does.
pub fn nesting_depth(html: &str) -> usize {
    nesting_depth_capped(html, usize::MAX)
}

/// Refuses a page nested deeper than [`MAX_NESTING`], before anything
/// parses it.
pub fn check_nesting(html: &str) -> Result<(), String> {
    if nesting_depth_capped(html, MAX_NESTING) > MAX_NESTING {
        return Err(too_deep());
    }
    Ok(())
}

fn too_deep() -> String {
    format!("elements nested more than {MAX_NESTING} deep; not read")
}

/// How deep the elements of a parsed page nest, counted without
/// recursion.
fn parsed_depth(doc: &Html) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(doc.tree.root(), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        for child in node.children() {
            stack.push((child, depth + usize::from(child.value().is_element())));
        }
    }
    deepest
}

/// Parses a page, refusing one nested deeper than [`MAX_NESTING`]: before
/// parsing, by [`check_nesting`]'s estimate, which bounds the parser's
/// time; after, by the depth the parser built (a few constructs, such as
/// formatting elements the parser opens again and again, nest deeper than
/// their tags show), before anything walks the tree.
pub fn parse_document(html: &str) -> Result<Html, String> {
    parse_checked(html, Html::parse_document)
}

/// [`parse_document`] for a fragment (feed content, API text).
fn parse_fragment(html: &str) -> Result<Html, String> {
    parse_checked(html, Html::parse_fragment)
}

fn parse_checked(html: &str, parse: fn(&str) -> Html) -> Result<Html, String> {
    off_the_runtime(|| {
        check_nesting(html)?;
        let doc = parse(html);
        // <html> and <body> besides the page's own.
        if parsed_depth(&doc) > MAX_NESTING + 2 {
            return Err(too_deep());
        }
        Ok(doc)
    })
}

/// Runs CPU-bound work (parsing and extracting a page, which a hostile
/// page can make take seconds) without holding an async worker: on tokio's
/// multi-threaded runtime the worker first hands its other tasks to another
/// thread, so fetches, the console and the other roles in the process go
/// on. Elsewhere (a current-thread runtime, no runtime) it just runs.
pub fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
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
    match parse_fragment(html) {
        Ok(frag) => element_text(frag.root_element()),
        Err(_) => tidy(&strip_tags(html)),
    }
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
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
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

    /// Parsing a long page leaves the runtime to the other tasks: on a
    /// runtime of one worker thread, another task runs while the page is
    /// parsed (inline, it could not until the parse returned).
    #[test]
    fn parsing_leaves_the_runtime_to_other_tasks() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ran = rt.block_on(async {
            let ticks = Arc::new(AtomicU64::new(0));
            let t = ticks.clone();
            tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            });
            let page = format!(
                "<html><body>{}</body></html>",
                "<p>一段正文<b>加粗</b>与链接<a href=/x>更多</a></p>".repeat(30_000)
            );
            tokio::spawn(async move {
                let before = ticks.load(Ordering::Relaxed);
                let doc = parse_document(&page).unwrap();
                let after = ticks.load(Ordering::Relaxed);
                assert!(doc.root_element().children().count() > 0);
                after - before
            })
            .await
            .unwrap()
        });
        assert!(ran > 0, "no other task ran while the page was parsed");
    }

    #[test]
    fn nesting_counts_what_a_parser_would_nest() {
        assert_eq!(nesting_depth("<div><div><p>a</div></div>"), 3);
        assert_eq!(nesting_depth(&"<div>".repeat(5_000)), 5_000);
        // The slash of `<div/>` means nothing in HTML.
        assert_eq!(nesting_depth(&"<DIV/>".repeat(5_000)), 5_000);
        // Unclosed paragraphs, list items, cells and empty elements do not
        // nest; closed elements unwind.
        let flat = "<p>x<li>y<td>z<br><img src=a><hr>".repeat(5_000);
        assert!(nesting_depth(&flat) <= 2, "{}", nesting_depth(&flat));
        let list = format!("<ul>{}</ul>", "<li><p>第一段<p>第二段".repeat(5_000));
        assert!(nesting_depth(&list) <= 3, "{}", nesting_depth(&list));
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
        assert!(err.contains("nested more than 1000 deep"), "{err}");
    }

    /// How deep html5ever nests the elements of `html`, below its body.
    fn parsed_depth(html: &str) -> usize {
        super::parsed_depth(&Html::parse_document(html)).saturating_sub(2)
    }

    /// Markup that a parser nests though its tags look flat, or whose tags
    /// look closed though the parser keeps them open, is estimated at
    /// least as deep as the parser builds it.
    #[test]
    fn nesting_is_never_estimated_below_what_the_parser_builds() {
        let n = 150;
        let cases = [
            "<div></x>".repeat(n),
            "<rb>".repeat(n),
            "<rt>".repeat(n),
            "<rtc><rp>".repeat(n),
            "<li><dd>".repeat(n),
            "<li><section>".repeat(n),
            "<dt><article>".repeat(n),
            "<p.>".repeat(n),
            format!("<svg><title>{}", "<div>".repeat(n)),
            format!("<svg>{}", "<div/>".repeat(n)),
            format!("<math>{}", "<span/>".repeat(n)),
            "<div><table></div>".repeat(n),
            "<span><div></span>".repeat(n),
            "<table><td><table><td>".repeat(n),
            "<table><tr><td><div>".repeat(n),
            "<select><option><div>".repeat(n),
            "<ul><li><p>x".repeat(n),
            "<h1><h2><div>".repeat(n),
            (0..n).map(|i| format!("<b id={i}><p>x")).collect(),
            "<a><div><a><div>".repeat(n),
            "<button><p><button>".repeat(n),
            "<template><div>".repeat(n),
            "<object><p></object>".repeat(n),
            "<i/><a id=1>x<nobr>x".repeat(n),
        ];
        for html in &cases {
            let (est, real) = (nesting_depth(html), parsed_depth(html));
            assert!(
                est >= real,
                "{}…: estimated {est}, parsed {real}",
                &html[..40]
            );
        }
        // No run of tags, repeated, builds depth the estimate misses: for
        // short runs drawn from the elements whose rules differ most, the
        // parser's depth stays within twice the estimate. Formatting
        // elements have a run of their own below, as the parser's
        // adoption agency reopens them; a page it still nests deeper than
        // the estimate is refused after parsing, by the depth built
        // (`parse_document`).
        const NAMES: &[&str] = &[
            "div", "p", "li", "ul", "dd", "dt", "dl", "table", "tr", "td", "th", "tbody", "span",
            "section", "svg", "math", "title", "option", "select", "button", "h1", "h2", "rb",
            "ruby", "template", "object", "br", "img", "form", "pre", "x", "caption", "colgroup",
            "frameset", "body", "html", "head", "desc", "mi", "textarea", "script", "iframe",
        ];
        estimates_hold_for_runs_of(NAMES, 0x9e37_79b9_7f4a_7c15);
    }

    /// For 3,000 short runs of tags drawn from `names` (start, end and
    /// self-closed tags, with and without attributes and text), repeated
    /// 60 times, the parser's depth stays within twice the estimate.
    fn estimates_hold_for_runs_of(names: &[&str], mut seed: u64) {
        let mut next = |k: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % k as u64) as usize
        };
        for _ in 0..3_000 {
            let mut unit = String::new();
            for _ in 0..1 + next(5) {
                let name = names[next(names.len())];
                match next(6) {
                    0 | 1 => unit.push_str(&format!("</{name}>")),
                    2 => unit.push_str(&format!("<{name}/>")),
                    3 => unit.push_str(&format!("<{name} id={}>", next(4))),
                    _ => unit.push_str(&format!("<{name}>")),
                }
                if next(3) == 0 {
                    unit.push('x');
                }
            }
            let html = unit.repeat(60);
            let (est, real) = (nesting_depth(&html), parsed_depth(&html));
            assert!(
                real <= 2 * est + 12,
                "estimated {est}, parsed {real}: {unit} (repeated)"
            );
        }
    }

    /// Runs of formatting elements, misnested among blocks as sloppy and
    /// hostile pages nest them, are estimated within reach of what the
    /// parser's adoption agency builds of them.
    #[test]
    fn formatting_elements_are_estimated_near_what_the_parser_builds() {
        const NAMES: &[&str] = &[
            "a", "b", "i", "nobr", "font", "em", "strong", "u", "div", "p", "table", "td", "span",
            "li", "x",
        ];
        estimates_hold_for_runs_of(NAMES, 0x2545_f491_4f6c_dd1d);
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
