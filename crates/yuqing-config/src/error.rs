use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config, rule or lexicon file, located as precisely as the
/// file allows: `config/rules/flood.toml:12:9: rule[2].query: unbalanced (`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the field (`source[3].url`), when the error is about one.
    pub field: Option<String>,
    pub message: String,
    /// The offending source line, shown with a caret under `column`.
    pub snippet: Option<String>,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            snippet: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Locates the error at a byte offset of `text`, the file's contents.
    pub fn at_offset(mut self, text: &str, offset: usize) -> Self {
        let (line, column) = line_col(text, offset);
        self.line = Some(line);
        self.column = Some(column);
        self.snippet = text.lines().nth(line - 1).map(str::to_string);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let (Some(snippet), Some(col)) = (&self.snippet, self.column) {
            // The caret goes under the column counted in characters; CJK
            // characters take two cells in a terminal.
            let pad: usize = snippet
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c.is_ascii() { 1 } else { 2 })
                .sum();
            write!(f, "\n    {snippet}\n    {}^", " ".repeat(pad))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load, so `yuqing check` reports them all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// 1-based line and character column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte span of the value at a path (`source.3.url`, `rule.0.query`) in a
/// TOML document, for locating semantic errors found after parsing.
pub fn value_span(text: &str, path: &[PathSeg<'_>]) -> Option<std::ops::Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    for seg in path {
        item = match seg {
            PathSeg::Key(k) => item.get(*k)?,
            PathSeg::Index(i) => item.get(*i)?,
        };
    }
    item.span()
}

/// One step of a path into a TOML document.
#[derive(Debug, Clone, Copy)]
pub enum PathSeg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Display form of a file path relative to the current directory when it is
/// below it.
pub fn display_path(p: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let t = "a = 1\nb = \"中文\" x\n";
        assert_eq!(line_col(t, 0), (1, 1));
        let x = t.find('x').unwrap();
        assert_eq!(line_col(t, x), (2, 10));
    }

    #[test]
    fn spans_of_nested_values() {
        let t = "top = 1\n[[rule]]\nid = \"a\"\n[[rule]]\nid = \"b\"\nquery = \"x AND (\"\n";
        let span = value_span(
            t,
            &[
                PathSeg::Key("rule"),
                PathSeg::Index(1),
                PathSeg::Key("query"),
            ],
        )
        .unwrap();
        assert_eq!(&t[span], "\"x AND (\"");
        let span = value_span(t, &[PathSeg::Key("top")]).unwrap();
        assert_eq!(&t[span], "1");
    }
}
