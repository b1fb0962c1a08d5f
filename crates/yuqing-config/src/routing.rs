//! Who gets an incident, how, and when: people, channels, duty rosters,
//! escalation policies and routes (`[[alert.person]]`, `[[alert.channel]]`,
//! `[[alert.roster]]`, `[[alert.policy]]`, `[[alert.route]]`).
//!
//! Times of day are written as windows: `"mon-fri 09:00-18:00"`,
//! `"22:00-07:00"` (every day, past midnight), `"sat,sun"` (whole days).
//! A window is a set of half-open ranges of minutes in the week, Monday
//! 00:00 being minute 0, in the roster's or route's time zone.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use yuqing_model::{Level, SourceType};

use crate::{AlertConfig, ConfigError, PathSeg};

/// Minutes in a week.
pub const WEEK_MINUTES: u32 = 7 * 24 * 60;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A duration written as `30s`, `5m`, `4h` or `1d` (or a sum: `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub u64);

impl Dur {
    /// Ten years: longer durations are mistakes, and would overflow times.
    pub const MAX: Dur = Dur(10 * 365 * 86_400);

    pub const fn secs(s: u64) -> Dur {
        Dur(s)
    }

    pub fn as_secs(self) -> i64 {
        self.0 as i64
    }

    pub fn parse(s: &str) -> Result<Dur, String> {
        let bad = || format!("`{s}` is not a duration: write 30s, 5m, 4h, 1d or 1h30m");
        let mut total = 0u64;
        let mut num = String::new();
        let t = s.trim();
        if t.is_empty() {
            return Err(bad());
        }
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                _ => return Err(bad()),
            };
            let n: u64 = num.parse().map_err(|_| bad())?;
            total = total.saturating_add(n.saturating_mul(unit));
            num.clear();
        }
        if !num.is_empty() {
            return Err(bad());
        }
        if total > Dur::MAX.0 {
            return Err(format!("`{s}` is longer than ten years"));
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            0 => f.write_str("0s"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of times in the week, parsed from a window such as
/// `"mon-fri 09:00-18:00"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub text: String,
    /// Half-open minute-of-week ranges, each within `0..WEEK_MINUTES`.
    pub ranges: Vec<(u32, u32)>,
}

impl Window {
    pub fn parse(s: &str) -> Result<Window, String> {
        let t = s.trim();
        let (days_part, time_part) = match t.split_once(' ') {
            Some((d, rest)) => (Some(d.trim()), Some(rest.trim())),
            None if t.contains(':') => (None, Some(t)),
            None => (Some(t), None),
        };
        let days = match days_part {
            None | Some("daily") | Some("*") => vec![true; 7],
            Some(d) => parse_days(d).map_err(|e| format!("`{s}`: {e}"))?,
        };
        let (start, end) = match time_part {
            None => (0, 24 * 60),
            Some(tp) => {
                let (a, b) = tp.split_once('-').ok_or_else(|| {
                    format!("`{s}`: write the time as HH:MM-HH:MM, for example 09:00-18:00")
                })?;
                let a = parse_hhmm(a).map_err(|e| format!("`{s}`: {e}"))?;
                let b = parse_hhmm(b).map_err(|e| format!("`{s}`: {e}"))?;
                if a == 24 * 60 {
                    return Err(format!("`{s}`: a window cannot start at 24:00"));
                }
                if a == b {
                    return Err(format!(
                        "`{s}`: start and end are the same; write 00:00-24:00 for a whole day"
                    ));
                }
                (a, b)
            }
        };
        // An end at or before the start runs past midnight.
        let len = if end > start {
            end - start
        } else {
            end + 24 * 60 - start
        };
        let mut ranges = Vec::new();
        for (d, on) in days.iter().enumerate() {
            if !on {
                continue;
            }
            let a = d as u32 * 24 * 60 + start;
            let b = a + len;
            if b <= WEEK_MINUTES {
                ranges.push((a, b));
            } else {
                ranges.push((a, WEEK_MINUTES));
                ranges.push((0, b - WEEK_MINUTES));
            }
        }
        ranges.sort_unstable();
        Ok(Window {
            text: t.to_string(),
            ranges,
        })
    }

