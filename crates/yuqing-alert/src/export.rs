//! Reports as Word (DOCX) and PDF documents.
//!
//! Both are made from the report's Markdown, the output of the templates
//! analysts edit, so an edited template changes every format alike. The
//! Markdown is read into a few kinds of block (headings, paragraphs,
//! lists, tables, rules) holding runs of plain text, which each writer lays
//! out in its own terms: crawled text never reaches either as markup. PDF
//! is typeset by Typst with fonts of this machine; Chinese needs a CJK
//! font installed (Debian: `fonts-noto-cjk`) or found in
//! `report.font_dirs`.

use std::path::PathBuf;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime};
use typst::layout::FrameItem;
use typst::syntax::{FileId, Source};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_kit::fonts::FontStore;
use typst_layout::PagedDocument;

/// The formats a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Html,
    Docx,
    Pdf,
}

impl ReportFormat {
    /// `md`, `html`, `docx` or `pdf` (`markdown` too).
    pub fn parse(s: &str) -> Option<ReportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "html" | "htm" => Some(ReportFormat::Html),
            "docx" => Some(ReportFormat::Docx),
            "pdf" => Some(ReportFormat::Pdf),
            _ => None,
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "md",
            ReportFormat::Html => "html",
            ReportFormat::Docx => "docx",
            ReportFormat::Pdf => "pdf",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the DOCX: {0}")]
    Docx(String),
    #[error(
        "no font with Chinese characters for the PDF: none among the system's fonts{dirs} \
         (install one, e.g. `apt-get install fonts-noto-cjk`, or name a directory holding one \
         in report.font_dirs)"
    )]
    NoCjkFont { dirs: String },
    #[error("report.font_dirs: {path} is not a directory")]
    FontDir { path: String },
    #[error("typesetting the PDF: {0}")]
    Typeset(String),
}

/// A run of text, bold or linked or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub strong: bool,
    pub emphasis: bool,
    /// An http(s) link; other schemes are dropped, the text kept.
    pub link: Option<String>,
}

/// A block of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Heading(u8, Vec<Span>),
    Paragraph(Vec<Span>),
    /// Items, numbered from the first number when there is one.
    List(Option<u64>, Vec<Vec<Span>>),
    /// Header cells, then rows of cells.
    Table(Vec<Vec<Span>>, Vec<Vec<Vec<Span>>>),
    Rule,
}

/// The longest link a document keeps (Typst's limit is 8,000 bytes).
const MAX_LINK: usize = 4_000;

/// Text as a document shows it: controls and direction overrides, which
/// crawled text may carry to garble or reorder a line, removed; line
/// breaks and tabs as spaces.
fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' => None,
            c if c.is_control() || yuqing_model::is_direction_control(c) => None,
            c => Some(c),
        })
        .collect()
}

