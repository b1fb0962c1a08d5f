//! Reprint events: grouping items whose SimHashes are a few bits apart, and
//! an event's heat.
//!
//! [`SimhashIndex`] finds every stored fingerprint within `max_distance`
//! bits of a query. It is multi-index hashing (Norouzi, Punjani and Fleet,
//! 2012): the 64 bits are cut into four 16-bit bands, each band has its own
//! table, and by the pigeonhole principle two fingerprints within `k` bits
//! agree within `k / 4` bits on at least one band. A query probes, in each
//! table, every band value within that radius, and checks the full distance
//! of what it finds, so the answer is exact, not approximate. The probes
//! grow fast with the radius (17 a band at 4 bits, 2,517 at 18, the
//! alerter's default), and where reading every fingerprint costs less the
//! index does that instead, with the same answer.
//!
//! [`EventClusterer`] is the assignment rule the alerter persists: the
//! index finds the items whose word SimHash is near, the word-pair SimHash
//! confirms them (see [`crate::simhash`]), and an item joins the event of
//! the nearest confirmed one, or starts its own.

use yuqing_model::{Engagement, SourceType};

const BANDS: usize = 4;
const BAND_BITS: u32 = 16;

fn band(h: u64, b: usize) -> u16 {
    (h >> (b as u32 * BAND_BITS)) as u16
}

/// Exact Hamming-radius search over 64-bit fingerprints, each carrying a
/// value (in the alerter, its event).
#[derive(Debug, Clone)]
pub struct SimhashIndex<V> {
    max_distance: u32,
    /// Every band value within the band radius of zero, as XOR masks.
    masks: Vec<u16>,
    slots: Vec<Option<(u64, V)>>,
    /// The fingerprint of each slot (stale in a free one), in one array
    /// for [`Search::Scan`].
    hashes: Vec<u64>,
    free: Vec<u32>,
    /// Per band, the slots of each band value: 65,536 buckets a band,
    /// indexed directly (a few MB, and a probe is one array read).
    tables: Vec<Vec<Vec<u32>>>,
    len: usize,
}

/// How a query reads the index: probing every band value within the band
/// radius in each band's table, or reading every fingerprint. Both find
/// the same; which is cheaper depends on the radius and the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    Probe,
    Scan,
}

/// One fingerprint found by [`SimhashIndex::within`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour<'a, V> {
    pub simhash: u64,
    pub distance: u32,
    pub value: &'a V,
}

impl<V> SimhashIndex<V> {
    /// An index answering "which fingerprints are within `max_distance`
    /// bits". Up to 11 bits keeps the band radius at 2 (137 probes per band);
    /// more still works but probes grow fast.
    pub fn new(max_distance: u32) -> Self {
        let radius = max_distance / BANDS as u32;
        let masks = (0..=u16::MAX)
            .filter(|m| m.count_ones() <= radius)
            .collect();
        SimhashIndex {
            max_distance,
            masks,
            slots: Vec::new(),
            hashes: Vec::new(),
            free: Vec::new(),
            tables: vec![vec![Vec::new(); 1 << BAND_BITS]; BANDS],
            len: 0,
        }
    }

