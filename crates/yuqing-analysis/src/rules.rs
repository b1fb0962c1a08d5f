//! Every rule compiled into one automaton pass plus a boolean evaluation of
//! the rules whose terms occur, so matching cost grows with the text, not
//! with the number of rules.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::automaton::Automaton;
use yuqing_config::{ConfigError, RuleConfig};
use yuqing_model::{ItemField, MAX_MARKS, Mark, RuleHit, SourceType};

use crate::query::{Expr, Meta, Query, Scope, TermSpec};

/// What rules are matched against: the normalized title and text joined
/// by a newline, the jieba word boundaries in that string, and the item's
/// metadata.
#[derive(Debug, Clone)]
pub struct MatchDoc {
    /// Normalized title, `\n`, normalized text.
    pub combined: String,
    /// Byte length of the title part (the `\n` sits here).
    pub title_end: usize,
    /// Byte offsets in `combined` where a jieba word starts or ends,
    /// sorted.
    pub bounds: Vec<u32>,
    /// Normalized author.
    pub author: String,
    /// Lower-case host.
    pub site: String,
    pub source_type: SourceType,
}

impl MatchDoc {
    /// A document from already normalized parts; `bounds` are offsets in
    /// `title` and `text` respectively.
    pub fn new(
        title: &str,
        text: &str,
        title_bounds: impl IntoIterator<Item = u32>,
        text_bounds: impl IntoIterator<Item = u32>,
    ) -> MatchDoc {
        let mut combined = String::with_capacity(title.len() + text.len() + 1);
        combined.push_str(title);
        combined.push('\n');
        combined.push_str(text);
        let off = title.len() as u32 + 1;
        let mut bounds: Vec<u32> = title_bounds
            .into_iter()
            .chain(text_bounds.into_iter().map(|b| b + off))
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        MatchDoc {
            combined,
            title_end: title.len(),
            bounds,
            author: String::new(),
            site: String::new(),
            source_type: SourceType::News,
        }
    }

    /// A span of `combined` as a mark in the normalized title or text.
    fn mark(&self, (start, end): Span) -> Mark {
        let title_end = self.title_end as u32;
        debug_assert!(
            end <= title_end || start > title_end,
            "a span crosses fields"
        );
        if end <= title_end {
            Mark {
                field: ItemField::Title,
                start,
                end,
            }
        } else {
            Mark {
                field: ItemField::Text,
                start: start.saturating_sub(title_end + 1),
                end: end - (title_end + 1),
            }
        }
    }

    fn is_bound(&self, at: u32) -> bool {
        self.bounds.binary_search(&at).is_ok()
    }
}

/// A match of a term: byte range in [`MatchDoc::combined`].
pub type Span = (u32, u32);

#[derive(Debug)]
struct CompiledRule {
    config: RuleConfig,
    expr: Expr,
    /// Query term index → global term index.
    terms: Vec<usize>,
    metas: Vec<Meta>,
    /// Positive terms, as query term indices.
    positive: Vec<usize>,
}

/// The compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    /// Distinct terms of all rules.
    specs: Vec<TermSpec>,
    /// Term → automaton pattern.
    spec_pattern: Vec<usize>,
    /// Distinct term texts, the automaton's patterns.
    patterns: Vec<String>,
    /// Pattern → rules that use it.
    pattern_rules: Vec<Vec<usize>>,
    automaton: Option<Automaton>,
}

/// How the rules met one document, for [`RuleSet::explain`].
#[derive(Debug, Clone)]
pub struct Explanation {
    pub rule_id: String,
    pub rule_name: String,
    pub fired: bool,
    /// Whether any of the rule's terms was found, in scope and on
    /// boundaries where asked.
    pub found: bool,
    /// The query tree, one node a line, indented, each marked ✓ or ✗.
    pub lines: Vec<String>,
}

