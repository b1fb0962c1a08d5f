//! Every rule compiled into one automaton pass plus a boolean evaluation per
//! rule, so matching cost grows with the text, not with the number of rules.

use aho_corasick::{AhoCorasick, MatchKind};
use yuqing_config::{ConfigError, RuleConfig};
use yuqing_model::RuleHit;

use crate::query::{Expr, Query};

#[derive(Debug)]
struct CompiledRule {
    config: RuleConfig,
    expr: Expr,
    /// Query term index → global term index.
    terms: Vec<usize>,
}

/// The compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    terms: Vec<String>,
    automaton: Option<AhoCorasick>,
}

impl RuleSet {
    /// Compiles every rule that parses; the others come back as errors that
    /// point into their files. A broken rule never takes the others down.
    pub fn compile(configs: &[RuleConfig]) -> (RuleSet, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let mut terms: Vec<String> = Vec::new();
        let mut rules = Vec::new();
        for cfg in configs {
            match Query::parse(&cfg.query) {
                Ok(q) => {
                    let map = q
                        .terms
                        .iter()
                        .map(|t| match terms.iter().position(|x| x == t) {
                            Some(i) => i,
                            None => {
                                terms.push(t.clone());
                                terms.len() - 1
                            }
                        })
                        .collect();
                    rules.push(CompiledRule {
                        config: cfg.clone(),
                        expr: q.expr,
                        terms: map,
                    });
                }
                Err(e) => errors.push(cfg.origin.error_at(e.pos, e.message)),
            }
        }
        let automaton = if terms.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&terms)
                    .expect("rule terms build an automaton"),
            )
        };
        (
            RuleSet {
                rules,
                terms,
                automaton,
            },
            errors,
        )
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every distinct term of every rule, for the segmenter's user dictionary.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The rules that fire on `text`, which must already be lower-cased.
    pub fn matches(&self, lowered: &str) -> Vec<RuleHit> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        let mut found = vec![false; self.terms.len()];
        for m in ac.find_overlapping_iter(lowered) {
            found[m.pattern().as_usize()] = true;
        }
        let mut hits = Vec::new();
        for r in &self.rules {
            let present = |i: usize| found[r.terms[i]];
            if r.expr.eval(&present) {
                let mut positive = Vec::new();
                r.expr.positive_terms(&mut positive);
                let terms = positive
                    .into_iter()
                    .filter(|&i| present(i))
                    .map(|i| self.terms[r.terms[i]].clone())
                    .collect();
                hits.push(RuleHit {
                    rule_id: r.config.id.clone(),
                    rule_name: r.config.name.clone(),
                    topic: r.config.topic.clone(),
                    level: r.config.level,
                    weight: r.config.weight,
                    terms,
                });
            }
        }
        hits
    }
}
