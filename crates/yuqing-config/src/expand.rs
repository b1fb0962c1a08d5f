//! `${NAME}` variables in config text and `YUQING__*` environment overrides.

use std::collections::HashMap;

pub(crate) const OVERRIDE_PREFIX: &str = "YUQING__";

/// Replaces `${NAME}` and `${NAME:-default}` in `text`. Errors carry the byte
/// offset of the reference. Expansion is textual and keeps line numbers.
pub(crate) fn expand_vars(
    text: &str,
    vars: &HashMap<String, String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed = 0;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err((
                consumed + start,
                "unterminated `${` variable reference".into(),
            ));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((consumed + start, format!("invalid variable name `{name}`")));
        }
        match (vars.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err((
                    consumed + start,
                    format!(
                        "variable `{name}` is not set (set it, or write `${{{name}:-default}}`)"
                    ),
                ));
            }
        }
        let skip = start + 2 + end + 1;
        consumed += skip;
        rest = &rest[skip..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies `YUQING__A__B=value` as `a.b = value`. The value is read as a TOML
/// value when it parses as one (`5`, `true`, `["a"]`), else as a string.
pub(crate) fn apply_overrides(
    table: &mut toml::Table,
    overrides: &[(String, String)],
) -> Result<(), String> {
    for (key, raw) in overrides {
        let path: Vec<String> = key[OVERRIDE_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(format!(
                "environment override `{key}` has an empty path segment"
            ));
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut cur = &mut *table;
        for seg in &path[..path.len() - 1] {
            let entry = cur
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = entry
                .as_table_mut()
                .ok_or_else(|| format!("environment override `{key}`: `{seg}` is not a table"))?;
        }
        cur.insert(path[path.len() - 1].clone(), value);
    }
    Ok(())
}