/// Reads the report's Markdown into blocks.
pub fn blocks(markdown: &str) -> Vec<Block> {
    #[derive(Default)]
    struct Style {
        strong: u32,
        emphasis: u32,
        link: Option<String>,
    }
    let mut out = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut style = Style::default();
    let mut items: Vec<Vec<Span>> = Vec::new();
    let mut list_depth = 0u32;
    let mut numbered: Option<u64> = None;
    let mut head: Vec<Vec<Span>> = Vec::new();
    let mut rows: Vec<Vec<Vec<Span>>> = Vec::new();
    let mut row: Vec<Vec<Span>> = Vec::new();
    let mut in_head = false;
    let push_text = |spans: &mut Vec<Span>, style: &Style, text: &str| {
        let text = clean(text);
        if text.is_empty() {
            return;
        }
        let (strong, emphasis) = (style.strong > 0, style.emphasis > 0);
        match spans.last_mut() {
            Some(last)
                if last.strong == strong
                    && last.emphasis == emphasis
                    && last.link == style.link =>
            {
                last.text.push_str(&text)
            }
            _ => spans.push(Span {
                text,
                strong,
                emphasis,
                link: style.link.clone(),
            }),
        }
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                push_text(&mut spans, &style, &t)
            }
            // HTML a template holds is for the HTML page (crawled text
            // never makes any: it is escaped); a line break stays one.
            Event::InlineHtml(t) | Event::Html(t)
                if t.trim_start().to_ascii_lowercase().starts_with("<br") =>
            {
                push_text(&mut spans, &style, " ")
            }
            Event::End(TagEnd::HtmlBlock | TagEnd::CodeBlock | TagEnd::BlockQuote(_))
                if list_depth == 0 && !spans.is_empty() =>
            {
                out.push(Block::Paragraph(std::mem::take(&mut spans)))
            }
            Event::SoftBreak | Event::HardBreak => push_text(&mut spans, &style, " "),
            Event::Rule => out.push(Block::Rule),
            Event::Start(Tag::Strong) => style.strong += 1,
            Event::End(TagEnd::Strong) => style.strong = style.strong.saturating_sub(1),
            Event::Start(Tag::Emphasis) => style.emphasis += 1,
            Event::End(TagEnd::Emphasis) => style.emphasis = style.emphasis.saturating_sub(1),
            Event::Start(Tag::Link { dest_url, .. }) => {
                // Typst refuses links over 8,000 bytes; such a link is
                // dropped, its text kept.
                style.link = crate::channels::safe_link(&dest_url).filter(|u| u.len() <= MAX_LINK)
            }
            Event::End(TagEnd::Link) => style.link = None,
            Event::Start(Tag::List(first)) => {
                // A list inside an item: the item so far is an item of its own.
                if list_depth > 0 && !spans.is_empty() {
                    items.push(std::mem::take(&mut spans));
                }
                if list_depth == 0 {
                    numbered = first;
                }
                list_depth += 1;
            }
            Event::End(TagEnd::List(_)) => {
                list_depth = list_depth.saturating_sub(1);
                if list_depth == 0 && !items.is_empty() {
                    out.push(Block::List(numbered, std::mem::take(&mut items)));
                }
            }
            Event::End(TagEnd::Item) if !spans.is_empty() => {
                items.push(std::mem::take(&mut spans));
            }
            Event::End(TagEnd::Paragraph) => {
                // Paragraphs inside list items (a loose list) stay in the item.
                if list_depth == 0 && !spans.is_empty() {
                    out.push(Block::Paragraph(std::mem::take(&mut spans)));
                } else if list_depth > 0 {
                    push_text(&mut spans, &style, " ");
                }
            }
            Event::End(TagEnd::Heading(level)) => {
                let level = match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    HeadingLevel::H3 => 3,
                    _ => 4,
                };
                out.push(Block::Heading(level, std::mem::take(&mut spans)));
            }
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                head = std::mem::take(&mut row);
            }
            Event::End(TagEnd::TableCell) => row.push(trim(std::mem::take(&mut spans))),
            Event::End(TagEnd::TableRow) if !in_head => rows.push(std::mem::take(&mut row)),
            Event::End(TagEnd::Table) => {
                out.push(Block::Table(
                    std::mem::take(&mut head),
                    std::mem::take(&mut rows),
                ));
            }
            _ => {}
        }
    }
    if !spans.is_empty() {
        out.push(Block::Paragraph(spans));
    }
    for b in &mut out {
        match b {
            Block::Heading(_, s) | Block::Paragraph(s) => *s = trim(std::mem::take(s)),
            Block::List(_, items) => {
                for s in items {
                    *s = trim(std::mem::take(s));
                }
            }
            _ => {}
        }
    }
    out
}

/// Spaces at either end of a run of spans removed.
fn trim(mut spans: Vec<Span>) -> Vec<Span> {
    if let Some(first) = spans.first_mut() {
        first.text = first.text.trim_start().to_string();
    }
    if let Some(last) = spans.last_mut() {
        last.text = last.text.trim_end().to_string();
    }
    spans.retain(|s| !s.text.is_empty());
    spans
}

