//! The rule query language, shared by rules and the search box.
//!
//! ```text
//! query   := or
//! or      := and (("OR" | "|" | "｜") and)*
//! and     := near (("AND" | "+" | "＋")? near)*        adjacent terms are ANDed
//! near    := unary (("NEAR/n" | "ONEAR/n") unary)*
//! unary   := ("NOT" | "-" | "－") unary | field | primary
//! field   := ("title" | "text" | "author" | "site" | "source_type") (":" | "：") unary
//! primary := "(" query ")" | "（" query "）" | term | "\"" phrase "\"" | "[" word "]"
//! ```
//!
//! - Keywords are upper case. `+` and `|` split words (`A+B` is `A AND B`),
//!   but `-` is NOT only at the start of a word, so `COVID-19` stays one term.
//! - Terms are normalized like the text (full-width to half-width, lower
//!   case, traditional to simplified), so `新冠` also finds `新冠`.
//! - `A NEAR/n B`: both within `n` characters of each other, either order;
//!   `A ONEAR/n B`: `A` first. Their operands are terms, phrases, `[words]`,
//!   OR-groups of those, or other NEARs.
//! - `title:` and `text:` limit the terms under them to that field;
//!   `author:`, `site:` (the host or a parent domain) and `source_type:`
//!   (新闻, 论坛, 微博, … or `forum`, `news`, …) test the item's metadata.
//! - `[和平]` matches only on jieba word boundaries, so it does not fire
//!   inside `和平精英`.

use std::fmt;

use yuqing_model::SourceType;

use crate::normalize::normalize;

/// Where a term may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Title or text.
    Any,
    Title,
    Text,
}

/// One term of a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TermSpec {
    /// Normalized text.
    pub text: String,
    pub scope: Scope,
    /// Only on word boundaries (`[word]`).
    pub boundary: bool,
}

/// An item attribute a query tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    /// The author contains this (normalized) text.
    Author(String),
    /// The site is this host or a subdomain of it.
    Site(String),
    SourceType(SourceType),
}

/// A parsed query. Leaves index into [`Query::terms`] and [`Query::metas`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Term(usize),
    Meta(usize),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Near {
        left: Box<Expr>,
        right: Box<Expr>,
        within: u32,
        ordered: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub expr: Expr,
    /// Distinct terms, in order of first appearance.
    pub terms: Vec<TermSpec>,
    pub metas: Vec<Meta>,
    /// Where each term first appears in the query (byte range), for
    /// explanations.
    pub term_spans: Vec<(usize, usize)>,
}

/// A syntax error at a byte offset of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.pos)
    }
}

impl std::error::Error for QueryError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Near { within: u32, ordered: bool },
    Field(Field),
    Word(String),
    Phrase(String),
    Exact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Title,
    Text,
    Author,
    Site,
    SourceType,
}

const FIELDS: &str = "title, text, author, site or source_type";

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        pos,
        message: message.into(),
    })
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || "()（）|｜+＋\"“”[]【】".contains(c)
}

/// A host as `site:` and the site filter compare it: lower case, without
/// a leading `www.`, so `www.gov.cn` takes `gov.cn` and every host below.
pub fn site_key(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    host.strip_prefix("www.").unwrap_or(&host).to_string()
}

/// Whether a `-` or `－` inside a bare word is NOT, as in `洪水-演练` or
/// `暴雨－演练`: it is when a Chinese character stands on either side and
/// something follows it. Elsewhere it is part of the word (`covid-19`,
/// `ＣＯＶＩＤ－１９`, `site:xn--fiqs8s.cn`, `café-bar`).
fn is_glued_not(before: &str, c: char, after: &str) -> bool {
    let han = |c: Option<char>| c.is_some_and(crate::normalize::is_han);
    let next = after.chars().next();
    matches!(c, '-' | '－')
        && next.is_some_and(|n| !ends_word(n))
        && (han(before.chars().last()) || han(next))
}

