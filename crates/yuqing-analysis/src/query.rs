//! The rule query language.
//!
//! ```text
//! query   := or
//! or      := and (("OR" | "|" | "｜") and)*
//! and     := unary (("AND" | "+" | "＋")? unary)*      adjacent terms are ANDed
//! unary   := ("NOT" | "-" | "－") unary | primary
//! primary := "(" query ")" | "（" query "）" | term | "\"" phrase "\""
//! ```
//!
//! Keywords are upper case; `+` and `|` split words (`A+B` is `A AND B`),
//! but a `-` is NOT only at the start of a word, so `COVID-19` stays one
//! term. Terms match case-insensitively.

use std::fmt;

/// A parsed query. Term leaves index into [`Query::terms`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Term(usize),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub expr: Expr,
    /// Distinct terms, lower-cased, in order of first appearance.
    pub terms: Vec<String>,
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
    Word(String),
    Phrase(String),
}

fn lex(q: &str) -> Result<Vec<(usize, Tok)>, QueryError> {
    let mut out = Vec::new();
    let mut it = q.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' | '（' => {
                it.next();
                out.push((i, Tok::Open));
            }
            ')' | '）' => {
                it.next();
                out.push((i, Tok::Close));
            }
            '|' | '｜' => {
                it.next();
                out.push((i, Tok::Or));
            }
            '+' | '＋' => {
                it.next();
                out.push((i, Tok::And));
            }
            '-' | '－' => {
                it.next();
                out.push((i, Tok::Not));
            }
            '"' | '“' | '”' => {
                it.next();
                let start = i + c.len_utf8();
                let mut end = None;
                for (j, d) in it.by_ref() {
                    if matches!(d, '"' | '“' | '”') {
                        end = Some(j);
                        break;
                    }
                }
                let Some(end) = end else {
                    return Err(QueryError {
                        pos: i,
                        message: "unterminated phrase: missing closing `\"`".into(),
                    });
                };
                let phrase = q[start..end].trim();
                if phrase.is_empty() {
                    return Err(QueryError {
                        pos: i,
                        message: "empty phrase".into(),
                    });
                }
                out.push((i, Tok::Phrase(phrase.to_string())));
            }
            _ => {
                let start = i;
                let mut end = q.len();
                while let Some(&(j, d)) = it.peek() {
                    if d.is_whitespace() || "()（）|｜+＋\"“”".contains(d) {
                        end = j;
                        break;
                    }
                    it.next();
                }
                let word = &q[start..end];
                out.push((
                    start,
                    match word {
                        "AND" => Tok::And,
                        "OR" => Tok::Or,
                        "NOT" => Tok::Not,
                        w => Tok::Word(w.to_string()),
                    },
                ));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [(usize, Tok)],
    pos: usize,
    end: usize,
    terms: Vec<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(p, _)| *p)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            pos: self.here(),
            message: message.into(),
        })
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    parts.push(self.unary()?);
                }
                Some(Tok::Not | Tok::Open | Tok::Word(_) | Tok::Phrase(_)) => {
                    parts.push(self.unary()?);
                }
                _ => break,
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                let open = self.here();
                self.pos += 1;
                if self.peek() == Some(&Tok::Close) {
                    return self.err("empty group `()`");
                }
                let e = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(QueryError {
                        pos: open,
                        message: "unbalanced parenthesis: this `(` is never closed".into(),
                    });
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Word(w) | Tok::Phrase(w)) => {
                self.pos += 1;
                let w = w.to_lowercase();
                let idx = match self.terms.iter().position(|t| *t == w) {
                    Some(i) => i,
                    None => {
                        self.terms.push(w);
                        self.terms.len() - 1
                    }
                };
                Ok(Expr::Term(idx))
            }
            Some(Tok::Close) => self.err("unbalanced parenthesis: `)` without a matching `(`"),
            Some(Tok::And) => self.err("AND needs a term on both sides"),
            Some(Tok::Or) => self.err("OR needs a term on both sides"),
            Some(Tok::Not) => unreachable!("handled by unary"),
            None => self.err("query ends where a term was expected"),
        }
    }
}

