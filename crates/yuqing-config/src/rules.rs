//! Rule files: `config/rules/*.toml`, each a list of `[[rule]]`.

use std::path::PathBuf;

use serde::Deserialize;
use yuqing_model::Level;

use crate::error::{ConfigError, PathSeg, value_span};

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
    /// Queries that cancel the rule when any of them matches.
    #[serde(default)]
    exclude: Vec<String>,
}

/// The fields of a rule, for pointing at the one an error names.
const RULE_FIELDS: &[&str] = &[
    "id", "name", "topic", "query", "level", "weight", "enabled", "exclude",
];

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
    /// Queries that cancel the rule when any of them matches (`query AND
    /// NOT (exclude[0] OR exclude[1] …)`).
    pub exclude: Vec<String>,
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

/// Parses one rule file. Each rule is read on its own, so every broken
/// rule gets its own error and the valid rules of the file still load; only
/// a TOML syntax error loses the whole file. Disabled rules are skipped.
pub(crate) fn parse_rule_file(file: PathBuf, text: &str) -> (Vec<RuleConfig>, Vec<ConfigError>) {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => return (Vec::new(), vec![crate::toml_error(&file, text, &e)]),
    };
    let mut errors = Vec::new();
    let at = |path: &[PathSeg<'_>], e: ConfigError| match value_span(text, path) {
        Some(span) => e.at_offset(text, span.start),
        None => e,
    };
    for key in table.keys().filter(|k| *k != "rule") {
        errors.push(at(
            &[PathSeg::Key(key)],
            ConfigError::new(
                &file,
                format!("unknown key `{key}`: a rule file holds [[rule]] tables"),
            )
            .field(key.clone()),
        ));
    }
    let raw_rules = match table.get("rule") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a.clone(),
        Some(_) => {
            errors.push(at(
                &[PathSeg::Key("rule")],
                ConfigError::new(&file, "`rule` must be an array of tables: write [[rule]]")
                    .field("rule"),
            ));
            Vec::new()
        }
    };
    let file_text: std::sync::Arc<str> = text.into();
    let mut out = Vec::new();
    for (index, value) in raw_rules.into_iter().enumerate() {
        let r: RawRule = match value.clone().try_into() {
            Ok(r) => r,
            Err(e) => {
                let message = e.message().to_string();
                // Point at the field the message names, or the one the error
                // sits on when the rule alone is parsed again, else at the
                // rule.
                let field = RULE_FIELDS
                    .iter()
                    .find(|f| message.contains(&format!("`{f}`")))
                    .copied()
                    .or_else(|| field_of_error(&value));
                let mut path = vec![PathSeg::Key("rule"), PathSeg::Index(index)];
                if let Some(f) = field.filter(|f| {
                    value_span(
                        text,
                        &[PathSeg::Key("rule"), PathSeg::Index(index), PathSeg::Key(f)],
                    )
                    .is_some()
                }) {
                    path.push(PathSeg::Key(f));
                }
                let shown = field.map_or_else(
                    || format!("rule[{index}]"),
                    |f| format!("rule[{index}].{f}"),
                );
                errors.push(at(&path, ConfigError::new(&file, message).field(shown)));
                continue;
            }
        };
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
                || (lit.starts_with('\'') && !lit.starts_with("\'\'\'"));
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
            exclude: r.exclude,
            origin,
        });
    }
    (out, errors)
}

/// The field of a rule that fails to deserialize, found by parsing the
/// rule alone as TOML text, where the error has a position.
fn field_of_error(rule: &toml::Value) -> Option<&'static str> {
    let fragment = toml::to_string(rule).ok()?;
    let e = toml::from_str::<RawRule>(&fragment).err()?;
    let span = e.span()?;
    let line = fragment[..span.start].rsplit('\n').next()?;
    let key = line.split('=').next()?.trim();
    RULE_FIELDS.iter().find(|f| **f == key).copied()
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
