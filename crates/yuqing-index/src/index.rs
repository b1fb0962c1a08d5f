use std::ops::Bound;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::agg_result::AggregationResults;
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::indexer::UserOperation;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery,
    TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};
use yuqing_analysis::events::item_heat;
use yuqing_analysis::normalize::{Normalized, normalize};
use yuqing_analysis::query::{Expr, Meta, Query as RuleQuery, Scope};
use yuqing_analysis::{RuleSet, Segmenter};
use yuqing_bus::Positions;
use yuqing_model::{AnalyzedItem, Item, RuleHit, SourceKind, SourceType};

use crate::tokenizer::{JOINED, JiebaTokenizer, JoinedTokenizer, TOKENIZER, joined};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot open index directory {path}: {message}")]
    Open { path: String, message: String },
    #[error("invalid query: {0}")]
    Query(String),
    /// A syntax error at a byte offset of the query.
    #[error("invalid query: {message} (at byte {pos})")]
    Syntax { pos: usize, message: String },
    #[error("unreadable bus positions in the index's last commit: {0}")]
    Payload(String),
}

/// Hits a search returns at most.
pub const MAX_LIMIT: usize = 500;

/// How deep a search pages at most (offset plus limit), as Elasticsearch's
/// `max_result_window`.
pub const MAX_WINDOW: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    url: Field,
    title: Field,
    text: Field,
    /// The title and text as published, stored apart from the indexed
    /// fields: a stored pre-tokenized value would keep every token.
    title_stored: Field,
    text_stored: Field,
    author: Field,
    author_norm: Field,
    site: Field,
    source: Field,
    source_type: Field,
    published: Field,
    fetched: Field,
    level: Field,
    score: Field,
    rules: Field,
    sentiment: Field,
    heat: Field,
    replies: Field,
    reposts: Field,
    likes: Field,
    views: Field,
}

/// Bumped when the schema changes: an index of another version is moved
/// aside and a new one started (see [`ItemIndex::open`]).
const SCHEMA_VERSION: &str = "2";
const VERSION_FILE: &str = "yuqing-schema-version";
/// Written into `<dir>.migrating` once a carry-over has copied everything.
const MIGRATED: &str = "yuqing-migrated";

/// The schema version the index in `dir` was written with; indexes from
/// before the version file are version 1.
fn schema_version(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(VERSION_FILE))
        .map(|v| v.trim().to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "1".into())
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(JOINED)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        url: b.add_text_field("url", STORED),
        title: b.add_text_field("title", text_opts.clone()),
        text: b.add_text_field("text", text_opts),
        title_stored: b.add_text_field("title_stored", STORED),
        text_stored: b.add_text_field("text_stored", STORED),
        author: b.add_text_field("author", STRING | STORED),
        // Normalized author, for `author:` (contains) in queries.
        author_norm: b.add_text_field("author_norm", STRING),
        site: b.add_text_field("site", STRING | STORED | FAST),
        source: b.add_text_field("source", STRING | STORED | FAST),
        source_type: b.add_text_field("source_type", STRING | STORED | FAST),
        // Unix seconds: range filters, newest-first sorting, histograms.
        published: b.add_i64_field("published", INDEXED | STORED | FAST),
        fetched: b.add_i64_field("fetched", STORED),
        level: b.add_text_field("level", STRING | STORED | FAST),
        score: b.add_u64_field("score", STORED | FAST),
        rules: b.add_text_field("rules", STRING | STORED),
        sentiment: b.add_text_field("sentiment", STRING | STORED | FAST),
        // The item's own heat (source-type weight plus engagement).
        heat: b.add_f64_field("heat", STORED | FAST),
        replies: b.add_u64_field("replies", STORED),
        reposts: b.add_u64_field("reposts", STORED),
        likes: b.add_u64_field("likes", STORED),
        views: b.add_u64_field("views", STORED),
    };
    (b.build(), fields)
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    /// Newest first.
    #[default]
    Time,
    /// Highest sensitivity score first.
    Score,
    /// Hottest first (source-type weight plus engagement).
    Heat,
}

impl SortBy {
    pub fn parse(s: &str) -> Option<SortBy> {
        match s {
            "time" => Some(SortBy::Time),
            "score" => Some(SortBy::Score),
            "heat" => Some(SortBy::Heat),
            _ => None,
        }
    }
}

/// Width of the buckets of the date histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        match s {
            "hour" => Some(Interval::Hour),
            "day" => Some(Interval::Day),
            _ => None,
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Interval::Hour => 3_600,
            Interval::Day => 86_400,
        }
    }
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// A query in the rule language (`坍塌 AND 被困`, `title:"青山区" OR
    /// 临江`, `暴雨 NEAR/10 转移`); empty means everything.
    pub query: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub source_type: Option<String>,
    /// Host, exactly.
    pub site: Option<String>,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: Option<String>,
    /// `blue` … `red`, exactly.
    pub level: Option<String>,
    /// Items the rule with this id fired on.
    pub rule: Option<String>,
    /// Only these item ids (an event's items).
    pub ids: Option<Vec<String>>,
    pub sort: SortBy,
    pub limit: usize,
    pub offset: usize,
    /// Histogram buckets; by default days when the range is over three days
    /// or open, hours otherwise.
    pub interval: Option<Interval>,
    /// East of UTC, in seconds, for day buckets (local midnight); default
    /// UTC+8.
    pub utc_offset: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub id: String,
    pub url: String,
    pub title: String,
    /// Byte ranges of matched terms within `title`.
    pub title_highlights: Vec<(usize, usize)>,
    pub site: String,
    pub source: String,
    pub source_type: String,
    pub author: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    /// When the crawler collected it.
    pub fetched_at: Option<DateTime<Utc>>,
    pub level: Option<String>,
    pub score: u64,
    pub sentiment: Option<String>,
    pub heat: f64,
    pub rules: Vec<String>,
    /// A fragment of the text around the matches.
    pub snippet: String,
    /// Byte ranges of matched terms within `snippet`.
    pub highlights: Vec<(usize, usize)>,
}

