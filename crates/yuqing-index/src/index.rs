use std::ops::Bound;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};
use yuqing_analysis::Segmenter;
use yuqing_model::AnalyzedItem;

use crate::tokenizer::{JiebaTokenizer, TOKENIZER, pre_tokenized};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot open index directory {path}: {message}")]
    Open { path: String, message: String },
    #[error("invalid query: {0}")]
    Query(String),
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    url: Field,
    title: Field,
    text: Field,
    author: Field,
    site: Field,
    source: Field,
    source_type: Field,
    published: Field,
    fetched: Field,
    level: Field,
    score: Field,
    rules: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_opts = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        url: b.add_text_field("url", STORED),
        title: b.add_text_field("title", text_opts.clone()),
        text: b.add_text_field("text", text_opts),
        author: b.add_text_field("author", STRING | STORED),
        site: b.add_text_field("site", STRING | STORED | FAST),
        source: b.add_text_field("source", STRING | STORED | FAST),
        source_type: b.add_text_field("source_type", STRING | STORED | FAST),
        // Unix seconds: range filters and newest-first sorting.
        published: b.add_i64_field("published", INDEXED | STORED | FAST),
        fetched: b.add_i64_field("fetched", STORED),
        level: b.add_text_field("level", STRING | STORED | FAST),
        score: b.add_u64_field("score", STORED | FAST),
        rules: b.add_text_field("rules", STRING | STORED),
    };
    (b.build(), fields)
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Words and operators (`坍塌 AND 被困`, `"青山区" OR 临江`); empty means
    /// everything.
    pub query: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub source_type: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub id: String,
    pub url: String,
    pub title: String,
    pub site: String,
    pub source: String,
    pub source_type: String,
    pub author: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub level: Option<String>,
    pub score: u64,
    pub rules: Vec<String>,
    /// A fragment of the text around the matches.
    pub snippet: String,
    /// Byte ranges of matched terms within `snippet`.
    pub highlights: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<SearchHit>,
}

/// The item index, shared by the indexer (writes) and the API (reads).
pub struct ItemIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl std::fmt::Debug for ItemIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemIndex").finish_non_exhaustive()
    }
}

impl ItemIndex {
    /// Opens the index in `dir`, creating it when absent.
    pub fn open(dir: &Path, segmenter: Segmenter) -> Result<ItemIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::Open {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let (schema, fields) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| IndexError::Open {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let index = Index::open_or_create(mmap, schema)?;
        index
            .tokenizers()
            .register(TOKENIZER, JiebaTokenizer::new(segmenter));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(ItemIndex {
            index,
            reader,
            fields,
        })
    }

    /// The single writer. `heap_bytes` bounds its memory.
    pub fn writer(&self, heap_bytes: usize) -> Result<ItemWriter, IndexError> {
        Ok(ItemWriter {
            writer: self.index.writer(heap_bytes.max(15_000_000))?,
            fields: self.fields,
        })
    }

    /// Makes committed documents visible to searches.
    pub fn reload(&self) -> Result<(), IndexError> {
        Ok(self.reader.reload()?)
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn parse_query(&self, q: &str) -> Result<Box<dyn Query>, IndexError> {
        if q.trim().is_empty() {
            return Ok(Box::new(AllQuery));
        }
        let mut parser =
            QueryParser::for_index(&self.index, vec![self.fields.title, self.fields.text]);
        parser.set_conjunction_by_default();
        parser
            .parse_query(q)
            .map_err(|e| IndexError::Query(e.to_string()))
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults, IndexError> {
        let f = self.fields;
        let text_query = self.parse_query(&req.query)?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query.box_clone())];
        if req.since.is_some() || req.until.is_some() {
            let lower = req.since.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(f.published, t.timestamp()))
            });
            let upper = req.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_i64(f.published, t.timestamp()))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        if let Some(st) = &req.source_type {
            clauses.push((
                Occur::Must,
                Box::new(tantivy::query::TermQuery::new(
                    Term::from_field_text(f.source_type, st),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let limit = req.limit.clamp(1, 500);
        let (total, top) = searcher.search(
            &query,
            &(
                Count,
                TopDocs::with_limit(limit)
                    .and_offset(req.offset)
                    .order_by_fast_field::<i64>("published", Order::Desc),
            ),
        )?;
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, f.text)?;
        snippets.set_max_num_chars(160);
        let mut hits = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let s = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let text = s(f.text);
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
            let author = s(f.author);
            let level = s(f.level);
            hits.push(SearchHit {
                id: s(f.id),
                url: s(f.url),
                title: s(f.title),
                site: s(f.site),
                source: s(f.source),
                source_type: s(f.source_type),
                author: (!author.is_empty()).then_some(author),
                published_at: doc
                    .get_first(f.published)
                    .and_then(|v| v.as_i64())
                    .and_then(|t| Utc.timestamp_opt(t, 0).single()),
                level: (!level.is_empty()).then_some(level),
                score: doc.get_first(f.score).and_then(|v| v.as_u64()).unwrap_or(0),
                rules: doc
                    .get_all(f.rules)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                snippet: fragment,
                highlights,
            });
        }
        Ok(SearchResults { total, hits })
    }
}

/// The single index writer.
pub struct ItemWriter {
    writer: IndexWriter,
    fields: Fields,
}

impl std::fmt::Debug for ItemWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemWriter").finish_non_exhaustive()
    }
}

impl ItemWriter {
    /// Adds or replaces the item's document (upsert by item id).
    pub fn upsert(&mut self, a: &AnalyzedItem) -> Result<(), IndexError> {
        let f = self.fields;
        let item = &a.item;
        self.writer
            .delete_term(Term::from_field_text(f.id, &item.id));
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &item.id);
        doc.add_text(f.url, &item.url);
        doc.add_pre_tokenized_text(f.title, pre_tokenized(&item.title, &a.title_tokens));
        doc.add_pre_tokenized_text(f.text, pre_tokenized(&item.text, &a.text_tokens));
        if let Some(author) = &item.author {
            doc.add_text(f.author, author);
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
        self.writer.add_document(doc)?;
        Ok(())
    }

    /// Makes everything added so far durable.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        self.writer.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