    pub fn max_distance(&self) -> u32 {
        self.max_distance
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, simhash: u64, value: V) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some((simhash, value));
                self.hashes[s as usize] = simhash;
                s
            }
            None => {
                self.slots.push(Some((simhash, value)));
                self.hashes.push(simhash);
                (self.slots.len() - 1) as u32
            }
        };
        for (b, table) in self.tables.iter_mut().enumerate() {
            table[band(simhash, b) as usize].push(slot);
        }
        self.len += 1;
    }

    /// Every stored fingerprint within `max_distance` bits of `simhash`,
    /// nearest first (ties in insertion order).
    pub fn within(&self, simhash: u64) -> Vec<Neighbour<'_, V>> {
        self.within_by(simhash, self.search())
    }

    /// The cheaper way to answer a query at this size and radius. Measured
    /// on the 2-core build machine over random fingerprints: a probe of a
    /// band table costs about 7 ns, each fingerprint a probe turns up about
    /// 170 ns more (a read from anywhere in the slots, and a check against
    /// those other bands found), and a scan about 1 ns a fingerprint. So
    /// probing pays only at a band radius of 0 or 1 (up to 7 bits) on more
    /// than a few hundred fingerprints; at the alerter's default radius (18
    /// bits, 2,517 probes a band) the scan is 0.3 ms against 8 ms a query
    /// at 300,000 fingerprints.
    fn search(&self) -> Search {
        let probes = (BANDS * self.masks.len()) as f64;
        let turned_up = self.len as f64 * probes / f64::from(1u32 << BAND_BITS);
        let probe_ns = probes * 7.0 + turned_up * 170.0;
        if self.hashes.len() as f64 <= probe_ns {
            Search::Scan
        } else {
            Search::Probe
        }
    }

    fn within_by(&self, simhash: u64, search: Search) -> Vec<Neighbour<'_, V>> {
        let mut found = Vec::new();
        let mut check = |slot: u32| {
            if let Some((h, v)) = &self.slots[slot as usize] {
                let distance = (h ^ simhash).count_ones();
                if distance <= self.max_distance {
                    found.push((
                        slot,
                        Neighbour {
                            simhash: *h,
                            distance,
                            value: v,
                        },
                    ));
                }
            }
        };
        match search {
            Search::Scan => {
                for (slot, h) in self.hashes.iter().enumerate() {
                    if (h ^ simhash).count_ones() <= self.max_distance {
                        check(slot as u32);
                    }
                }
            }
            Search::Probe => {
                let mut seen = rustc_hash::FxHashSet::default();
                for (b, table) in self.tables.iter().enumerate() {
                    let key = band(simhash, b);
                    for m in &self.masks {
                        for &slot in &table[(key ^ m) as usize] {
                            if seen.insert(slot) {
                                check(slot);
                            }
                        }
                    }
                }
            }
        }
        found.sort_by_key(|(slot, n)| (n.distance, *slot));
        found.into_iter().map(|(_, n)| n).collect()
    }

    /// Removes every fingerprint whose value fails `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &V) -> bool) {
        for slot in 0..self.slots.len() {
            let Some((h, v)) = &self.slots[slot] else {
                continue;
            };
            if keep(*h, v) {
                continue;
            }
            let h = *h;
            for (b, table) in self.tables.iter_mut().enumerate() {
                table[band(h, b) as usize].retain(|s| *s as usize != slot);
            }
            self.slots[slot] = None;
            self.free.push(slot as u32);
            self.len -= 1;
        }
    }
}

/// How an item relates to the events seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment<E> {
    /// A reprint: joins `event`, nearest to the item `of`, `distance` bits
    /// away in words and word pairs together.
    Joins { event: E, of: E, distance: u32 },
    /// Nothing near: the item starts an event of its own.
    Starts,
}

/// When two items are one article: candidates come from the word SimHash
/// within `max_distance` bits, and are confirmed when the word and
/// word-pair distances add up to at most `max_combined`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReprintThresholds {
    pub max_distance: u32,
    pub max_combined: u32,
}

impl ReprintThresholds {
    pub fn from_config(c: &yuqing_config::AlertConfig) -> Self {
        ReprintThresholds {
            max_distance: c.simhash_max_distance,
            max_combined: c.simhash_max_combined,
        }
    }
}

/// Items this short are not fingerprinted: a few shared words say nothing
/// about whether two texts are one article.
pub const MIN_TOKENS_FOR_EVENT: usize = 12;

/// Groups items into reprint events: each fingerprinted item is indexed
/// under its event, so a reprint of a reprint joins the same event even
/// when it has drifted from the first publisher's text.
#[derive(Debug, Clone)]
pub struct EventClusterer<E> {
    thresholds: ReprintThresholds,
    /// Word SimHash → (event, item, word-pair SimHash).
    index: SimhashIndex<(E, E, u64)>,
    /// The (word, word-pair) SimHashes indexed under each event. An item
    /// whose fingerprints are already indexed under its event is not
    /// indexed again: a query would find it at the same distance, in the
    /// same event, as the copy already there. So a story
    /// reposted word for word thousands of times costs one entry, not a
    /// candidate per copy for every later reprint to check.
    indexed: rustc_hash::FxHashSet<(u64, u64, E)>,
}

impl<E: Clone + Eq + std::hash::Hash> EventClusterer<E> {
    pub fn new(thresholds: ReprintThresholds) -> Self {
        EventClusterer {
            thresholds,
            index: SimhashIndex::new(thresholds.max_distance),
            indexed: Default::default(),
        }
    }

    pub fn thresholds(&self) -> ReprintThresholds {
        self.thresholds
    }

