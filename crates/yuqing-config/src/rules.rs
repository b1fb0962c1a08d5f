//! Rule files: `config/rules/*.toml`, each a list of `[[rule]]`.

use std::path::PathBuf;

use serde::Deserialize;
use yuqing_model::Level;

use crate::error::{ConfigError, PathSeg, value_span};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    name: Option<String>,
    #[serde(default)]
    topic: Option<String>,
    query: String,
    level: Level,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default = "default_enabled")]
    enabled: bool,
}

fn default_weight() -> u32 {
    10
}
fn default_enabled() -> bool {
    true
}

/// One rule, as written, with where its query is, so that errors found when
/// the query is compiled point into the file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub query: String,
    pub level: Level,
    /// Contribution to the sensitivity score (0-100).
    pub weight: u32,
    pub origin: QueryOrigin,
}

/// Where a rule's query string sits in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOrigin {
    pub file: PathBuf,
    /// Full text of the file, for carets under errors.
    pub file_text: std::sync::Arc<str>,
    /// Byte offset of the first character inside the quotes, when the query
    /// is a plain one-line string whose characters map one to one.
    pub query_offset: Option<usize>,
    pub index: usize,
}

impl QueryOrigin {
    /// An error at a byte offset of the query string.
    pub fn error_at(&self, query_pos: usize, message: impl Into<String>) -> ConfigError {
        let e = ConfigError::new(&self.file, message).field(format!("rule[{}].query", self.index));
        match self.query_offset {
            Some(off) => e.at_offset(&self.file_text, off + query_pos),
            None => e,
        }
    }

    /// An error about the whole rule.
    pub fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let e =
            ConfigError::new(&self.file, message).field(format!("rule[{}].{field}", self.index));
        match value_span(
            &self.file_text,
            &[
                PathSeg::Key("rule"),
                PathSeg::Index(self.index),
                PathSeg::Key(field),
            ],
        ) {
            Some(span) => e.at_offset(&self.file_text, span.start),
            None => e,
        }
    }
}

/// Parses one rule file. Disabled rules are skipped.
pub(crate) fn parse_rule_file(file: PathBuf, text: &str) -> Result<Vec<RuleConfig>, ConfigError> {
    let raw: RawRuleFile = toml::from_str(text).map_err(|e| crate::toml_error(&file, text, &e))?;
    let file_text: std::sync::Arc<str> = text.into();
    let mut out = Vec::new();
    for (index, r) in raw.rule.into_iter().enumerate() {
        if !r.enabled {
            continue;
        }
        let span = value_span(
            text,
            &[
                PathSeg::Key("rule"),
                PathSeg::Index(index),
                PathSeg::Key("query"),
            ],
        );
        // Only a basic or literal one-line string maps characters one to one
        // (no escapes); otherwise errors point at the field, not the column.
        let query_offset = span.and_then(|s| {
            let lit = &text[s.clone()];
            let plain = (lit.starts_with('"') && !lit.starts_with("\"\"\"") && !lit.contains('\\'))
                || (lit.starts_with('\'') && !lit.starts_with("'''"));
            plain.then_some(s.start + 1)
        });
        let origin = QueryOrigin {
            file: file.clone(),
            file_text: file_text.clone(),
            query_offset,
            index,
        };
        out.push(RuleConfig {
            name: r.name.unwrap_or_else(|| r.id.clone()),
            topic: r.topic.unwrap_or_default(),
            id: r.id,
            query: r.query,
            level: r.level,
            weight: r.weight,
            origin,
        });
    }
    Ok(out)
}

/// Checks that do not need the query compiler: unique ids, sane weights,
/// non-empty queries. Returns the valid rules and an error for each rule
/// left out.
pub(crate) fn validate_rules(rules: Vec<RuleConfig>) -> (Vec<RuleConfig>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut valid: Vec<RuleConfig> = Vec::new();
    for r in rules {
        let problem = if r.id.trim().is_empty() {
            Some(r.origin.error("id", "rule id must not be empty"))
        } else if let Some(first) = valid.iter().find(|v| v.id == r.id) {
            Some(r.origin.error(
                "id",
                format!(
                    "duplicate rule id `{}` (first defined in {}); this one is left out",
                    r.id,
                    first.origin.file.display()
                ),
            ))
        } else if r.weight > 100 {
            Some(r.origin.error("weight", "weight must be between 0 and 100"))
        } else if r.query.trim().is_empty() {
            Some(r.origin.error("query", "query must not be empty"))
        } else {
            None
        };
        match problem {
            Some(e) => errors.push(e),
            None => valid.push(r),
        }
    }
    (valid, errors)
}
