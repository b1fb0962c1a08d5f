//! The search index: one tantivy index of analyzed items, written by a
//! single indexer and read by the search API and the console.
//!
//! # At-least-once and idempotence
//!
//! Documents are keyed by item id: a write deletes any document with the same
//! id before adding the new one, so a replayed item replaces itself and never
//! duplicates. The indexer commits every N documents or T seconds, never per
//! item, and acknowledges a message only after the commit that contains it.
//!
//! # Segment once
//!
//! Documents are indexed with the analyzer's jieba tokens (pre-tokenized);
//! queries are segmented by the same [`yuqing_analysis::Segmenter`], so what
//! the rules see and what search finds agree.

mod index;
mod indexer;
mod tokenizer;

pub use index::{
    Backtest, BacktestDay, BacktestExample, FacetCount, Facets, HistogramBucket, IndexError,
    Interval, ItemIndex, ItemWriter, MAX_VERIFIED, RuleBacktest, SearchHit, SearchRequest,
    SearchResults, SortBy, Verified,
};
pub use indexer::{IndexerMetrics, run_indexer};
pub use tokenizer::{JiebaTokenizer, TOKENIZER};
