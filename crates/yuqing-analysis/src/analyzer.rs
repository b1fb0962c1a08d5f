//! The analyzer: segment, match rules, score, fingerprint.

use std::sync::Arc;

use jieba_rs::Jieba;
use yuqing_config::{Config, ConfigError, Thresholds, UserWord};
use yuqing_model::{AnalyzedItem, Item, ItemField, Mark, Token};

use crate::keywords::KeywordExtractor;
use crate::lexicon::Lexicon;
use crate::normalize::{Normalized, normalize};
use crate::rules::{Explanation, MatchDoc, RuleSet};
use crate::sentiment::SentimentModel;
use crate::simhash::fingerprints;

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
        Segmenter::with_dictionary(&[], user_words)
    }

    /// [`Segmenter::new`], with the words of user dictionaries added after
    /// the rule terms, so a compound a dictionary knows (`和平精英`) stays
    /// whole even where a rule term (`和平`) starts it.
    pub fn with_dictionary<'a>(
        dictionary: &[UserWord],
        terms: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut jieba = Jieba::new();
        for w in terms {
            // Multi-word phrases are not dictionary words.
            if !w.chars().any(char::is_whitespace) {
                jieba.add_word(w, None, None);
            }
        }
        for w in dictionary {
            let word = crate::normalize::normalize(&w.word);
            if !word.is_empty() && !word.chars().any(char::is_whitespace) {
                jieba.add_word(&word, w.freq, None);
            }
        }
        Segmenter {
            jieba: Arc::new(jieba),
        }
    }

    /// The segmenter a config asks for: its user dictionaries and its
    /// rules' terms.
    pub fn for_config<'a>(config: &Config, terms: impl IntoIterator<Item = &'a str>) -> Self {
        Segmenter::with_dictionary(&config.user_words, terms)
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
            if is_word(t.word) {
                let r = n.original_range(t.byte_start..t.byte_end);
                tokens.push(Token {
                    text: t.word.into(),
                    start: r.start,
                    end: r.end,
                });
            }
        }
        (tokens, bounds)
    }
}

fn match_doc(
    title: &Normalized,
    text: &Normalized,
    title_bounds: Vec<u32>,
    text_bounds: Vec<u32>,
    item: &Item,
) -> MatchDoc {
    let mut doc = MatchDoc::new(&title.text, &text.text, title_bounds, text_bounds);
    doc.author = item.author.as_deref().map(normalize).unwrap_or_default();
    doc.site = item.site.to_ascii_lowercase();
    doc.source_type = item.source_type;
    doc
}

impl Segmenter {
    /// What rules are evaluated against for `item` (its title, text,
    /// author, site and source type), for checking a rule against stored
    /// items.
    pub fn match_doc(&self, item: &Item) -> MatchDoc {
        self.match_doc_normalized(
            &Normalized::new(&item.title),
            &Normalized::new(&item.text),
            item,
        )
    }

    /// [`Segmenter::match_doc`] when the item's title and text are
    /// normalized already.
    pub fn match_doc_normalized(
        &self,
        title: &Normalized,
        text: &Normalized,
        item: &Item,
    ) -> MatchDoc {
        let (_, title_bounds) = self.tokens_of(title);
        let (_, text_bounds) = self.tokens_of(text);
        match_doc(title, text, title_bounds, text_bounds, item)
    }
}

/// Stateless analysis of one item at a time; cheap to share across tasks.
#[derive(Debug)]
pub struct Analyzer {
    segmenter: Segmenter,
    rules: RuleSet,
    lexicon: Lexicon,
    keywords: KeywordExtractor,
    sentiment: Option<Arc<SentimentModel>>,
    thresholds: Thresholds,
}

/// Keywords kept per item.
const KEYWORDS_PER_ITEM: usize = 8;

/// Time spent in each stage of the analysis, summed over items.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes(pub [std::time::Duration; 7]);

impl StageTimes {
    /// The stages, in order.
    pub const NAMES: [&'static str; 7] = [
        "normalize",
        "segment",
        "rules",
        "lexicon",
        "score+keywords",
        "sentiment",
        "simhash",
    ];
}

/// An item normalized and segmented, ready for the rules and the lexicon.
struct Prepared {
    doc: MatchDoc,
    title: Normalized,
    text: Normalized,
    title_tokens: Vec<Token>,
    text_tokens: Vec<Token>,
}