fn lex(q: &str) -> Result<Vec<(usize, usize, Tok)>, QueryError> {
    let mut out = Vec::new();
    let mut it = q.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        let single = |t: Tok| (i, i + c.len_utf8(), t);
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' | '（' => {
                it.next();
                out.push(single(Tok::Open));
            }
            ')' | '）' => {
                it.next();
                out.push(single(Tok::Close));
            }
            '|' | '｜' => {
                it.next();
                out.push(single(Tok::Or));
            }
            '+' | '＋' => {
                it.next();
                out.push(single(Tok::And));
            }
            '-' | '－' => {
                it.next();
                out.push(single(Tok::Not));
            }
            ']' | '】' => return err(i, "`]` without a matching `[`"),
            '"' | '“' | '”' | '[' | '【' => {
                it.next();
                let closing: &[char] = if matches!(c, '[' | '【') {
                    &[']', '】']
                } else {
                    &['"', '“', '”']
                };
                let start = i + c.len_utf8();
                let mut end = None;
                for (j, d) in it.by_ref() {
                    if closing.contains(&d) {
                        end = Some((j, j + d.len_utf8()));
                        break;
                    }
                }
                let Some((end, after)) = end else {
                    return err(
                        i,
                        if closing[0] == ']' {
                            "unterminated word: missing closing `]`"
                        } else {
                            "unterminated phrase: missing closing `\"`"
                        },
                    );
                };
                let inner = q[start..end].trim();
                if inner.is_empty() {
                    return err(
                        i,
                        if closing[0] == ']' {
                            "empty word `[]`"
                        } else {
                            "empty phrase"
                        },
                    );
                }
                let tok = if closing[0] == ']' {
                    Tok::Exact(inner.to_string())
                } else {
                    Tok::Phrase(inner.to_string())
                };
                out.push((i, after, tok));
            }
            _ => {
                let start = i;
                let mut end = q.len();
                // Whether the word so far is an identifier (`is_identifier`,
                // kept as the word grows, not checked again at each colon).
                let mut ident = false;
                while let Some(&(j, d)) = it.peek() {
                    if ends_word(d) || is_glued_not(&q[start..j], d, &q[j + d.len_utf8()..]) {
                        end = j;
                        break;
                    }
                    // `field:` ends at its colon.
                    if matches!(d, ':' | '：') && ident {
                        it.next();
                        end = j + d.len_utf8();
                        break;
                    }
                    ident = if j == start {
                        d.is_ascii_alphabetic()
                    } else {
                        ident && (d.is_ascii_alphabetic() || d == '_')
                    };
                    it.next();
                }
                let word = &q[start..end];
                let tok = if let Some(name) =
                    word.strip_suffix([':', '：']).filter(|n| is_identifier(n))
                {
                    Tok::Field(match name {
                        "title" => Field::Title,
                        "text" => Field::Text,
                        "author" => Field::Author,
                        "site" => Field::Site,
                        "source_type" => Field::SourceType,
                        other => {
                            return err(
                                start,
                                format!("unknown field `{other}`: fields are {FIELDS}"),
                            );
                        }
                    })
                } else if let Some(n) = word.strip_prefix("NEAR/") {
                    near(start, n, false)?
                } else if let Some(n) = word.strip_prefix("ONEAR/") {
                    near(start, n, true)?
                } else {
                    match word {
                        "AND" => Tok::And,
                        "OR" => Tok::Or,
                        "NOT" => Tok::Not,
                        "NEAR" | "ONEAR" => {
                            return err(
                                start,
                                format!("{word} needs a distance in characters, like {word}/10"),
                            );
                        }
                        w => Tok::Word(w.to_string()),
                    }
                };
                out.push((start, end, tok));
            }
        }
    }
    Ok(out)
}

/// A field name: ASCII letters and underscores, starting with a letter.
fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
}

fn near(pos: usize, n: &str, ordered: bool) -> Result<Tok, QueryError> {
    match n.parse::<u32>() {
        Ok(within) if within <= 10_000 => Ok(Tok::Near { within, ordered }),
        _ => err(
            pos,
            format!("`{n}` is not a distance: NEAR/n takes a number of characters up to 10000"),
        ),
    }
}

