//! The escalation engine. Incidents owe messages (`pending`); each tick,
//! at a given time, routes them, holds back what is silenced, inhibited or
//! in quiet hours, waits for the route's group, and writes one message per
//! channel to the outbox with every incident due for it. It also moves the
//! timers: escalation after an unacknowledged step, re-triggering after an
//! acknowledgement expires, repeats, and auto-resolution.
//!
//! Every change of one tick is one transaction, and a message round of an
//! incident reaches each target once (`deliveries`), so a tick that is
//! interrupted is simply done again, and a restart repeats nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use yuqing_config::{IncidentKind, RouteConfig, Target};
use yuqing_model::{IncidentStatus, Level};

use crate::duty::{Duty, RouteKey};
use crate::store::{AlertStore, StoreError, from_ts, open_incident, resolve, timeline, ts};

/// One incident in a message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageIncident {
    pub id: i64,
    pub level: Level,
    pub status: IncidentStatus,
    /// Why this message: opened, raised, spread, escalated, repeat,
    /// retriggered, resolved.
    pub reason: String,
    pub title: String,
    pub url: String,
    pub rule_name: String,
    pub topic: String,
    pub item_count: u64,
    pub opened_at: DateTime<Utc>,
    /// Escalation step and loop, from 1.
    pub step: u32,
    pub loop_: u32,
    /// The console page of the incident.
    pub link: String,
    /// A signed link that acknowledges it (none once resolved).
    pub ack_link: Option<String>,
}

/// Someone a message is for, mentioned where the platform can.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mention {
    pub person: String,
    pub name: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
}

/// A message as stored in the outbox; each channel kind renders it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub channel: String,
    pub route: String,
    pub level: Level,
    pub incidents: Vec<MessageIncident>,
    pub mentions: Vec<Mention>,
    pub console_url: String,
    /// A report delivered instead of incidents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<MessageReport>,
}

/// A daily or nil report, as a message carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageReport {
    pub kind: yuqing_model::ReportKind,
    /// `舆情监测（日报，2026-11-27 08:30）`.
    pub title: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub incidents: u64,
    pub items: u64,
    /// The report in short, as Markdown without tables (IM robots render
    /// none), its crawled text escaped.
    pub brief: String,
    /// The whole report, as HTML, for email.
    pub html: String,
    /// The whole report in the console.
    pub link: String,
}

/// What a silence matches; every field given must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Incidents at or below this level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<Level>,
}

impl Matchers {
    pub fn is_empty(&self) -> bool {
        *self == Matchers::default()
    }

    fn matches(&self, r: &Row) -> bool {
        self.incident.is_none_or(|i| i == r.id)
            && self.rule.as_ref().is_none_or(|x| *x == r.rule_id)
            && self.topic.as_ref().is_none_or(|x| *x == r.topic)
            && self.event.as_ref().is_none_or(|x| *x == r.event_id)
            && self
                .source_type
                .as_ref()
                .is_none_or(|x| *x == r.source_type)
            && self.region.as_ref().is_none_or(|x| *x == r.region)
            && self.max_level.is_none_or(|m| r.level <= m)
    }
}

/// A time-boxed silence, with who set it and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub matchers: Matchers,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub author: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

/// A handover note left at a roster's change of shift.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Handover {
    pub id: i64,
    pub roster: String,
    pub author: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// One transition of an incident: who did what, when, through what.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `system`, or the person who acted.
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// A notification that failed for good.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    /// The first incident of the message.
    pub incident_id: i64,
    pub channel: String,
    pub kind: String,
    /// What the message was: `route:…` for alerts, `report:<period end>`
    /// or `special:<incident>:<time>` for reports (whose incident is 0).
    pub reason: String,
    pub attempts: u32,
    pub error: String,
    pub created_at: DateTime<Utc>,
    pub dead_at: DateTime<Utc>,
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TickOutcome {
    /// Messages written to the outbox.
    pub messages: usize,
    pub escalated: Vec<i64>,
    pub retriggered: Vec<i64>,
    pub auto_resolved: Vec<i64>,
}

/// How an acknowledgement went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged,
    /// It was acknowledged already; nothing changed.
    Already,
    /// Resolved incidents cannot be acknowledged.
    Resolved,
    NotFound,
}