impl Analyzer {
    /// Builds the analyzer from a loaded config. Rules whose queries do not
    /// compile are left out and returned as errors, which the caller reports.
    pub fn new(config: &Config) -> (Analyzer, Vec<ConfigError>) {
        let (rules, mut errors) = RuleSet::compile(&config.rules);
        let sentiment = match config.settings.analysis.sentiment_model.as_str() {
            "off" => None,
            "bundled" => Some(Arc::new(SentimentModel::bundled())),
            path => {
                let file = config
                    .origin
                    .parent()
                    .unwrap_or(std::path::Path::new(""))
                    .join(path);
                match std::fs::File::open(&file)
                    .map_err(|e| e.to_string())
                    .and_then(|mut f| SentimentModel::read(&mut f))
                {
                    Ok(m) => Some(Arc::new(m)),
                    Err(e) => {
                        errors.push(
                            ConfigError::new(
                                &config.origin,
                                format!("{}: {e}; the bundled model is used", file.display()),
                            )
                            .field("analysis.sentiment_model"),
                        );
                        Some(Arc::new(SentimentModel::bundled()))
                    }
                }
            }
        };
        let segmenter = Segmenter::for_config(config, rules.terms().iter().map(String::as_str));
        (
            Analyzer {
                segmenter,
                rules,
                lexicon: Lexicon::new(&config.lexicon, &config.allow),
                keywords: KeywordExtractor::new(),
                sentiment,
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
    fn prepare(&self, item: &Item, lap: &mut dyn FnMut(usize)) -> Prepared {
        let title = Normalized::new(&item.title);
        let text = Normalized::new(&item.text);
        lap(0);
        let (title_tokens, title_bounds) = self.segmenter.tokens_of(&title);
        let (text_tokens, text_bounds) = self.segmenter.tokens_of(&text);
        lap(1);
        let doc = match_doc(&title, &text, title_bounds, text_bounds, item);
        Prepared {
            doc,
            title,
            text,
            title_tokens,
            text_tokens,
        }
    }

    /// How each rule (or rule `id`) meets `item`, for `yuqing rules test`.
    pub fn explain(&self, item: &Item, id: Option<&str>) -> Vec<Explanation> {
        self.rules.explain(&self.prepare(item, &mut |_| {}).doc, id)
    }

    pub fn analyze(&self, item: Item) -> AnalyzedItem {
        self.analyze_timed(item, None)
    }

    /// [`Analyzer::analyze`], adding the time each stage took to `times`.
    pub fn analyze_timed(&self, item: Item, mut times: Option<&mut StageTimes>) -> AnalyzedItem {
        let mut clock = times.as_ref().map(|_| std::time::Instant::now());
        let mut lap = |stage: usize, times: &mut Option<&mut StageTimes>| {
            if let (Some(t), Some(c)) = (times.as_deref_mut(), clock.as_mut()) {
                let now = std::time::Instant::now();
                t.0[stage] += now - *c;
                *c = now;
            }
        };
        let Prepared {
            doc,
            title,
            text,
            title_tokens,
            text_tokens,
        } = self.prepare(&item, &mut |stage| lap(stage, &mut times));
        let mut hits = self.rules.matches(&doc);
        for h in &mut hits {
            to_published(&mut h.marks, &item, [&title, &text]);
        }
        lap(2, &mut times);
        // The lexicon reads the squeezed text, which is the normalized text
        // itself unless fillers sit inside words.
        let lexicon_hits = if self.lexicon.is_empty() {
            Vec::new()
        } else {
            let (t, x) = (title.squeezed(), text.squeezed());
            let (t, x) = (t.as_ref().unwrap_or(&title), x.as_ref().unwrap_or(&text));
            let mut hits = self.lexicon.scan(&t.text, &x.text);
            // A squeezed text's map leads to the published text too.
            for h in &mut hits {
                to_published(&mut h.marks, &item, [t, x]);
            }
            hits
        };
        lap(3, &mut times);
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
        lap(4, &mut times);
        let sentiment = self.sentiment.as_ref().map(|m| {
            if title.text.is_empty() {
                m.classify_normalized(&[&text.text])
            } else {
                m.classify_normalized(&[&title.text, &text.text])
            }
        });
        lap(5, &mut times);
        let fingerprint_tokens = if text_tokens.is_empty() {
            &title_tokens
        } else {
            &text_tokens
        };
        let (simhash, simhash_pairs) = fingerprints(fingerprint_tokens);
        lap(6, &mut times);
        AnalyzedItem {
            item,
            title_tokens,
            text_tokens,
            hits,
            lexicon_hits,
            sentiment,
            keywords,
            score,
            level,
            simhash,
            simhash_pairs,
        }
    }
}

/// Marks in the normalized (or squeezed) title and text, moved to the
/// item as published.
fn to_published(marks: &mut [Mark], item: &Item, [title, text]: [&Normalized; 2]) {
    for m in marks {
        let (n, original) = match m.field {
            ItemField::Title => (title, &item.title),
            ItemField::Text => (text, &item.text),
        };
        let r = n.original_span(original, m.start as usize..m.end as usize);
        (m.start, m.end) = (r.start as u32, r.end as u32);
    }
}

/// Whether a segment is a word rather than punctuation or space: a quick
/// look at the first character settles almost every segment.
fn is_word(w: &str) -> bool {
    match w.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() || crate::normalize::is_han(c) => true,
        Some(c) if c.is_ascii() && w.len() == 1 => false,
        _ => w.chars().any(char::is_alphanumeric),
    }
}
