//! Duty: who is on duty, which route takes an incident, and the signed
//! acknowledgement links in messages. Built once from the config; the
//! escalation engine (`escalation.rs`) reads it.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use yuqing_config::{
    AlertConfig, ChannelConfig, IncidentKind, PersonConfig, PolicyConfig, RosterConfig,
    RouteConfig, Target, WEEK_MINUTES, Window,
};
use yuqing_model::{Level, SourceType, hex};

/// Minute of the week (Monday 00:00 is 0) of `at` in `tz`.
pub fn minute_of_week(at: DateTime<Utc>, tz: Tz) -> u32 {
    let l = at.with_timezone(&tz);
    l.weekday().num_days_from_monday() * 1440 + l.hour() * 60 + l.minute()
}

/// Who is on duty in a roster, and the shift they are in.
#[derive(Debug, Clone, Serialize)]
pub struct OnDuty {
    pub roster: String,
    pub roster_name: String,
    pub person: String,
    pub name: String,
    pub mobile: Option<String>,
    /// The shift as written, in the roster's time zone; for an override,
    /// its dates (`2026-10-01 09:00 – 2026-10-08 09:00`).
    pub shift: String,
    pub timezone: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Whether an override, not the weekly shifts, puts them on duty.
    #[serde(rename = "override")]
    pub by_override: bool,
    /// The override's note, when an override puts them on duty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An override of a roster's weekly shifts, in UTC.
#[derive(Debug, Clone)]
struct Override {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    person: String,
    text: String,
    note: String,
}

/// What routing looks at in an incident.
#[derive(Debug, Clone)]
pub struct RouteKey<'a> {
    pub dedup_key: &'a str,
    pub level: Level,
    pub topic: &'a str,
    pub source_type: &'a str,
    pub region: &'a str,
}

/// The routing config, compiled.
#[derive(Debug, Clone)]
pub struct Duty {
    pub routes: Vec<RouteConfig>,
    pub policies: HashMap<String, PolicyConfig>,
    pub rosters: HashMap<String, (RosterConfig, Tz)>,
    /// Each roster's overrides, by start.
    overrides: HashMap<String, Vec<Override>>,
    pub persons: HashMap<String, PersonConfig>,
    pub channels: HashMap<String, ChannelConfig>,
    pub tz: Tz,
    pub console_url: String,
    ack_key: Vec<u8>,
    pub ack_link_valid: Duration,
    pub auto_resolve: Duration,
}

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC-SHA256 tag an acknowledgement link carries.
const ACK_TAG_BYTES: usize = 16;

impl Duty {
    /// `ack_key` signs acknowledgement links.
    pub fn new(alert: &AlertConfig, tz: Tz, console_url: &str, ack_key: Vec<u8>) -> Duty {
        let rosters: HashMap<String, (RosterConfig, Tz)> = alert
            .roster
            .iter()
            .map(|r| (r.id.clone(), (r.clone(), r.zone(tz))))
            .collect();
        // The config's checks refuse overrides that are empty, overlap or
        // name a time the clocks skip.
        let overrides = rosters
            .iter()
            .map(|(id, (r, rtz))| {
                let mut v: Vec<Override> = r
                    .overrides
                    .iter()
                    .filter_map(|o| {
                        Some(Override {
                            from: o.from.in_zone(*rtz)?,
                            until: o.until.in_zone(*rtz)?,
                            person: o.person.clone(),
                            text: format!("{} – {}", o.from.text, o.until.text),
                            note: o.note.clone(),
                        })
                    })
                    .collect();
                v.sort_by_key(|o| o.from);
                (id.clone(), v)
            })
            .collect();
        Duty {
            routes: alert.route.clone(),
            policies: alert
                .policy
                .iter()
                .map(|p| (p.id.clone(), p.clone()))
                .collect(),
            rosters,
            overrides,
            persons: alert
                .person
                .iter()
                .map(|p| (p.id.clone(), p.clone()))
                .collect(),
            channels: alert
                .channel
                .iter()
                .map(|c| (c.id.clone(), c.clone()))
                .collect(),
            tz,
            console_url: console_url.trim_end_matches('/').to_string(),
            ack_key,
            ack_link_valid: Duration::seconds(alert.ack_link_valid.as_secs()),
            auto_resolve: Duration::seconds(alert.auto_resolve.as_secs()),
        }
    }