/// An open incident (or one owing its resolution message) as the engine
/// sees it.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    dedup_key: String,
    rule_id: String,
    rule_name: String,
    topic: String,
    event_id: String,
    level: Level,
    status: IncidentStatus,
    title: String,
    url: String,
    item_count: i64,
    opened_at: i64,
    updated_at: i64,
    source_type: String,
    region: String,
    route: Option<String>,
    step: u32,
    loop_: u32,
    round: i64,
    pending: Option<String>,
    pending_since: Option<i64>,
    held: Option<String>,
    next_escalation_at: Option<i64>,
    last_notified_at: Option<i64>,
    notified_items: i64,
    notified_heat: f64,
    notified_negative: f64,
    ack_expires_at: Option<i64>,
    /// The heat of the incident's event now.
    event_heat: Option<f64>,
}

const ROW_COLUMNS: &str = "id, dedup_key, rule_id, rule_name, topic, event_id, level, status, title, url, item_count, opened_at, updated_at,
    source_type, region, route, step, loop, round, pending, pending_since, held, next_escalation_at, last_notified_at, notified_items, ack_expires_at,
    notified_heat, notified_negative,
    (SELECT e.heat FROM events e WHERE e.event_id = incidents.event_id)";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        dedup_key: r.get(1)?,
        rule_id: r.get(2)?,
        rule_name: r.get(3)?,
        topic: r.get(4)?,
        event_id: r.get(5)?,
        level: r.get::<_, String>(6)?.parse().unwrap_or(Level::Blue),
        status: IncidentStatus::parse(&r.get::<_, String>(7)?).unwrap_or(IncidentStatus::Triggered),
        title: r.get(8)?,
        url: r.get(9)?,
        item_count: r.get(10)?,
        opened_at: r.get(11)?,
        updated_at: r.get(12)?,
        source_type: r.get(13)?,
        region: r.get(14)?,
        route: r.get(15)?,
        step: r.get(16)?,
        loop_: r.get(17)?,
        round: r.get(18)?,
        pending: r.get(19)?,
        pending_since: r.get(20)?,
        held: r.get(21)?,
        next_escalation_at: r.get(22)?,
        last_notified_at: r.get(23)?,
        notified_items: r.get(24)?,
        ack_expires_at: r.get(25)?,
        notified_heat: r.get(26)?,
        notified_negative: r.get(27)?,
        event_heat: r.get(28)?,
    })
}

/// Reasons that wait for their route's group (a burst becomes one
/// message); the others (escalations, repeats, re-triggers, resolutions)
/// are on their own timers and go at once.
fn waits_for_group(reason: &str) -> bool {
    matches!(reason, "opened" | "raised" | "spread")
}

/// An incident spreads when, since its last message, its items or its
/// event's heat double (and grow by at least this much), or negative items
/// become the majority (of at least this many items).
const SPREAD_MIN_GROWTH: i64 = 5;

/// An acknowledged incident back to triggered at the first step of its
/// policy, owing a message for `reason` (also the timeline's action).
fn retrigger(
    tx: &Transaction<'_>,
    r: &mut Row,
    now: DateTime<Utc>,
    reason: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let t = ts(now);
    r.status = IncidentStatus::Triggered;
    r.step = 0;
    r.loop_ = 0;
    r.ack_expires_at = None;
    r.next_escalation_at = None;
    r.pending = Some(reason.to_string());
    r.pending_since = Some(t);
    tx.execute(
        "UPDATE incidents SET status = 'triggered', step = 0, loop = 0, ack_expires_at = NULL, acknowledged_at = NULL,
           acknowledged_by = NULL, next_escalation_at = NULL, pending = ?3, pending_since = ?2 WHERE id = ?1",
        params![r.id, t, reason],
    )?;
    timeline(tx, r.id, now, "system", reason, detail)
}

/// Sets what spreading is measured from (items, event heat, negative
/// share) to the incident's present state: at each message, and at an
/// acknowledgement.
const SPREAD_BASELINE: &str = "notified_items = item_count,
    notified_heat = COALESCE((SELECT heat FROM events e WHERE e.event_id = incidents.event_id), 0),
    notified_negative = COALESCE((SELECT AVG(i.sentiment = 'negative') FROM incident_items ii
                                  JOIN items i ON i.item_id = ii.item_id WHERE ii.incident_id = incidents.id), 0)";

/// Only an incident whose items or event's heat changed since its last
/// message (or its acknowledgement) can have spread.
fn changed_since_message(r: &Row) -> bool {
    r.last_notified_at.is_some()
        && (r.item_count != r.notified_items
            || r.event_heat
                .is_some_and(|h| (h - r.notified_heat).abs() > 1e-9))
}

