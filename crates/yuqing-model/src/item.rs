use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::Level;

/// How a source is collected: the `kind` of a `[[source]]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Feed,
    Page,
    Forum,
    Microblog,
    Json,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Feed => "feed",
            SourceKind::Page => "page",
            SourceKind::Forum => "forum",
            SourceKind::Microblog => "microblog",
            SourceKind::Json => "json",
        }
    }
}

/// What the reader calls a source (来源类型). Config accepts the English or the
/// Chinese name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    #[serde(alias = "新闻")]
    News,
    #[serde(alias = "论坛")]
    Forum,
    #[serde(alias = "微博")]
    Microblog,
    #[serde(alias = "贴吧")]
    Tieba,
    #[serde(alias = "客户端")]
    App,
    #[serde(alias = "政务")]
    Government,
    #[serde(alias = "博客")]
    Blog,
    #[serde(alias = "视频")]
    Video,
    #[serde(alias = "外媒")]
    Foreign,
}

impl SourceType {
    pub const ALL: [SourceType; 9] = [
        SourceType::News,
        SourceType::Forum,
        SourceType::Microblog,
        SourceType::Tieba,
        SourceType::App,
        SourceType::Government,
        SourceType::Blog,
        SourceType::Video,
        SourceType::Foreign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::News => "news",
            SourceType::Forum => "forum",
            SourceType::Microblog => "microblog",
            SourceType::Tieba => "tieba",
            SourceType::App => "app",
            SourceType::Government => "government",
            SourceType::Blog => "blog",
            SourceType::Video => "video",
            SourceType::Foreign => "foreign",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            SourceType::News => "新闻",
            SourceType::Forum => "论坛",
            SourceType::Microblog => "微博",
            SourceType::Tieba => "贴吧",
            SourceType::App => "客户端",
            SourceType::Government => "政务",
            SourceType::Blog => "博客",
            SourceType::Video => "视频",
            SourceType::Foreign => "外媒",
        }
    }

    /// Parses the English or the Chinese name.
    pub fn parse(s: &str) -> Option<SourceType> {
        SourceType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s) || t.zh() == s)
    }
}

/// Engagement counts, where the source publishes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reposts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<u64>,
}

/// One collected post, article or reply, as the crawler emits it on
/// `items.raw`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id: see [`crate::item_id_for_url`] and [`crate::item_id_for_post`].
    pub id: String,
    /// The configured source's id.
    pub source: String,
    pub source_kind: SourceKind,
    pub source_type: SourceType,
    /// Host the item was published on, for filters and reports.
    pub site: String,
    pub url: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    pub fetched_at: DateTime<Utc>,
    #[serde(default)]
    pub engagement: Engagement,
    /// For a reply: the id of the thread or post it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

impl Item {
    /// Published time when known, else the time it was collected.
    pub fn time(&self) -> DateTime<Utc> {
        self.published_at.unwrap_or(self.fetched_at)
    }
}

/// One token of the analyzer's segmentation, with byte offsets into the text
/// it came from. Tokens travel with the analyzed item so the indexer does not
/// segment again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The word; a word of up to 24 bytes (eight Chinese characters) is
    /// held inline, so segmenting an item does not allocate per word.
    pub text: CompactString,
    pub start: usize,
    pub end: usize,
}

/// The part of an item a [`Mark`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemField {
    Title,
    Text,
}

/// Where a term or word was found, for highlighting: byte offsets into the
/// item's title or text as published, whatever normalization and squeezing
/// matching went through (`敏*感` is marked whole, `這間` where it stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mark {
    pub field: ItemField,
    pub start: u32,
    pub end: u32,
}

/// Marks kept per hit: enough to highlight, bounded for a text that
/// repeats a word a thousand times.
pub const MAX_MARKS: usize = 16;

/// One rule that fired on an item, with the terms that made it fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    pub rule_id: String,
    pub rule_name: String,
    pub topic: String,
    pub level: Level,
    pub weight: u32,
    /// The query terms found in the item (deduplicated, in query order).
    pub terms: Vec<String>,
    /// Where those terms were found, in order, at most [`MAX_MARKS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// How an item feels: 正面, 中性 or 负面.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

impl SentimentLabel {
    pub fn zh(self) -> &'static str {
        match self {
            SentimentLabel::Positive => "正面",
            SentimentLabel::Neutral => "中性",
            SentimentLabel::Negative => "负面",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "negative",
        }
    }
}

/// The sentiment judgement of an item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// How sure the call is, 0.5 to 1.
    pub confidence: f32,
    /// The model's probability that the item is positive.
    pub positive: f32,
}

/// A keyword of an item, by TF-IDF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyword {
    pub word: String,
    pub weight: f32,
}

/// A lexicon word found in an item (outside every allow-list phrase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexiconHit {
    /// The word as the lexicon normalizes it.
    pub word: String,
    pub category: String,
    pub weight: u32,
    /// Times found.
    pub count: u32,
    /// Where it was found, in order, at most [`MAX_MARKS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// An item with the analyzer's judgement, as emitted on `items.analyzed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzedItem {
    pub item: Item,
    /// Segmentation of the title.
    pub title_tokens: Vec<Token>,
    /// Segmentation of the text.
    pub text_tokens: Vec<Token>,
    pub hits: Vec<RuleHit>,
    /// Lexicon words found, heaviest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lexicon_hits: Vec<LexiconHit>,
    /// 正面 / 中性 / 负面, when a sentiment model is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    /// Its words with the highest TF-IDF, highest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<Keyword>,
    /// Sensitivity score, 0-100.
    pub score: u8,
    /// Alert level: the highest of the score's level and every hit rule's level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// 64-bit SimHash of the content's words, for grouping reprints into
    /// events.
    pub simhash: u64,
    /// 64-bit SimHash of its pairs of consecutive words, which confirms a
    /// reprint the word SimHash finds (0 from analyzers before it existed).
    #[serde(default)]
    pub simhash_pairs: u64,
}

/// Whether `c` is a bidirectional mark, embedding, override or isolate:
/// what crawled text carries to show its words in another order than they
/// are (U+202E), and what no monitored text needs.
pub fn is_direction_control(c: char) -> bool {
    matches!(
        c,
        '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}