struct Parser<'a> {
    toks: &'a [(usize, usize, Tok)],
    pos: usize,
    end: usize,
    terms: Vec<TermSpec>,
    term_spans: Vec<(usize, usize)>,
    metas: Vec<Meta>,
    /// The `title:`/`text:` scope in force, with where it was set.
    scope: Option<(Scope, usize)>,
    /// Groups, NOTs and field scopes open around the current token.
    depth: usize,
}

/// Groups, NOTs and field scopes a query may nest: a rule needs a handful,
/// and every pass over a query recurses once per level.
pub const MAX_QUERY_DEPTH: usize = 100;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, _, t)| t)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(p, _, _)| *p)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        err(self.here(), message)
    }

    /// `parse` one level deeper, refusing to go past [`MAX_QUERY_DEPTH`].
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, QueryError>,
    ) -> Result<Expr, QueryError> {
        if self.depth == MAX_QUERY_DEPTH {
            return self.err(format!(
                "nested more than {MAX_QUERY_DEPTH} deep (groups, NOTs and field scopes)"
            ));
        }
        self.depth += 1;
        let e = parse(self);
        self.depth -= 1;
        e
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.near()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    parts.push(self.near()?);
                }
                Some(
                    Tok::Not
                    | Tok::Open
                    | Tok::Word(_)
                    | Tok::Phrase(_)
                    | Tok::Exact(_)
                    | Tok::Field(_),
                ) => {
                    parts.push(self.near()?);
                }
                _ => break,
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::And(parts)
        })
    }

    fn near(&mut self) -> Result<Expr, QueryError> {
        let start = self.here();
        let mut left = self.unary()?;
        // Each link of a chain nests the chain one level deeper.
        let depth = self.depth;
        while let Some(&Tok::Near { within, ordered }) = self.peek() {
            let op = self.here();
            if self.depth == MAX_QUERY_DEPTH {
                return self.err(format!(
                    "nested more than {MAX_QUERY_DEPTH} deep (groups, NOTs, field scopes and NEAR chains)"
                ));
            }
            self.depth += 1;
            if !left.is_positional() {
                return err(start, near_operand_message(ordered, within));
            }
            self.pos += 1;
            let right_at = self.here();
            // On an error the parse ends, so the depth needs no restoring.
            let right = self.unary()?;
            if !right.is_positional() {
                return err(right_at, near_operand_message(ordered, within));
            }
            let _ = op;
            left = Expr::Near {
                left: Box::new(left),
                right: Box::new(right),
                within,
                ordered,
            };
        }
        self.depth = depth;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        match self.peek() {
            Some(Tok::Not | Tok::Field(_)) => self.nested(Self::prefixed),
            _ => self.primary(),
        }
    }

    /// A NOT or a field scope and what it applies to.
    fn prefixed(&mut self) -> Result<Expr, QueryError> {
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Field(field)) => {
                let at = self.here();
                self.pos += 1;
                match field {
                    Field::Title | Field::Text => {
                        let scope = if field == Field::Title {
                            Scope::Title
                        } else {
                            Scope::Text
                        };
                        if let Some((outer, _)) = self.scope
                            && outer != scope
                        {
                            return err(
                                at,
                                "a field scope inside another field scope never matches",
                            );
                        }
                        let saved = self.scope.replace((scope, at));
                        let e = self.unary();
                        self.scope = saved;
                        e
                    }
                    _ => self.meta(field, at),
                }
            }
            _ => self.primary(),
        }
    }

    /// `author:`, `site:` or `source_type:` with a value or an OR-group of
    /// values.
    fn meta(&mut self, field: Field, at: usize) -> Result<Expr, QueryError> {
        let values = match self.peek().cloned() {
            Some(Tok::Word(w) | Tok::Phrase(w)) => {
                let p = self.here();
                self.pos += 1;
                vec![(p, w)]
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let mut values = Vec::new();
                loop {
                    match self.peek().cloned() {
                        Some(Tok::Word(w) | Tok::Phrase(w)) => {
                            values.push((self.here(), w));
                            self.pos += 1;
                        }
                        _ => return self.err(
                            "a field group holds values joined by OR, like site:(a.com OR b.com)",
                        ),
                    }
                    match self.peek() {
                        Some(Tok::Or) => self.pos += 1,
                        Some(Tok::Close) => {
                            self.pos += 1;
                            break;
                        }
                        _ => return self.err(
                            "a field group holds values joined by OR, like site:(a.com OR b.com)",
                        ),
                    }
                }
                values
            }
            _ => return err(at, "a field needs a value, like source_type:论坛"),
        };
        let mut leaves = Vec::new();
        for (p, v) in values {
            let meta = match field {
                Field::Author => Meta::Author(normalize(&v)),
                Field::Site => Meta::Site(site_key(&v)),
                Field::SourceType => match SourceType::parse(&v) {
                    Some(t) => Meta::SourceType(t),
                    None => {
                        return err(
                            p,
                            format!(
                                "unknown source type `{v}`: use 新闻, 论坛, 微博, 贴吧, 客户端, 政务, 博客, 视频 or 外媒"
                            ),
                        );
                    }
                },
                Field::Title | Field::Text => unreachable!("scopes are handled by unary"),
            };
            let i = match self.metas.iter().position(|m| *m == meta) {
                Some(i) => i,
                None => {
                    self.metas.push(meta);
                    self.metas.len() - 1
                }
            };
            leaves.push(Expr::Meta(i));
        }
        Ok(if leaves.len() == 1 {
            leaves.pop().expect("one leaf")
        } else {
            Expr::Or(leaves)
        })
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        match self.peek().cloned() {
            Some(Tok::Open) => self.nested(|p| {
                let open = p.here();
                p.pos += 1;
                if p.peek() == Some(&Tok::Close) {
                    return err(open, "empty group `()`");
                }
                let e = p.or()?;
                if p.peek() != Some(&Tok::Close) {
                    return err(open, "unbalanced parenthesis: this `(` is never closed");
                }
                p.pos += 1;
                Ok(e)
            }),
            Some(Tok::Word(w) | Tok::Phrase(w)) => Ok(self.term(&w, false)),
            Some(Tok::Exact(w)) => Ok(self.term(&w, true)),
            Some(Tok::Close) => self.err("unbalanced parenthesis: `)` without a matching `(`"),
            Some(Tok::And) => self.err("AND needs a term on both sides"),
            Some(Tok::Or) => self.err("OR needs a term on both sides"),
            Some(Tok::Near { .. }) => self.err("NEAR needs a term on both sides"),
            Some(Tok::Not | Tok::Field(_)) => unreachable!("handled by unary"),
            None => self.err("query ends where a term was expected"),
        }
    }

    fn term(&mut self, raw: &str, boundary: bool) -> Expr {
        let (start, end, _) = self.toks[self.pos];
        self.pos += 1;
        let spec = TermSpec {
            text: normalize(raw),
            scope: self.scope.map_or(Scope::Any, |(s, _)| s),
            boundary,
        };
        let idx = match self.terms.iter().position(|t| *t == spec) {
            Some(i) => i,
            None => {
                self.terms.push(spec);
                self.term_spans.push((start, end));
                self.terms.len() - 1
            }
        };
        Expr::Term(idx)
    }
}

