//! Domain types of the yuqing pipeline, shared by every role: items as the
//! crawler collects them, analyzed items as the analyzer emits them,
//! incidents and reports as the alerter keeps them, and the envelope every
//! message on the bus travels in.
//!
//! This crate does no I/O. Its one guarantee is stability: an item's id is a
//! pure function of its canonical URL (or the platform's own post id), so the
//! same post collected twice, by two workers or after a restart, has the same
//! id and every sink can upsert by it.

mod envelope;
mod id;
mod incident;
mod item;
mod level;
mod report;
mod source;

pub use envelope::{Envelope, EnvelopeError, SCHEMA_VERSION};
pub use id::{canonical_url, hex, item_id_for_post, item_id_for_url};
pub use incident::{Incident, IncidentStatus};
pub use item::{
    AnalyzedItem, Engagement, Item, ItemField, Keyword, LexiconHit, MAX_MARKS, Mark, RuleHit,
    Sentiment, SentimentLabel, SourceKind, SourceType, Token, is_direction_control,
};
pub use level::{Level, ParseLevelError};
pub use report::{ReportKind, ReportRecord};
pub use source::{CrawlTask, SourceState, SourceStatus};