    /// Whether any route is configured; without one, only the plain
    /// webhooks are told of incidents.
    pub fn is_active(&self) -> bool {
        !self.routes.is_empty()
    }

    /// Who is on duty in `roster` at `at`: the person of the override in
    /// force, else of the weekly shift. Consecutive shifts of the same
    /// person count as one stretch of duty, which an override cuts short.
    pub fn on_duty(&self, roster: &str, at: DateTime<Utc>) -> Option<OnDuty> {
        let (r, tz) = self.rosters.get(roster)?;
        // `person` on duty in the weekly `shift` from `since` until `until`.
        let duty = |person: &PersonConfig, shift: String, since, until| OnDuty {
            roster: r.id.clone(),
            roster_name: if r.name.is_empty() {
                r.id.clone()
            } else {
                r.name.clone()
            },
            person: person.id.clone(),
            name: person.display_name().to_string(),
            mobile: person.mobile.clone(),
            shift,
            timezone: tz.name().to_string(),
            since,
            until,
            by_override: false,
            note: None,
        };
        let overrides = self.overrides.get(roster).map_or(&[][..], Vec::as_slice);
        if let Some(o) = overrides.iter().find(|o| o.from <= at && at < o.until) {
            let person = self.persons.get(&o.person)?;
            return Some(OnDuty {
                by_override: true,
                note: (!o.note.is_empty()).then(|| o.note.clone()),
                ..duty(person, o.text.clone(), o.from, o.until)
            });
        }
        let m = minute_of_week(at, *tz);
        let (shift, &(a, b)) = r.shift.iter().find_map(|s| {
            s.when
                .ranges
                .iter()
                .find(|&&(a, b)| m >= a && m < b)
                .map(|r| (s, r))
        })?;
        let person = self.persons.get(&shift.person)?;
        // Who is on duty at a minute of the week (wrapping), by range.
        let owner = |minute: u32| -> Option<(&str, u32, u32)> {
            let minute = minute % WEEK_MINUTES;
            r.shift.iter().find_map(|s| {
                s.when
                    .ranges
                    .iter()
                    .find(|&&(a, b)| minute >= a && minute < b)
                    .map(|&(a, b)| (s.person.as_str(), a, b))
            })
        };
        // Minutes from `m` forward to the end of the stretch, and back to
        // its start; a whole week at most.
        let mut ahead = b - m;
        while ahead < WEEK_MINUTES {
            match owner(m + ahead) {
                Some((p, a2, b2)) if p == shift.person => ahead += b2 - a2,
                _ => break,
            }
        }
        let mut back = m - a;
        while back < WEEK_MINUTES {
            match owner(m + WEEK_MINUTES - back - 1) {
                Some((p, a2, b2)) if p == shift.person => back += b2 - a2,
                _ => break,
            }
        }
        // Someone always on duty is shown for the week ahead.
        let ahead = ahead.min(WEEK_MINUTES);
        let back = back.min(WEEK_MINUTES - ahead);
        let minute_start = at - Duration::seconds(i64::from(at.second()));
        let mut since = minute_start - Duration::minutes(i64::from(back));
        let mut until = minute_start + Duration::minutes(i64::from(ahead));
        // The overrides around `at` bound the stretch.
        for o in overrides {
            if o.until <= at {
                since = since.max(o.until);
            } else if o.from > at {
                until = until.min(o.from);
                break;
            }
        }
        Some(duty(person, shift.when.text.clone(), since, until))
    }