/// A facet value and how many matches have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    pub source_type: Vec<FacetCount>,
    pub sentiment: Vec<FacetCount>,
    pub level: Vec<FacetCount>,
    pub site: Vec<FacetCount>,
}

/// One bucket of the date histogram: matches published in
/// `[start, start + interval)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBucket {
    pub start: DateTime<Utc>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
    pub interval: Interval,
    pub histogram: Vec<HistogramBucket>,
    /// For queries with NEAR: candidates the index found, each then checked
    /// against the query on its text. `truncated` when there were more than
    /// [`MAX_VERIFIED`] (the counts are then a lower bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verified {
    pub candidates: usize,
    pub truncated: bool,
}

/// Most candidates of a NEAR query checked on their text per search: the
/// newest, so the newest matches are found; counts, facets and the
/// histogram then cover only those (`Verified::truncated`).
pub const MAX_VERIFIED: usize = 20_000;

/// One day of a backtest: how many stored items the rule fires on, with a
/// few of them.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestDay {
    /// Local date.
    pub day: chrono::NaiveDate,
    pub matches: u64,
    pub examples: Vec<BacktestExample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacktestExample {
    pub id: String,
    pub title: String,
    pub url: String,
    pub site: String,
    pub published_at: DateTime<Utc>,
}

/// A rule run over the stored items of a time range.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Items published in the range, all read.
    pub scanned: usize,
    pub matches: u64,
    /// Every local day of the range, oldest first, days without matches
    /// included.
    pub days: Vec<BacktestDay>,
    /// Each rule run, most matches first, with its matches on each of
    /// `days`.
    pub rules: Vec<RuleBacktest>,
}

/// One rule's share of a backtest.
#[derive(Debug, Clone, Serialize)]
pub struct RuleBacktest {
    pub id: String,
    pub name: String,
    pub matches: u64,
    /// Matches on each day of the backtest's `days`, in order.
    pub days: Vec<u64>,
}

/// The item index, shared by the indexer (writes) and the API (reads).
pub struct ItemIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    segmenter: Segmenter,
    dir: std::path::PathBuf,
    /// Documents are segmented by tantivy-jieba rather than taken
    /// pre-tokenized (the baseline of `yuqing bench index`).
    resegment: bool,
}

impl std::fmt::Debug for ItemIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemIndex").finish_non_exhaustive()
    }
}

/// Characters the regex syntax of tantivy's `RegexQuery` reads as
/// operators.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(tantivy::query::TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqsAndPositions,
    ))
}

/// Every document `query` matches, in index order.
fn doc_set(searcher: &tantivy::Searcher, query: &dyn Query) -> Result<Vec<DocAddress>, IndexError> {
    let mut docs: Vec<DocAddress> = searcher
        .search(query, &DocSetCollector)?
        .into_iter()
        .collect();
    docs.sort_unstable();
    Ok(docs)
}

/// The count, the page of hits ordered by fast field `field` (highest
/// first) and the aggregations of `query`, in one pass.
fn sorted<T>(
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    top: TopDocs,
    field: &str,
    aggs: AggregationCollector,
) -> Result<(usize, Vec<DocAddress>, AggregationResults), IndexError>
where
    T: tantivy::fastfield::FastValue,
    tantivy::collector::sort_key::ComparatorEnum:
        tantivy::collector::sort_key::Comparator<Option<T>>,
{
    let (n, hits, a) = searcher.search(
        query,
        &(
            Count,
            top.order_by_fast_field::<T>(field, Order::Desc),
            aggs,
        ),
    )?;
    Ok((n, hits.into_iter().map(|(_, a)| a).collect(), a))
}

