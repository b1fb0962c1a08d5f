//! Keywords: TF-IDF over an item's tokens, with jieba's IDF table (the
//! common words of it; rarer words get the table's median, as jieba gives
//! unknown words). The hot words of a time window are counted from these by
//! the alerter's store, which keeps every item's keywords.

use std::io::Read;

use yuqing_model::{Keyword, Token};

/// The words of jieba's IDF table with an IDF under 11, `word idf` a line
/// (82,000 of its 270,000 words; jieba-rs, MIT licence).
static IDF_TABLE: &[u8] = include_bytes!("../data/idf-common.txt.gz");

/// IDF of a word not in the table: the median of jieba's full table.
const DEFAULT_IDF: f32 = 11.95;

/// Words that say nothing about what an item is about, whatever their IDF.
const STOP_WORDS: &[&str] = &[
    "一个",
    "一些",
    "一样",
    "一直",
    "上述",
    "不是",
    "不过",
    "个人",
    "为了",
    "之后",
    "也是",
    "了解",
    "什么",
    "今天",
    "今年",
    "他们",
    "以及",
    "以来",
    "作为",
    "你们",
    "其中",
    "具体",
    "即可",
    "去年",
    "可以",
    "可能",
    "同时",
    "因为",
    "因此",
    "如果",
    "已经",
    "并且",
    "当天",
    "当时",
    "我们",
    "所以",
    "据悉",
    "据了解",
    "日前",
    "日电",
    "时间",
    "昨天",
    "是否",
    "有关",
    "本报讯",
    "来源",
    "没有",
    "然而",
    "现在",
    "目前",
    "相关",
    "看到",
    "表示",
    "记者",
    "责任编辑",
    "还是",
    "这个",
    "这些",
    "这样",
    "进行",
    "通过",
    "那么",
    "需要",
    "非常",
    "上午",
    "下午",
    "晚上",
    "近日",
    "此外",
    "但是",
    "而且",
    "对于",
    "关于",
    "由于",
    "虽然",
    "还有",
    "就是",
    "自己",
    "这种",
    "这里",
    "其他",
    "有些",
    "其实",
    "大家",
    "编辑",
    "发布",
    "报道",
    "http",
    "https",
    "www",
    "com",
    "html",
];

/// Builds keywords from tokens.
#[derive(Debug)]
pub struct KeywordExtractor {
    /// IDF by the 64-bit hash of the word ([`word_key`]), and [`STOP`] for
    /// stop words: one probe per distinct word, with no string compared.
    idf: IdfTable,
    /// The table's words, for [`KeywordExtractor::vocabulary_with_idf`].
    words: Vec<(String, f32)>,
}

/// The IDF entry of a stop word.
const STOP: f32 = -1.0;

/// A word's key in the IDF map. Two of the table's words sharing a key
/// would be caught when the table loads.
fn word_key(w: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(w.as_bytes());
    h.finish()
}

impl Default for KeywordExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl KeywordExtractor {
    pub fn new() -> KeywordExtractor {
        let mut text = String::new();
        flate2::read::GzDecoder::new(IDF_TABLE)
            .read_to_string(&mut text)
            .expect("the bundled IDF table decodes");
        let words: Vec<(String, f32)> = text
            .lines()
            .filter_map(|l| {
                let (w, v) = l.split_once(' ')?;
                Some((w.to_string(), v.parse().ok()?))
            })
            .collect();
        let mut idf = IdfTable::with_capacity(words.len() + STOP_WORDS.len());
        for (w, v) in &words {
            assert!(idf.insert(word_key(w), *v), "IDF words with one key");
        }
        for w in STOP_WORDS {
            idf.insert(word_key(w), STOP);
        }
        KeywordExtractor { idf, words }
    }