/// How many columns a table has: its widest row, header included.
fn columns(head: &[Vec<Span>], rows: &[Vec<Vec<Span>>]) -> usize {
    rows.iter().map(Vec::len).fold(head.len(), usize::max)
}

/// The plain text of spans.
fn plain(spans: &[Span]) -> String {
    spans.iter().map(|s| s.text.as_str()).collect()
}

/// The report's title: its first heading's text.
pub fn title(blocks: &[Block]) -> String {
    blocks
        .iter()
        .find_map(|b| match b {
            Block::Heading(_, s) => Some(plain(s)),
            _ => None,
        })
        .unwrap_or_default()
}

/// The report as a Word document. Chinese is set in 宋体 and headings in
/// 黑体, the East Asian fonts every Chinese Windows has; Word substitutes
/// its own where they are missing.
pub fn docx(markdown: &str) -> Result<Vec<u8>, ExportError> {
    use docx_rs::{
        AlignmentType, Docx, Hyperlink, HyperlinkType, Paragraph, Run, RunFonts, Table, TableCell,
        TableRow, WidthType,
    };
    let body_font = || {
        RunFonts::new()
            .east_asia("宋体")
            .ascii("Times New Roman")
            .hi_ansi("Times New Roman")
    };
    let heading_font = || {
        RunFonts::new()
            .east_asia("黑体")
            .ascii("Arial")
            .hi_ansi("Arial")
    };
    let run = |s: &Span, heading: bool, size: usize| {
        let mut r = Run::new().add_text(&s.text).size(size).fonts(if heading {
            heading_font()
        } else {
            body_font()
        });
        if s.strong || heading {
            r = r.bold();
        }
        if s.emphasis {
            r = r.italic();
        }
        if s.link.is_some() {
            r = r.color("1A5FB4").underline("single");
        }
        r
    };
    let paragraph = |spans: &[Span], heading: bool, size: usize| {
        let mut p = Paragraph::new();
        for s in spans {
            p = match &s.link {
                Some(url) => p.add_hyperlink(
                    Hyperlink::new(url, HyperlinkType::External).add_run(run(s, heading, size)),
                ),
                None => p.add_run(run(s, heading, size)),
            };
        }
        p
    };
    // docx-rs numbers links from a global counter it does not update
    // atomically: one document at a time, or two links may share an id.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = blocks(markdown);
    let mut doc = Docx::new()
        .default_fonts(body_font())
        .default_size(21)
        .custom_property("generator", "yuqing");
    for b in &blocks {
        match b {
            Block::Heading(level, spans) => {
                let size = match level {
                    1 => 36,
                    2 => 30,
                    _ => 24,
                };
                let mut p = paragraph(spans, true, size)
                    .keep_next(true)
                    .outline_lvl(usize::from(level - 1));
                if *level == 1 {
                    p = p.align(AlignmentType::Center);
                }
                doc = doc.add_paragraph(p);
            }
            Block::Paragraph(spans) => doc = doc.add_paragraph(paragraph(spans, false, 21)),
            Block::List(numbered, items) => {
                for (n, item) in items.iter().enumerate() {
                    let mut spans = vec![Span {
                        text: match numbered {
                            Some(first) => format!("{}. ", first + n as u64),
                            None => "• ".into(),
                        },
                        strong: false,
                        emphasis: false,
                        link: None,
                    }];
                    spans.extend(item.iter().cloned());
                    doc = doc.add_paragraph(paragraph(&spans, false, 21).indent(
                        Some(360),
                        Some(docx_rs::SpecialIndentType::Hanging(240)),
                        None,
                        None,
                    ));
                }
            }
            Block::Table(head, rows) => {
                let columns = columns(head, rows);
                if columns == 0 {
                    continue;
                }
                let cell = |spans: &[Span], bold: bool| {
                    let spans: Vec<Span> = spans
                        .iter()
                        .cloned()
                        .map(|mut s| {
                            s.strong |= bold;
                            s
                        })
                        .collect();
                    TableCell::new().add_paragraph(paragraph(&spans, false, 18))
                };
                let row = |cells: &[Vec<Span>], bold: bool| {
                    let mut v: Vec<TableCell> = cells.iter().map(|c| cell(c, bold)).collect();
                    while v.len() < columns {
                        v.push(TableCell::new().add_paragraph(Paragraph::new()));
                    }
                    TableRow::new(v)
                };
                let mut all = vec![row(head, true)];
                all.extend(rows.iter().map(|r| row(r, false)));
                doc = doc
                    .add_table(Table::new(all).width(5000, WidthType::Pct))
                    .add_paragraph(Paragraph::new());
            }
            Block::Rule => doc = doc.add_paragraph(Paragraph::new()),
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    doc.build()
        .pack(&mut out)
        .map_err(|e| ExportError::Docx(e.to_string()))?;
    Ok(out.into_inner())
}

/// A Typst string literal holding `s` as it is.
fn typst_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Spans as Typst markup: every text a string literal, so nothing in it
/// is read as markup or code.
fn typst_spans(spans: &[Span]) -> String {
    let mut out = String::new();
    for s in spans {
        let mut body = format!("#{}", typst_str(&s.text));
        if s.strong {
            body = format!("#strong[{body}]");
        }
        if s.emphasis {
            body = format!("#emph[{body}]");
        }
        if let Some(url) = &s.link {
            body = format!("#link({})[{body}]", typst_str(url));
        }
        out.push_str(&body);
    }
    out
}

/// The report as Typst markup, fonts tried in the order given.
pub fn typst_source(markdown: &str, fonts: &[String]) -> String {
    let blocks = blocks(markdown);
    let font_list: Vec<String> = fonts.iter().map(|f| typst_str(f)).collect();
    let mut src = format!(
        "#set document(title: {title})\n\
         #set page(paper: \"a4\", margin: (x: 2.2cm, y: 2.4cm), numbering: \"1 / 1\")\n\
         #set text(font: ({fonts}), lang: \"zh\", region: \"cn\", size: 10.5pt)\n\
         #set par(leading: 0.75em)\n\
         #show heading.where(level: 1): set align(center)\n\
         #show heading: set block(above: 1.4em, below: 0.9em)\n\
         #show link: set text(fill: rgb(\"#1a5fb4\"))\n\
         #set table(stroke: 0.5pt + luma(150), inset: 5pt, fill: (x, y) => if y == 0 {{ luma(235) }})\n\
         #show table.cell.where(y: 0): set text(weight: \"bold\")\n\
         #show table: set text(size: 9pt)\n\n",
        title = typst_str(&title(&blocks)),
        fonts = if font_list.is_empty() {
            String::new()
        } else {
            format!("{},", font_list.join(", "))
        },
    );
    for b in &blocks {
        match b {
            Block::Heading(level, spans) => {
                src.push_str(&"=".repeat(usize::from(*level)));
                src.push(' ');
                src.push_str(&typst_spans(spans));
                src.push_str("\n\n");
            }
            Block::Paragraph(spans) => {
                src.push_str(&typst_spans(spans));
                src.push_str("\n\n");
            }
            Block::List(None, items) => {
                for item in items {
                    src.push_str("- ");
                    src.push_str(&typst_spans(item));
                    src.push('\n');
                }
                src.push('\n');
            }
            Block::List(Some(first), items) => {
                src.push_str(&format!("#enum(start: {first},\n"));
                for item in items {
                    src.push_str(&format!("  [{}],\n", typst_spans(item)));
                }
                src.push_str(")\n\n");
            }
            Block::Table(head, rows) => {
                let columns = columns(head, rows);
                if columns == 0 {
                    continue;
                }
                let cells = |cells: &[Vec<Span>]| {
                    let mut v: Vec<String> = cells
                        .iter()
                        .map(|c| format!("[{}]", typst_spans(c)))
                        .collect();
                    v.resize(columns, "[]".into());
                    v.join(", ")
                };
                src.push_str(&format!(
                    "#table(columns: {columns}, table.header({}),\n",
                    cells(head)
                ));
                for r in rows {
                    src.push_str("  ");
                    src.push_str(&cells(r));
                    src.push_str(",\n");
                }
                src.push_str(")\n\n");
            }
            Block::Rule => src.push_str("#line(length: 100%, stroke: 0.5pt + luma(150))\n\n"),
        }
    }
    src
}

/// Families tried for Chinese text, in this order, among those installed.
const CJK_FAMILIES: &[&str] = &[
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Serif CJK SC",
    "Source Han Serif SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "AR PL UMing CN",
    "Microsoft YaHei",
    "SimSun",
    "PingFang SC",
];

/// The fonts PDF reports are set in: the system's, and those in
/// `report.font_dirs`.
pub struct PdfFonts {
    store: FontStore,
    /// Families to set text in, best first.
    families: Vec<String>,
    /// Families of `report.fonts` not installed, or without Chinese.
    unknown: Vec<String>,
}

impl std::fmt::Debug for PdfFonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfFonts")
            .field("families", &self.families)
            .finish()
    }
}