impl RuleSet {
    /// Compiles every rule that parses; the others come back as errors that
    /// point into their files. A broken rule never takes the others down.
    /// A rule set of one ad-hoc query (a search or a draft rule), id `q`.
    pub fn of_query(query: &str) -> Result<RuleSet, crate::query::QueryError> {
        let q = crate::query::Query::parse(query)?;
        let config = RuleConfig {
            id: "q".into(),
            name: "q".into(),
            topic: String::new(),
            query: query.into(),
            level: yuqing_model::Level::Blue,
            weight: 0,
            exclude: Vec::new(),
            origin: yuqing_config::QueryOrigin {
                file: "query".into(),
                file_text: query.into(),
                // Parsed above: no error points into it.
                query_span: None,
                index: 0,
            },
        };
        Ok(RuleSet::of_parsed([(config, q)]))
    }

    /// The rule set of rules already parsed: one automaton over all their
    /// terms.
    fn of_parsed(rules: impl IntoIterator<Item = (RuleConfig, Query)>) -> RuleSet {
        let mut set = RuleSet {
            rules: Vec::new(),
            specs: Vec::new(),
            spec_pattern: Vec::new(),
            patterns: Vec::new(),
            pattern_rules: Vec::new(),
            automaton: None,
        };
        for (config, q) in rules {
            set.add(config, q);
        }
        if !set.patterns.is_empty() {
            set.automaton = Automaton::new(&set.patterns);
        }
        set
    }

    pub fn compile(configs: &[RuleConfig]) -> (RuleSet, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let mut parsed = Vec::new();
        for cfg in configs {
            match parse_rule(cfg) {
                Ok(q) => parsed.push((cfg.clone(), q)),
                Err(e) => errors.push(e),
            }
        }
        (RuleSet::of_parsed(parsed), errors)
    }