/// How an incident has spread since its last message, if it has.
fn spread(tx: &Transaction<'_>, r: &Row) -> Result<Option<String>, StoreError> {
    if r.item_count >= 2 * r.notified_items.max(1)
        && r.item_count >= r.notified_items + SPREAD_MIN_GROWTH
    {
        return Ok(Some(format!(
            "信息量从 {} 条增至 {} 条",
            r.notified_items, r.item_count
        )));
    }
    if r.event_id.is_empty() || IncidentKind::of_dedup_key(&r.dedup_key) != IncidentKind::Rule {
        return Ok(None);
    }
    let heat: f64 = tx
        .query_row(
            "SELECT heat FROM events WHERE event_id = ?1",
            [&r.event_id],
            |x| x.get(0),
        )
        .optional()?
        .unwrap_or(0.0);
    if r.notified_heat > 0.0
        && heat >= 2.0 * r.notified_heat
        && heat >= r.notified_heat + SPREAD_MIN_GROWTH as f64
    {
        return Ok(Some(format!(
            "热度从 {:.1} 升至 {heat:.1}",
            r.notified_heat
        )));
    }
    let (n, negative): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(i.sentiment = 'negative'), 0) FROM incident_items ii
         JOIN items i ON i.item_id = ii.item_id WHERE ii.incident_id = ?1",
        [r.id],
        |x| Ok((x.get(0)?, x.get(1)?)),
    )?;
    let share = if n > 0 {
        negative as f64 / n as f64
    } else {
        0.0
    };
    if n >= SPREAD_MIN_GROWTH && share > 0.5 && r.notified_negative <= 0.5 {
        return Ok(Some(format!(
            "负面信息占比升至 {:.0}%（{negative}/{n}）",
            share * 100.0
        )));
    }
    Ok(None)
}