    pub fn contains(&self, minute_of_week: u32) -> bool {
        self.ranges
            .iter()
            .any(|&(a, b)| minute_of_week >= a && minute_of_week < b)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Window::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn parse_day(s: &str) -> Result<usize, String> {
    let l = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| l.starts_with(d) && d.len() <= l.len())
        .ok_or_else(|| format!("`{s}` is not a day (mon, tue, wed, thu, fri, sat, sun)"))
}

fn parse_days(s: &str) -> Result<Vec<bool>, String> {
    let mut days = vec![false; 7];
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[parse_day(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_hhmm(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a time of day (HH:MM)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `mon 09:00` for a minute of the week.
pub fn format_minute(m: u32) -> String {
    let m = m % WEEK_MINUTES;
    let d = (m / 1440) as usize;
    format!("{} {:02}:{:02}", DAYS[d], (m % 1440) / 60, m % 60)
}

/// Someone who can be on duty or be named in a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Mobile number: DingTalk and WeCom mention it, the SMS gateway sends
    /// to it.
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The channels that reach this person (ids of `[[alert.channel]]`).
    pub channels: Vec<String>,
}

impl PersonConfig {
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A DingTalk group robot (钉钉自定义机器人), signed (加签).
    Dingtalk,
    /// A WeCom group robot (企业微信群机器人).
    Wecom,
    /// A Feishu / Lark custom bot (飞书自定义机器人), signed.
    Feishu,
    /// Email over SMTP.
    Email,
    /// A generic webhook receiving Alertmanager-compatible JSON.
    Webhook,
    /// An SMS or voice gateway, called with an HTTP request built from a
    /// template.
    Sms,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Feishu => "feishu",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Sms => "sms",
        }
    }

    /// The platform's documented sending limit: messages per minute.
    pub fn default_rate_per_minute(self) -> u32 {
        match self {
            ChannelKind::Dingtalk | ChannelKind::Wecom => 20,
            ChannelKind::Feishu => 100,
            ChannelKind::Email => 30,
            ChannelKind::Webhook => 120,
            ChannelKind::Sms => 10,
        }
    }

    /// Requests per second the platform takes, where it limits bursts
    /// too: Feishu custom robots take 5 a second within their 100 a
    /// minute.
    pub fn rate_per_second(self) -> Option<u32> {
        match self {
            ChannelKind::Feishu => Some(5),
            _ => None,
        }
    }
}

/// Whether an SMTP host is this machine: `localhost`, or a loopback
/// address (`127.0.0.1`, `[::1]`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// TLS from the first byte (port 465), common with Chinese providers.
    #[default]
    Implicit,
    /// STARTTLS upgrade (port 587).
    Starttls,
    /// Plain text: only for a relay on the same host.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub id: String,
    pub kind: ChannelKind,
    /// The robot's webhook, the generic webhook or the SMS gateway.
    #[serde(default)]
    pub url: Option<String>,
    /// Signing secret of a DingTalk (SEC…) or Feishu robot.
    #[serde(default)]
    pub secret: Option<String>,
    /// Email: the SMTP server as `host:port`.
    #[serde(default)]
    pub smtp: Option<String>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// Email: a PEM file of root certificates to trust besides the
    /// system's, for a mail server with a private CA.
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Email: the sender, `名称 <address>`.
    #[serde(default)]
    pub from: Option<String>,
    /// Fixed recipients (email addresses, or mobiles for SMS) besides the
    /// people a notification is for.
    #[serde(default)]
    pub to: Vec<String>,
    /// SMS: the request body, with `{mobile}`, `{text}` and `{level}`
    /// replaced (JSON-escaped when the body is JSON).
    #[serde(default)]
    pub body: Option<String>,
    /// SMS: extra request headers.
    #[serde(default)]
    pub headers: HashMap<String, String>,
    /// Messages per minute at most; defaults to the platform's limit.
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
    /// Only incidents at or above this level are sent here.
    #[serde(default)]
    pub min_level: Option<Level>,
}

impl ChannelConfig {
    pub fn rate_per_minute(&self) -> u32 {
        self.rate_per_minute
            .unwrap_or_else(|| self.kind.default_rate_per_minute())
            .max(1)
    }
}

/// One shift of a roster: a weekly window and who is on duty in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftConfig {
    pub when: Window,
    pub person: String,
}

