//! Volume spikes per topic: an hour's item count against that topic's own
//! baseline for the same hour of the day.
//!
//! Opinion volume has a strong daily rhythm: thirty posts at nine in the
//! morning can be an ordinary day, and thirty at three in the morning
//! something happening. So the baseline of an hour is the median of the
//! counts at the same hour on each of the previous days (a day without
//! items counts as 0), and its spread is the larger of the median absolute
//! deviation of those counts (scaled to a standard deviation) and the
//! square root of the median (the Poisson spread, so a quiet topic's spread
//! is not zero). The median and MAD ignore the odd earlier spike, which a
//! mean and standard deviation would absorb into the baseline.
//!
//! An hour is a spike when its count is at least `min_count`, at least
//! `min_ratio` times the baseline, and at least `min_z` spreads above it.

use yuqing_config::SpikeConfig;

/// A topic's expected volume for one hour of the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Median count at this hour over the history days.
    pub expected: f64,
    /// Robust standard deviation, at least the Poisson spread.
    pub spread: f64,
    /// Days of history it was computed from.
    pub days: usize,
}

impl Baseline {
    /// From the counts at the same hour on each previous day.
    pub fn from_same_hour(counts: &[u32]) -> Baseline {
        let expected = median(counts.iter().map(|&c| f64::from(c)).collect());
        let mad = median(
            counts
                .iter()
                .map(|&c| (f64::from(c) - expected).abs())
                .collect(),
        );
        Baseline {
            expected,
            spread: (1.4826 * mad).max(expected.sqrt()).max(1.0),
            days: counts.len(),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// How big a spike is.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SpikeSize {
    pub count: u32,
    pub expected: f64,
    /// `count / max(expected, 1)`.
    pub ratio: f64,
    /// Spreads above the baseline.
    pub z: f64,
}

/// Whether `count` items in an hour is a spike against `baseline`.
pub fn detect(count: u32, baseline: &Baseline, cfg: &SpikeConfig) -> Option<SpikeSize> {
    if baseline.days < cfg.min_history_days as usize {
        return None;
    }
    let c = f64::from(count);
    let ratio = c / baseline.expected.max(1.0);
    let z = (c - baseline.expected) / baseline.spread;
    (count >= cfg.min_count && ratio >= cfg.min_ratio && z >= cfg.min_z).then_some(SpikeSize {
        count,
        expected: baseline.expected,
        ratio,
        z,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SpikeConfig {
        SpikeConfig::default()
    }

    #[test]
    fn the_same_count_is_ordinary_in_a_busy_hour_and_a_spike_in_a_quiet_one() {
        // Every morning at nine about 30 items; at three about 1.
        let nine = Baseline::from_same_hour(&[28, 31, 30, 33, 27, 30, 29]);
        let three = Baseline::from_same_hour(&[1, 0, 2, 1, 0, 1, 1]);
        assert_eq!(detect(30, &nine, &cfg()), None);
        assert_eq!(detect(36, &nine, &cfg()), None, "a busy morning");
        let s = detect(30, &three, &cfg()).unwrap();
        assert_eq!(s.count, 30);
        assert_eq!(s.expected, 1.0);
        assert_eq!(s.ratio, 30.0);
        assert!((s.z - 29.0).abs() < 1e-9, "{}", s.z);
        // A plain mean + 3 sigma over all hours of those days would call
        // neither: the mean sits between them and the sigma is wide.
    }

    #[test]
    fn one_earlier_spike_does_not_raise_the_baseline() {
        let b = Baseline::from_same_hour(&[2, 3, 2, 60, 2, 3, 2]);
        assert_eq!(b.expected, 2.0);
        assert!(detect(20, &b, &cfg()).is_some());
    }

    #[test]
    fn small_counts_short_history_and_noisy_topics_do_not_fire() {
        let quiet = Baseline::from_same_hour(&[0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(detect(4, &quiet, &cfg()), None, "under min_count");
        assert!(detect(5, &quiet, &cfg()).is_some());
        let short = Baseline::from_same_hour(&[0, 0]);
        assert_eq!(detect(50, &short, &cfg()), None, "two days of history");
        // Counts swing between 5 and 40 at this hour: 45 is within reach.
        let noisy = Baseline::from_same_hour(&[5, 40, 8, 35, 12, 30, 20]);
        assert_eq!(detect(45, &noisy, &cfg()), None);
    }
}
