//! 64-bit SimHash over word tokens, for finding reprints (转载): texts that
//! share most of their words get fingerprints a few bits apart.

/// SimHash of the given features, each weighted by its count.
pub fn simhash<'a>(features: impl IntoIterator<Item = &'a str>) -> u64 {
    // Per bit: +1 for each feature hash with the bit set, -1 otherwise,
    // computed without branches so the loop vectorizes.
    let mut acc = [0i32; 64];
    let mut any = false;
    for f in features {
        any = true;
        let h = feature_hash(f);
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
        assert_eq!(feature_hash("江州"), feature_hash("江州"));
    }
}