/// A local date and time as written, `2026-10-01 09:00` (or a date alone,
/// meaning its midnight), in the time zone of the roster that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStamp {
    pub at: chrono::NaiveDateTime,
    pub text: String,
}

impl LocalStamp {
    pub fn parse(s: &str) -> Result<LocalStamp, String> {
        let t = s.trim();
        let at = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M")
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
            })
            .map_err(|_| format!("`{s}` is not a local time like `2026-10-01 09:00`"))?;
        Ok(LocalStamp {
            at,
            text: t.to_string(),
        })
    }

    /// The instant it names in `tz`; `None` when the clocks skip it.
    pub fn in_zone(&self, tz: chrono_tz::Tz) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::TimeZone;
        tz.from_local_datetime(&self.at)
            .earliest()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

impl<'de> Deserialize<'de> for LocalStamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalStamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A stretch of duty by date that takes the place of the weekly shifts
/// (a holiday duty table, 节假日值班; a swap, 调班): `person` is on duty
/// from `from` until `until`, local times in the roster's time zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    pub from: LocalStamp,
    pub until: LocalStamp,
    pub person: String,
    /// Why, shown with who is on duty (`国庆值班`).
    #[serde(default)]
    pub note: String,
}

/// A duty roster (值班表): weekly shifts in a time zone that together
/// cover the whole week once, and overrides by date that take their place
/// for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// IANA time zone of the shifts; defaults to `alert.timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    pub shift: Vec<ShiftConfig>,
    #[serde(default, rename = "override")]
    pub overrides: Vec<OverrideConfig>,
}

impl RosterConfig {
    /// The roster's time zone: its own, else `default`.
    pub fn zone(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default)
    }
}

/// Who is reached at one step of an escalation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Whoever is on duty in the roster.
    Roster(String),
    Person(String),
    /// A channel itself (a group chat, a mailing list), mentioning no one.
    Channel(String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        match s.split_once(':') {
            Some(("roster", id)) if !id.is_empty() => Ok(Target::Roster(id.to_string())),
            Some(("person", id)) if !id.is_empty() => Ok(Target::Person(id.to_string())),
            Some(("channel", id)) if !id.is_empty() => Ok(Target::Channel(id.to_string())),
            _ => Err(format!(
                "`{s}`: a target is roster:<id>, person:<id> or channel:<id>"
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Roster(id) => write!(f, "roster:{id}"),
            Target::Person(id) => write!(f, "person:{id}"),
            Target::Channel(id) => write!(f, "channel:{id}"),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Target::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn default_ack_timeout() -> Dur {
    Dur(15 * 60)
}

/// One step of an escalation policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    pub targets: Vec<Target>,
    /// Unacknowledged this long, the incident escalates to the next step.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: Dur,
}

fn default_loops() -> u32 {
    1
}

fn default_reack() -> Dur {
    Dur(4 * 3_600)
}

/// An escalation policy: ordered steps, run `loops` times over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub id: String,
    #[serde(default = "default_loops")]
    pub loops: u32,
    /// An acknowledged incident not resolved within this time triggers
    /// again and escalates from the first step.
    #[serde(default = "default_reack")]
    pub ack_expires: Dur,
    pub step: Vec<StepConfig>,
}

fn default_group_wait() -> Dur {
    Dur(30)
}

fn default_group_interval() -> Dur {
    Dur(5 * 60)
}

fn default_repeat_interval() -> Dur {
    Dur(4 * 3_600)
}

fn default_true() -> bool {
    true
}

/// What an incident is, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentKind {
    /// Opened by a rule on an event.
    Rule,
    /// A source down, blocked or empty.
    Collector,
    /// A topic's volume spike.
    Spike,
    /// A notification that finally failed.
    Delivery,
}

impl IncidentKind {
    pub fn of_dedup_key(key: &str) -> IncidentKind {
        match key.split(':').next() {
            Some("collector") => IncidentKind::Collector,
            Some("spike") => IncidentKind::Spike,
            Some("delivery") => IncidentKind::Delivery,
            _ => IncidentKind::Rule,
        }
    }
}

/// A route: which incidents it takes (every listed condition must hold;
/// an empty list matches anything) and how they are notified. The first
/// route that matches takes the incident.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub id: String,
    #[serde(default)]
    pub min_level: Option<Level>,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub source_types: Vec<SourceType>,
    /// Regions of the sources (`region` of a `[[source]]`).
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<IncidentKind>,
    /// The escalation policy.
    pub policy: String,
    /// How long a new group waits for more incidents before its first
    /// message, so a burst becomes one message.
    #[serde(default = "default_group_wait")]
    pub group_wait: Dur,
    /// How long a group waits after a message before sending what is new.
    #[serde(default = "default_group_interval")]
    pub group_interval: Dur,
    /// An open, unacknowledged incident is sent again after this long.
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: Dur,
    /// Messages held back in these windows (red incidents are not).
    #[serde(default)]
    pub quiet_hours: Vec<Window>,
    /// When set, messages go out only in these windows (red incidents
    /// always do).
    #[serde(default)]
    pub active_intervals: Vec<Window>,
    /// Tell the targets when an incident resolves.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
}

