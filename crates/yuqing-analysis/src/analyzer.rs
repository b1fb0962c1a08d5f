//! The analyzer: segment, match rules, score, fingerprint.

use std::sync::Arc;

use jieba_rs::Jieba;
use yuqing_config::{Config, ConfigError, Thresholds};
use yuqing_model::{AnalyzedItem, Item, Token};

use crate::rules::RuleSet;
use crate::simhash::simhash;

/// One jieba instance for the whole process: building it loads a 5 MB
/// dictionary (about 0.3 s), so every analyzer and the index's query
/// tokenizer share it.
#[derive(Clone)]
pub struct Segmenter {
    jieba: Arc<Jieba>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter").finish_non_exhaustive()
    }
}

impl Segmenter {
    /// jieba's default dictionary plus `user_words` (rule terms), so a rule
    /// term is segmented as one word wherever it occurs.
    pub fn new<'a>(user_words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut jieba = Jieba::new();
        for w in user_words {
            // Multi-word phrases are not dictionary words.
            if !w.chars().any(char::is_whitespace) {
                jieba.add_word(w, None, None);
            }
        }
        Segmenter {
            jieba: Arc::new(jieba),
        }
    }

    /// Word tokens of `text` with byte offsets; whitespace and punctuation are
    /// dropped.
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        self.jieba
            .cut(text, true)
            .into_iter()
            .filter(|t| t.word.chars().any(char::is_alphanumeric))
            .map(|t| Token {
                text: t.word.to_string(),
                start: t.byte_start,
                end: t.byte_end,
            })
            .collect()
    }
}

/// Stateless analysis of one item at a time; cheap to share across tasks.
#[derive(Debug)]
pub struct Analyzer {
    segmenter: Segmenter,
    rules: RuleSet,
    thresholds: Thresholds,
}

impl Analyzer {
    /// Builds the analyzer from a loaded config. Rules whose queries do not
    /// compile are left out and returned as errors, which the caller reports.
    pub fn new(config: &Config) -> (Analyzer, Vec<ConfigError>) {
        let (rules, errors) = RuleSet::compile(&config.rules);
        let segmenter = Segmenter::new(rules.terms().iter().map(String::as_str));
        (
            Analyzer {
                segmenter,
                rules,
                thresholds: config.settings.analysis.thresholds,
            },
            errors,
        )
    }

    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn analyze(&self, item: Item) -> AnalyzedItem {
        let title_tokens = self.segmenter.tokens(&item.title);
        let text_tokens = self.segmenter.tokens(&item.text);
        let mut lowered = String::with_capacity(item.title.len() + item.text.len() + 1);
        lowered.push_str(&item.title);
        lowered.push('\n');
        lowered.push_str(&item.text);
        let lowered = lowered.to_lowercase();
        let hits = self.rules.matches(&lowered);
        let score = hits.iter().map(|h| h.weight).sum::<u32>().min(100) as u8;
        let level = hits
            .iter()
            .map(|h| h.level)
            .chain(self.thresholds.level_for(score))
            .max();
        let fingerprint_tokens = if text_tokens.is_empty() {
            &title_tokens
        } else {
            &text_tokens
        };
        let simhash = simhash(fingerprint_tokens.iter().map(|t| t.text.as_str()));
        AnalyzedItem {
            item,
            title_tokens,
            text_tokens,
            hits,
            score,
            level,
            simhash,
        }
    }
}