fn near_operand_message(ordered: bool, within: u32) -> String {
    let op = if ordered { "ONEAR" } else { "NEAR" };
    format!(
        "{op}/{within} joins terms, phrases, [words] or (A OR B) groups of them, not AND, NOT or field tests"
    )
}

impl Query {
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        let toks = lex(q)?;
        if toks.is_empty() {
            return err(0, "empty query");
        }
        let mut p = Parser {
            toks: &toks,
            pos: 0,
            end: q.len(),
            terms: Vec::new(),
            term_spans: Vec::new(),
            metas: Vec::new(),
            scope: None,
            depth: 0,
        };
        let expr = p.or()?;
        if p.pos < toks.len() {
            return match toks[p.pos].2 {
                Tok::Close => p.err("unbalanced parenthesis: `)` without a matching `(`"),
                _ => p.err("unexpected token"),
            };
        }
        if let Some(i) = p.terms.iter().position(|t| t.text.trim().is_empty()) {
            return err(p.term_spans[i].0, "a term with nothing to match");
        }
        if !expr.can_match_positively() {
            return err(
                0,
                "query only excludes or tests fields: it needs a term the text must contain",
            );
        }
        Ok(Query {
            expr,
            terms: p.terms,
            metas: p.metas,
            term_spans: p.term_spans,
        })
    }
}