impl PdfFonts {
    /// Finds the fonts: `preferred` families first (from `report.fonts`),
    /// then the usual CJK families, then any font that has Chinese.
    pub fn load(dirs: &[PathBuf], preferred: &[String]) -> Result<PdfFonts, ExportError> {
        let mut store = FontStore::new();
        for dir in dirs {
            if !dir.is_dir() {
                return Err(ExportError::FontDir {
                    path: dir.display().to_string(),
                });
            }
            store.extend(typst_kit::fonts::scan(dir));
        }
        store.extend(typst_kit::fonts::system());
        let book = store.book();
        let has_han = |family: &str| {
            book.select_family(&family.to_lowercase())
                .filter_map(|i| book.info(i))
                .any(|info| info.coverage.contains('中' as u32))
        };
        let unknown: Vec<String> = preferred.iter().filter(|f| !has_han(f)).cloned().collect();
        let mut families: Vec<String> = preferred
            .iter()
            .map(String::as_str)
            .chain(CJK_FAMILIES.iter().copied())
            .filter(|f| has_han(f))
            .map(str::to_string)
            .collect();
        if families.is_empty() {
            // Any family at all with Chinese in it.
            families.extend(
                book.families()
                    .filter_map(|(name, mut ids)| {
                        ids.any(|i| {
                            book.info(i)
                                .is_some_and(|info| info.coverage.contains('中' as u32))
                        })
                        .then(|| name.to_string())
                    })
                    .take(1),
            );
        }
        if families.is_empty() {
            let dirs = if dirs.is_empty() {
                String::new()
            } else {
                format!(
                    " or in {}",
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(ExportError::NoCjkFont { dirs });
        }
        let mut seen = std::collections::HashSet::new();
        families.retain(|f| seen.insert(f.to_lowercase()));
        Ok(PdfFonts {
            store,
            families,
            unknown,
        })
    }

    /// [`PdfFonts::load`] once per process for the same settings: finding
    /// fonts reads every font file's tables.
    pub fn cached(
        dirs: &[PathBuf],
        preferred: &[String],
    ) -> Result<std::sync::Arc<PdfFonts>, ExportError> {
        type Loaded = ((Vec<PathBuf>, Vec<String>), std::sync::Arc<PdfFonts>);
        static LOADED: std::sync::Mutex<Vec<Loaded>> = std::sync::Mutex::new(Vec::new());
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        let key = (dirs.to_vec(), preferred.to_vec());
        if let Some((_, f)) = loaded.iter().find(|(k, _)| *k == key) {
            return Ok(f.clone());
        }
        let fonts = std::sync::Arc::new(PdfFonts::load(dirs, preferred)?);
        loaded.push((key, fonts.clone()));
        Ok(fonts)
    }

    /// The families text is set in, best first.
    pub fn families(&self) -> &[String] {
        &self.families
    }

    /// Families of `report.fonts` that are not installed, or have no
    /// Chinese: they are passed over.
    pub fn unknown(&self) -> &[String] {
        &self.unknown
    }
}

/// A PDF and the characters no font could show.
#[derive(Debug)]
pub struct Pdf {
    pub bytes: Vec<u8>,
    /// Characters drawn as empty boxes, because no font has them.
    pub missing: Vec<char>,
}

struct ReportWorld<'a> {
    library: LazyHash<Library>,
    fonts: &'a PdfFonts,
    main: Source,
    today: chrono::NaiveDate,
}

impl World for ReportWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }
    fn book(&self) -> &LazyHash<FontBook> {
        self.fonts.store.book()
    }
    fn main(&self) -> FileId {
        self.main.id()
    }
    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }
    fn file(&self, _: FileId) -> FileResult<Bytes> {
        // A report reads no files: no images, no includes.
        Err(FileError::AccessDenied)
    }
    fn font(&self, index: usize) -> Option<Font> {
        self.fonts.store.font(index)
    }
    fn today(&self, _: Option<typst::foundations::Duration>) -> Option<Datetime> {
        use chrono::Datelike;
        Datetime::from_ymd(
            self.today.year(),
            self.today.month() as u8,
            self.today.day() as u8,
        )
    }
}