impl RouteConfig {
    /// Whether the route takes no conditions: it catches everything.
    pub fn is_catch_all(&self) -> bool {
        self.min_level.is_none()
            && self.topics.is_empty()
            && self.source_types.is_empty()
            && self.regions.is_empty()
            && self.kinds.is_empty()
    }
}

/// Where one roster's weekly shifts leave no one on duty, or put two
/// people on duty at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageProblem {
    Gap {
        from: u32,
        to: u32,
    },
    Overlap {
        from: u32,
        to: u32,
        shifts: Vec<usize>,
    },
}

impl fmt::Display for CoverageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoverageProblem::Gap { from, to } => write!(
                f,
                "no one is on duty from {} to {}",
                format_minute(*from),
                format_minute(*to)
            ),
            CoverageProblem::Overlap { from, to, shifts } => write!(
                f,
                "{} overlap from {} to {}",
                shifts
                    .iter()
                    .map(|s| format!("shift[{s}]"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                format_minute(*from),
                format_minute(*to)
            ),
        }
    }
}

/// The gaps and overlaps of a roster's shifts over the week.
pub fn coverage_problems(shifts: &[ShiftConfig]) -> Vec<CoverageProblem> {
    // Which shifts cover each minute of the week.
    let mut owners: Vec<Vec<usize>> = vec![Vec::new(); WEEK_MINUTES as usize];
    for (i, s) in shifts.iter().enumerate() {
        for &(a, b) in &s.when.ranges {
            for o in &mut owners[a as usize..b as usize] {
                if !o.contains(&i) {
                    o.push(i);
                }
            }
        }
    }
    let mut problems = Vec::new();
    let mut m = 0usize;
    while m < owners.len() {
        let here = &owners[m];
        if here.len() == 1 {
            m += 1;
            continue;
        }
        let start = m;
        while m < owners.len() && owners[m] == owners[start] {
            m += 1;
        }
        if owners[start].is_empty() {
            problems.push(CoverageProblem::Gap {
                from: start as u32,
                to: m as u32,
            });
        } else {
            problems.push(CoverageProblem::Overlap {
                from: start as u32,
                to: m as u32,
                shifts: owners[start].clone(),
            });
        }
    }
    problems
}

/// Locates an error at a field of the config file.
pub(crate) type At<'f> = dyn Fn(&[PathSeg<'_>], String, String) -> ConfigError + 'f;

fn check_ids<'a>(
    kind: &'static str,
    ids: impl Iterator<Item = &'a str>,
    at: &At<'_>,
    errors: &mut Vec<ConfigError>,
) -> HashMap<&'a str, usize> {
    let mut seen = HashMap::new();
    for (i, id) in ids.enumerate() {
        let here = [
            PathSeg::Key("alert"),
            PathSeg::Key(kind),
            PathSeg::Index(i),
            PathSeg::Key("id"),
        ];
        if id.trim().is_empty() || id.contains(':') || id.chars().any(char::is_whitespace) {
            errors.push(at(
                &here,
                format!("alert.{kind}[{i}].id"),
                format!("`{id}` must be non-empty, without spaces or `:`"),
            ));
        }
        if let Some(first) = seen.insert(id, i) {
            errors.push(at(
                &here,
                format!("alert.{kind}[{i}].id"),
                format!("duplicate {kind} id `{id}` (also alert.{kind}[{first}])"),
            ));
        }
    }
    seen
}

