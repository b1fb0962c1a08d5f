//! Carrying an index written with an older schema over to this one.
//!
//! A schema change moves the old index aside. Under Kafka the indexer
//! replays the retained topic into the new one; on the in-process bus
//! nothing replays, so without a copy every item indexed before the upgrade
//! would drop out of search, backtests and trends. Every field the schema
//! keeps is stored, so each old document becomes an item again (its text
//! segmented anew, as the analyzer would) and is written to the new index.

use std::path::Path;

use tantivy::schema::{Schema, Value};
use tantivy::{Index, TantivyDocument};
use yuqing_model::{
    AnalyzedItem, Engagement, Item, Level, RuleHit, Sentiment, SentimentLabel, SourceKind,
    SourceType,
};

use super::{IndexError, ItemIndex};

/// Documents written between two commits of a migration.
const COMMIT_EVERY: u64 = 20_000;

impl ItemIndex {
    /// Copies every live document of the index in `old` (any schema) into
    /// this one, reading it in place; returns how many.
    pub(crate) fn migrate_from(&self, old: &Path) -> Result<u64, IndexError> {
        let index = Index::open_in_dir(old)?;
        let schema = index.schema();
        let searcher = index.reader()?.searcher();
        let mut writer = self.writer(64 * 1024 * 1024)?;
        let mut copied = 0u64;
        for segment in searcher.segment_readers() {
            let store = segment
                .get_store_reader(64)
                .map_err(tantivy::TantivyError::from)?;
            for id in segment.doc_ids_alive() {
                // One unreadable document is passed over, not the rest.
                let doc: TantivyDocument = match store.get(id) {
                    Ok(doc) => doc,
                    Err(e) => {
                        tracing::warn!(error = %e, "an old document cannot be read; passed over");
                        continue;
                    }
                };
                let Some(a) = self.analyzed_from(&schema, &doc) else {
                    continue;
                };
                writer.upsert(&a)?;
                copied += 1;
                if copied.is_multiple_of(COMMIT_EVERY) {
                    writer.commit()?;
                    tracing::info!(copied, "carrying the old index over");
                }
            }
        }
        writer.commit()?;
        self.reload()?;
        Ok(copied)
    }

    /// The analyzed item an old document stands for, read by field name;
    /// none without an id.
    fn analyzed_from(&self, schema: &Schema, doc: &TantivyDocument) -> Option<AnalyzedItem> {
        let value = |name: &str| schema.get_field(name).ok().and_then(|f| doc.get_first(f));
        let text = |name: &str| {
            value(name)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let time = |name: &str| {
            value(name)
                .and_then(|v| v.as_i64())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        };
        let count = |name: &str| value(name).and_then(|v| v.as_u64());
        let id = text("id");
        if id.is_empty() {
            return None;
        }
        let author = text("author");
        let published = time("published");
        let item = Item {
            id,
            source: text("source"),
            source_kind: SourceKind::Page,
            source_type: SourceType::parse(&text("source_type")).unwrap_or(SourceType::News),
            site: text("site"),
            url: text("url"),
            title: text("title_stored"),
            text: text("text_stored"),
            author: (!author.is_empty()).then_some(author),
            published_at: published,
            fetched_at: time("fetched")
                .or(published)
                .unwrap_or_else(chrono::Utc::now),
            engagement: Engagement {
                replies: count("replies"),
                reposts: count("reposts"),
                likes: count("likes"),
                views: count("views"),
            },
            parent_id: None,
        };
        let hits = schema
            .get_field("rules")
            .map(|f| {
                doc.get_all(f)
                    .filter_map(|v| v.as_str())
                    .map(|rule| RuleHit {
                        rule_id: rule.to_string(),
                        rule_name: rule.to_string(),
                        topic: String::new(),
                        level: Level::Blue,
                        weight: 0,
                        terms: Vec::new(),
                        marks: Vec::new(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let label = match text("sentiment").as_str() {
            "positive" => Some(SentimentLabel::Positive),
            "neutral" => Some(SentimentLabel::Neutral),
            "negative" => Some(SentimentLabel::Negative),
            _ => None,
        };
        Some(AnalyzedItem {
            title_tokens: self.segmenter.tokens(&item.title),
            text_tokens: self.segmenter.tokens(&item.text),
            item,
            hits,
            lexicon_hits: Vec::new(),
            keywords: Vec::new(),
            sentiment: label.map(|label| Sentiment {
                label,
                confidence: 1.0,
                positive: f32::from(u8::from(label == SentimentLabel::Positive)),
            }),
            score: count("score").map_or(0, |s| s.min(100) as u8),
            level: text("level").parse().ok(),
            simhash: 0,
            simhash_pairs: 0,
        })
    }
}