/// Typesets the report's Markdown as a PDF, one at a time: Typst keeps
/// what it computed in a process-wide cache, emptied after each.
pub fn pdf(markdown: &str, fonts: &PdfFonts) -> Result<Pdf, ExportError> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pdf = typeset(markdown, fonts);
    typst::comemo::evict(0);
    pdf
}

/// The report laid out in pages.
fn layout(markdown: &str, fonts: &PdfFonts) -> Result<PagedDocument, ExportError> {
    let world = ReportWorld {
        library: LazyHash::new(Library::default()),
        fonts,
        main: Source::detached(typst_source(markdown, fonts.families())),
        today: chrono::Utc::now().date_naive(),
    };
    typst::compile::<PagedDocument>(&world)
        .output
        .map_err(typeset_error)
}

fn typeset(markdown: &str, fonts: &PdfFonts) -> Result<Pdf, ExportError> {
    let doc = layout(markdown, fonts)?;
    let mut missing = Vec::new();
    for page in doc.pages() {
        missing_glyphs(&page.frame, &mut missing);
    }
    missing.sort_unstable();
    missing.dedup();
    let options = typst_pdf::PdfOptions {
        ident: typst::foundations::Smart::Auto,
        ..Default::default()
    };
    let bytes = typst_pdf::pdf(&doc, &options).map_err(typeset_error)?;
    Ok(Pdf { bytes, missing })
}