/// Every problem of the people, channels, rosters, policies and routes, so
/// that an alerter never starts with routing that would drop an alert.
pub(crate) fn validate(a: &AlertConfig, at: &At<'_>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let persons = check_ids(
        "person",
        a.person.iter().map(|p| p.id.as_str()),
        at,
        &mut errors,
    );
    let channels = check_ids(
        "channel",
        a.channel.iter().map(|c| c.id.as_str()),
        at,
        &mut errors,
    );
    let rosters = check_ids(
        "roster",
        a.roster.iter().map(|r| r.id.as_str()),
        at,
        &mut errors,
    );
    let policies = check_ids(
        "policy",
        a.policy.iter().map(|p| p.id.as_str()),
        at,
        &mut errors,
    );
    check_ids(
        "route",
        a.route.iter().map(|r| r.id.as_str()),
        at,
        &mut errors,
    );

    for (i, p) in a.person.iter().enumerate() {
        let here = |k: &'static str| {
            [
                PathSeg::Key("alert"),
                PathSeg::Key("person"),
                PathSeg::Index(i),
                PathSeg::Key(k),
            ]
        };
        if p.channels.is_empty() {
            errors.push(at(
                &here("channels"),
                format!("alert.person[{i}].channels"),
                format!("`{}` has no channel, so no message can reach them", p.id),
            ));
        }
        for c in &p.channels {
            let Some(&ci) = channels.get(c.as_str()) else {
                errors.push(at(
                    &here("channels"),
                    format!("alert.person[{i}].channels"),
                    format!("unknown channel `{c}`"),
                ));
                continue;
            };
            // A channel that addresses people needs their address.
            let ch = &a.channel[ci];
            let missing = match ch.kind {
                ChannelKind::Email if p.email.is_none() && ch.to.is_empty() => Some("email"),
                ChannelKind::Sms if p.mobile.is_none() && ch.to.is_empty() => Some("mobile"),
                _ => None,
            };
            if let Some(what) = missing {
                errors.push(at(
                    &here("channels"),
                    format!("alert.person[{i}].channels"),
                    format!(
                        "`{}` is reached on {} channel `{c}` but has no `{what}`",
                        p.id,
                        ch.kind.as_str()
                    ),
                ));
            }
        }
    }

    for (i, c) in a.channel.iter().enumerate() {
        let here = |k: &'static str| {
            [
                PathSeg::Key("alert"),
                PathSeg::Key("channel"),
                PathSeg::Index(i),
                PathSeg::Key(k),
            ]
        };
        let field = |k: &str| format!("alert.channel[{i}].{k}");
        let needs_url = c.kind != ChannelKind::Email;
        if needs_url {
            match c.url.as_deref() {
                None => errors.push(at(
                    &here("kind"),
                    field("url"),
                    format!("a {} channel needs its `url`", c.kind.as_str()),
                )),
                Some(u) => {
                    if let Err(msg) = crate::check_http_url(u) {
                        errors.push(at(&here("url"), field("url"), msg));
                    } else if c.kind == ChannelKind::Wecom
                        && !url::Url::parse(u).is_ok_and(|u| {
                            u.query_pairs().any(|(k, v)| k == "key" && !v.is_empty())
                        })
                    {
                        errors.push(at(
                            &here("url"),
                            field("url"),
                            "a WeCom robot's url carries its secret as `?key=…`; it is missing"
                                .into(),
                        ));
                    }
                }
            }
        }
        let secret_missing = c.secret.as_deref().is_none_or(|s| s.trim().is_empty());
        match c.kind {
            ChannelKind::Dingtalk if secret_missing => errors.push(at(
                &here("kind"),
                field("secret"),
                "a DingTalk robot needs its signing `secret` (加签, SEC…)".into(),
            )),
            ChannelKind::Feishu if secret_missing => errors.push(at(
                &here("kind"),
                field("secret"),
                "a Feishu robot needs its signing `secret` (签名校验)".into(),
            )),
            ChannelKind::Sms if c.body.as_deref().is_none_or(|b| !b.contains("{text}")) => {
                errors.push(at(
                    &here("kind"),
                    field("body"),
                    "an SMS gateway needs a request `body` template containing {text} (and usually {mobile})".into(),
                ))
            }
            ChannelKind::Email => {
                match c.smtp.as_deref() {
                    Some(s)
                        if s.rsplit_once(':')
                            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) => {}
                    _ => errors.push(at(
                        &here("kind"),
                        field("smtp"),
                        "an email channel needs `smtp = \"host:port\"`".into(),
                    )),
                }
                if c.from.as_deref().is_none_or(|f| !f.contains('@')) {
                    errors.push(at(
                        &here("kind"),
                        field("from"),
                        "an email channel needs a sender address in `from`".into(),
                    ));
                }
                if let Some(ca) = &c.ca_file
                    && !std::path::Path::new(ca).is_file()
                {
                    errors.push(at(
                        &here("ca_file"),
                        field("ca_file"),
                        format!("`{ca}` is not a readable file"),
                    ));
                }
                if c.username.is_some() != c.password.is_some() {
                    errors.push(at(
                        &here("kind"),
                        field("password"),
                        "give both `username` and `password`, or neither".into(),
                    ));
                }
                // As Go's PLAIN auth and so Alertmanager refuse: a password
                // crosses the network in clear only to a relay on this host.
                if c.tls == SmtpTls::None
                    && c.password.is_some()
                    && let Some((host, _)) = c.smtp.as_deref().and_then(|s| s.rsplit_once(':'))
                    && !is_loopback(host)
                {
                    errors.push(at(
                        &here("tls"),
                        field("tls"),
                        format!(
                            "`tls = \"none\"` would send the password in clear to `{host}`: use `implicit` (port 465) or `starttls` (587), or a relay on this host (localhost, 127.0.0.1)"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }

    for (i, r) in a.roster.iter().enumerate() {
        let here = |k: &'static str| {
            [
                PathSeg::Key("alert"),
                PathSeg::Key("roster"),
                PathSeg::Index(i),
                PathSeg::Key(k),
            ]
        };
        if let Some(tz) = &r.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            errors.push(at(
                &here("timezone"),
                format!("alert.roster[{i}].timezone"),
                format!("unknown time zone `{tz}`"),
            ));
        }
        if r.shift.is_empty() {
            errors.push(at(
                &here("id"),
                format!("alert.roster[{i}]"),
                format!("roster `{}` has no [[alert.roster.shift]]", r.id),
            ));
            continue;
        }
        for (j, s) in r.shift.iter().enumerate() {
            if !persons.contains_key(s.person.as_str()) {
                errors.push(at(
                    &[
                        PathSeg::Key("alert"),
                        PathSeg::Key("roster"),
                        PathSeg::Index(i),
                        PathSeg::Key("shift"),
                        PathSeg::Index(j),
                        PathSeg::Key("person"),
                    ],
                    format!("alert.roster[{i}].shift[{j}].person"),
                    format!("unknown person `{}`", s.person),
                ));
            }
        }
        for p in coverage_problems(&r.shift) {
            errors.push(at(
                &here("id"),
                format!("alert.roster[{i}]"),
                format!("roster `{}`: {p}", r.id),
            ));
        }
        let tz = r.zone(a.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai));
        let mut spans = Vec::new();
        for (j, o) in r.overrides.iter().enumerate() {
            let path = |k: &'static str| {
                [
                    PathSeg::Key("alert"),
                    PathSeg::Key("roster"),
                    PathSeg::Index(i),
                    PathSeg::Key("override"),
                    PathSeg::Index(j),
                    PathSeg::Key(k),
                ]
            };
            let field = |k: &str| format!("alert.roster[{i}].override[{j}].{k}");
            if !persons.contains_key(o.person.as_str()) {
                errors.push(at(
                    &path("person"),
                    field("person"),
                    format!("unknown person `{}`", o.person),
                ));
            }
            let mut instant = |k: &'static str, t: &LocalStamp| {
                let i = t.in_zone(tz);
                if i.is_none() {
                    errors.push(at(
                        &path(k),
                        field(k),
                        format!(
                            "`{}` does not occur in {}: the clocks skip it",
                            t.text,
                            tz.name()
                        ),
                    ));
                }
                i
            };
            let (Some(from), Some(until)) = (instant("from", &o.from), instant("until", &o.until))
            else {
                continue;
            };
            if until <= from {
                errors.push(at(
                    &path("until"),
                    field("until"),
                    format!(
                        "ends at `{}`, not after it starts (`{}`)",
                        o.until.text, o.from.text
                    ),
                ));
                continue;
            }
            if let Some((k, _, _)) = spans.iter().find(|&&(_, a, b)| from < b && a < until) {
                errors.push(at(
                    &path("from"),
                    field("from"),
                    format!(
                        "overlaps override[{k}] of roster `{}`: at any time one override at most applies",
                        r.id
                    ),
                ));
            }
            spans.push((j, from, until));
        }
    }

    for (i, p) in a.policy.iter().enumerate() {
        let here = |k: &'static str| {
            [
                PathSeg::Key("alert"),
                PathSeg::Key("policy"),
                PathSeg::Index(i),
                PathSeg::Key(k),
            ]
        };
        if p.step.is_empty() {
            errors.push(at(
                &here("id"),
                format!("alert.policy[{i}]"),
                format!("policy `{}` has no [[alert.policy.step]]", p.id),
            ));
        }
        if p.loops == 0 {
            errors.push(at(
                &here("loops"),
                format!("alert.policy[{i}].loops"),
                "must be at least 1".into(),
            ));
        }
        for (j, step) in p.step.iter().enumerate() {
            let step_at = |k: &'static str| {
                [
                    PathSeg::Key("alert"),
                    PathSeg::Key("policy"),
                    PathSeg::Index(i),
                    PathSeg::Key("step"),
                    PathSeg::Index(j),
                    PathSeg::Key(k),
                ]
            };
            if step.targets.is_empty() {
                errors.push(at(
                    &step_at("targets"),
                    format!("alert.policy[{i}].step[{j}].targets"),
                    "a step needs at least one target".into(),
                ));
            }
            if step.ack_timeout.0 < 60 {
                errors.push(at(
                    &step_at("ack_timeout"),
                    format!("alert.policy[{i}].step[{j}].ack_timeout"),
                    format!(
                        "{} is too short to acknowledge in: at least 1m",
                        step.ack_timeout
                    ),
                ));
            }
            for t in &step.targets {
                let known = match t {
                    Target::Roster(id) => rosters.contains_key(id.as_str()),
                    Target::Person(id) => persons.contains_key(id.as_str()),
                    Target::Channel(id) => channels.contains_key(id.as_str()),
                };
                if !known {
                    let what = match t {
                        Target::Roster(_) => "roster",
                        Target::Person(_) => "person",
                        Target::Channel(_) => "channel",
                    };
                    errors.push(at(
                        &step_at("targets"),
                        format!("alert.policy[{i}].step[{j}].targets"),
                        format!("`{t}` names an unknown {what}"),
                    ));
                }
            }
        }
    }

    for (i, r) in a.route.iter().enumerate() {
        let here = |k: &'static str| {
            [
                PathSeg::Key("alert"),
                PathSeg::Key("route"),
                PathSeg::Index(i),
                PathSeg::Key(k),
            ]
        };
        if !policies.contains_key(r.policy.as_str()) {
            errors.push(at(
                &here("policy"),
                format!("alert.route[{i}].policy"),
                format!("unknown policy `{}`", r.policy),
            ));
        }
        for (k, d) in [
            ("group_interval", r.group_interval),
            ("repeat_interval", r.repeat_interval),
        ] {
            if d.0 == 0 {
                errors.push(at(
                    &here(k),
                    format!("alert.route[{i}].{k}"),
                    "must be longer than 0s".into(),
                ));
            }
        }
    }
    for (i, p) in a.policy.iter().enumerate() {
        if p.ack_expires.0 < 60 {
            errors.push(at(
                &[
                    PathSeg::Key("alert"),
                    PathSeg::Key("policy"),
                    PathSeg::Index(i),
                    PathSeg::Key("ack_expires"),
                ],
                format!("alert.policy[{i}].ack_expires"),
                format!("{} is too short: at least 1m", p.ack_expires),
            ));
        }
    }
    for (key, d, min) in [
        ("auto_resolve", a.auto_resolve, 600),
        ("ack_link_valid", a.ack_link_valid, 60),
    ] {
        if d.0 < min {
            errors.push(at(
                &[PathSeg::Key("alert"), PathSeg::Key(key)],
                format!("alert.{key}"),
                format!("{d} is too short: at least {}", Dur(min)),
            ));
        }
    }
    if let Some(last) = a.route.len().checked_sub(1)
        && !a.route.iter().any(RouteConfig::is_catch_all)
    {
        errors.push(at(
            &[
                PathSeg::Key("alert"),
                PathSeg::Key("route"),
                PathSeg::Index(last),
                PathSeg::Key("id"),
            ],
            format!("alert.route[{last}]"),
            "no route takes every incident, so some would reach no one: end with a route that has only `id` and `policy`".into(),
        ));
    }
    if a.route.is_empty() && !a.policy.is_empty() {
        errors.push(at(
            &[PathSeg::Key("alert"), PathSeg::Key("policy")],
            "alert.policy".into(),
            "policies are configured but no [[alert.route]] sends incidents to them".into(),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift(when: &str) -> ShiftConfig {
        ShiftConfig {
            when: Window::parse(when).unwrap(),
            person: "p".into(),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("30s").unwrap(), Dur(30));
        assert_eq!(Dur::parse("1h30m").unwrap(), Dur(5_400));
        assert_eq!(Dur::parse("2d").unwrap(), Dur(172_800));
        assert!(Dur::parse("5").is_err());
        assert!(Dur::parse("5x").is_err());
        assert!(Dur::parse("").is_err());
        assert!(Dur::parse("9999999999999s").is_err());
        assert!(Dur::parse("3650d").is_ok());
        assert_eq!(Dur(5_400).to_string(), "90m");
    }

    #[test]
    fn windows() {
        let w = Window::parse("mon-fri 09:00-18:00").unwrap();
        assert_eq!(w.ranges.len(), 5);
        assert!(w.contains(9 * 60));
        assert!(!w.contains(18 * 60));
        assert!(!w.contains(5 * 1440 + 10 * 60)); // saturday
        // Past midnight, and Sunday night into Monday morning.
        let n = Window::parse("22:00-07:00").unwrap();
        assert!(n.contains(23 * 60));
        assert!(n.contains(3 * 60));
        assert!(n.contains(WEEK_MINUTES - 30));
        assert!(!n.contains(12 * 60));
        let we = Window::parse("sat,sun").unwrap();
        assert!(we.contains(5 * 1440) && we.contains(WEEK_MINUTES - 1));
        assert!(!we.contains(4 * 1440));
        let wrap = Window::parse("fri-mon 00:00-24:00").unwrap();
        assert!(wrap.contains(0) && wrap.contains(4 * 1440) && !wrap.contains(2 * 1440));
        for bad in [
            "funday 09:00-10:00",
            "09:00",
            "09:00-09:00",
            "25:00-26:00",
            "mon 9-10",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage() {
        let full = [
            shift("mon-fri 09:00-18:00"),
            shift("mon-fri 18:00-09:00"),
            shift("sat,sun"),
        ];
        // Friday 18:00 runs to Saturday 09:00, over the weekend shift, and
        // no one covers Monday 00:00-09:00.
        let problems = coverage_problems(&full);
        assert_eq!(
            problems,
            vec![
                CoverageProblem::Gap { from: 0, to: 540 },
                CoverageProblem::Overlap {
                    from: 5 * 1440,
                    to: 5 * 1440 + 540,
                    shifts: vec![1, 2]
                },
            ]
        );
        assert_eq!(
            problems[0].to_string(),
            "no one is on duty from mon 00:00 to mon 09:00"
        );
        assert_eq!(
            problems[1].to_string(),
            "shift[1] and shift[2] overlap from sat 00:00 to sat 09:00"
        );
        let exact = [
            shift("mon-fri 09:00-18:00"),
            shift("mon-thu 18:00-09:00"),
            shift("fri 18:00-24:00"),
            shift("sat"),
            shift("sun 00:00-24:00"),
            shift("mon 00:00-09:00"),
        ];
        assert_eq!(coverage_problems(&exact), vec![]);
    }
}
