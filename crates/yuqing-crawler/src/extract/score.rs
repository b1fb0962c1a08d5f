//! Shingle F1, as the scrapinghub article-extraction benchmark computes it:
//! per page, true positives, false positives and false negatives over
//! n-gram shingles (with multiplicity), normalized so each page weighs the
//! same; summed over pages; then precision, recall and F1.
//!
//! Words are runs of `\w` (Unicode letters, digits, `_`), so English is
//! scored by word 4-grams. Chinese has no spaces: score it by character
//! shingles ([`Tokens::Chars`]).

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// `\w+` runs, as the benchmark tokenizes.
    Words,
    /// Every alphanumeric character on its own (for Chinese).
    Chars,
}

fn tokens(text: &str, kind: Tokens) -> Vec<&str> {
    match kind {
        Tokens::Words => text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|t| !t.is_empty())
            .collect(),
        Tokens::Chars => text
            .char_indices()
            .filter(|(_, c)| c.is_alphanumeric())
            .map(|(i, c)| &text[i..i + c.len_utf8()])
            .collect(),
    }
}

fn shingles(text: &str, n: usize, kind: Tokens) -> HashMap<Vec<&str>, usize> {
    let toks = tokens(text, kind);
    let mut out: HashMap<Vec<&str>, usize> = HashMap::new();
    if toks.is_empty() {
        return out;
    }
    // As the benchmark does: a text shorter than n is one shingle.
    let last = toks.len().saturating_sub(n) + 1;
    for i in 0..last.max(1) {
        let end = (i + n).min(toks.len());
        *out.entry(toks[i..end].to_vec()).or_default() += 1;
    }
    out
}

/// Normalized (tp, fp, fn) of one page.
pub fn page_counts(truth: &str, predicted: &str, n: usize, kind: Tokens) -> (f64, f64, f64) {
    let t = shingles(truth, n, kind);
    let p = shingles(predicted, n, kind);
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for key in t.keys().chain(p.keys().filter(|k| !t.contains_key(*k))) {
        let tc = t.get(key).copied().unwrap_or(0) as f64;
        let pc = p.get(key).copied().unwrap_or(0) as f64;
        tp += tc.min(pc);
        fp += (pc - tc).max(0.0);
        fn_ += (tc - pc).max(0.0);
    }
    let s = tp + fp + fn_;
    if s > 0.0 {
        (tp / s, fp / s, fn_ / s)
    } else {
        (0.0, 0.0, 0.0)
    }
}

/// Precision, recall and F1 over pages' normalized counts.
pub fn precision_recall_f1(pages: &[(f64, f64, f64)]) -> (f64, f64, f64) {
    let (tp, fp, fn_) = pages
        .iter()
        .fold((0.0, 0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_scores_one_and_disjoint_zero() {
        let t = "the quick brown fox jumps over the lazy dog";
        assert_eq!(page_counts(t, t, 4, Tokens::Words), (1.0, 0.0, 0.0));
        let (tp, fp, fn_) = page_counts(
            t,
            "completely different words in this one",
            4,
            Tokens::Words,
        );
        assert_eq!(tp, 0.0);
        assert!(fp > 0.0 && fn_ > 0.0);
    }

    #[test]
    fn extra_boilerplate_lowers_precision_only() {
        let t = "one two three four five six seven eight";
        let p = "menu home login one two three four five six seven eight share tweet mail";
        let pages = [page_counts(t, p, 4, Tokens::Words)];
        let (precision, recall, _) = precision_recall_f1(&pages);
        assert_eq!(recall, 1.0);
        assert!(precision < 0.6);
    }

    #[test]
    fn chinese_by_characters() {
        let t = "江州市青山区发生垮塌";
        let (tp, _, _) = page_counts(t, "导航 江州市青山区发生垮塌", 4, Tokens::Chars);
        assert!(tp > 0.7, "{tp}");
        assert_eq!(tokens("江州，市", Tokens::Chars), vec!["江", "州", "市"]);
    }
}