impl Expr {
    /// Whether the expression can stand in a NEAR: it has positions.
    fn is_positional(&self) -> bool {
        match self {
            Expr::Term(_) | Expr::Near { .. } => true,
            Expr::Or(v) => v.iter().all(Expr::is_positional),
            _ => false,
        }
    }

    /// Whether every way of matching needs at least one term present (a
    /// pure exclusion or a bare field test would fire on every item).
    fn can_match_positively(&self) -> bool {
        match self {
            Expr::Term(_) | Expr::Near { .. } => true,
            Expr::And(v) => v.iter().any(Expr::can_match_positively),
            Expr::Or(v) => v.iter().all(Expr::can_match_positively),
            Expr::Not(_) | Expr::Meta(_) => false,
        }
    }

    /// Terms that count as reasons for a match (not under a NOT).
    pub fn positive_terms(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Term(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.positive_terms(out)),
            Expr::Near { left, right, .. } => {
                left.positive_terms(out);
                right.positive_terms(out);
            }
            Expr::Not(_) | Expr::Meta(_) => {}
        }
    }

    /// Whether the expression has a NEAR anywhere.
    pub fn has_near(&self) -> bool {
        match self {
            Expr::Near { .. } => true,
            Expr::And(v) | Expr::Or(v) => v.iter().any(Expr::has_near),
            Expr::Not(e) => e.has_near(),
            Expr::Term(_) | Expr::Meta(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(q: &str) -> Vec<String> {
        Query::parse(q)
            .unwrap()
            .terms
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    fn error(q: &str) -> QueryError {
        Query::parse(q).unwrap_err()
    }

    #[test]
    fn shorthand_full_width_and_normalized_terms() {
        assert_eq!(terms("（A｜b）＋Ｃ"), vec!["a", "b", "c"]);
        assert_eq!(terms("covid-19 -x"), vec!["covid-19", "x"]);
        // A minus glued to a Chinese word is NOT, as in A+B-C.
        assert_eq!(terms("暴雨+内涝-演练"), vec!["暴雨", "内涝", "演练"]);
        assert_eq!(terms("暴雨－演练"), vec!["暴雨", "演练"]);
        assert_eq!(terms("wi-fi-故障"), vec!["wi-fi", "故障"]);
        assert_eq!(terms("ＣＯＶＩＤ－１９"), vec!["covid-19"]);
        assert_eq!(terms("2020-2021 café-bar"), vec!["2020-2021", "café-bar"]);
        assert_eq!(
            terms("洪水- 演练"),
            vec!["洪水-", "演练"],
            "nothing glued after"
        );
        assert!(Query::parse("site:xn--fiqs8s.cn 停水").is_ok());
        assert_eq!(
            terms("\"Hello World\" OR 這間"),
            vec!["hello world", "这间"]
        );
    }

    #[test]
    fn near_fields_and_words_parse() {
        let q = Query::parse("title:(坍塌 OR 垮塌) NEAR/5 被困 site:people.com.cn [和平]").unwrap();
        assert_eq!(q.terms.len(), 4);
        assert_eq!(q.terms[0].scope, Scope::Title);
        assert_eq!(q.terms[2].scope, Scope::Any);
        assert!(q.terms[3].boundary);
        assert_eq!(q.metas, vec![Meta::Site("people.com.cn".into())]);
        let Expr::And(parts) = &q.expr else {
            panic!("{:?}", q.expr)
        };
        assert!(matches!(
            parts[0],
            Expr::Near {
                within: 5,
                ordered: false,
                ..
            }
        ));
        let q = Query::parse("欠薪 source_type:(论坛 OR microblog OR 微博) author：张三").unwrap();
        assert_eq!(q.metas.len(), 3);
        assert!(Query::parse("a ONEAR/0 \"b c\"").is_ok());
    }

    /// Nesting past the limit is an error at the token that goes too
    /// deep, however deep the query goes, and up to it is parsed.
    #[test]
    fn nesting_is_limited() {
        let d = MAX_QUERY_DEPTH;
        let groups = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(Query::parse(&groups(d)).is_ok());
        let e = error(&groups(d + 1));
        assert_eq!(e.pos, d);
        assert!(
            e.message.contains("nested more than 100 deep"),
            "{}",
            e.message
        );
        assert_eq!(error(&groups(100_000)).pos, d);
        // NOTs, shorthand and full-width included, and field scopes.
        assert!(Query::parse(&format!("b {}a", "NOT ".repeat(d - 1))).is_ok());
        assert_eq!(error(&format!("b {}a", "-".repeat(100_000))).pos, 2 + d);
        assert_eq!(
            error(&format!("b {}a", "－".repeat(100_000))).pos,
            2 + 3 * d
        );
        // A chain of NEARs nests as deep as it is long.
        let chain = |n: usize| format!("a{}", " NEAR/5 a".repeat(n));
        assert!(Query::parse(&chain(d)).is_ok());
        let e = error(&chain(100_000));
        assert!(e.message.contains("NEAR chains"), "{}", e.message);
        assert_eq!(e.pos, 2 + 9 * d);
        assert!(Query::parse(&format!("(({}))", chain(d - 2))).is_ok());
        assert!(Query::parse(&format!("(({}))", chain(d - 1))).is_err());
        assert!(
            error(&format!("{}a", "title:(".repeat(200)))
                .message
                .contains("nested")
        );
    }

    #[test]
    fn errors_carry_positions() {
        let e = error("a AND (b OR c");
        assert_eq!(e.pos, 6);
        assert!(e.message.contains("never closed"));
        assert_eq!(error("a OR b)").pos, 6);
        assert!(error("a AND ()").message.contains("empty group"));
        assert!(error("NOT a").message.contains("only excludes"));
        assert!(error("source_type:论坛").message.contains("needs a term"));
        assert!(
            error("source_type:论坛 -广告")
                .message
                .contains("needs a term")
        );
        assert_eq!(error("a OR").pos, 4);
        assert!(error("\"abc").message.contains("unterminated"));
        assert!(error("[abc").message.contains("unterminated"));
        assert!(error("a []").message.contains("empty word"));
        assert!(error("   ").message.contains("empty"));
        let e = error("a AND titel:b");
        assert_eq!(e.pos, 6);
        assert!(e.message.contains("unknown field `titel`"), "{}", e.message);
        let e = error("a NEAR b");
        assert_eq!(e.pos, 2);
        assert!(e.message.contains("NEAR/10"));
        assert!(error("a NEAR/x b").message.contains("not a distance"));
        let e = error("a NEAR/3 (b AND c)");
        assert_eq!(e.pos, 9);
        assert!(e.message.contains("joins terms"));
        assert!(error("NOT a NEAR/3 b").message.contains("joins terms"));
        let e = error("x source_type:报纸");
        assert_eq!(e.pos, 14);
        assert!(e.message.contains("unknown source type"));
        assert!(
            error("title:(text:a)")
                .message
                .contains("inside another field")
        );
        assert!(error("a site:").message.contains("needs a value"));
        assert!(error("a ]").message.contains("without a matching"));
    }
}
