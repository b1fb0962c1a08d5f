//! The analyzer: segment, match rules, score, fingerprint.

use std::sync::Arc;

use jieba_rs::Jieba;
use yuqing_config::{Config, ConfigError, Thresholds};
use yuqing_model::{AnalyzedItem, Item, Token};

use crate::keywords::KeywordExtractor;
use crate::lexicon::Lexicon;
use crate::normalize::{Normalized, normalize};
use crate::rules::{Explanation, MatchDoc, RuleSet};
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

    /// Word tokens of `text`: normalized words (half-width, lower case,
    /// simplified) with byte offsets into `text`; whitespace and
    /// punctuation are dropped. Documents and queries both go through here,
    /// so what is indexed and what is searched agree.
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        self.tokens_of(&Normalized::new(text)).0
    }

    /// Tokens of a normalized text, and the byte offsets in the normalized
    /// text where a word starts or ends.
    pub fn tokens_of(&self, n: &Normalized) -> (Vec<Token>, Vec<u32>) {
        let words = self.jieba.cut(&n.text, true);
        let mut tokens = Vec::with_capacity(words.len());
        let mut bounds = Vec::with_capacity(words.len() + 1);
        for t in words {
            if bounds.last() != Some(&(t.byte_start as u32)) {
                bounds.push(t.byte_start as u32);
            }
            bounds.push(t.byte_end as u32);
            if t.word.chars().any(char::is_alphanumeric) {
                let r = n.original_range(t.byte_start..t.byte_end);
                tokens.push(Token {
                    text: t.word.to_string(),
                    start: r.start,
                    end: r.end,
                });
            }
        }
        (tokens, bounds)
    }
}

/// Stateless analysis of one item at a time; cheap to share across tasks.
#[derive(Debug)]
pub struct Analyzer {
    segmenter: Segmenter,
    rules: RuleSet,
    lexicon: Lexicon,
    keywords: KeywordExtractor,
    thresholds: Thresholds,
}

/// Keywords kept per item.
const KEYWORDS_PER_ITEM: usize = 8;

/// An item normalized and segmented, ready for the rules and the lexicon.
struct Prepared {
    doc: MatchDoc,
    title_tokens: Vec<Token>,
    text_tokens: Vec<Token>,
    /// Squeezed title and text, when there is a lexicon.
    squeezed: Option<[String; 2]>,
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
                lexicon: Lexicon::new(&config.lexicon, &config.allow),
                keywords: KeywordExtractor::new(),
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

    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// The normalized, segmented form of an item that rules match.
    fn prepare(&self, item: &Item) -> Prepared {
        let title = Normalized::new(&item.title);
        let text = Normalized::new(&item.text);
        let (title_tokens, title_bounds) = self.segmenter.tokens_of(&title);
        let (text_tokens, text_bounds) = self.segmenter.tokens_of(&text);
        let mut doc = MatchDoc::new(&title.text, &text.text, title_bounds, text_bounds);
        doc.author = item.author.as_deref().map(normalize).unwrap_or_default();
        doc.site = item.site.to_ascii_lowercase();
        doc.source_type = item.source_type;
        let squeezed =
            (!self.lexicon.is_empty()).then(|| [title.squeezed().text, text.squeezed().text]);
        Prepared {
            doc,
            title_tokens,
            text_tokens,
            squeezed,
        }
    }

    /// How each rule (or rule `id`) meets `item`, for `yuqing rules test`.
    pub fn explain(&self, item: &Item, id: Option<&str>) -> Vec<Explanation> {
        self.rules.explain(&self.prepare(item).doc, id)
    }

    pub fn analyze(&self, item: Item) -> AnalyzedItem {
        let Prepared {
            doc,
            title_tokens,
            text_tokens,
            squeezed,
        } = self.prepare(&item);
        let hits = self.rules.matches(&doc);
        let lexicon_hits = squeezed
            .map(|[t, x]| self.lexicon.scan(&[&t, &x]))
            .unwrap_or_default();
        // Each rule's weight once, and each lexicon word's weight once.
        let score = (hits.iter().map(|h| h.weight).sum::<u32>()
            + lexicon_hits.iter().map(|h| h.weight).sum::<u32>())
        .min(100) as u8;
        let level = hits
            .iter()
            .map(|h| h.level)
            .chain(self.thresholds.level_for(score))
            .max();
        let keywords = self
            .keywords
            .extract(&title_tokens, &text_tokens, KEYWORDS_PER_ITEM);
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
            lexicon_hits,
            keywords,
            score,
            level,
            simhash,
        }
    }
}