    fn add(&mut self, config: RuleConfig, q: Query) {
        let rule = self.rules.len();
        let terms: Vec<usize> = q
            .terms
            .iter()
            .map(|t| match self.specs.iter().position(|s| s == t) {
                Some(i) => i,
                None => {
                    let p = match self.patterns.iter().position(|p| *p == t.text) {
                        Some(p) => p,
                        None => {
                            self.patterns.push(t.text.clone());
                            self.pattern_rules.push(Vec::new());
                            self.patterns.len() - 1
                        }
                    };
                    self.specs.push(t.clone());
                    self.spec_pattern.push(p);
                    self.specs.len() - 1
                }
            })
            .collect();
        for &g in &terms {
            let p = self.spec_pattern[g];
            if self.pattern_rules[p].last() != Some(&rule) {
                self.pattern_rules[p].push(rule);
            }
        }
        let mut positive = Vec::new();
        q.expr.positive_terms(&mut positive);
        self.rules.push(CompiledRule {
            config,
            expr: q.expr,
            terms,
            metas: q.metas,
            positive,
        });
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every distinct term text of every rule, for the segmenter's user
    /// dictionary.
    pub fn rules(&self) -> impl Iterator<Item = &RuleConfig> {
        self.rules.iter().map(|r| &r.config)
    }

    pub fn terms(&self) -> &[String] {
        &self.patterns
    }

    /// The rules that fire on `doc`. Their marks are byte offsets into the
    /// normalized title and text the document holds; the analyzer maps
    /// them back to the item as published.
    pub fn matches(&self, doc: &MatchDoc) -> Vec<RuleHit> {
        let Some(eval) = self.scan(doc) else {
            return Vec::new();
        };
        let mut candidates: Vec<usize> = eval
            .found
            .iter()
            .flat_map(|&p| self.pattern_rules[p as usize].iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut hits = Vec::new();
        for r in candidates {
            let rule = &self.rules[r];
            if eval.holds(rule, &rule.expr) {
                let found: Vec<usize> = rule
                    .positive
                    .iter()
                    .map(|&i| rule.terms[i])
                    .filter(|&g| !eval.spans(g).is_empty())
                    .collect();
                let mut marks: Vec<Mark> = found
                    .iter()
                    .flat_map(|&g| {
                        eval.spans(g)
                            .iter()
                            .map(|&s| doc.mark(s))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                marks.sort_unstable();
                marks.dedup();
                marks.truncate(MAX_MARKS);
                hits.push(RuleHit {
                    rule_id: rule.config.id.clone(),
                    rule_name: rule.config.name.clone(),
                    topic: rule.config.topic.clone(),
                    level: rule.config.level,
                    weight: rule.config.weight,
                    terms: found.iter().map(|&g| self.specs[g].text.clone()).collect(),
                    marks,
                });
            }
        }
        hits
    }

    /// One automaton pass over the document.
    fn scan<'a>(&'a self, doc: &'a MatchDoc) -> Option<Eval<'a>> {
        let ac = self.automaton.as_ref()?;
        let mut matches: Vec<(u32, u32, u32)> = ac
            .find_overlapping(&doc.combined)
            .map(|(p, start, end)| (p, start as u32, end as u32))
            .collect();
        matches.sort_unstable();
        let mut found: Vec<u32> = matches.iter().map(|m| m.0).collect();
        found.dedup();
        Some(Eval {
            set: self,
            doc,
            found,
            matches,
            spans: RefCell::new(FxHashMap::default()),
            chars: OnceCell::new(),
        })
    }

    /// Whether any term of any rule occurs in the normalized texts: a
    /// quick test before building a whole [`MatchDoc`].
    pub fn mentions_any(&self, texts: &[&str]) -> bool {
        self.automaton.as_ref().is_some_and(|ac| {
            texts
                .iter()
                .any(|t| ac.find_overlapping(t).next().is_some())
        })
    }

    /// How rule `id` (or every rule) meets `doc`: each node of its query
    /// with whether it held and where its terms were found.
    pub fn explain(&self, doc: &MatchDoc, id: Option<&str>) -> Vec<Explanation> {
        // Without terms there are no rules: every rule needs one.
        let Some(eval) = self.scan(doc) else {
            return Vec::new();
        };
        self.rules
            .iter()
            .filter(|r| id.is_none_or(|id| r.config.id == id))
            .map(|r| {
                let mut lines = Vec::new();
                let fired = eval.holds(r, &r.expr);
                eval.explain(r, &r.expr, 0, &mut lines);
                Explanation {
                    rule_id: r.config.id.clone(),
                    rule_name: r.config.name.clone(),
                    fired,
                    found: r.terms.iter().any(|&g| !eval.spans(g).is_empty()),
                    lines,
                }
            })
            .collect()
    }
}

/// A rule's query with its exclusions: `(query) NOT ((e1) OR (e2) …)`.
fn parse_rule(cfg: &RuleConfig) -> Result<Query, ConfigError> {
    let query = Query::parse(&cfg.query).map_err(|e| cfg.origin.error_at(e.pos, e.message))?;
    if cfg.exclude.is_empty() {
        return Ok(query);
    }
    for (i, x) in cfg.exclude.iter().enumerate() {
        Query::parse(x).map_err(|e| {
            cfg.origin
                .exclude_error_at(i, e.pos, format!("exclude `{x}`: {}", e.message))
        })?;
    }
    let excluded: Vec<String> = cfg.exclude.iter().map(|x| format!("({x})")).collect();
    let combined = format!("({}) NOT ({})", cfg.query, excluded.join(" OR "));
    Query::parse(&combined).map_err(|e| cfg.origin.error("exclude", e.message))
}

/// The matches of one document, with each term's filtered spans computed
/// once, when first needed.
struct Eval<'a> {
    set: &'a RuleSet,
    doc: &'a MatchDoc,
    /// Patterns found.
    found: Vec<u32>,
    /// Every occurrence of every pattern, `(pattern, start, end)`, sorted.
    matches: Vec<(u32, u32, u32)>,
    /// Per term, its occurrences in its scope and on word boundaries if
    /// asked.
    spans: RefCell<FxHashMap<usize, Rc<Vec<Span>>>>,
    /// Character index of every byte of the document, for NEAR distances.
    chars: OnceCell<Vec<u32>>,
}

/// Most spans a NEAR keeps, so a pathological text cannot make it
/// quadratic in memory.
const MAX_NEAR_SPANS: usize = 4096;

impl Eval<'_> {
    /// Every occurrence of pattern `p`.
    fn occurrences(&self, p: usize) -> &[(u32, u32, u32)] {
        let p = p as u32;
        let lo = self.matches.partition_point(|m| m.0 < p);
        let hi = self.matches.partition_point(|m| m.0 <= p);
        &self.matches[lo..hi]
    }

    fn spans(&self, term: usize) -> Rc<Vec<Span>> {
        if let Some(s) = self.spans.borrow().get(&term) {
            return s.clone();
        }
        let spec = &self.set.specs[term];
        let te = self.doc.title_end as u32;
        let s: Vec<Span> = self
            .occurrences(self.set.spec_pattern[term])
            .iter()
            .map(|&(_, a, b)| (a, b))
            .filter(|&(a, b)| match spec.scope {
                // A phrase holding a line break could reach from the title
                // into the text; no match belongs to both.
                Scope::Any => b <= te || a > te,
                Scope::Title => b <= te,
                Scope::Text => a > te,
            })
            .filter(|&(a, b)| !spec.boundary || (self.doc.is_bound(a) && self.doc.is_bound(b)))
            .collect();
        let s = Rc::new(s);
        self.spans.borrow_mut().insert(term, s.clone());
        s
    }

    fn char_at(&self, byte: u32) -> u32 {
        let chars = self.chars.get_or_init(|| {
            let mut v = vec![0u32; self.doc.combined.len() + 1];
            let mut n = 0u32;
            for (i, c) in self.doc.combined.char_indices() {
                for b in &mut v[i..i + c.len_utf8()] {
                    *b = n;
                }
                n += 1;
            }
            v[self.doc.combined.len()] = n;
            v
        });
        chars[byte as usize]
    }

    fn meta(&self, m: &Meta) -> bool {
        match m {
            Meta::Author(a) => self.doc.author.contains(a.as_str()),
            Meta::Site(s) => {
                self.doc.site == *s
                    || self
                        .doc
                        .site
                        .strip_suffix(s.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            }
            Meta::SourceType(t) => self.doc.source_type == *t,
        }
    }

    fn holds(&self, rule: &CompiledRule, e: &Expr) -> bool {
        match e {
            Expr::Term(i) => !self.spans(rule.terms[*i]).is_empty(),
            Expr::Meta(i) => self.meta(&rule.metas[*i]),
            Expr::And(v) => v.iter().all(|e| self.holds(rule, e)),
            Expr::Or(v) => v.iter().any(|e| self.holds(rule, e)),
            Expr::Not(e) => !self.holds(rule, e),
            Expr::Near { .. } => !self.positions(rule, e).is_empty(),
        }
    }

    /// Where a positional expression matches.
    fn positions(&self, rule: &CompiledRule, e: &Expr) -> Vec<Span> {
        match e {
            Expr::Term(i) => self.spans(rule.terms[*i]).to_vec(),
            Expr::Or(v) => {
                let mut all: Vec<Span> = v.iter().flat_map(|e| self.positions(rule, e)).collect();
                all.sort_unstable();
                all.dedup();
                all
            }
            Expr::Near {
                left,
                right,
                within,
                ordered,
            } => {
                let l = self.positions(rule, left);
                if l.is_empty() {
                    return l;
                }
                let mut r = self.positions(rule, right);
                r.sort_unstable();
                // Only the right spans starting within reach of `a` can be
                // near it: a sweep, not every pair, so a page repeating
                // both words a hundred thousand times apart stays linear.
                let reach = r
                    .iter()
                    .map(|b| self.char_at(b.1) - self.char_at(b.0))
                    .max()
                    .unwrap_or(0);
                let mut out = Vec::new();
                'outer: for &a in &l {
                    let from = self.char_at(a.0).saturating_sub(within + reach);
                    let to = self.char_at(a.1).saturating_add(*within);
                    let first = r.partition_point(|b| self.char_at(b.0) < from);
                    for &b in &r[first..] {
                        if self.char_at(b.0) > to {
                            break;
                        }
                        if self.near(a, b, *within, *ordered) {
                            out.push((a.0.min(b.0), a.1.max(b.1)));
                            if out.len() >= MAX_NEAR_SPANS {
                                break 'outer;
                            }
                        }
                    }
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            _ => Vec::new(),
        }
    }

    /// Whether spans `a` and `b` are at most `within` characters apart
    /// (`b` after `a` when `ordered`).
    fn near(&self, a: Span, b: Span, within: u32, ordered: bool) -> bool {
        // The title and the text are apart, however close their ends sit.
        let in_title = |s: Span| (s.0 as usize) < self.doc.title_end;
        if in_title(a) != in_title(b) {
            return false;
        }
        let gap = |first: Span, second: Span| -> Option<u32> {
            (second.0 >= first.1).then(|| self.char_at(second.0) - self.char_at(first.1))
        };
        if ordered {
            return gap(a, b).is_some_and(|g| g <= within);
        }
        match (gap(a, b), gap(b, a)) {
            (Some(g), _) | (_, Some(g)) => g <= within,
            // Overlapping.
            (None, None) => true,
        }
    }

    fn explain(&self, rule: &CompiledRule, e: &Expr, depth: usize, out: &mut Vec<String>) {
        let mark = |ok: bool| if ok { "✓" } else { "✗" };
        let pad = "  ".repeat(depth);
        match e {
            Expr::Term(i) => {
                let g = rule.terms[*i];
                let spec = &self.set.specs[g];
                let spans = self.spans(g);
                let mut label = if spec.boundary {
                    format!("[{}]", spec.text)
                } else {
                    format!("\"{}\"", spec.text)
                };
                match spec.scope {
                    Scope::Title => label.push_str(" in title"),
                    Scope::Text => label.push_str(" in text"),
                    Scope::Any => {}
                }
                let detail = if spans.is_empty() {
                    let raw = self.occurrences(self.set.spec_pattern[g]).len();
                    if raw > 0 {
                        format!(
                            "found {raw} times, none {}",
                            if spec.boundary {
                                "on word boundaries or in scope"
                            } else {
                                "in scope"
                            }
                        )
                    } else {
                        "not found".into()
                    }
                } else {
                    let at: Vec<String> = spans
                        .iter()
                        .take(5)
                        .map(|s| format!("{} 「{}」", self.char_at(s.0), self.context(*s)))
                        .collect();
                    format!("at character {}", at.join(", "))
                };
                out.push(format!(
                    "{pad}{} {label}: {detail}",
                    mark(!spans.is_empty())
                ));
            }
            Expr::Meta(i) => {
                let m = &rule.metas[*i];
                let (label, actual) = match m {
                    Meta::Author(a) => (format!("author:{a}"), self.doc.author.clone()),
                    Meta::Site(s) => (format!("site:{s}"), self.doc.site.clone()),
                    Meta::SourceType(t) => (
                        format!("source_type:{}", t.zh()),
                        self.doc.source_type.zh().to_string(),
                    ),
                };
                out.push(format!(
                    "{pad}{} {label} (item: {actual})",
                    mark(self.meta(m))
                ));
            }
            Expr::And(v) | Expr::Or(v) => {
                let name = if matches!(e, Expr::And(_)) {
                    "AND"
                } else {
                    "OR"
                };
                out.push(format!("{pad}{} {name}", mark(self.holds(rule, e))));
                for c in v {
                    self.explain(rule, c, depth + 1, out);
                }
            }
            Expr::Not(inner) => {
                out.push(format!("{pad}{} NOT", mark(self.holds(rule, e))));
                self.explain(rule, inner, depth + 1, out);
            }
            Expr::Near {
                left,
                right,
                within,
                ordered,
            } => {
                let op = if *ordered { "ONEAR" } else { "NEAR" };
                let ok = self.holds(rule, e);
                out.push(format!("{pad}{} {op}/{within}", mark(ok)));
                self.explain(rule, left, depth + 1, out);
                self.explain(rule, right, depth + 1, out);
            }
        }
    }

    /// A few characters around a span, for explanations.
    fn context(&self, (a, b): Span) -> String {
        let text = &self.doc.combined;
        let before: String = text[..a as usize]
            .chars()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let after: String = text[b as usize..].chars().take(6).collect();
        format!("{before}[{}]{after}", &text[a as usize..b as usize]).replace('\n', " ")
    }
}