/// Typst's errors, in one.
fn typeset_error(errors: impl AsRef<[typst::diag::SourceDiagnostic]>) -> ExportError {
    ExportError::Typeset(
        errors
            .as_ref()
            .iter()
            .map(|e| e.message.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// Characters set with a font's empty glyph (id 0), which no font had.
fn missing_glyphs(frame: &typst::layout::Frame, out: &mut Vec<char>) {
    for (_, item) in frame.items() {
        match item {
            FrameItem::Group(g) => missing_glyphs(&g.frame, out),
            FrameItem::Text(t) => {
                for g in t.glyphs.iter().filter(|g| g.id == 0) {
                    if let Some(c) = t.text.get(g.range()).and_then(|s| s.chars().next())
                        && !c.is_whitespace()
                    {
                        out.push(c);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The plain text a typeset report shows, for tests.
#[cfg(test)]
fn typeset_text(markdown: &str, fonts: &PdfFonts) -> String {
    let doc = layout(markdown, fonts).unwrap();
    fn walk(frame: &typst::layout::Frame, out: &mut String) {
        for (_, item) in frame.items() {
            match item {
                FrameItem::Group(g) => walk(&g.frame, out),
                FrameItem::Text(t) => out.push_str(&t.text),
                _ => {}
            }
        }
    }
    let mut out = String::new();
    for page in doc.pages() {
        walk(&page.frame, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "# 舆情监测（日报）\n\n\
        - 统计时段：2026-11-26 08:30 至 2026-11-27 08:30\n\
        - 热词：暴雨（3）、\\*转移\\*（2）\n\
        - 采集源：4 个，正常 3 个，**异常 1 个**\n\n\
        ## 预警事件（1 起）\n\n\
        | 级别 | 事件 | 信息数 |\n|---|---|---|\n\
        | 红色 | [标题\\#\\]\\) \"q\" \\\\ #x]( https://news.example/a?x=1 ) | 3 |\n\
        | 黄色 | [坏链接](javascript:alert(1)) | 1 |\n";

    #[test]
    fn markdown_becomes_blocks_of_plain_text() {
        let b = blocks(REPORT);
        assert_eq!(title(&b), "舆情监测（日报）");
        let Block::List(None, items) = &b[1] else {
            panic!("{b:?}")
        };
        assert_eq!(plain(&items[1]), "热词：暴雨（3）、*转移*（2）");
        assert!(items[2].iter().any(|s| s.strong && s.text == "异常 1 个"));
        let Block::Table(head, rows) = &b[3] else {
            panic!("{b:?}")
        };
        assert_eq!(head.len(), 3);
        assert_eq!(plain(&rows[0][1]), "标题#]) \"q\" \\ #x");
        assert_eq!(
            rows[0][1][0].link.as_deref(),
            Some("https://news.example/a?x=1")
        );
        // Only http(s) is linked; the text stays.
        assert_eq!(plain(&rows[1][1]), "坏链接");
        assert_eq!(rows[1][1][0].link, None);
    }

    #[test]
    fn a_table_row_of_crawled_text_keeps_its_cells() {
        // As the report templates write a row: escaped text, a safe link.
        let title = "AT&amp;T | 标题 [x](y) \\ *强调* <b>";
        let url = crate::channels::safe_link("https://s.example/search?q=a|b&c=(d)").unwrap();
        let md = format!(
            "| 级别 | 事件 | 信息数 |\n|---|---|---|\n| 红色 | [{}]({url}) | 3 |\n",
            crate::report::md_escape(title)
        );
        let b = blocks(&md);
        let Block::Table(_, rows) = &b[0] else {
            panic!("{b:?}")
        };
        assert_eq!(rows[0].len(), 3, "{rows:?}");
        assert_eq!(plain(&rows[0][1]), title);
        assert_eq!(rows[0][1][0].link.as_deref(), Some(url.as_str()));
        assert_eq!(plain(&rows[0][2]), "3");
    }

    #[test]
    fn controls_and_direction_overrides_are_removed() {
        let b = blocks("标题\u{202e}反转\u{7}响铃\u{200f}");
        assert_eq!(
            b,
            vec![Block::Paragraph(vec![Span {
                text: "标题反转响铃".into(),
                strong: false,
                emphasis: false,
                link: None,
            }])]
        );
    }

    #[test]
    fn typst_strings_hold_anything() {
        assert_eq!(typst_str("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u{1}\"");
        let src = typst_source("# ]#let x = 1 $ *_<\n\n正文 #panic() // 注释 /* a", &[]);
        assert!(src.contains("#\"]#let x = 1 $ *_<\""), "{src}");
        assert!(src.contains("#\"正文 #panic() // 注释 /* a\""), "{src}");
    }

    #[test]
    fn docx_holds_the_text_escaped() {
        let bytes = docx(REPORT).unwrap();
        assert_eq!(&bytes[..2], b"PK");
        let xml = zip_entry(&bytes, "word/document.xml");
        assert!(xml.contains("舆情监测（日报）"));
        assert!(xml.contains("标题#]) &quot;q&quot; \\ #x") || xml.contains("标题#]) \"q\" \\ #x"));
        assert!(xml.contains("w:eastAsia=\"宋体\""));
        let rels = zip_entry(&bytes, "word/_rels/document.xml.rels");
        assert!(rels.contains("https://news.example/a?x=1"), "{rels}");
        assert!(!rels.contains("javascript"));
    }

    /// One file of a ZIP archive, as text.
    fn zip_entry(zip: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut out).unwrap();
        out
    }

    fn fonts() -> Option<PdfFonts> {
        match PdfFonts::load(&[], &[]) {
            Ok(f) => Some(f),
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn pdf_sets_chinese_and_hostile_text_as_text() {
        let Some(fonts) = fonts() else { return };
        let pdf = pdf(REPORT, &fonts).unwrap();
        assert!(pdf.bytes.starts_with(b"%PDF-"));
        assert_eq!(pdf.missing, Vec::<char>::new());
        let text = typeset_text(REPORT, &fonts);
        for want in [
            "舆情监测（日报）",
            "异常 1 个",
            "标题#])",
            "\\ #x",
            "坏链接",
        ] {
            let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let want: String = want.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(squeezed.contains(&want), "{want} not in {text}");
        }
    }

    #[test]
    fn pdf_names_characters_no_font_has() {
        let Some(fonts) = fonts() else { return };
        // A private-use character: no font draws it.
        let pdf = pdf("# 标题\n\n正文\u{f0001}", &fonts).unwrap();
        assert_eq!(pdf.missing, vec!['\u{f0001}']);
    }

    #[test]
    fn report_fonts_not_installed_are_named_and_passed_over() {
        let Some(_) = fonts() else { return };
        let f = PdfFonts::load(&[], &["No Such Font 仿宋".into()]).unwrap();
        assert_eq!(f.unknown(), ["No Such Font 仿宋"]);
        assert!(!f.families().is_empty());
        assert!(!f.families().iter().any(|x| x.contains("No Such")));
    }

    #[test]
    fn numbered_lists_html_and_long_links() {
        let long = format!("https://e.example/?q={}", "a".repeat(9_000));
        let md =
            format!("<!-- 说明 -->\n\n## 预警事件\n\n3. 甲\n4. 乙<br>丙\n\n[长链接]({long})\n");
        let b = blocks(&md);
        assert_eq!(
            plain(match &b[0] {
                Block::Heading(2, s) => s,
                other => panic!("{other:?}"),
            }),
            "预警事件"
        );
        let Block::List(Some(3), items) = &b[1] else {
            panic!("{b:?}")
        };
        assert_eq!(plain(&items[1]), "乙 丙");
        let Block::Paragraph(s) = &b[2] else {
            panic!("{b:?}")
        };
        assert_eq!((plain(s).as_str(), s[0].link.as_ref()), ("长链接", None));
        let src = typst_source(&md, &[]);
        assert!(src.contains("#enum(start: 3,"), "{src}");
        if let Some(fonts) = fonts() {
            let text = typeset_text(&md, &fonts);
            assert!(text.contains("长链接"), "{text}");
        }
    }

    #[test]
    fn a_font_dir_that_is_not_one_is_named() {
        let e = PdfFonts::load(&[PathBuf::from("/nonexistent/fonts")], &[]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/fonts"), "{e}");
    }
}
