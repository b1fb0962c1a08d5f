//! Dates as Chinese pages show them.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::text::parse_time;

/// The first publication time in visible text: after a label (`发布时间：`,
/// `发表于`, `时间：`), an absolute date (`2024年3月5日 14:30`,
/// `2024-03-05 14:30`), `今天/昨天/前天 08:12`, or `N分钟前/N小时前/N天前`.
pub fn parse_visible_time(text: &str, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Labels in the order they appear: the article's dateline comes before
    // the `发表于` of its comments.
    let mut labelled: Vec<(usize, &str)> = [
        "发布时间",
        "发表时间",
        "发布日期",
        "发稿时间",
        "发表于",
        "发布于",
        "时间：",
        "时间:",
        "日期：",
        "日期:",
    ]
    .iter()
    .filter_map(|l| text.find(l).map(|i| (i, *l)))
    .collect();
    labelled.sort();
    for (i, label) in labelled {
        let after =
            text[i + label.len()..].trim_start_matches([':', '：', ' ', '\u{a0}', '\u{3000}']);
        if let Some(t) = absolute_at_start(after, tz).or_else(|| relative_at_start(after, tz, now))
        {
            return Some(t);
        }
    }
    // Unlabelled: the first date, unless a date with a time of the same day
    // follows (a header shows today's date above the article's time).
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut date_only: Option<DateTime<Utc>> = None;
    for (k, &(i, c)) in chars.iter().enumerate() {
        let starts_word = k == 0 || !chars[k - 1].1.is_ascii_digit();
        if !starts_word {
            continue;
        }
        let rest = &text[i..];
        let found = if c.is_ascii_digit() {
            absolute_at_start(rest, tz).or_else(|| relative_at_start(rest, tz, now))
        } else if matches!(c, '今' | '昨' | '前') {
            relative_at_start(rest, tz, now)
        } else {
            None
        };
        let Some(t) = found else { continue };
        let local = t.with_timezone(&tz);
        match date_only {
            None if local.time() == NaiveTime::MIN => date_only = Some(t),
            None => return Some(t),
            Some(d) if d.with_timezone(&tz).date_naive() == local.date_naive() => {
                if local.time() != NaiveTime::MIN {
                    return Some(t);
                }
            }
            Some(d) => return Some(d),
        }
    }
    date_only
}

/// Characters a written date and time take at most
/// (`2024年12月31日 23:59:59` is 21).
const LONGEST_DATE: usize = 32;

/// Years a publication date may fall in.
const YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// `YYYY年M月D日[ HH:MM[:SS]]` or `YYYY-MM-DD[ HH:MM[:SS]]` at the start.
fn absolute_at_start(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    // A long run of digits and separators is no date, and trying each of
    // its prefixes would take time with the square of its length.
    let end = s
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_digit() || "年月日-/: ".contains(*c))
        .take(LONGEST_DATE)
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
            if YEARS.contains(&year) {
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
    // A span too long for a date (`200000000000天前`) is no date.
    let span = if unit.starts_with("分钟前") {
        Duration::try_minutes(n)
    } else if unit.starts_with("小时前") {
        Duration::try_hours(n)
    } else if unit.starts_with("天前") {
        Duration::try_days(n)
    } else if unit.starts_with("秒前") {
        Duration::try_seconds(n)
    } else {
        return None;
    }?;
    now.checked_sub_signed(span)
        .filter(|t| YEARS.contains(&t.with_timezone(&tz).year()))
}

/// Chinese bylines in visible text: `作者：张涛`, `本报记者 陈思远`,
/// `（记者孙浩然）`, `文/钱晓燕`. A name is two to four Han characters.
pub fn chinese_byline(text: &str) -> Option<String> {
    const SEPARATORS: &[char] = &[' ', '\u{3000}', '\u{a0}', '：', ':', '/', '／', '丨', '|'];
    let mut best: Option<(usize, String)> = None;
    for key in ["记者", "作者", "撰稿", "文/", "文／"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(key) {
            let at = from + found;
            from = at + key.len();
            let before = text[..at].chars().next_back();
            let rest = &text[at + key.len()..];
            let after = rest.trim_start_matches(SEPARATORS);
            let separated = after.len() < rest.len() || key.ends_with(['/', '／']);
            // `（记者孙浩然）`: in parentheses the name follows at once;
            // elsewhere `记者从…` is prose, not a byline.
            if !separated && !matches!(before, Some('（' | '(')) {
                continue;
            }
            let name: String = after.chars().take_while(|c| is_han(*c)).collect();
            let name = name
                .trim_end_matches("报道")
                .trim_end_matches('摄')
                .to_string();
            let len = name.chars().count();
            if (2..=4).contains(&len) && best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, name));
            }
            break;
        }
    }
    best.map(|(_, n)| n)
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}
