//! Quiet sources: a source whose runs succeed and find its pages' items, but
//! whose new items stopped coming.
//!
//! A frozen list page, a feed its site no longer updates or an API cursor
//! stuck past the newest post all look like success run after run: the
//! fetch works, the items are there, and none is new. Whether a stretch
//! without new items is odd depends on the hour: an hour of silence at
//! three in the morning is ordinary, at ten it is not. So a silence is
//! judged against the same stretch of time on the previous days, from the
//! crawl state's record of when each item was first seen: how many new
//! items arrived between the same clock times one to seven days earlier
//! (the median of the seven), and one week earlier on its own, so a source
//! silent every weekend is not quiet on a Saturday. The smaller of the two
//! is what the silence would usually have brought; when that is at least
//! `crawler.quiet_expected`, the silence is not chance. With no new item in
//! a Poisson stream expecting 10, the odds are about 1 in 22,000.
//!
//! The longer the silence, the more it would usually have brought, so a
//! source with a few items an hour is quiet after hours where a busy one is
//! quiet after the first `quiet_after_mins`. A source younger than a week
//! has no week-earlier stretch and is never quiet.
//!
//! A quiet source is `ok` again once the last `quiet_after_mins` bring at
//! least a quarter of what the same hours usually bring, so a source that
//! slowed to an item every two hours does not open and resolve an
//! incident with each item.

use chrono::{DateTime, Utc};

/// Days of history a silence is compared with.
pub const HISTORY_DAYS: usize = 7;

/// What a source brought in a stretch of time, against its history: a
/// silence (nothing since its newest item) or, for a source that was
/// quiet, the stretch just past.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Start of the stretch: for a silence, when its newest item was first
    /// seen.
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// New items in the stretch (none in a silence).
    pub count: u32,
    /// New items in the same stretch of time 1, 2, ... 7 days earlier.
    pub history: [u32; HISTORY_DAYS],
}

impl Silence {
    /// The median of the previous days' counts.
    pub fn median(&self) -> f64 {
        let mut v = self.history;
        v.sort_unstable();
        f64::from(v[HISTORY_DAYS / 2])
    }

    /// The count one week earlier.
    pub fn week_ago(&self) -> u32 {
        self.history[HISTORY_DAYS - 1]
    }

    /// What the stretch would usually have brought: the smaller of the
    /// median and the week-earlier count.
    pub fn expected(&self) -> f64 {
        self.median().min(f64::from(self.week_ago()))
    }

    /// Whether the stretch is a quiet source's: at least `expected_min`
    /// items would usually have come, and it brought under a quarter of
    /// them. A quiet source stays quiet until its stretch just past
    /// brings a quarter of the usual (one item after hours of silence, from
    /// a source that used to bring forty an hour, is not a recovery).
    pub fn is_quiet(&self, expected_min: u32) -> bool {
        let expected = self.expected();
        expected >= f64::from(expected_min.max(1)) && f64::from(self.count) * 4.0 < expected
    }

    /// The reason shown with the `quiet` state.
    pub fn reason(&self) -> String {
        let what = match self.count {
            0 => format!("no new item for {}", span(self.now - self.since)),
            n => format!(
                "only {n} new item(s) in the last {}",
                span(self.now - self.since)
            ),
        };
        format!(
            "{what}; the same hours brought {} on the previous days (median) and {} a week ago",
            self.median(),
            self.week_ago()
        )
    }
}

/// "3 h 20 min", "2 d 4 h", "45 min".
fn span(d: chrono::Duration) -> String {
    let mins = d.num_minutes().max(0);
    let (days, hours, mins) = (mins / 1440, mins / 60 % 24, mins % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) => format!("{h} h {mins} min"),
        (d, h) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(hours: i64, history: [u32; HISTORY_DAYS]) -> Silence {
        let now = Utc::now();
        Silence {
            since: now - chrono::Duration::minutes(hours * 60 + 5),
            now,
            count: 0,
            history,
        }
    }

    #[test]
    fn a_silence_is_quiet_when_the_same_hours_usually_bring_enough() {
        let s = silence(2, [30, 28, 35, 31, 0, 29, 33]);
        assert_eq!(s.median(), 30.0);
        assert_eq!(s.expected(), 30.0);
        assert!(s.is_quiet(10));
        assert_eq!(
            s.reason(),
            "no new item for 2 h 5 min; the same hours brought 30 on the previous days (median) and 33 a week ago"
        );
    }

    #[test]
    fn night_hours_weekends_and_young_sources_are_not_quiet() {
        // The same hours are quiet every night.
        assert!(!silence(5, [0, 1, 0, 2, 0, 0, 1]).is_quiet(10));
        // Busy on weekdays, silent a week ago: a weekend.
        assert!(!silence(30, [40, 40, 40, 40, 40, 12, 0]).is_quiet(10));
        // A source three days old has no week-earlier stretch.
        assert!(!silence(2, [30, 30, 30, 0, 0, 0, 0]).is_quiet(10));
        // Just under the bar.
        assert!(!silence(1, [9, 9, 9, 9, 9, 9, 9]).is_quiet(10));
        assert!(silence(1, [10, 9, 11, 10, 12, 8, 10]).is_quiet(10));
    }

    #[test]
    fn a_quiet_source_recovers_when_it_brings_a_quarter_of_the_usual() {
        let mut s = silence(1, [40, 40, 40, 40, 40, 40, 40]);
        s.count = 1;
        assert!(s.is_quiet(10), "one item is not a recovery");
        assert!(
            s.reason()
                .starts_with("only 1 new item(s) in the last 1 h 5 min;"),
            "{}",
            s.reason()
        );
        s.count = 10;
        assert!(!s.is_quiet(10));
        // At night, any item will do.
        let mut night = silence(1, [2, 1, 3, 2, 0, 1, 2]);
        night.count = 0;
        assert!(!night.is_quiet(10));
    }

    #[test]
    fn spans_read_as_a_person_would_say_them() {
        assert_eq!(span(chrono::Duration::minutes(45)), "45 min");
        assert_eq!(span(chrono::Duration::minutes(200)), "3 h 20 min");
        assert_eq!(span(chrono::Duration::minutes(3 * 1440 + 125)), "3 d 2 h");
    }
}