    /// The words of the IDF table with an IDF in `lo..hi`, sorted.
    pub fn vocabulary_with_idf(&self, lo: f32, hi: f32) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .words
            .iter()
            .filter(|(w, i)| (lo..hi).contains(i) && self.idf.get(word_key(w)) != Some(STOP))
            .map(|(w, _)| w.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether a token can be a keyword: two characters or more, Chinese or
    /// a Latin word, not a number (stop words are left to the IDF probe).
    fn candidate(w: &str) -> bool {
        // Two to twelve characters: at least 2 bytes, at most 48.
        if w.len() < 2 || w.len() > 48 {
            return false;
        }
        let mut chars = 0;
        let mut letters = false;
        for c in w.chars() {
            chars += 1;
            letters |= c.is_ascii_alphabetic()
                || crate::normalize::is_han(c)
                || (!c.is_ascii() && c.is_alphabetic());
        }
        (2..=12).contains(&chars) && letters
    }

    /// The `top` words with the highest TF-IDF; title words count twice.
    pub fn extract(&self, title: &[Token], text: &[Token], top: usize) -> Vec<Keyword> {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let Scratch { table, words } = &mut *s;
            // Distinct words by key, through an open-addressing set sized
            // to the item and reused, rather than a map built per item.
            let slots = ((title.len() + text.len()) * 2).next_power_of_two().max(16);
            table.clear();
            table.resize(slots, 0);
            words.clear();
            let mask = slots - 1;
            let mut total = 0f32;
            for (field, (tokens, weight)) in [(title, 2.0f32), (text, 1.0)].into_iter().enumerate()
            {
                for (i, t) in tokens.iter().enumerate() {
                    if !Self::candidate(&t.text) {
                        continue;
                    }
                    let key = word_key(&t.text);
                    let mut at = (key as usize) & mask;
                    let w = loop {
                        match table[at] {
                            0 => {
                                words.push(Counted {
                                    key,
                                    token: (field as u32, i as u32),
                                    idf: 0.0,
                                    n: 0.0,
                                });
                                table[at] = words.len() as u32;
                                break words.last_mut().expect("just pushed");
                            }
                            e if words[e as usize - 1].key == key => {
                                break &mut words[e as usize - 1];
                            }
                            _ => at = (at + 1) & mask,
                        }
                    };
                    w.n += weight;
                }
            }
            // The IDF probes go in a loop of their own: each is a likely
            // cache miss in a 2 MB table, and with nothing between them
            // the processor has several in flight at once. Counts are
            // whole numbers, so the total is exact in any order.
            for w in words.iter_mut() {
                w.idf = self.idf.get(w.key).unwrap_or(DEFAULT_IDF);
                if w.idf != STOP {
                    total += w.n;
                }
            }
            let word = |(field, i): (u32, u32)| {
                let tokens = if field == 0 { title } else { text };
                tokens[i as usize].text.as_str()
            };
            let mut scored: Vec<(&str, f32)> = if total == 0.0 {
                Vec::new()
            } else {
                words
                    .iter()
                    .filter(|w| w.idf != STOP)
                    .map(|w| (word(w.token), w.n / total * w.idf))
                    .collect()
            };
            // A thread that once read a huge item does not keep its buffers.
            if table.capacity() > 1 << 16 || words.capacity() > 1 << 15 {
                *table = Vec::new();
                *words = Vec::new();
            }
            let by_weight =
                |a: &(&str, f32), b: &(&str, f32)| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0));
            if top > 0 && scored.len() > top {
                scored.select_nth_unstable_by(top - 1, by_weight);
            }
            scored.truncate(top);
            scored.sort_by(by_weight);
            scored
                .into_iter()
                .map(|(w, weight)| Keyword {
                    word: w.to_string(),
                    weight,
                })
                .collect()
        })
    }
}

/// IDF by word key, in one open-addressing array of `(key, idf)` slots:
/// a probe reads one 16-byte slot, where a hash map reads a control byte
/// and then a bucket, two likely cache misses for a table this size.
#[derive(Debug)]
struct IdfTable {
    /// Key 0 marks an empty slot; no word of the table has it.
    slots: Vec<(u64, f32)>,
    len: usize,
    /// `64 - log2(slots.len())`.
    shift: u32,
}

