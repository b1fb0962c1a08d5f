//! 64-bit SimHash over word tokens, for finding reprints (转载): texts that
//! share most of their words get fingerprints a few bits apart.
//!
//! An item gets two: one over its words and one over its pairs of
//! consecutive words. The word hash is what the event index searches (a
//! reprint with a rewritten lead keeps most of its words); the pair hash
//! confirms a candidate, since articles on one topic in one place share
//! words but rarely word pairs. Their distances add up to the distance of
//! one 128-bit SimHash, with half the noise of either half alone.

use yuqing_model::Token;

/// SimHash of the given features, each weighted by its count.
pub fn simhash<'a>(features: impl IntoIterator<Item = &'a str>) -> u64 {
    hashes_to_simhash(features.into_iter().map(feature_hash))
}

/// The word and word-pair SimHashes of a text's tokens. Words of one
/// character (particles, measure words, single letters) are left out of
/// both: they carry style, not content.
pub fn fingerprints(tokens: &[Token]) -> (u64, u64) {
    let words: Vec<u64> = tokens
        .iter()
        .filter(|t| t.text.chars().nth(1).is_some())
        .map(|t| feature_hash(&t.text))
        .collect();
    let pairs = words.windows(2).map(|w| pair_hash(w[0], w[1]));
    (
        hashes_to_simhash(words.iter().copied()),
        hashes_to_simhash(pairs),
    )
}

fn hashes_to_simhash(hashes: impl Iterator<Item = u64>) -> u64 {
    // Per bit: +1 for each feature hash with the bit set, -1 otherwise,
    // computed without branches so the loop vectorizes.
    let mut acc = [0i32; 64];
    let mut any = false;
    for h in hashes {
        any = true;
        for (bit, a) in acc.iter_mut().enumerate() {
            *a += ((h >> bit) & 1) as i32 * 2 - 1;
        }
    }
    if !any {
        return 0;
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| **a > 0)
        .fold(0u64, |h, (bit, _)| h | 1 << bit)
}

/// The feature hash of two consecutive words: order matters, and it is
/// independent of any single word's hash.
fn pair_hash(a: u64, b: u64) -> u64 {
    mix(a.rotate_left(17) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Number of differing bits.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// A hash that is stable across builds and platforms (fingerprints are
/// stored): FNV-1a, then the SplitMix64 finalizer to spread the bits.
fn feature_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// The SplitMix64 finalizer.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_texts_are_close_and_different_texts_far() {
        let a: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let mut b = a.clone();
        b[3] = "changed".into();
        b.push("来源".into());
        let c: Vec<String> = (0..200).map(|i| format!("x{i}")).collect();
        let ha = simhash(a.iter().map(String::as_str));
        let hb = simhash(b.iter().map(String::as_str));
        let hc = simhash(c.iter().map(String::as_str));
        assert!(hamming(ha, hb) <= 8, "{}", hamming(ha, hb));
        assert!(hamming(ha, hc) > 16, "{}", hamming(ha, hc));
    }

    #[test]
    fn stable_values() {
        // Fingerprints are persisted: the function must never change.
        assert_eq!(simhash(["a"]), feature_hash("a"));
        assert_eq!(simhash(Vec::<&str>::new()), 0);
        assert_eq!(feature_hash("江州"), 0x8eb1_eaff_f7ff_4a88);
        assert_eq!(pair_hash(1, 2), 0x5b00_c671_9759_0451);
    }

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
    fn fingerprints_skip_single_characters_and_see_word_order() {
        let a = fingerprints(&tokens(&["临江", "的", "暴雨", "了", "积水"]));
        let b = fingerprints(&tokens(&["临江", "暴雨", "积水"]));
        assert_eq!(a, b);
        let swapped = fingerprints(&tokens(&["暴雨", "临江", "积水"]));
        assert_eq!(swapped.0, a.0, "same words");
        assert_ne!(swapped.1, a.1, "other pairs");
        assert_eq!(fingerprints(&tokens(&["的"])), (0, 0));
    }
}
