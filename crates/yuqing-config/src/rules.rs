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
    /// Where the query's TOML string sits in `file_text`, quotes included.
    /// A span without quotes is the query itself (an ad-hoc query).
    pub query_span: Option<std::ops::Range<usize>>,
    pub index: usize,
}

impl QueryOrigin {
    /// An error at a byte offset of the query string.
    pub fn error_at(&self, query_pos: usize, message: impl Into<String>) -> ConfigError {
        let e = ConfigError::new(&self.file, message).field(format!("rule[{}].query", self.index));
        self.point(e, self.query_span.clone(), query_pos)
    }

    /// An error at a byte offset of the rule's `exclude[i]` string.
    pub fn exclude_error_at(
        &self,
        i: usize,
        pos: usize,
        message: impl Into<String>,
    ) -> ConfigError {
        let e = ConfigError::new(&self.file, message)
            .field(format!("rule[{}].exclude[{i}]", self.index));
        let span = value_span(
            &self.file_text,
            &[
                PathSeg::Key("rule"),
                PathSeg::Index(self.index),
                PathSeg::Key("exclude"),
                PathSeg::Index(i),
            ],
        );
        self.point(e, span, pos)
    }

    /// `e` placed at byte `pos` of the decoded string whose literal is at
    /// `span`; without a span, at no position.
    fn point(
        &self,
        e: ConfigError,
        span: Option<std::ops::Range<usize>>,
        pos: usize,
    ) -> ConfigError {
        let at = span.and_then(|s| {
            let literal = self.file_text.get(s.clone())?;
            Some(s.start + literal_offset(literal, pos)?)
        });
        match at {
            Some(at) => e.at_offset(&self.file_text, at),
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

/// The byte offset in a TOML string literal (quotes included) of byte
/// `pos` of the string it decodes to, through escapes (`\"`, `\\`,
/// `\u4e2d`), multi-line strings and line-ending backslashes. A literal
/// without quotes is taken as the string itself.
pub fn literal_offset(literal: &str, pos: usize) -> Option<usize> {
    let (open, multi, basic) = if literal.starts_with("\"\"\"") {
        (3, true, true)
    } else if literal.starts_with("'''") {
        (3, true, false)
    } else if literal.starts_with('"') {
        (1, false, true)
    } else if literal.starts_with('\'') {
        (1, false, false)
    } else {
        return (pos <= literal.len()).then_some(pos);
    };
    let body = literal.get(open..literal.len().checked_sub(open)?)?;
    let bytes = body.as_bytes();
    let mut i = 0;
    if multi {
        // A newline right after the opening quotes is not part of the string.
        i = if body.starts_with("\r\n") {
            2
        } else {
            usize::from(body.starts_with('\n'))
        };
    }
    let mut decoded = 0;
    while i < body.len() {
        if basic && multi && bytes[i] == b'\\' {
            // A line-ending backslash swallows the whitespace after it and
            // stands for nothing.
            let rest = &bytes[i + 1..];
            let n = rest
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            if n > 0 {
                i += 1 + n;
                continue;
            }
        }
        if decoded >= pos {
            break;
        }
        if basic && bytes[i] == b'\\' {
            let hex = |len: usize| {
                let c =
                    char::from_u32(u32::from_str_radix(body.get(i + 2..i + 2 + len)?, 16).ok()?)?;
                Some((c.len_utf8(), 2 + len))
            };
            let (out, raw) = match bytes.get(i + 1)? {
                b'u' => hex(4)?,
                b'U' => hex(8)?,
                b'x' => hex(2)?,
                _ => (1, 2),
            };
            decoded += out;
            i += raw;
        } else {
            let c = body.get(i..)?.chars().next()?;
            decoded += c.len_utf8();
            i += c.len_utf8();
        }
    }
    (decoded == pos).then_some(open + i)
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
        let origin = QueryOrigin {
            file: file.clone(),
            file_text: file_text.clone(),
            query_span: span,
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