    /// Everyone on duty now, one per roster, in roster order.
    pub fn on_duty_all(&self, at: DateTime<Utc>) -> Vec<OnDuty> {
        let mut ids: Vec<&String> = self.rosters.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|r| self.on_duty(r, at))
            .collect()
    }

    /// The first route that takes the incident.
    pub fn route_for(&self, k: &RouteKey<'_>) -> Option<&RouteConfig> {
        let kind = IncidentKind::of_dedup_key(k.dedup_key);
        self.routes.iter().find(|r| {
            r.min_level.is_none_or(|m| k.level >= m)
                && (r.topics.is_empty() || r.topics.iter().any(|t| t == k.topic))
                && (r.source_types.is_empty()
                    || SourceType::parse(k.source_type)
                        .is_some_and(|st| r.source_types.contains(&st)))
                && (r.regions.is_empty() || r.regions.iter().any(|x| x == k.region))
                && (r.kinds.is_empty() || r.kinds.contains(&kind))
        })
    }

    /// Why a message of an incident at `level` on `route` waits at `at`:
    /// quiet hours, or outside the active intervals. Red never waits.
    pub fn quiet(&self, route: &RouteConfig, level: Level, at: DateTime<Utc>) -> Option<String> {
        if level == Level::Red {
            return None;
        }
        let m = minute_of_week(at, self.tz);
        if let Some(w) = route.quiet_hours.iter().find(|w| w.contains(m)) {
            return Some(format!("quiet hours {}", w.text));
        }
        if !route.active_intervals.is_empty()
            && !route
                .active_intervals
                .iter()
                .any(|w: &Window| w.contains(m))
        {
            return Some("outside active intervals".to_string());
        }
        None
    }

    /// The people and channels a target reaches at `at`: (channel id,
    /// person id, the target a delivery is recorded under).
    pub fn expand(
        &self,
        target: &Target,
        at: DateTime<Utc>,
    ) -> Vec<(String, Option<String>, String)> {
        let person = |id: &str| -> Vec<(String, Option<String>, String)> {
            self.persons
                .get(id)
                .map(|p| {
                    p.channels
                        .iter()
                        .map(|c| (c.clone(), Some(p.id.clone()), format!("person:{}", p.id)))
                        .collect()
                })
                .unwrap_or_default()
        };
        match target {
            Target::Roster(r) => self
                .on_duty(r, at)
                .map(|d| person(&d.person))
                .unwrap_or_default(),
            Target::Person(p) => person(p),
            Target::Channel(c) => vec![(c.clone(), None, format!("channel:{c}"))],
        }
    }

    /// The HMAC of an acknowledgement link's fields.
    fn ack_mac(&self, incident: i64, expires: i64, who: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.ack_key).expect("HMAC takes any key");
        mac.update(format!("ack\n{incident}\n{expires}\n{who}").as_bytes());
        mac
    }

    /// A link that acknowledges one incident, valid until `now` plus
    /// `ack_link_valid`, naming who it was sent to.
    pub fn ack_link(&self, incident: i64, who: &str, now: DateTime<Utc>) -> String {
        let expires = (now + self.ack_link_valid).timestamp();
        // 128 bits of the tag: enough against forgery, and short enough
        // for a link in an SMS.
        let sig =
            hex(&self.ack_mac(incident, expires, who).finalize().into_bytes()[..ACK_TAG_BYTES]);
        let who_q: String = url::form_urlencoded::byte_serialize(who.as_bytes()).collect();
        format!(
            "{}/ack/{incident}?exp={expires}&who={who_q}&sig={sig}",
            self.console_url
        )
    }

    /// Checks an acknowledgement link's signature and expiry.
    pub fn verify_ack(
        &self,
        incident: i64,
        expires: i64,
        who: &str,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AckLinkError> {
        let bytes = decode_hex(sig)
            .filter(|b| b.len() == ACK_TAG_BYTES)
            .ok_or(AckLinkError::BadSignature)?;
        self.ack_mac(incident, expires, who)
            .verify_truncated_left(&bytes)
            .map_err(|_| AckLinkError::BadSignature)?;
        if now.timestamp() > expires {
            return Err(AckLinkError::Expired);
        }
        Ok(())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckLinkError {
    #[error("the link's signature is not valid")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}
