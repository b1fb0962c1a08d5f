//! Dates as Chinese pages show them.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::text::parse_time;

/// The first publication time in visible text: after a label (`发布时间：`,
/// `发表于`, `时间：`), an absolute date (`2024年3月5日 14:30`,
/// `2024-03-05 14:30`), `今天/昨天/前天 08:12`, or `N分钟前/N小时前/N天前`.
pub fn parse_visible_time(text: &str, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    for label in [
        "发布时间",
        "发表时间",
        "发表于",
        "发布于",
        "时间：",
        "日期：",
    ] {
        if let Some(i) = text.find(label) {
            let after = text[i + label.len()..].trim_start_matches([':', '：', ' ']);
            if let Some(t) =
                absolute_at_start(after, tz).or_else(|| relative_at_start(after, tz, now))
            {
                return Some(t);
            }
        }
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let starts_word = k == 0 || !chars[k - 1].1.is_ascii_digit();
        if !starts_word {
            continue;
        }
        let rest = &text[i..];
        if c.is_ascii_digit() {
            if let Some(t) =
                absolute_at_start(rest, tz).or_else(|| relative_at_start(rest, tz, now))
            {
                return Some(t);
            }
        } else if matches!(c, '今' | '昨' | '前')
            && let Some(t) = relative_at_start(rest, tz, now)
        {
            return Some(t);
        }
    }
    None
}

/// `YYYY年M月D日[ HH:MM[:SS]]` or `YYYY-MM-DD[ HH:MM[:SS]]` at the start.
fn absolute_at_start(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let end = s
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_digit() || "年月日-/: ".contains(*c))
        .last()
        .map(|(i, c)| i + c.len_utf8())?;
    let candidate = s[..end].trim();
    // Try the longest prefix that parses, dropping trailing pieces.
    let mut cut = candidate.to_string();
    while !cut.is_empty() {
        if cut.chars().filter(|c| c.is_ascii_digit()).count() >= 6
            && (cut.contains('年') || cut.contains('-') || cut.contains('/'))
            && let Some(t) = parse_time(&cut, tz)
        {
            let year = t.with_timezone(&tz).year();
            if (1990..=2100).contains(&year) {
                return Some(t);
            }
        }
        cut.pop();
        cut = cut.trim_end().to_string();
    }
    None
}

/// `今天/昨天/前天 HH:MM`, `N分钟前`, `N小时前`, `N天前` at the start.
fn relative_at_start(s: &str, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local_now = now.with_timezone(&tz);
    for (word, days) in [("今天", 0), ("昨天", 1), ("前天", 2)] {
        if let Some(rest) = s.strip_prefix(word) {
            let rest = rest.trim_start();
            let hm: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ':')
                .collect();
            let time = NaiveTime::parse_from_str(&hm, "%H:%M").unwrap_or(NaiveTime::MIN);
            let date: NaiveDate = local_now.date_naive() - Duration::days(days);
            return tz
                .from_local_datetime(&date.and_time(time))
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let n: i64 = digits.parse().ok()?;
    let unit = s[digits.len()..].trim_start();
    let span = if unit.starts_with("分钟前") {
        Duration::minutes(n)
    } else if unit.starts_with("小时前") {
        Duration::hours(n)
    } else if unit.starts_with("天前") {
        Duration::days(n)
    } else if unit.starts_with("秒前") {
        Duration::seconds(n)
    } else {
        return None;
    };
    Some(now - span)
}