impl Query {
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        let toks = lex(q)?;
        if toks.is_empty() {
            return Err(QueryError {
                pos: 0,
                message: "empty query".into(),
            });
        }
        let mut p = Parser {
            toks: &toks,
            pos: 0,
            end: q.len(),
            terms: Vec::new(),
        };
        let expr = p.or()?;
        if p.pos < toks.len() {
            return match toks[p.pos].1 {
                Tok::Close => p.err("unbalanced parenthesis: `)` without a matching `(`"),
                _ => p.err("unexpected token"),
            };
        }
        if !expr.can_match_positively() {
            return Err(QueryError {
                pos: 0,
                message: "query only excludes (NOT ...): it would match almost everything; add a term it must contain".into(),
            });
        }
        Ok(Query {
            expr,
            terms: p.terms,
        })
    }

    /// Evaluates the query given which terms were found.
    pub fn eval(&self, found: &dyn Fn(usize) -> bool) -> bool {
        self.expr.eval(found)
    }
}

impl Expr {
    pub fn eval(&self, found: &dyn Fn(usize) -> bool) -> bool {
        match self {
            Expr::Term(i) => found(*i),
            Expr::And(v) => v.iter().all(|e| e.eval(found)),
            Expr::Or(v) => v.iter().any(|e| e.eval(found)),
            Expr::Not(e) => !e.eval(found),
        }
    }

    /// Whether the expression requires at least one term to be present (a
    /// pure exclusion would fire on every item).
    fn can_match_positively(&self) -> bool {
        match self {
            Expr::Term(_) => true,
            Expr::And(v) => v.iter().any(Expr::can_match_positively),
            Expr::Or(v) => v.iter().all(Expr::can_match_positively),
            Expr::Not(_) => false,
        }
    }

    /// Terms found that count as reasons for a match (not under a NOT).
    pub fn positive_terms(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Term(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.positive_terms(out)),
            Expr::Not(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(q: &str, present: &[&str]) -> bool {
        let q = Query::parse(q).unwrap();
        q.eval(&|i| present.contains(&q.terms[i].as_str()))
    }

    #[test]
    fn boolean_operators_and_precedence() {
        assert!(matches("a AND b OR c", &["c"]));
        assert!(matches("a AND (b OR c)", &["a", "c"]));
        assert!(!matches("a AND (b OR c)", &["c"]));
        assert!(matches(
            "(坍塌 OR 垮塌) AND (伤亡 OR 被困)",
            &["垮塌", "被困"]
        ));
        assert!(!matches("欠薪 NOT 招聘", &["欠薪", "招聘"]));
        assert!(matches("欠薪 NOT 招聘", &["欠薪"]));
    }

    #[test]
    fn shorthand_and_full_width_forms() {
        assert!(matches("a+b", &["a", "b"]));
        assert!(matches("（a｜b）＋c", &["b", "c"]));
        assert!(!matches("a -b", &["a", "b"]));
        assert!(matches("covid-19", &["covid-19"]));
        assert!(matches("a b", &["a", "b"]));
        assert!(!matches("a b", &["a"]));
    }

    #[test]
    fn phrases_and_case() {
        let q = Query::parse("\"Hello World\" OR Foo").unwrap();
        assert_eq!(q.terms, vec!["hello world", "foo"]);
    }

    #[test]
    fn errors_carry_positions() {
        let e = Query::parse("a AND (b OR c").unwrap_err();
        assert_eq!(e.pos, 6);
        assert!(e.message.contains("never closed"));
        let e = Query::parse("a OR b)").unwrap_err();
        assert_eq!(e.pos, 6);
        let e = Query::parse("a AND ()").unwrap_err();
        assert!(e.message.contains("empty group"));
        let e = Query::parse("NOT a").unwrap_err();
        assert!(e.message.contains("only excludes"));
        let e = Query::parse("a OR").unwrap_err();
        assert_eq!(e.pos, 4);
        let e = Query::parse("\"abc").unwrap_err();
        assert!(e.message.contains("unterminated"));
        assert!(Query::parse("   ").is_err());
    }
}