impl ItemIndex {
    /// Opens the index in `dir`, creating it when absent. The items of an
    /// index written with an older schema are carried over into a new one
    /// (their stored text segmented again), built beside it in
    /// `<dir>.migrating`; then the old one is moved aside to
    /// `<dir>.schema-<old>-<time>`, for the operator to delete, and the new
    /// one takes its place. A carry-over cut short by a crash is done again
    /// at the next start, or finished if it had got to the end.
    pub fn open(dir: &Path, segmenter: Segmenter) -> Result<ItemIndex, IndexError> {
        let open_err = |e: &dyn std::fmt::Display| IndexError::Open {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        let name = dir
            .file_name()
            .map_or("index".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.with_file_name(format!("{name}.migrating"));
        if tmp.exists() {
            if tmp.join(MIGRATED).exists() && !dir.join("meta.json").exists() {
                std::fs::rename(&tmp, dir).map_err(|e| open_err(&e))?;
                let _ = std::fs::remove_file(dir.join(MIGRATED));
            } else {
                std::fs::remove_dir_all(&tmp).map_err(|e| open_err(&e))?;
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        let old = schema_version(dir);
        if dir.join("meta.json").exists() && old != SCHEMA_VERSION {
            let aside = dir.with_file_name(format!(
                "{name}.schema-{old}-{}",
                Utc::now().format("%Y%m%d%H%M%S")
            ));
            match Index::open_in_dir(dir) {
                Ok(_) => {
                    // A copy that fails (a full disk) leaves the old index
                    // where it is, to be carried over at the next start.
                    std::fs::create_dir_all(&tmp).map_err(|e| open_err(&e))?;
                    let copied = Self::open_current(&tmp, segmenter.clone())
                        .and_then(|new| new.migrate_from(dir));
                    let n = match copied {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = std::fs::remove_dir_all(&tmp);
                            return Err(open_err(&format!(
                                "the index has an older schema and carrying its items over failed: {e}"
                            )));
                        }
                    };
                    std::fs::write(tmp.join(MIGRATED), n.to_string()).map_err(|e| open_err(&e))?;
                    std::fs::rename(dir, &aside).map_err(|e| open_err(&e))?;
                    std::fs::rename(&tmp, dir).map_err(|e| open_err(&e))?;
                    let _ = std::fs::remove_file(dir.join(MIGRATED));
                    tracing::warn!(items = n, old = %aside.display(), "the index had an older schema: its items were carried over into a new one, and the old one moved aside (it can be deleted)");
                }
                // Nothing of it can be read: kept aside, and a new one
                // started (under Kafka the replay fills it).
                Err(e) => {
                    std::fs::rename(dir, &aside).map_err(|e| open_err(&e))?;
                    std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
                    tracing::error!(error = %e, old = %aside.display(), "the index had an older schema and cannot be read: a new one is started, and the old one kept aside");
                }
            }
        }
        Self::open_current(dir, segmenter)
    }

    /// Opens or creates the index in `dir` with this version's schema.
    fn open_current(dir: &Path, segmenter: Segmenter) -> Result<ItemIndex, IndexError> {
        let open_err = |e: &dyn std::fmt::Display| IndexError::Open {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        std::fs::write(dir.join(VERSION_FILE), SCHEMA_VERSION).map_err(|e| open_err(&e))?;
        let (schema, fields) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| open_err(&e))?;
        let index = Index::open_or_create(mmap, schema)?;
        Self::with_reader(index, fields, segmenter, dir, ReloadPolicy::Manual)
    }

    /// Registers the tokenizers and opens the reader.
    fn with_reader(
        index: Index,
        fields: Fields,
        segmenter: Segmenter,
        dir: &Path,
        policy: ReloadPolicy,
    ) -> Result<ItemIndex, IndexError> {
        index
            .tokenizers()
            .register(TOKENIZER, JiebaTokenizer::new(segmenter.clone()));
        index.tokenizers().register(JOINED, JoinedTokenizer);
        let reader = index.reader_builder().reload_policy(policy).try_into()?;
        Ok(ItemIndex {
            index,
            reader,
            fields,
            segmenter,
            dir: dir.to_path_buf(),
            resegment: false,
        })
    }

    /// Opens for reading an index that another process writes: it must
    /// exist with this version's schema (nothing is moved or created), and
    /// it picks up that process's commits by itself.
    pub fn open_existing(dir: &Path, segmenter: Segmenter) -> Result<ItemIndex, IndexError> {
        let open_err = |message: String| IndexError::Open {
            path: dir.display().to_string(),
            message,
        };
        if !dir.join("meta.json").exists() {
            return Err(open_err(
                "no index yet: run the indexer role first (it creates it)".into(),
            ));
        }
        let version = schema_version(dir);
        if version != SCHEMA_VERSION {
            return Err(open_err(format!(
                "the index has schema {version}, this yuqing reads {SCHEMA_VERSION}: run the indexer role of this version first"
            )));
        }
        let (schema, fields) = schema();
        let mmap =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| open_err(e.to_string()))?;
        let index = Index::open(mmap)?;
        if index.schema() != schema {
            return Err(open_err(
                "the index's fields differ from this version's schema".into(),
            ));
        }
        Self::with_reader(
            index,
            fields,
            segmenter,
            dir,
            ReloadPolicy::OnCommitWithDelay,
        )
    }

    /// An index that segments every document again with tantivy-jieba
    /// (default mode, HMM on) instead of taking the analyzer's tokens: what
    /// indexing costs without segment-once, for `yuqing bench index`.
    pub fn open_resegmenting(dir: &Path, segmenter: Segmenter) -> Result<ItemIndex, IndexError> {
        let mut index = Self::open(dir, segmenter)?;
        let mut again = tantivy_jieba::JiebaTokenizer::with_search_mode(false);
        // tantivy-jieba loads its dictionary on first use; load it here, so
        // the first document indexed does not pay for it.
        let _ = tantivy::tokenizer::Tokenizer::token_stream(&mut again, "舆情");
        index.index.tokenizers().register(JOINED, again);
        index.resegment = true;
        Ok(index)
    }

    /// The single writer, with one indexing thread a core (up to 8).
    /// `heap_bytes` bounds its memory.
    pub fn writer(&self, heap_bytes: usize) -> Result<ItemWriter, IndexError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        self.writer_with_threads(heap_bytes, threads)
    }

    /// The single writer with `threads` indexing threads sharing
    /// `heap_bytes` (at least 15 MB a thread).
    pub fn writer_with_threads(
        &self,
        heap_bytes: usize,
        threads: usize,
    ) -> Result<ItemWriter, IndexError> {
        let threads = threads.max(1);
        // Commits keep the positions the index holds until new ones are
        // set; an unreadable payload is reported by `stored_positions`.
        let held: Option<StoredPositions> = self
            .commit_payload()?
            .and_then(|p| serde_json::from_str(&p).ok());
        Ok(ItemWriter {
            writer: self
                .index
                .writer_with_num_threads(threads, heap_bytes.max(15_000_000 * threads))?,
            fields: self.fields,
            resegment: self.resegment,
            positions: held.clone(),
            committed: held,
            failed: false,
            lost: false,
            abandoned: false,
        })
    }

    /// Makes committed documents visible to searches.
    pub fn reload(&self) -> Result<(), IndexError> {
        Ok(self.reader.reload()?)
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Bytes the index takes on disk.
    pub fn size_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The payload of the last commit (the bus positions it covers).
    pub fn commit_payload(&self) -> Result<Option<String>, IndexError> {
        Ok(self.index.load_metas()?.payload)
    }

    /// The positions in `topic` that the last commit holds everything
    /// before (empty when no commit stored any, as on the in-process bus).
    pub fn stored_positions(&self, topic: &str) -> Result<Positions, IndexError> {
        let Some(payload) = self.commit_payload()? else {
            return Ok(Positions::new());
        };
        let stored: StoredPositions = serde_json::from_str(&payload)
            .map_err(|e| IndexError::Payload(format!("{e} in `{payload}`")))?;
        Ok(if stored.topic == topic {
            stored.next
        } else {
            Positions::new()
        })
    }

    /// The tantivy query of a rule-language expression, matching at least
    /// what the expression matches. NEAR and ONEAR become an AND of their
    /// sides, or, under an odd number of NOTs (`negated`), nothing, so the
    /// NOT of them keeps every candidate; `needs_check` is set so the
    /// caller checks the distance on the text.
    fn translate(
        &self,
        q: &RuleQuery,
        e: &Expr,
        negated: bool,
        needs_check: &mut bool,
    ) -> Box<dyn Query> {
        let f = self.fields;
        match e {
            Expr::Term(i) => {
                let spec = &q.terms[*i];
                let words: Vec<String> = self
                    .segmenter
                    .tokens(&spec.text)
                    .into_iter()
                    .map(|t| t.text.as_str().to_lowercase())
                    .collect();
                let fields: &[Field] = match spec.scope {
                    Scope::Any => &[f.title, f.text],
                    Scope::Title => &[f.title],
                    Scope::Text => &[f.text],
                };
                let per_field: Vec<(Occur, Box<dyn Query>)> = fields
                    .iter()
                    .map(|&field| {
                        let q: Box<dyn Query> = match words.as_slice() {
                            [] => Box::new(EmptyQuery),
                            [w] => term_query(field, w),
                            many => Box::new(PhraseQuery::new(
                                many.iter()
                                    .map(|w| Term::from_field_text(field, w))
                                    .collect(),
                            )),
                        };
                        (Occur::Should, q)
                    })
                    .collect();
                Box::new(BooleanQuery::new(per_field))
            }
            Expr::Meta(i) => match &q.metas[*i] {
                Meta::Author(a) => match RegexQuery::from_pattern(
                    &format!(".*{}.*", regex_escape(&a.to_lowercase())),
                    f.author_norm,
                ) {
                    Ok(r) => Box::new(r),
                    Err(_) => Box::new(EmptyQuery),
                },
                Meta::Site(h) => self.site_query(h),
                Meta::SourceType(t) => term_query(f.source_type, t.as_str()),
            },
            Expr::And(v) => Box::new(BooleanQuery::new(
                v.iter()
                    .map(|e| match e {
                        Expr::Not(inner) => (
                            Occur::MustNot,
                            self.translate(q, inner, !negated, needs_check),
                        ),
                        e => (Occur::Must, self.translate(q, e, negated, needs_check)),
                    })
                    .collect(),
            )),
            Expr::Or(v) => Box::new(BooleanQuery::new(
                v.iter()
                    .map(|e| (Occur::Should, self.translate(q, e, negated, needs_check)))
                    .collect(),
            )),
            Expr::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                (
                    Occur::MustNot,
                    self.translate(q, inner, !negated, needs_check),
                ),
            ])),
            Expr::Near { left, right, .. } => {
                *needs_check = true;
                if negated {
                    return Box::new(EmptyQuery);
                }
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, self.translate(q, left, negated, needs_check)),
                    (Occur::Must, self.translate(q, right, negated, needs_check)),
                ]))
            }
        }
    }

    /// The filters of a request, as query clauses.
    fn filters(&self, req: &SearchRequest) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if req.since.is_some() || req.until.is_some() {
            let lower = req.since.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(f.published, t.timestamp()))
            });
            let upper = req.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_i64(f.published, t.timestamp()))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        if let Some(site) = &req.site {
            let key = yuqing_analysis::query::site_key(site);
            clauses.push((Occur::Must, self.site_query(&key)));
        }
        for (field, value) in [
            (f.source_type, &req.source_type),
            (f.sentiment, &req.sentiment),
            (f.level, &req.level),
            (f.rules, &req.rule),
        ] {
            if let Some(v) = value {
                clauses.push((Occur::Must, term_query(field, v)));
            }
        }
        if let Some(ids) = &req.ids {
            clauses.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    ids.iter().map(|id| Term::from_field_text(f.id, id)),
                )),
            ));
        }
        clauses
    }

    /// Items from host `h` or a host below it (`site:gov.cn` takes
    /// `www.gov.cn`), as the rule language's `site:` reads it.
    fn site_query(&self, h: &str) -> Box<dyn Query> {
        let f = self.fields;
        let mut any: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, term_query(f.site, h))];
        if let Ok(r) = RegexQuery::from_pattern(&format!(".*\\.{}", regex_escape(h)), f.site) {
            any.push((Occur::Should, Box::new(r)));
        }
        Box::new(BooleanQuery::new(any))
    }

    /// An item rebuilt from a stored document, for checking a query on it.
    fn stored_item(&self, doc: &TantivyDocument) -> Item {
        let f = self.fields;
        let s = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let author = s(f.author);
        let published = doc
            .get_first(f.published)
            .and_then(|v| v.as_i64())
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
            .unwrap_or_default();
        Item {
            id: s(f.id),
            source: s(f.source),
            source_kind: SourceKind::Page,
            source_type: SourceType::parse(&s(f.source_type)).unwrap_or(SourceType::News),
            site: s(f.site),
            url: s(f.url),
            title: s(f.title_stored),
            text: s(f.text_stored),
            author: (!author.is_empty()).then_some(author),
            published_at: Some(published),
            fetched_at: doc
                .get_first(f.fetched)
                .and_then(|v| v.as_i64())
                .and_then(|t| Utc.timestamp_opt(t, 0).single())
                .unwrap_or(published),
            engagement: Default::default(),
            parent_id: None,
        }
    }

    /// Every item published in `[since, until)` that `rules` fires on,
    /// checked on its stored text as the analyzer checks a new item;
    /// returns how many items were read.
    pub fn scan_matching(
        &self,
        rules: &RuleSet,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        mut each: impl FnMut(&Item, &[RuleHit]),
    ) -> Result<usize, IndexError> {
        let searcher = self.reader.searcher();
        let range = BooleanQuery::new(
            std::iter::once((Occur::Must, Box::new(AllQuery) as Box<dyn Query>))
                .chain(self.filters(&SearchRequest {
                    since,
                    until,
                    ..Default::default()
                }))
                .collect(),
        );
        let docs = doc_set(&searcher, &range)?;
        self.check_stored(&searcher, &docs, rules, &mut each)?;
        Ok(docs.len())
    }

    /// Calls `each` with every item of `docs` (in index order) that `rules`
    /// fire on, checked on its stored text exactly as the analyzer checks a
    /// new item. Items without any term of the rules are passed over
    /// without segmenting them.
    fn check_stored(
        &self,
        searcher: &tantivy::Searcher,
        docs: &[DocAddress],
        rules: &RuleSet,
        each: &mut dyn FnMut(&Item, &[RuleHit]),
    ) -> Result<(), IndexError> {
        for addr in docs {
            let doc: TantivyDocument = searcher.doc(*addr)?;
            let item = self.stored_item(&doc);
            let (title, text) = (Normalized::new(&item.title), Normalized::new(&item.text));
            if !rules.mentions_any(&[&title.text, &text.text]) {
                continue;
            }
            let hits = rules.matches(&self.segmenter.match_doc_normalized(&title, &text, &item));
            if !hits.is_empty() {
                each(&item, &hits);
            }
        }
        Ok(())
    }

    /// Runs `rules` (one saved rule, a draft, or every saved rule) over
    /// the items published in `[since, until)`: the items any of them fires
    /// on per local day (`utc_offset` seconds east of UTC), with up to
    /// `examples` items a day, newest first, and each rule's own count per
    /// day.
    pub fn backtest(
        &self,
        rules: &RuleSet,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        utc_offset: i32,
        examples: usize,
    ) -> Result<Backtest, IndexError> {
        let tz = chrono::FixedOffset::east_opt(utc_offset)
            .ok_or_else(|| IndexError::Query(format!("bad UTC offset {utc_offset}")))?;
        let mut found: Vec<(BacktestExample, Vec<usize>)> = Vec::new();
        let order: Vec<&str> = rules.rules().map(|r| r.id.as_str()).collect();
        let scanned = self.scan_matching(rules, Some(since), Some(until), |item, hits| {
            let fired = hits
                .iter()
                .filter_map(|h| order.iter().position(|id| *id == h.rule_id))
                .collect();
            found.push((
                BacktestExample {
                    id: item.id.clone(),
                    title: item.title.clone(),
                    url: item.url.clone(),
                    site: item.site.clone(),
                    published_at: item.time(),
                },
                fired,
            ))
        })?;
        found.sort_by(|(a, _), (b, _)| {
            b.published_at
                .cmp(&a.published_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut days: Vec<BacktestDay> = Vec::new();
        let (first, last) = (
            since.with_timezone(&tz).date_naive(),
            (until - chrono::Duration::seconds(1))
                .with_timezone(&tz)
                .date_naive(),
        );
        let mut day = first;
        while day <= last {
            days.push(BacktestDay {
                day,
                matches: 0,
                examples: Vec::new(),
            });
            day = day.succ_opt().unwrap_or(day);
            if days.len() > 3_660 {
                break;
            }
        }
        let mut per_rule: Vec<RuleBacktest> = rules
            .rules()
            .map(|r| RuleBacktest {
                id: r.id.clone(),
                name: r.name.clone(),
                matches: 0,
                days: vec![0; days.len()],
            })
            .collect();
        for (e, fired) in &found {
            let d = e.published_at.with_timezone(&tz).date_naive();
            if let Some(n) = days.iter().position(|x| x.day == d) {
                let slot = &mut days[n];
                slot.matches += 1;
                if slot.examples.len() < examples {
                    slot.examples.push(e.clone());
                }
                for &r in fired {
                    per_rule[r].matches += 1;
                    per_rule[r].days[n] += 1;
                }
            }
        }
        per_rule.sort_by(|a, b| b.matches.cmp(&a.matches).then_with(|| a.id.cmp(&b.id)));
        Ok(Backtest {
            since,
            until,
            scanned,
            matches: found.len() as u64,
            days,
            rules: per_rule,
        })
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults, IndexError> {
        // tantivy sets aside room for twice offset + limit hits before it
        // collects any, so a deep page is refused before any work.
        if req.offset.saturating_add(req.limit.clamp(1, MAX_LIMIT)) > MAX_WINDOW {
            return Err(IndexError::Query(format!(
                "offset {} is too deep: offset + limit may be at most {MAX_WINDOW}; \
                 narrow the search with filters or a time range instead",
                req.offset
            )));
        }
        let f = self.fields;
        let searcher = self.reader.searcher();
        let mut needs_check = false;
        let text_query: Box<dyn Query> = if req.query.trim().is_empty() {
            Box::new(AllQuery)
        } else {
            let parsed = RuleQuery::parse(&req.query).map_err(|e| IndexError::Syntax {
                pos: e.pos,
                message: e.message,
            })?;
            self.translate(&parsed, &parsed.expr, false, &mut needs_check)
        };
        let mut clauses = vec![(Occur::Must, text_query.box_clone())];
        clauses.extend(self.filters(req));
        let mut query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        let mut verified = None;
        if needs_check {
            // NEAR: the index finds items with both sides; the text says
            // whether they are near enough.
            let rules = RuleSet::of_query(&req.query).map_err(|e| IndexError::Syntax {
                pos: e.pos,
                message: e.message,
            })?;
            // The newest candidates, when there are too many to check.
            let (candidates, newest) = searcher.search(
                &*query,
                &(
                    Count,
                    TopDocs::with_limit(MAX_VERIFIED)
                        .order_by_fast_field::<i64>("published", Order::Desc),
                ),
            )?;
            let mut docs: Vec<DocAddress> = newest.into_iter().map(|(_, a)| a).collect();
            // Read in store order.
            docs.sort_unstable();
            let mut ids = Vec::new();
            self.check_stored(&searcher, &docs, &rules, &mut |item, _| {
                ids.push(Term::from_field_text(f.id, &item.id))
            })?;
            verified = Some(Verified {
                candidates,
                truncated: candidates > MAX_VERIFIED,
            });
            query = Box::new(TermSetQuery::new(ids));
        }

        let interval = req.interval.unwrap_or(match (req.since, req.until) {
            (Some(s), u) if u.unwrap_or_else(Utc::now) - s <= chrono::Duration::days(3) => {
                Interval::Hour
            }
            _ => Interval::Day,
        });
        let utc_offset = i64::from(req.utc_offset.unwrap_or(8 * 3_600));
        let bucket_offset = (-utc_offset).rem_euclid(interval.seconds());
        let aggs: Aggregations = serde_json::from_value(serde_json::json!({
            "source_type": { "terms": { "field": "source_type", "size": 20 } },
            "sentiment": { "terms": { "field": "sentiment", "size": 5 } },
            "level": { "terms": { "field": "level", "size": 5 } },
            "site": { "terms": { "field": "site", "size": 20 } },
            "histogram": { "histogram": {
                "field": "published",
                "interval": interval.seconds(),
                "offset": bucket_offset,
            } },
        }))
        .map_err(|e| IndexError::Query(e.to_string()))?;
        let agg_collector = AggregationCollector::from_aggs(
            aggs,
            AggContextParams::new(
                AggregationLimitsGuard::default(),
                self.index.tokenizers().clone(),
            ),
        );
        let limit = req.limit.clamp(1, MAX_LIMIT);
        let top = TopDocs::with_limit(limit).and_offset(req.offset);
        let (total, addrs, agg_results) = match req.sort {
            SortBy::Time => sorted::<i64>(&searcher, &*query, top, "published", agg_collector),
            SortBy::Score => sorted::<u64>(&searcher, &*query, top, "score", agg_collector),
            SortBy::Heat => sorted::<f64>(&searcher, &*query, top, "heat", agg_collector),
        }
        .map_err(|e| match e {
            // Hourly buckets over years of items.
            IndexError::Tantivy(tantivy::TantivyError::AggregationError(
                tantivy::aggregation::AggregationError::BucketLimitExceeded { .. }
                | tantivy::aggregation::AggregationError::MemoryExceeded { .. },
            )) => IndexError::Query(
                "the histogram would have too many buckets: use interval=day, or a shorter time range"
                    .into(),
            ),
            e => e,
        })?;
        let agg_json =
            serde_json::to_value(&agg_results).map_err(|e| IndexError::Query(e.to_string()))?;
        let buckets = |name: &str| -> Vec<FacetCount> {
            agg_json[name]["buckets"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .filter_map(|b| {
                            Some(FacetCount {
                                value: b["key"].as_str()?.to_string(),
                                count: b["doc_count"].as_u64()?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let facets = Facets {
            source_type: buckets("source_type"),
            sentiment: buckets("sentiment"),
            level: buckets("level"),
            site: buckets("site"),
        };
        let histogram = agg_json["histogram"]["buckets"]
            .as_array()
            .map(|b| {
                b.iter()
                    .filter_map(|b| {
                        Some(HistogramBucket {
                            start: Utc.timestamp_opt(b["key"].as_f64()? as i64, 0).single()?,
                            count: b["doc_count"].as_u64()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();

        // Snippets: the query's words in the text, found again in the
        // stored text by the analyzer's segmenter.
        let mut words: std::collections::BTreeMap<String, f32> = Default::default();
        let mut terms = Vec::new();
        let mut title_words = std::collections::HashSet::new();
        text_query.query_terms(&mut |term, _| {
            if term.field() == f.text {
                terms.push(term.clone());
            } else if term.field() == f.title
                && let Some(w) = term.value().as_str()
            {
                title_words.insert(w.to_string());
            }
        });
        for term in terms {
            if let Some(w) = term.value().as_str() {
                let df = searcher.doc_freq(&term)?;
                if df > 0 {
                    words.insert(w.to_string(), 1.0 / (1.0 + df as f32));
                }
            }
        }
        let snippets = SnippetGenerator::new(
            words,
            tantivy::tokenizer::TextAnalyzer::from(JiebaTokenizer::new(self.segmenter.clone())),
            f.text,
            160,
        );
        let mut hits = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let s = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let text = s(f.text_stored);
            let snippet = snippets.snippet(&text);
            let (fragment, highlights) = if snippet.fragment().is_empty() {
                (text.chars().take(120).collect::<String>(), Vec::new())
            } else {
                (
                    snippet.fragment().to_string(),
                    snippet
                        .highlighted()
                        .iter()
                        .map(|r| (r.start, r.end))
                        .collect(),
                )
            };
            let title = s(f.title_stored);
            // Titles are short: every word of the query in them is marked.
            let title_highlights = if title_words.is_empty() {
                Vec::new()
            } else {
                self.segmenter
                    .tokens(&title)
                    .into_iter()
                    .filter(|t| title_words.contains(t.text.as_str()))
                    .map(|t| (t.start, t.end))
                    .collect()
            };
            let author = s(f.author);
            let level = s(f.level);
            let sentiment = s(f.sentiment);
            hits.push(SearchHit {
                id: s(f.id),
                url: s(f.url),
                title,
                title_highlights,
                site: s(f.site),
                source: s(f.source),
                source_type: s(f.source_type),
                author: (!author.is_empty()).then_some(author),
                published_at: doc
                    .get_first(f.published)
                    .and_then(|v| v.as_i64())
                    .and_then(|t| Utc.timestamp_opt(t, 0).single()),
                fetched_at: doc
                    .get_first(f.fetched)
                    .and_then(|v| v.as_i64())
                    .and_then(|t| Utc.timestamp_opt(t, 0).single()),
                level: (!level.is_empty()).then_some(level),
                score: doc.get_first(f.score).and_then(|v| v.as_u64()).unwrap_or(0),
                sentiment: (!sentiment.is_empty()).then_some(sentiment),
                heat: doc
                    .get_first(f.heat)
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0),
                rules: doc
                    .get_all(f.rules)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                snippet: fragment,
                highlights,
            });
        }
        Ok(SearchResults {
            total,
            hits,
            facets,
            interval,
            histogram,
            verified,
        })
    }
}

/// The single index writer.
pub struct ItemWriter {
    writer: IndexWriter,
    fields: Fields,
    resegment: bool,
    /// Stored with every commit once set.
    positions: Option<StoredPositions>,
    /// What the last successful commit stored: a failed write puts it
    /// back.
    committed: Option<StoredPositions>,
    /// A write failed: its documents may be lost, so no later commit of
    /// this writer may claim positions past them, until a rollback.
    failed: bool,
    /// A rollback failed after tantivy gave up the writer's lock: this
    /// writer can take no more rollbacks.
    lost: bool,
    /// Documents were given up (see [`ItemWriter::abandon`]): no commit of
    /// this writer may claim positions past them, rollback or not.
    abandoned: bool,
}

/// A commit's payload: per partition of the topic the index is fed from,
/// the offset of the first message not yet in the index.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredPositions {
    topic: String,
    next: Positions,
}

impl std::fmt::Debug for ItemWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemWriter").finish_non_exhaustive()
    }
}

impl ItemWriter {
    /// Adds or replaces the item's document (upsert by item id).
    pub fn upsert(&mut self, a: &AnalyzedItem) -> Result<(), IndexError> {
        self.upsert_all([a])
    }

    /// Adds or replaces the documents of `items`, handed to the indexing
    /// thread as one batch: one channel message and one wake-up for the
    /// whole batch instead of one per document.
    pub fn upsert_all<'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a AnalyzedItem>,
    ) -> Result<(), IndexError> {
        let mut ops = Vec::new();
        for a in items {
            ops.push(UserOperation::Delete(Term::from_field_text(
                self.fields.id,
                &a.item.id,
            )));
            ops.push(UserOperation::Add(self.document(a)));
        }
        if let Err(e) = self.writer.run(ops) {
            self.fail();
            return Err(e.into());
        }
        Ok(())
    }

    /// Discards everything written since the last good commit and clears
    /// a failure, so the writer can take the same documents again: a
    /// caller that retries a failed batch rolls back and writes the whole
    /// batch again before its next commit. The positions go back to the
    /// last good commit's until set again. Documents given up with
    /// [`ItemWriter::abandon`] keep the positions where they are.
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        if self.lost {
            return Err(IndexError::Open {
                path: "index writer".into(),
                message: "lost in a failed rollback; restart the indexer".into(),
            });
        }
        // tantivy's rollback gives up the writer's lock before it makes a
        // new writer, and a writer it cannot make leaves none: it reads the
        // index's meta first, so read it here before anything is given up.
        self.writer.index().load_metas()?;
        if let Err(e) = self.writer.rollback() {
            self.lost = true;
            return Err(e.into());
        }
        self.failed = false;
        self.positions = self.committed.clone();
        Ok(())
    }

    /// The caller gives up documents it could not commit (they come again
    /// after a restart): the positions stay at the last good commit's for
    /// the rest of this writer's life.
    pub fn abandon(&mut self) {
        self.abandoned = true;
        self.positions = self.committed.clone();
    }

    /// After a failed write: back to the positions of the last good
    /// commit, and there until a rollback.
    fn fail(&mut self) {
        self.failed = true;
        self.positions = self.committed.clone();
    }

    fn document(&self, a: &AnalyzedItem) -> TantivyDocument {
        let f = self.fields;
        let item = &a.item;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &item.id);
        doc.add_text(f.url, &item.url);
        doc.add_text(f.title_stored, &item.title);
        doc.add_text(f.text_stored, &item.text);
        if self.resegment {
            doc.add_text(f.title, &item.title);
            doc.add_text(f.text, &item.text);
        } else {
            doc.add_text(f.title, joined(&a.title_tokens));
            doc.add_text(f.text, joined(&a.text_tokens));
        }
        if let Some(author) = &item.author {
            doc.add_text(f.author, author);
            doc.add_text(f.author_norm, normalize(author).to_lowercase());
        }
        doc.add_text(f.site, &item.site);
        doc.add_text(f.source, &item.source);
        doc.add_text(f.source_type, item.source_type.as_str());
        doc.add_i64(f.published, item.time().timestamp());
        doc.add_i64(f.fetched, item.fetched_at.timestamp());
        if let Some(level) = a.level {
            doc.add_text(f.level, level.as_str());
        }
        doc.add_u64(f.score, u64::from(a.score));
        for h in &a.hits {
            doc.add_text(f.rules, &h.rule_id);
        }
        if let Some(sentiment) = a.sentiment {
            doc.add_text(f.sentiment, sentiment.label.as_str());
        }
        doc.add_f64(f.heat, item_heat(item.source_type, &item.engagement));
        let e = &item.engagement;
        for (field, value) in [
            (f.replies, e.replies),
            (f.reposts, e.reposts),
            (f.likes, e.likes),
            (f.views, e.views),
        ] {
            if let Some(v) = value {
                doc.add_u64(field, v);
            }
        }
        doc
    }

    /// Makes everything added so far durable, with the positions last set
    /// stored in the same commit.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        let payload = self
            .positions
            .as_ref()
            .map(|p| serde_json::to_string(p).expect("positions serialize"));
        let result = self.writer.prepare_commit().and_then(|mut prepared| {
            if let Some(p) = &payload {
                prepared.set_payload(p);
            }
            prepared.commit()
        });
        match result {
            Ok(_) => {
                self.committed = self.positions.clone();
                Ok(())
            }
            Err(e) => {
                self.fail();
                Err(e.into())
            }
        }
    }

    /// Sets the positions in `topic` that the next commit covers: the
    /// index then holds every message before them.
    /// After a failed write, or documents given up, the call does nothing:
    /// those documents come again only if the positions stay before them.
    pub fn set_positions(&mut self, topic: &str, next: &Positions) {
        if self.failed || self.abandoned {
            return;
        }
        self.positions = Some(StoredPositions {
            topic: topic.to_string(),
            next: next.clone(),
        });
    }

    /// Deletes the items published before `cutoff`; durable at the next
    /// commit.
    pub fn delete_before(&mut self, cutoff: DateTime<Utc>) -> Result<(), IndexError> {
        let range = RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_i64(
                self.fields.published,
                cutoff.timestamp(),
            )),
        );
        self.writer.delete_query(Box::new(range))?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;

mod migrate;