    /// The event an item with these SimHashes belongs to, among events
    /// `live` accepts (the alerter passes those updated within its window).
    pub fn assign(
        &self,
        words: u64,
        pairs: u64,
        mut live: impl FnMut(&E) -> bool,
    ) -> Assignment<E> {
        self.index
            .within(words)
            .into_iter()
            .filter_map(|n| {
                let (event, item, their_pairs) = n.value;
                // Without a pair hash on either side (items analyzed before
                // it existed), the word distance stands for both.
                let pair_distance = if pairs == 0 || *their_pairs == 0 {
                    n.distance
                } else {
                    (pairs ^ their_pairs).count_ones()
                };
                let distance = n.distance + pair_distance;
                (distance <= self.thresholds.max_combined && live(event))
                    .then_some((distance, event, item))
            })
            .min_by_key(|(distance, ..)| *distance)
            .map_or(Assignment::Starts, |(distance, event, item)| {
                Assignment::Joins {
                    event: event.clone(),
                    of: item.clone(),
                    distance,
                }
            })
    }

    /// Indexes an item's fingerprints under its event, unless the same
    /// fingerprints are indexed under that event already.
    pub fn add(&mut self, words: u64, pairs: u64, event: E, item: E) {
        if self.indexed.insert((words, pairs, event.clone())) {
            self.index.insert(words, (event, item, pairs));
        }
    }

    /// Forgets the fingerprints of events `keep` rejects.
    pub fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        self.index.retain(|_, (e, _, _)| keep(e));
        self.indexed.retain(|(_, _, e)| keep(e));
    }

    /// Fingerprints indexed (an item identical to one before it in its
    /// event is not).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// How much one item of a source type weighs in an event's heat: an
/// official or news outlet carrying a story spreads it further than one
/// more forum post.
pub fn source_weight(t: SourceType) -> f64 {
    match t {
        SourceType::Government => 3.0,
        SourceType::News | SourceType::Foreign => 2.0,
        SourceType::App | SourceType::Video => 1.5,
        SourceType::Microblog | SourceType::Forum | SourceType::Tieba => 1.0,
        SourceType::Blog => 0.8,
    }
}