impl IdfTable {
    /// A table for `n` keys, at most five eighths full.
    fn with_capacity(n: usize) -> IdfTable {
        let slots = (n * 8).div_ceil(5).next_power_of_two().max(16);
        IdfTable {
            slots: vec![(0, 0.0); slots],
            len: 0,
            shift: 64 - slots.trailing_zeros(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn find(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = self.slot(key);
        while self.slots[at].0 != 0 && self.slots[at].0 != key {
            at = (at + 1) & mask;
        }
        at
    }

    /// Set `key`'s IDF; false if the key was there already.
    fn insert(&mut self, key: u64, idf: f32) -> bool {
        assert_ne!(key, 0, "no word key is 0");
        assert!(
            (self.len + 1) * 8 <= self.slots.len() * 5,
            "the IDF table is sized for its words"
        );
        let at = self.find(key);
        let new = self.slots[at].0 == 0;
        self.slots[at] = (key, idf);
        self.len += usize::from(new);
        new
    }

    #[inline]
    fn get(&self, key: u64) -> Option<f32> {
        match self.slots[self.find(key)] {
            (0, _) => None,
            (_, idf) => Some(idf),
        }
    }
}

/// A distinct word of an item: its key, its first token (field 0 the
/// title, 1 the text, and index), its IDF and its weighted count.
struct Counted {
    key: u64,
    token: (u32, u32),
    idf: f32,
    n: f32,
}

/// Buffers reused across items on one thread.
#[derive(Default)]
struct Scratch {
    /// Index + 1 into `words` of the word in each slot; 0 is empty.
    table: Vec<u32>,
    words: Vec<Counted>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(words: &[&str]) -> Vec<Token> {
        words
            .iter()
            .map(|w| Token {
                text: (*w).into(),
                start: 0,
                end: 0,
            })
            .collect()
    }

    #[test]
    fn rare_topical_words_outrank_common_ones() {
        let k = KeywordExtractor::new();
        assert!(k.idf.len() > 80_000);
        let title = tokens(&["化工厂", "爆炸"]);
        let text = tokens(&[
            "今天",
            "化工厂",
            "发生",
            "爆炸",
            "记者",
            "表示",
            "爆炸",
            "造成",
            "3",
            "人",
            "受伤",
            "工作",
            "进行",
        ]);
        let got: Vec<String> = k
            .extract(&title, &text, 3)
            .into_iter()
            .map(|k| k.word)
            .collect();
        assert_eq!(got[0], "爆炸");
        assert!(got.contains(&"化工厂".to_string()), "{got:?}");
        assert!(
            !got.iter().any(|w| w == "今天" || w == "记者" || w == "3"),
            "{got:?}"
        );
    }

    #[test]
    fn the_idf_table_holds_every_word_and_nothing_else() {
        let k = KeywordExtractor::new();
        let stop: std::collections::HashSet<u64> = STOP_WORDS.iter().map(|w| word_key(w)).collect();
        for (w, idf) in &k.words {
            let want = if stop.contains(&word_key(w)) {
                STOP
            } else {
                *idf
            };
            assert_eq!(k.idf.get(word_key(w)), Some(want), "{w}");
        }
        for w in STOP_WORDS {
            assert_eq!(k.idf.get(word_key(w)), Some(STOP), "{w}");
        }
        for w in ["臨江市暴雨積水", "qwertyuiop", "一二三四五六七八九十一二三"]
        {
            assert_eq!(k.idf.get(word_key(w)), None, "{w}");
        }
        assert_eq!(k.idf.get(0), None);
        let mut t = IdfTable::with_capacity(3);
        assert!(t.insert(7, 1.5));
        assert!(!t.insert(7, 2.5), "a second insert replaces");
        assert_eq!((t.get(7), t.get(8), t.len()), (Some(2.5), None, 1));
    }

    /// TF-IDF by a map per item, as a plain reading of the definition.
    fn reference(
        k: &KeywordExtractor,
        title: &[Token],
        text: &[Token],
        top: usize,
    ) -> Vec<Keyword> {
        let mut tf: std::collections::HashMap<&str, (f32, f32)> = Default::default();
        let mut total = 0f32;
        for (tokens, weight) in [(title, 2.0f32), (text, 1.0)] {
            for t in tokens {
                if !KeywordExtractor::candidate(&t.text) {
                    continue;
                }
                let idf = k.idf.get(word_key(&t.text)).unwrap_or(DEFAULT_IDF);
                if idf == STOP {
                    continue;
                }
                tf.entry(t.text.as_str()).or_insert((idf, 0.0)).1 += weight;
                total += weight;
            }
        }
        let mut scored: Vec<(&str, f32)> = tf
            .into_iter()
            .map(|(w, (idf, n))| (w, n / total * idf))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        scored.truncate(top);
        scored
            .into_iter()
            .map(|(w, weight)| Keyword {
                word: w.to_string(),
                weight,
            })
            .collect()
    }

    #[test]
    fn the_set_counts_as_a_map_would() {
        let k = KeywordExtractor::new();
        let vocabulary = [
            "化工厂",
            "爆炸",
            "记者",
            "今天",
            "3",
            "人",
            "受伤",
            "临江市",
            "暴雨",
            "covid",
            "http",
            "积水",
            "转移",
            "消防",
            "救援",
            "一二三四五六七八九十一二三",
        ];
        let mut next = crate::tests::xorshift();
        for round in 0..200 {
            let title: Vec<&str> = (0..next(6))
                .map(|_| vocabulary[next(vocabulary.len())])
                .collect();
            let text: Vec<&str> = (0..next(80))
                .map(|_| vocabulary[next(vocabulary.len())])
                .collect();
            let (title, text) = (tokens(&title), tokens(&text));
            for top in [0, 1, 3, 8, 100] {
                assert_eq!(
                    k.extract(&title, &text, top),
                    reference(&k, &title, &text, top),
                    "round {round}, top {top}"
                );
            }
        }
    }
}