impl AlertStore {
    /// Runs the engine at `now`: timers, then the messages owed.
    pub fn tick(&self, duty: &Duty, now: DateTime<Utc>) -> Result<TickOutcome, StoreError> {
        let mut out = TickOutcome::default();
        if !duty.is_active() {
            return Ok(out);
        }
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let t = ts(now);
        let mut rows: Vec<Row> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM incidents WHERE status != 'resolved' OR pending IS NOT NULL ORDER BY id"
            ))?;
            stmt.query_map([], row)?.collect::<Result<_, _>>()?
        };
        let silences = active_silences(&tx, now)?;
        // Time the alerter was down does not count towards auto-resolving:
        // nothing was watched then, and the items of it may be on their way.
        let downtime = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [crate::store::DOWNTIME],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .as_deref()
            .and_then(crate::store::parse_downtime);
        let quiet_for = |updated_at: i64| {
            crate::store::time_up(from_ts(updated_at), from_ts(t), downtime).num_seconds()
        };

        // Timers.
        for r in rows.iter_mut() {
            let Some(route) = route_of(duty, r) else {
                continue;
            };
            r.route = Some(route.id.clone());
            let Some(policy) = duty.policies.get(&route.policy) else {
                continue;
            };
            let kind = IncidentKind::of_dedup_key(&r.dedup_key);
            if r.status != IncidentStatus::Resolved
                && kind == IncidentKind::Rule
                && quiet_for(r.updated_at) >= duty.auto_resolve.num_seconds()
            {
                resolve(
                    &tx,
                    r.id,
                    now,
                    "system",
                    &format!(
                        "no new item for {}",
                        fmt_secs(duty.auto_resolve.num_seconds())
                    ),
                )?;
                r.status = IncidentStatus::Resolved;
                r.next_escalation_at = None;
                r.pending = r.last_notified_at.map(|_| "resolved".to_string());
                r.pending_since = Some(t);
                out.auto_resolved.push(r.id);
                continue;
            }
            // An acknowledged incident whose event spreads is raised
            // again: the officer handling it is told, and escalation starts
            // over until someone acknowledges the larger incident.
            if r.status == IncidentStatus::Acknowledged
                && kind == IncidentKind::Rule
                && r.pending.is_none()
                && changed_since_message(r)
                && let Some(how) = spread(&tx, r)?
            {
                retrigger(
                    &tx,
                    r,
                    now,
                    "spread",
                    &format!("{how}; acknowledged before, raised again"),
                )?;
                out.retriggered.push(r.id);
                continue;
            }
            if r.status == IncidentStatus::Acknowledged && r.ack_expires_at.is_some_and(|e| e <= t)
            {
                retrigger(
                    &tx,
                    r,
                    now,
                    "retriggered",
                    &format!(
                        "acknowledged but not resolved within {}",
                        policy.ack_expires
                    ),
                )?;
                out.retriggered.push(r.id);
                continue;
            }
            if r.status == IncidentStatus::Triggered
                && r.pending.is_none()
                && r.next_escalation_at.is_some_and(|e| e <= t)
            {
                let steps = policy.step.len() as u32;
                let (mut step, mut lp) = (r.step + 1, r.loop_);
                if step >= steps {
                    step = 0;
                    lp += 1;
                }
                if lp >= policy.loops {
                    r.next_escalation_at = None;
                    tx.execute(
                        "UPDATE incidents SET next_escalation_at = NULL WHERE id = ?1",
                        [r.id],
                    )?;
                    timeline(
                        &tx,
                        r.id,
                        now,
                        "system",
                        "exhausted",
                        &format!(
                            "policy {} ran {} time(s) without an acknowledgement",
                            policy.id, policy.loops
                        ),
                    )?;
                } else {
                    r.step = step;
                    r.loop_ = lp;
                    r.next_escalation_at = None;
                    r.pending = Some("escalated".into());
                    r.pending_since = Some(t);
                    tx.execute(
                        "UPDATE incidents SET step = ?2, loop = ?3, next_escalation_at = NULL, pending = 'escalated', pending_since = ?4 WHERE id = ?1",
                        params![r.id, step, lp, t],
                    )?;
                    timeline(
                        &tx,
                        r.id,
                        now,
                        "system",
                        "escalated",
                        &format!(
                            "not acknowledged: step {} of {}, loop {} of {}",
                            step + 1,
                            steps,
                            lp + 1,
                            policy.loops
                        ),
                    )?;
                    out.escalated.push(r.id);
                }
                continue;
            }
            if r.status == IncidentStatus::Triggered && r.pending.is_none() {
                if changed_since_message(r)
                    && let Some(how) = spread(&tx, r)?
                {
                    timeline(&tx, r.id, now, "system", "spread", &how)?;
                    r.pending = Some("spread".into());
                } else if r.next_escalation_at.is_none()
                    && r.last_notified_at
                        .is_some_and(|l| t - l >= route.repeat_interval.as_secs())
                {
                    r.pending = Some("repeat".into());
                }
                if r.pending.is_some() {
                    r.pending_since = Some(t);
                    tx.execute(
                        "UPDATE incidents SET pending = ?2, pending_since = ?3 WHERE id = ?1",
                        params![r.id, r.pending, t],
                    )?;
                }
            }
        }

        // Holds: silences, inhibition, quiet hours.
        let open_red_events: Vec<(i64, String)> = rows
            .iter()
            .filter(|r| {
                r.status != IncidentStatus::Resolved
                    && r.level == Level::Red
                    && !r.event_id.is_empty()
            })
            .map(|r| (r.id, r.event_id.clone()))
            .collect();
        let mut ready: Vec<usize> = Vec::new();
        for (i, r) in rows.iter_mut().enumerate() {
            let Some(reason) = r.pending.clone() else {
                continue;
            };
            let Some(route) = r
                .route
                .as_deref()
                .and_then(|id| duty.routes.iter().find(|x| x.id == id))
            else {
                continue;
            };
            if reason == "resolved" && !route.send_resolved {
                tx.execute(
                    "UPDATE incidents SET pending = NULL, pending_since = NULL WHERE id = ?1",
                    [r.id],
                )?;
                continue;
            }
            let hold = if let Some(s) = silences.iter().find(|s| s.matchers.matches(r)) {
                Some(format!(
                    "silenced by silence {} ({}: {})",
                    s.id, s.author, s.comment
                ))
            } else if r.level < Level::Red
                && reason != "resolved"
                && let Some((red, _)) = open_red_events
                    .iter()
                    .find(|(id, e)| *id != r.id && *e == r.event_id)
            {
                Some(format!("inhibited by red incident {red} of the same event"))
            } else if reason != "resolved" {
                duty.quiet(route, r.level, now)
            } else {
                None
            };
            if hold != r.held {
                tx.execute(
                    "UPDATE incidents SET held = ?2 WHERE id = ?1",
                    params![r.id, hold],
                )?;
                if let Some(h) = &hold {
                    timeline(&tx, r.id, now, "system", "held", h)?;
                }
                r.held = hold.clone();
            }
            if hold.is_none() {
                ready.push(i);
            }
        }

        // Groups: a route's first message waits `group_wait` for more, and
        // later ones come at most every `group_interval`.
        let mut by_route: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in ready {
            by_route
                .entry(rows[i].route.clone().unwrap_or_default())
                .or_default()
                .push(i);
        }
        // channel id -> (incidents with target recorded, mentions)
        for (route_id, members) in by_route {
            let Some(route) = duty.routes.iter().find(|x| x.id == route_id) else {
                continue;
            };
            let last_sent: Option<i64> = tx
                .query_row(
                    "SELECT last_sent_at FROM route_groups WHERE route = ?1",
                    [&route_id],
                    |r| r.get(0),
                )
                .optional()?;
            let idle = last_sent.is_none_or(|l| t - l >= route.repeat_interval.as_secs());
            let gate_open = if idle {
                let first = members
                    .iter()
                    .filter(|&&i| waits_for_group(rows[i].pending.as_deref().unwrap_or("")))
                    .filter_map(|&i| rows[i].pending_since)
                    .min();
                first.is_some_and(|f| t - f >= route.group_wait.as_secs())
            } else {
                last_sent.is_some_and(|l| t - l >= route.group_interval.as_secs())
            };
            let due: Vec<usize> = members
                .into_iter()
                .filter(|&i| {
                    gate_open || !waits_for_group(rows[i].pending.as_deref().unwrap_or(""))
                })
                .collect();
            if due.is_empty() {
                continue;
            }
            let grouped_sent = gate_open
                && due
                    .iter()
                    .any(|&i| waits_for_group(rows[i].pending.as_deref().unwrap_or("")));
            let sent = dispatch(&tx, duty, route, &rows, &due, now)?;
            out.messages += sent;
            for &i in &due {
                let r = &rows[i];
                let resolved = r.status == IncidentStatus::Resolved;
                let next = if resolved {
                    None
                } else {
                    // A repeat comes after the last loop: it sets no timer.
                    duty.policies.get(&route.policy).and_then(|p| {
                        let step = p
                            .step
                            .get((r.step as usize).min(p.step.len().saturating_sub(1)))?;
                        (r.pending.as_deref() != Some("repeat"))
                            .then(|| t + step.ack_timeout.as_secs())
                    })
                };
                tx.execute(
                    &format!("UPDATE incidents SET route = ?2, round = round + 1, pending = NULL, pending_since = NULL, held = NULL,
                       last_notified_at = ?3, {SPREAD_BASELINE},
                       next_escalation_at = CASE WHEN status = 'triggered' THEN COALESCE(next_escalation_at, ?4) ELSE next_escalation_at END
                     WHERE id = ?1"),
                    params![r.id, route_id, t, next],
                )?;
            }
            // Only a grouped message moves the group's clock: escalations
            // and resolutions must not keep new incidents waiting.
            if grouped_sent {
                tx.execute(
                    "INSERT INTO route_groups (route, last_sent_at) VALUES (?1, ?2)
                     ON CONFLICT(route) DO UPDATE SET last_sent_at = excluded.last_sent_at",
                    params![route_id, t],
                )?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Acknowledges an incident: escalation stops until `ack_expires` of
    /// its policy passes without a resolution.
    pub fn acknowledge(
        &self,
        duty: &Duty,
        id: i64,
        who: &str,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<AckOutcome, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let r: Option<Row> = tx
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM incidents WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?;
        let Some(r) = r else {
            return Ok(AckOutcome::NotFound);
        };
        match r.status {
            IncidentStatus::Resolved => return Ok(AckOutcome::Resolved),
            IncidentStatus::Acknowledged => return Ok(AckOutcome::Already),
            IncidentStatus::Triggered => {}
        }
        let expires = route_of(duty, &r)
            .and_then(|route| duty.policies.get(&route.policy))
            .map_or(4 * 3_600, |p| p.ack_expires.as_secs());
        // What the officer acknowledged is the incident as it is now: it
        // spreads from here, whatever its last message said.
        tx.execute(
            &format!("UPDATE incidents SET status = 'acknowledged', acknowledged_at = ?2, acknowledged_by = ?3, ack_expires_at = ?4,
               next_escalation_at = NULL, pending = CASE WHEN pending = 'resolved' THEN pending END,
               pending_since = CASE WHEN pending = 'resolved' THEN pending_since END, held = NULL, updated_at = ?2,
               {SPREAD_BASELINE}
             WHERE id = ?1"),
            params![id, ts(now), who, ts(now) + expires],
        )?;
        timeline(&tx, id, now, who, "acknowledged", &format!("via {via}"))?;
        tx.commit()?;
        Ok(AckOutcome::Acknowledged)
    }

    /// Resolves an incident by hand; false when it was resolved already.
    pub fn resolve_by(
        &self,
        id: i64,
        who: &str,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM incidents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(status) = status else {
            return Ok(None);
        };
        if status == "resolved" {
            return Ok(Some(false));
        }
        resolve(&tx, id, now, who, &format!("via {via}"))?;
        tx.commit()?;
        Ok(Some(true))
    }

    pub fn add_silence(
        &self,
        matchers: &Matchers,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        author: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "INSERT INTO silences (matchers, starts_at, ends_at, author, comment, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                serde_json::to_string(matchers).map_err(|e| StoreError(e.to_string()))?,
                ts(starts_at),
                ts(ends_at),
                author,
                comment,
                ts(now)
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Ends a silence now; false when there is no such silence or it had
    /// ended.
    pub fn expire_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute(
            "UPDATE silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
            params![id, ts(now)],
        )? == 1)
    }

    /// Silences not yet ended at `now`, soonest end first.
    pub fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, matchers, starts_at, ends_at, author, comment, created_at FROM silences WHERE ends_at > ?1 ORDER BY ends_at",
        )?;
        let rows = stmt
            .query_map([ts(now)], silence_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn add_handover(
        &self,
        roster: &str,
        author: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "INSERT INTO handovers (roster, author, note, at) VALUES (?1, ?2, ?3, ?4)",
            params![roster, author, note, ts(now)],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// A roster's handover notes, newest first.
    pub fn handovers(&self, roster: &str, limit: usize) -> Result<Vec<Handover>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, roster, author, note, at FROM handovers WHERE roster = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![roster, limit as i64], |r| {
                Ok(Handover {
                    id: r.get(0)?,
                    roster: r.get(1)?,
                    author: r.get(2)?,
                    note: r.get(3)?,
                    at: from_ts(r.get(4)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// An incident's timeline, oldest first.
    pub fn timeline(&self, id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT at, actor, action, detail FROM timeline WHERE incident_id = ?1 ORDER BY at, rowid",
        )?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(TimelineEntry {
                    at: from_ts(r.get(0)?),
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    detail: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// A notification failing again and again (`given_up` false: it is
    /// still retried) or for good raises a delivery incident
    /// (`delivery:<channel>`), routed like any other but never sent through
    /// the channel that failed. Returns the incident.
    pub fn record_delivery_failure(
        &self,
        notification: i64,
        channel: &str,
        error: &str,
        given_up: bool,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let key = format!("delivery:{channel}");
        let open = open_incident(&tx, &key)?;
        let detail = if given_up {
            format!("notification {notification} failed for good: {error}")
        } else {
            format!("notification {notification} keeps failing, still retried: {error}")
        };
        let id = match open {
            Some(id) => {
                tx.execute(
                    "UPDATE incidents SET item_count = item_count + 1, updated_at = ?2 WHERE id = ?1",
                    params![id, ts(now)],
                )?;
                timeline(&tx, id, now, "system", "failed", &detail)?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO incidents (dedup_key, rule_id, rule_name, topic, event_id, level, status, title, url, item_count, opened_at, updated_at,
                                           pending, pending_since)
                     VALUES (?1, 'delivery', '通知发送失败', '通知渠道', ?2, 'orange', 'triggered', ?3, '', 1, ?4, ?4, 'opened', ?4)",
                    params![key, channel, format!("通知渠道 {channel} 发送失败：{error}"), ts(now)],
                )?;
                let id = tx.last_insert_rowid();
                timeline(&tx, id, now, "system", "triggered", &detail)?;
                id
            }
        };
        tx.commit()?;
        Ok(id)
    }

    /// The channel delivered a message: its open delivery incident, if
    /// any, resolves. True when one did.
    pub fn resolve_delivery(&self, channel: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let open = open_incident(&tx, &format!("delivery:{channel}"))?;
        if let Some(id) = open {
            resolve(
                &tx,
                id,
                now,
                "system",
                "the channel delivered a message again",
            )?;
        }
        tx.commit()?;
        Ok(open.is_some())
    }

    /// Notifications that failed for good, newest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, incident_id, channel, kind, attempts, last_error, created_at, dead_at, reason FROM notifications
             WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    incident_id: r.get(1)?,
                    channel: r.get(2)?,
                    kind: r.get(3)?,
                    attempts: r.get(4)?,
                    error: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    created_at: from_ts(r.get(6)?),
                    dead_at: from_ts(r.get(7)?),
                    reason: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The earliest time the engine has something to do after `now`: an
    /// escalation, an acknowledgement expiring, or a group's wait ending.
    /// Ticks also run on a short interval; this lets a runner sleep less.
    pub fn next_escalation(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let t: Option<i64> = conn.query_row(
            "SELECT MIN(x) FROM (SELECT MIN(next_escalation_at) AS x FROM incidents WHERE status = 'triggered'
                                 UNION ALL SELECT MIN(ack_expires_at) FROM incidents WHERE status = 'acknowledged')",
            [],
            |r| r.get(0),
        )?;
        Ok(t.map(from_ts))
    }
}

fn silence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Silence> {
    Ok(Silence {
        id: r.get(0)?,
        matchers: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default(),
        starts_at: from_ts(r.get(2)?),
        ends_at: from_ts(r.get(3)?),
        author: r.get(4)?,
        comment: r.get(5)?,
        created_at: from_ts(r.get(6)?),
    })
}

fn active_silences(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, matchers, starts_at, ends_at, author, comment, created_at FROM silences WHERE starts_at <= ?1 AND ends_at > ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([ts(now)], silence_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn route_of<'d>(duty: &'d Duty, r: &Row) -> Option<&'d RouteConfig> {
    duty.route_for(&RouteKey {
        dedup_key: &r.dedup_key,
        level: r.level,
        topic: &r.topic,
        source_type: &r.source_type,
        region: &r.region,
    })
}

fn fmt_secs(s: i64) -> String {
    yuqing_config::Dur(s.max(0) as u64).to_string()
}

/// The targets that have had any message of an incident, from its
/// deliveries (`person:<id>@<channel>` or `channel:<id>@<channel>`).
fn told(tx: &Transaction<'_>, incident: i64) -> Result<Vec<Target>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT target FROM deliveries WHERE incident_id = ?1 ORDER BY target",
    )?;
    let keys: Vec<String> = stmt
        .query_map([incident], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<Target> = Vec::new();
    for k in keys {
        let target = k.rsplit_once('@').map_or(k.as_str(), |(t, _)| t);
        if let Ok(t) = Target::parse(target)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    Ok(out)
}

/// Whether `target` has had round `round` of an incident, or any round.
fn delivered(
    tx: &Transaction<'_>,
    incident: i64,
    round: Option<i64>,
    target: &str,
) -> Result<bool, StoreError> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM deliveries WHERE incident_id = ?1 AND (?2 IS NULL OR round = ?2) AND target = ?3 LIMIT 1",
            params![incident, round, target],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false))
}

/// Writes the messages for the incidents `due` on `route`: one per
/// channel, with every incident for which some target on that channel has
/// not had this round yet. Returns how many messages.
fn dispatch(
    tx: &Transaction<'_>,
    duty: &Duty,
    route: &RouteConfig,
    rows: &[Row],
    due: &[usize],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let Some(policy) = duty.policies.get(&route.policy) else {
        return Ok(0);
    };
    // channel -> (incident indexes, mentioned people, (incident, target)
    // pairs, the person each incident's link is signed for)
    #[derive(Default)]
    struct Bucket {
        incidents: Vec<usize>,
        people: Vec<String>,
        deliveries: Vec<(i64, i64, String)>,
        signer: BTreeMap<usize, String>,
    }
    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    for &i in due {
        let r = &rows[i];
        let step_index = (r.step as usize).min(policy.step.len().saturating_sub(1));
        let Some(step) = policy.step.get(step_index) else {
            continue;
        };
        // A resolution goes to everyone who was told of the incident; any
        // other message to the targets of its current step.
        let targets: Vec<Target> = if r.pending.as_deref() == Some("resolved") {
            told(tx, r.id)?
        } else {
            step.targets.clone()
        };
        let mut reached = Vec::new();
        let mut any_channel = false;
        for target in &targets {
            let mut expanded = duty.expand(target, now);
            // A resolution reaches a person only on the channels that told
            // them.
            if let Target::Person(p) = target
                && r.pending.as_deref() == Some("resolved")
            {
                let mut kept = Vec::new();
                for e in expanded {
                    if delivered(tx, r.id, None, &format!("person:{p}@{}", e.0))? {
                        kept.push(e);
                    }
                }
                expanded = kept;
            }
            if expanded.is_empty() {
                timeline(
                    tx,
                    r.id,
                    now,
                    "system",
                    "unreachable",
                    &format!("{target}: no one on duty or no channel"),
                )?;
            }
            any_channel |= !expanded.is_empty();
            for (channel, person, key) in expanded {
                let Some(ch) = duty.channels.get(&channel) else {
                    continue;
                };
                if ch.min_level.is_some_and(|m| r.level < m) {
                    continue;
                }
                // A delivery incident is never sent through the channel that failed.
                if IncidentKind::of_dedup_key(&r.dedup_key) == IncidentKind::Delivery
                    && r.event_id == channel
                {
                    continue;
                }
                let key = format!("{key}@{channel}");
                if delivered(tx, r.id, Some(r.round), &key)? {
                    continue;
                }
                let b = buckets.entry(channel.clone()).or_default();
                if !b.incidents.contains(&i) {
                    b.incidents.push(i);
                }
                if let Some(p) = &person
                    && !b.people.contains(p)
                {
                    b.people.push(p.clone());
                }
                b.deliveries.push((r.id, r.round, key));
                if let Some(p) = &person {
                    b.signer.entry(i).or_insert_with(|| p.clone());
                }
                let who = person
                    .as_ref()
                    .and_then(|p| duty.persons.get(p))
                    .map_or(channel.clone(), |p| {
                        format!("{} via {channel}", p.display_name())
                    });
                if !reached.contains(&who) {
                    reached.push(who);
                }
            }
        }
        if reached.is_empty() && !targets.is_empty() && r.pending.as_deref() != Some("resolved") {
            // Never silent: the incident stays open and its escalation
            // goes on to the next step, but nobody was told at this one.
            tracing::error!(
                incident = r.id,
                "no target of this escalation step can be reached on any channel"
            );
            // Targets without a channel have their note above; where each
            // had channels, all of them left out (the one that failed, or
            // below their level), say so once for the step.
            if any_channel {
                timeline(
                    tx,
                    r.id,
                    now,
                    "system",
                    "unreachable",
                    &format!(
                        "step {} of {}: no target reachable on any channel",
                        step_index + 1,
                        policy.step.len()
                    ),
                )?;
            }
        }
        if !reached.is_empty() {
            let reason = r.pending.as_deref().unwrap_or("");
            timeline(
                tx,
                r.id,
                now,
                "system",
                "notified",
                &format!(
                    "{reason}: step {} of {}, loop {} of {}: {}",
                    step_index + 1,
                    policy.step.len(),
                    (r.loop_.min(policy.loops.saturating_sub(1))) + 1,
                    policy.loops,
                    reached.join(", ")
                ),
            )?;
        }
    }
    let mut messages = 0;
    for (channel, b) in buckets {
        let Some(ch) = duty.channels.get(&channel) else {
            continue;
        };
        let mentions: Vec<Mention> = b
            .people
            .iter()
            .filter_map(|p| duty.persons.get(p))
            .map(|p| Mention {
                person: p.id.clone(),
                name: p.display_name().to_string(),
                mobile: p.mobile.clone(),
                email: p.email.clone(),
            })
            .collect();
        let mut incidents: Vec<MessageIncident> = b
            .incidents
            .iter()
            .map(|&i| {
                let r = &rows[i];
                // A link names the person the incident was sent to on this
                // channel, or the channel itself.
                let who = b
                    .signer
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| format!("channel:{channel}"));
                MessageIncident {
                    id: r.id,
                    level: r.level,
                    status: r.status,
                    reason: r.pending.clone().unwrap_or_default(),
                    title: r.title.clone(),
                    url: r.url.clone(),
                    rule_name: r.rule_name.clone(),
                    topic: r.topic.clone(),
                    item_count: r.item_count.max(0) as u64,
                    opened_at: from_ts(r.opened_at),
                    step: r.step + 1,
                    loop_: r.loop_ + 1,
                    link: format!("{}/incidents/{}", duty.console_url, r.id),
                    ack_link: (r.status == IncidentStatus::Triggered)
                        .then(|| duty.ack_link(r.id, &who, now)),
                }
            })
            .collect();
        incidents.sort_by(|a, b| b.level.cmp(&a.level).then(a.id.cmp(&b.id)));
        let level = incidents
            .iter()
            .map(|i| i.level)
            .max()
            .unwrap_or(Level::Blue);
        let first = incidents.first().map_or(0, |i| i.id);
        let message = Message {
            channel: channel.clone(),
            route: route.id.clone(),
            level,
            incidents,
            mentions,
            console_url: duty.console_url.clone(),
            report: None,
        };
        let payload = serde_json::to_string(&message).map_err(|e| StoreError(e.to_string()))?;
        let (round_of_first, _) = b
            .deliveries
            .iter()
            .find(|d| d.0 == first)
            .map_or((0, ()), |d| (d.1, ()));
        tx.execute(
            "INSERT INTO notifications (incident_id, channel, reason, level, payload, created_at, next_attempt_at, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
            params![
                first,
                channel,
                format!("route:{}:round:{round_of_first}:{}", route.id, ts(now)),
                level.as_str(),
                payload,
                ts(now),
                ch.kind.as_str()
            ],
        )?;
        let nid = tx.last_insert_rowid();
        for (incident, round, target) in &b.deliveries {
            tx.execute(
                "INSERT OR IGNORE INTO deliveries (incident_id, round, target, notification_id) VALUES (?1, ?2, ?3, ?4)",
                params![incident, round, target, nid],
            )?;
        }
        messages += 1;
    }
    Ok(messages)
}