/// One item's share of its event's heat (热度): its source type's weight,
/// plus the logarithm of its engagement, where reposts count most (they
/// spread the item), then replies, then likes, then views.
pub fn item_heat(source_type: SourceType, e: &Engagement) -> f64 {
    let interactions = 2.0 * e.reposts.unwrap_or(0) as f64
        + e.replies.unwrap_or(0) as f64
        + 0.5 * e.likes.unwrap_or(0) as f64
        + 0.01 * e.views.unwrap_or(0) as f64;
    source_weight(source_type) + (1.0 + interactions).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of 64-bit values (SplitMix64).
    fn rng(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    fn flip(h: u64, bits: u32, next: &mut impl FnMut() -> u64) -> u64 {
        let mut out = h;
        while (out ^ h).count_ones() < bits {
            out ^= 1 << (next() % 64);
        }
        out
    }

    #[test]
    fn finds_exactly_what_a_linear_scan_finds() {
        for max in [0, 3, 7, 10, 11, 14, 18] {
            let mut next = rng(max as u64 + 1);
            let mut index = SimhashIndex::new(max);
            let mut all = Vec::new();
            for i in 0..3_000u32 {
                // Clusters of near fingerprints among random ones, so
                // every distance around the threshold occurs.
                let h = if i % 3 == 0 || all.is_empty() {
                    next()
                } else {
                    let (base, _) = all[(next() % all.len() as u64) as usize];
                    flip(base, (next() % 18) as u32, &mut next)
                };
                index.insert(h, i);
                all.push((h, i));
            }
            for q in 0..400 {
                let probe = if q % 2 == 0 {
                    next()
                } else {
                    flip(all[q * 7 % all.len()].0, (next() % 16) as u32, &mut next)
                };
                let mut want: Vec<(u32, u32)> = all
                    .iter()
                    .map(|(h, v)| ((h ^ probe).count_ones(), *v))
                    .filter(|(d, _)| *d <= max)
                    .collect();
                want.sort();
                for search in [Search::Probe, Search::Scan] {
                    let got: Vec<(u32, u32)> = index
                        .within_by(probe, search)
                        .iter()
                        .map(|n| (n.distance, *n.value))
                        .collect();
                    assert_eq!(got, want, "max {max}, {search:?}, probe {probe:#x}");
                }
            }
        }
    }

    #[test]
    fn retain_removes_and_slots_are_reused() {
        let mut index = SimhashIndex::new(6);
        index.insert(0b1011, "a");
        index.insert(0b1010, "b");
        index.insert(u64::MAX, "c");
        index.retain(|_, v| *v != "a");
        assert_eq!(index.len(), 2);
        let got: Vec<_> = index.within(0b1011).iter().map(|n| *n.value).collect();
        assert_eq!(got, ["b"]);
        index.insert(0b1011, "d");
        assert_eq!(index.len(), 3);
        assert_eq!(index.slots.len(), 3, "the freed slot is reused");
        let got: Vec<_> = index.within(0b1011).iter().map(|n| *n.value).collect();
        assert_eq!(got, ["d", "b"]);
    }

    #[test]
    fn clusterer_joins_the_nearest_live_event_and_follows_drift() {
        let mut c = EventClusterer::new(ReprintThresholds {
            max_distance: 4,
            max_combined: 8,
        });
        assert_eq!(c.assign(0, 0, |_| true), Assignment::Starts);
        c.add(0, 0xf0, "e1", "i1");
        // 3 bits from the first in words, 1 in pairs: joins.
        let a = c.assign(0b111, 0xf1, |_| true);
        assert_eq!(
            a,
            Assignment::Joins {
                event: "e1",
                of: "i1",
                distance: 4
            }
        );
        c.add(0b111, 0xf1, "e1", "i2");
        // 6 bits from the first but 3 from the reprint: still the event.
        let a = c.assign(0b11_1111, 0xf1, |_| true);
        assert_eq!(
            a,
            Assignment::Joins {
                event: "e1",
                of: "i2",
                distance: 3
            }
        );
        // Near in words, far in pairs: a distinct article on the topic.
        assert_eq!(c.assign(0b111, 0xff00, |_| true), Assignment::Starts);
        // Without a pair hash the word distance counts twice: 3 + 3.
        let a = c.assign(0b11_1111, 0, |_| true);
        assert_eq!(
            a,
            Assignment::Joins {
                event: "e1",
                of: "i2",
                distance: 6
            }
        );
        // An expired event is not joined.
        assert_eq!(c.assign(0b111, 0xf1, |e| *e != "e1"), Assignment::Starts);
        c.retain(|e| *e != "e1");
        assert!(c.is_empty());
    }

    #[test]
    fn copies_word_for_word_are_indexed_once_an_event() {
        let mut c = EventClusterer::new(ReprintThresholds {
            max_distance: 4,
            max_combined: 8,
        });
        c.add(0b1, 0xf0, "e1", "i1");
        for i in ["i2", "i3", "i4"] {
            c.add(0b1, 0xf0, "e1", i);
        }
        assert_eq!(c.len(), 1, "copies add nothing to search");
        let a = c.assign(0b1, 0xf0, |_| true);
        assert_eq!(
            a,
            Assignment::Joins {
                event: "e1",
                of: "i1",
                distance: 0
            }
        );
        // The same fingerprints under another event are its own entry.
        c.add(0b1, 0xf0, "e2", "j1");
        assert_eq!(c.len(), 2);
        let a = c.assign(0b1, 0xf0, |e| *e == "e2");
        assert_eq!(
            a,
            Assignment::Joins {
                event: "e2",
                of: "j1",
                distance: 0
            }
        );
        // Once e2 is forgotten, a copy of it indexes again.
        c.retain(|e| *e != "e2");
        assert_eq!(c.len(), 1);
        c.add(0b1, 0xf0, "e2", "j2");
        assert_eq!(c.len(), 2);
        // Copies of either, whose entries stand, do not.
        c.add(0b1, 0xf0, "e1", "i5");
        c.add(0b1, 0xf0, "e2", "j3");
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn heat_weighs_source_types_and_engagement() {
        let none = Engagement::default();
        assert!(
            item_heat(SourceType::Government, &none) > item_heat(SourceType::News, &none)
                && item_heat(SourceType::News, &none) > item_heat(SourceType::Forum, &none)
        );
        let shared = Engagement {
            reposts: Some(100),
            ..Engagement::default()
        };
        let liked = Engagement {
            likes: Some(100),
            ..Engagement::default()
        };
        let f = |e| item_heat(SourceType::Microblog, e);
        assert!(f(&shared) > f(&liked) && f(&liked) > f(&none));
        assert_eq!(f(&none), 1.0);
    }
}
