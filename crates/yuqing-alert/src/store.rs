//! Alert state in SQLite: items seen by the alerter, events (reprint
//! clusters), incidents with their timeline, the notification outbox and the
//! report log. Every write for one analyzed item is one transaction, so a
//! replayed item finds its rows and changes nothing.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::{M, Migrations};
use rustc_hash::FxHashMap;
use serde::Serialize;
use yuqing_analysis::events::{
    Assignment, EventClusterer, MIN_TOKENS_FOR_EVENT, ReprintThresholds, item_heat,
};
use yuqing_analysis::spikes::{Baseline, SpikeSize, detect};
use yuqing_config::{AlertConfig, SpikeConfig};
use yuqing_model::{
    AnalyzedItem, Incident, IncidentStatus, Level, ReportKind, ReportRecord, SourceState,
    SourceStatus, SourceType,
};

#[derive(Debug, thiserror::Error)]
#[error("alert state: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

pub(crate) const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE items (
        item_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        source TEXT NOT NULL,
        source_type TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT NOT NULL,
        level TEXT,
        score INTEGER NOT NULL,
        published_at INTEGER NOT NULL,
        processed_at INTEGER NOT NULL
    );
    CREATE INDEX items_by_time ON items(published_at);
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        simhash INTEGER NOT NULL,
        first_item_id TEXT NOT NULL,
        first_title TEXT NOT NULL,
        first_url TEXT NOT NULL,
        first_source TEXT NOT NULL,
        first_published_at INTEGER NOT NULL,
        item_count INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        -- 1 when the first item was long enough to fingerprint reliably;
        -- only such events are joined by later items.
        fingerprinted INTEGER NOT NULL
    );
    CREATE INDEX events_by_update ON events(updated_at);
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dedup_key TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        rule_name TEXT NOT NULL,
        topic TEXT NOT NULL,
        event_id TEXT NOT NULL,
        level TEXT NOT NULL,
        status TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT NOT NULL,
        item_count INTEGER NOT NULL,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX incidents_by_key ON incidents(dedup_key, status);
    CREATE TABLE incident_items (
        incident_id INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        PRIMARY KEY (incident_id, item_id)
    );
    CREATE TABLE timeline (
        incident_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL,
        channel TEXT NOT NULL,
        reason TEXT NOT NULL,
        level TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        sent_at INTEGER,
        dead_at INTEGER,
        last_error TEXT,
        UNIQUE (incident_id, channel, reason, level)
    );
    CREATE TABLE reports (
        period_end INTEGER PRIMARY KEY,
        period_start INTEGER NOT NULL,
        kind TEXT NOT NULL,
        incidents INTEGER NOT NULL,
        items INTEGER NOT NULL,
        markdown_path TEXT NOT NULL,
        html_path TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE dead_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        key TEXT NOT NULL,
        error TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at INTEGER NOT NULL
    );",
    ),
    // Collector health, for collector incidents and reports.
    M::up(
        "CREATE TABLE sources (
        source TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        consecutive_failures INTEGER NOT NULL,
        reason TEXT,
        last_success_at INTEGER,
        updated_at INTEGER NOT NULL
    );",
    ),
    // Sentiment and keywords of items, for the reports' sentiment counts
    // and hot words.
    M::up(
        "ALTER TABLE items ADD COLUMN sentiment TEXT;
    CREATE TABLE item_keywords (
        item_id TEXT NOT NULL,
        word TEXT NOT NULL,
        weight REAL NOT NULL,
        PRIMARY KEY (item_id, word)
    );",
    ),
    // Reprint chains and heat: every fingerprinted item's SimHash (so a
    // reprint of a reprint joins the event), the item it was found nearest
    // to, and each item's and event's heat. Items that started a
    // fingerprinted event take that event's SimHash.
    M::up(
        "ALTER TABLE items ADD COLUMN site TEXT NOT NULL DEFAULT '';
    ALTER TABLE items ADD COLUMN simhash INTEGER;
    ALTER TABLE items ADD COLUMN simhash_pairs INTEGER;
    ALTER TABLE items ADD COLUMN reprint_of TEXT;
    ALTER TABLE items ADD COLUMN distance INTEGER;
    ALTER TABLE items ADD COLUMN heat REAL NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN heat REAL NOT NULL DEFAULT 0;
    UPDATE items SET simhash = (SELECT e.simhash FROM events e WHERE e.event_id = items.item_id AND e.fingerprinted = 1);
    CREATE INDEX items_by_event ON items(event_id, published_at);",
    ),
    // Hourly item counts per rule topic, and the spikes found in them.
    M::up(
        "CREATE TABLE topic_hours (
        topic TEXT NOT NULL,
        hour INTEGER NOT NULL,
        items INTEGER NOT NULL,
        PRIMARY KEY (topic, hour)
    );
    -- The first counted hour of any topic is read on every spike check.
    CREATE INDEX topic_hours_by_hour ON topic_hours(hour);
    CREATE TABLE spikes (
        topic TEXT NOT NULL,
        hour INTEGER NOT NULL,
        items INTEGER NOT NULL,
        expected REAL NOT NULL,
        ratio REAL NOT NULL,
        z REAL NOT NULL,
        incident_id INTEGER NOT NULL,
        -- The ratio its incident last notified at (0 when it did not).
        notified_ratio REAL NOT NULL,
        detected_at INTEGER NOT NULL,
        PRIMARY KEY (topic, hour)
    );",
    ),
    // Routing, escalation and duty. An incident owes a message while
    // `pending` says why (opened, raised, spread, escalated, repeat,
    // retriggered, resolved); `held` says what holds it back. Each message
    // round of an incident reaches each target once (`deliveries`), and
    // the next escalation time is stored, so a restart neither loses nor
    // repeats one.
    M::up(
        "ALTER TABLE incidents ADD COLUMN source_type TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN region TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN route TEXT;
    ALTER TABLE incidents ADD COLUMN step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN loop INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN round INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN pending TEXT;
    ALTER TABLE incidents ADD COLUMN pending_since INTEGER;
    ALTER TABLE incidents ADD COLUMN held TEXT;
    ALTER TABLE incidents ADD COLUMN next_escalation_at INTEGER;
    ALTER TABLE incidents ADD COLUMN last_notified_at INTEGER;
    ALTER TABLE incidents ADD COLUMN notified_items INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN notified_heat REAL NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN notified_negative REAL NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN acknowledged_at INTEGER;
    ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT;
    ALTER TABLE incidents ADD COLUMN ack_expires_at INTEGER;
    ALTER TABLE incidents ADD COLUMN resolved_at INTEGER;
    -- What each tick reads: open incidents and those owing a message.
    CREATE INDEX incidents_live ON incidents(id) WHERE status != 'resolved' OR pending IS NOT NULL;
    CREATE TABLE route_groups (
        route TEXT PRIMARY KEY,
        last_sent_at INTEGER NOT NULL
    );
    CREATE TABLE deliveries (
        incident_id INTEGER NOT NULL,
        round INTEGER NOT NULL,
        target TEXT NOT NULL,
        notification_id INTEGER NOT NULL,
        PRIMARY KEY (incident_id, round, target)
    );
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        matchers TEXT NOT NULL,
        starts_at INTEGER NOT NULL,
        ends_at INTEGER NOT NULL,
        author TEXT NOT NULL,
        comment TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE handovers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        roster TEXT NOT NULL,
        author TEXT NOT NULL,
        note TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    -- `webhook-legacy` rows carry a ready body; others a message that the
    -- channel of that kind renders when it sends.
    ALTER TABLE notifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook-legacy';
    -- Requests of a message already made (WeCom's mention, one SMS per
    -- number), so a retry does not repeat them.
    ALTER TABLE notifications ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
    -- Incidents open before routing existed owe their first routed message.
    UPDATE incidents SET pending = 'opened', pending_since = updated_at WHERE status != 'resolved';",
    ),
    // An incident's timeline is read (and pruned) by incident.
    M::up("CREATE INDEX timeline_by_incident ON timeline(incident_id, at);"),
    // Console logins: the SHA-256 of each session's cookie, never the
    // cookie itself, and a fingerprint of the password hash it was made
    // with, so changing a password ends its sessions.
    M::up(
        "CREATE TABLE sessions (
        token_sha256 TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        credential TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    ),
    // A replayed item finds the incidents it already belongs to.
    M::up("CREATE INDEX incident_items_by_item ON incident_items(item_id);"),
];

/// A console login, as [`AlertStore::session`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    /// Fingerprint of the password hash the login was made with.
    pub credential: String,
    pub expires_at: DateTime<Utc>,
}

/// What [`AlertStore::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub items: usize,
    pub events: usize,
    pub incidents: usize,
    /// Hourly counts, spikes, dead messages, handovers and silences.
    pub other: usize,
}

/// Events older than this are not joined any more.
const EVENT_WINDOW_SECS: i64 = 7 * 86_400;

/// What the alerter decides by: the level that opens incidents, when items
/// are reprints, and when a topic's volume is a spike.
#[derive(Debug, Clone)]
pub struct Policy {
    pub min_level: Level,
    pub reprints: ReprintThresholds,
    pub spike: SpikeConfig,
    /// Each source's region, for routing its incidents.
    pub regions: FxHashMap<String, String>,
    /// Each source's type, for routing its collector incidents.
    pub source_types: FxHashMap<String, SourceType>,
}

impl Policy {
    pub fn from_config(c: &AlertConfig) -> Policy {
        Policy {
            min_level: c.min_level,
            reprints: ReprintThresholds::from_config(c),
            spike: c.spike.clone(),
            regions: FxHashMap::default(),
            source_types: FxHashMap::default(),
        }
    }
}

/// A volume spike of a topic in one hour, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct SpikeRecord {
    pub topic: String,
    pub hour: DateTime<Utc>,
    pub items: u32,
    pub expected: f64,
    pub ratio: f64,
    pub z: f64,
    pub incident_id: i64,
}

const HOUR: i64 = 3_600;

/// A notification to enqueue, built by the caller per channel.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub min_level: Option<Level>,
}

/// What processing one analyzed item changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub event_id: String,
    /// Incidents opened by this item.
    pub opened: Vec<i64>,
    /// Incidents whose level this item raised, or spikes it doubled.
    pub raised: Vec<i64>,
    /// Spike incidents this item opened, with their topics.
    pub spikes: Vec<(i64, String)>,
    /// Notifications enqueued.
    pub notifications: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    pub event_id: String,
    pub first_title: String,
    pub first_url: String,
    pub first_source: String,
    pub first_published_at: DateTime<Utc>,
    pub item_count: u64,
    /// 热度: the summed heat of its items (source-type weight plus
    /// engagement, see [`item_heat`]).
    pub heat: f64,
}

/// One item of an event's reprint chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    pub item_id: String,
    pub title: String,
    pub url: String,
    pub source: String,
    pub source_type: String,
    pub site: String,
    pub published_at: DateTime<Utc>,
    /// The earlier item this one was found nearest to when it joined (none
    /// for the item that started the event).
    pub reprint_of: Option<String>,
    /// SimHash distance in bits to `reprint_of`, words and word pairs
    /// together (of 128).
    pub distance: Option<u32>,
    pub heat: f64,
}

/// A chain link from a row of `item_id, title, url, source, source_type,
/// site, published_at, reprint_of, distance, heat`.
fn chain_link(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainLink> {
    Ok(ChainLink {
        item_id: r.get(0)?,
        title: r.get(1)?,
        url: r.get(2)?,
        source: r.get(3)?,
        source_type: r.get(4)?,
        site: r.get(5)?,
        published_at: from_ts(r.get(6)?),
        reprint_of: r.get(7)?,
        distance: r.get::<_, Option<i64>>(8)?.map(|d| d as u32),
        heat: r.get(9)?,
    })
}

#[derive(Debug, Clone)]
pub struct PendingNotification {
    pub id: i64,
    pub channel: String,
    /// `webhook-legacy` (a ready body for a plain webhook) or the kind of
    /// channel that renders the stored message.
    pub kind: String,
    pub payload: String,
    pub attempts: u32,
    /// Requests of the message already made.
    pub parts_sent: u32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

/// The fingerprints of the items of joinable events (updated within the
/// event window), in a multi-index SimHash index held in memory and loaded
/// from the database on first use.
#[derive(Debug)]
struct EventCache {
    clusterer: EventClusterer<String>,
    /// Last update of each indexed event.
    updated: FxHashMap<String, i64>,
    /// When expired events were last swept out of the index.
    swept_at: i64,
}

impl EventCache {
    fn load(
        conn: &Connection,
        thresholds: ReprintThresholds,
        now: i64,
    ) -> Result<EventCache, StoreError> {
        let mut clusterer = EventClusterer::new(thresholds);
        let mut updated = FxHashMap::default();
        let mut stmt = conn.prepare(
            "SELECT i.simhash, i.simhash_pairs, i.event_id, i.item_id, e.updated_at FROM items i JOIN events e ON e.event_id = i.event_id
             WHERE i.simhash IS NOT NULL AND e.fingerprinted = 1 AND e.updated_at >= ?1 ORDER BY i.processed_at, i.rowid",
        )?;
        let rows = stmt.query_map([now - EVENT_WINDOW_SECS], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for row in rows {
            let (simhash, pairs, event, item, at) = row?;
            updated.insert(event.clone(), at);
            clusterer.add(simhash, pairs, event, item);
        }
        Ok(EventCache {
            clusterer,
            updated,
            swept_at: now,
        })
    }

    /// Applies a committed item's change.
    fn apply(&mut self, change: CacheChange, now: i64) {
        let CacheChange::Add {
            simhash,
            pairs,
            event,
            item,
        } = change
        else {
            return;
        };
        self.updated.insert(event.clone(), now);
        self.clusterer.add(simhash, pairs, event, item);
        if now - self.swept_at > 3_600 {
            let cutoff = now - EVENT_WINDOW_SECS;
            self.updated.retain(|_, at| *at >= cutoff);
            let updated = &self.updated;
            self.clusterer.retain(|e| updated.contains_key(e));
            self.swept_at = now;
        }
    }
}

/// How processing an item changes the event cache, applied only after its
/// transaction commits.
enum CacheChange {
    None,
    Add {
        simhash: u64,
        pairs: u64,
        event: String,
        item: String,
    },
}

#[derive(Debug, Clone)]
pub struct AlertStore {
    pub(crate) conn: Arc<Mutex<Connection>>,
    events: Arc<Mutex<Option<EventCache>>>,
}

/// A stretch of time, from and to.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// `meta` key of the alerter's last heartbeat (Unix seconds).
const ALIVE_AT: &str = "alerter_alive_at";
/// `meta` key of the alerter's last downtime (`from,to`, Unix seconds).
pub(crate) const DOWNTIME: &str = "alerter_downtime";

/// The time from `since` to `now` the alerter was up: less the part of its
/// last downtime `down` that came after `since`.
pub(crate) fn time_up(
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    down: Option<Span>,
) -> chrono::Duration {
    let lost = match down {
        Some((from, to)) if since < to => to - from.max(since),
        _ => chrono::Duration::zero(),
    };
    now - since - lost
}

/// Reads a [`DOWNTIME`] value.
pub(crate) fn parse_downtime(v: &str) -> Option<Span> {
    let (from, to) = v.split_once(',')?;
    Some((from_ts(from.parse().ok()?), from_ts(to.parse().ok()?)))
}

pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn from_ts(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

impl AlertStore {
    pub fn open(path: &Path) -> Result<AlertStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement of the item path stays prepared.
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The alerter and a server in another process may open the file at
        // the same moment: the one that loses the race to migrate waits for
        // the other and finds the schema current.
        let mut tries = 0;
        loop {
            match Migrations::from_slice(MIGRATIONS).to_latest(&mut conn) {
                Ok(()) => break,
                Err(rusqlite_migration::Error::RusqliteError { err, .. })
                    if tries < 50
                        && err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(StoreError(format!("migrating {}: {e}", path.display()))),
            }
        }
        Ok(AlertStore {
            conn: Arc::new(Mutex::new(conn)),
            events: Arc::new(Mutex::new(None)),
        })
    }

    /// Records one analyzed item: joins or starts its event, and opens,
    /// grows or raises the incidents of its rules when it is at or above
    /// `min_level`. Idempotent: a replayed item changes nothing.
    pub fn process(
        &self,
        a: &AnalyzedItem,
        policy: &Policy,
        channels: &[Channel],
        payload: &dyn Fn(&Incident, &str) -> String,
    ) -> Result<Outcome, StoreError> {
        let mut outs = self.process_all(&[a], policy, channels, payload)?;
        Ok(outs.pop().expect("one outcome an item"))
    }

    /// Records analyzed items in order, as [`AlertStore::process`] does
    /// each, in one transaction: all of them or none, with one commit (one
    /// sync of the log to disk) for the lot. A reprint joins the event of an
    /// item before it in the same call.
    pub fn process_all(
        &self,
        items: &[&AnalyzedItem],
        policy: &Policy,
        channels: &[Channel],
        payload: &dyn Fn(&Incident, &str) -> String,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let now = Utc::now();
        let mut events = self.events.lock().unwrap();
        if events
            .as_ref()
            .is_none_or(|c| c.clusterer.thresholds() != policy.reprints)
        {
            *events = Some(EventCache::load(&conn, policy.reprints, ts(now))?);
        }
        let cache = events.as_mut().expect("loaded above");
        let mut applied = false;
        let mut record = || {
            let tx = conn.transaction()?;
            let mut outs = Vec::with_capacity(items.len());
            for a in items {
                let (out, change) = process_in(&tx, cache, a, policy, channels, payload, now)?;
                // Later items of the call see this one's event.
                applied |= !matches!(change, CacheChange::None);
                cache.apply(change, ts(now));
                outs.push(out);
            }
            tx.commit()?;
            Ok(outs)
        };
        let result = record();
        if result.is_err() && applied {
            // The rollback undid events the cache has taken: it is read
            // again from the store next time.
            *events = None;
        }
        result
    }

    /// Records a source's status. A source that is not `ok` opens (or keeps)
    /// its collector incident, keyed `collector:<source>`; a source back to
    /// `ok` resolves it. Both notify.
    pub fn record_source_status(
        &self,
        st: &SourceStatus,
        level: Level,
        policy: &Policy,
        channels: &[Channel],
        payload: &dyn Fn(&Incident, &str) -> String,
    ) -> Result<Outcome, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let now = Utc::now();
        // A snapshot older than the one recorded (a replay) changes nothing.
        let fresh = tx.execute(
            "INSERT INTO sources (source, name, state, consecutive_failures, reason, last_success_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(source) DO UPDATE SET name = excluded.name, state = excluded.state,
               consecutive_failures = excluded.consecutive_failures, reason = excluded.reason,
               last_success_at = excluded.last_success_at, updated_at = excluded.updated_at
             WHERE excluded.updated_at >= sources.updated_at",
            params![
                st.source,
                st.name,
                st.state.as_str(),
                st.consecutive_failures,
                st.reason,
                st.last_success_at.map(ts),
                ts(st.at)
            ],
        )?;
        let mut out = Outcome {
            event_id: st.source.clone(),
            ..Default::default()
        };
        if fresh == 0 {
            tx.commit()?;
            return Ok(out);
        }
        let dedup_key = format!("collector:{}", st.source);
        let open = open_incident(&tx, &dedup_key)?;
        let healthy = st.state == SourceState::Ok;
        let (incident_id, reason) = match open {
            // Nothing changes: healthy with no incident, or still troubled
            // with its incident open.
            None if healthy => {
                tx.commit()?;
                return Ok(out);
            }
            Some(_) if !healthy => {
                tx.commit()?;
                return Ok(out);
            }
            Some(id) => {
                resolve(&tx, id, now, "system", "source recovered")?;
                (id, "resolved")
            }
            None => {
                let state = st.state;
                let title = format!(
                    "采集源{}：{}{}",
                    state.zh(),
                    st.name,
                    st.reason
                        .as_deref()
                        .map(|r| format!("（{r}）"))
                        .unwrap_or_default()
                );
                // Routed like the source's items: by its type and region.
                let source_type = policy
                    .source_types
                    .get(&st.source)
                    .map_or("", |t| t.as_str());
                let region = policy.regions.get(&st.source).map_or("", String::as_str);
                tx.execute(
                    "INSERT INTO incidents (dedup_key, rule_id, rule_name, topic, event_id, level, status, title, url, item_count, opened_at, updated_at,
                                           source_type, region)
                     VALUES (?1, 'collector', ?2, '采集源', ?3, ?4, 'triggered', ?5, '', 0, ?6, ?6, ?7, ?8)",
                    params![dedup_key, format!("采集源{}", state.zh()), st.source, level.as_str(), title, ts(now),
                            source_type, region],
                )?;
                let id = tx.last_insert_rowid();
                timeline(
                    &tx,
                    id,
                    now,
                    "system",
                    "triggered",
                    &format!("source {} is {}", st.source, state.as_str()),
                )?;
                out.opened.push(id);
                (id, "opened")
            }
        };
        out.notifications += enqueue(&tx, incident_id, reason, channels, payload, now)?;
        tx.commit()?;
        Ok(out)
    }

    /// Every source's last status, most troubled first.
    pub fn source_statuses(&self) -> Result<Vec<SourceStatus>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT source, name, state, consecutive_failures, reason, last_success_at, updated_at FROM sources
             ORDER BY state = 'ok', source",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourceStatus {
                    source: r.get(0)?,
                    name: r.get(1)?,
                    state: SourceState::parse(&r.get::<_, String>(2)?)
                        .unwrap_or(SourceState::Failing),
                    consecutive_failures: r.get(3)?,
                    reason: r.get(4)?,
                    last_success_at: r.get::<_, Option<i64>>(5)?.map(from_ts),
                    at: from_ts(r.get(6)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn incidents(&self, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit as i64], incident_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(load_incident_opt(&conn, id)?)
    }

    /// Incidents opened in `(from, to]` at or above `min_level`, most severe
    /// first. The end is inclusive: times are stored in whole seconds, and a
    /// report written "now" must include what opened in this second.
    pub fn incidents_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        min_level: Level,
    ) -> Result<Vec<Incident>, StoreError> {
        let all = {
            let conn = self.conn.lock().unwrap();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE opened_at > ?1 AND opened_at <= ?2 ORDER BY opened_at"
            ))?;
            stmt.query_map(params![ts(from), ts(to)], incident_row)?
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut out: Vec<Incident> = all.into_iter().filter(|i| i.level >= min_level).collect();
        out.sort_by(|a, b| b.level.cmp(&a.level).then(a.opened_at.cmp(&b.opened_at)));
        Ok(out)
    }

    /// Items published in `(from, to]` counted by source type.
    pub fn item_counts_by_source_type(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.item_counts_by("source_type", from, to)
    }

    /// Items published in `(from, to]` counted by sentiment label
    /// (`positive`, `neutral`, `negative`), most first.
    pub fn item_counts_by_sentiment(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.item_counts_by("sentiment", from, to)
    }

    /// Items published in `(from, to]` with a value in `column` (one of
    /// the two above, never user input), counted by it, most first.
    fn item_counts_by(
        &self,
        column: &'static str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {column}, COUNT(*) FROM items
             WHERE published_at > ?1 AND published_at <= ?2 AND {column} IS NOT NULL
             GROUP BY {column} ORDER BY COUNT(*) DESC"
        ))?;
        let rows = stmt
            .query_map(params![ts(from), ts(to)], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The hot words of items published in `(from, to]`: keywords ranked
    /// by how many items have them, then by their summed weight.
    pub fn hot_words(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        top: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT k.word, COUNT(*) AS n FROM item_keywords k JOIN items i ON i.item_id = k.item_id
             WHERE i.published_at > ?1 AND i.published_at <= ?2
             GROUP BY k.word ORDER BY n DESC, SUM(k.weight) DESC, k.word LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![ts(from), ts(to), top as i64], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn event(&self, event_id: &str) -> Result<Option<EventSummary>, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn
            .query_row(
                "SELECT event_id, first_title, first_url, first_source, first_published_at, item_count, heat FROM events WHERE event_id = ?1",
                [event_id],
                |r| {
                    Ok(EventSummary {
                        event_id: r.get(0)?,
                        first_title: r.get(1)?,
                        first_url: r.get(2)?,
                        first_source: r.get(3)?,
                        first_published_at: from_ts(r.get(4)?),
                        item_count: r.get::<_, i64>(5)? as u64,
                        heat: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// An event's items in the order they were published: the first
    /// publisher, then its reprints, each with the item it is nearest to.
    pub fn event_chain(&self, event_id: &str) -> Result<Vec<ChainLink>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT item_id, title, url, source, source_type, site, published_at, reprint_of, distance, heat
             FROM items WHERE event_id = ?1 ORDER BY published_at, processed_at, rowid",
        )?;
        let rows = stmt
            .query_map([event_id], chain_link)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The items an incident was raised for, oldest first, as chain links
    /// (none of them a reprint): for incidents without an event chain.
    pub fn incident_items(&self, incident: i64) -> Result<Vec<ChainLink>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT i.item_id, i.title, i.url, i.source, i.source_type, i.site, i.published_at, NULL, NULL, i.heat
             FROM incident_items x JOIN items i ON i.item_id = x.item_id
             WHERE x.incident_id = ?1 ORDER BY i.published_at, i.rowid",
        )?;
        let rows = stmt
            .query_map([incident], chain_link)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Queues deliveries of a report that has no place in the report log
    /// (a special report): `(channel, kind of channel, message)` each,
    /// under `reason`.
    pub fn queue_report(
        &self,
        reason: &str,
        deliveries: &[(String, String, String)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let mut n = 0;
        for (channel, kind, payload) in deliveries {
            n += tx.execute(
                "INSERT OR IGNORE INTO notifications (incident_id, channel, reason, level, payload, created_at, next_attempt_at, kind)
                 VALUES (0, ?1, ?2, 'blue', ?3, ?4, ?4, ?5)",
                params![channel, reason, payload, ts(now), kind],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Spikes found in hours after `since`, newest first.
    pub fn spikes(&self, since: DateTime<Utc>) -> Result<Vec<SpikeRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT topic, hour, items, expected, ratio, z, incident_id FROM spikes
             WHERE hour >= ?1 ORDER BY hour DESC, ratio DESC",
        )?;
        let rows = stmt
            .query_map([ts(since).div_euclid(HOUR) * HOUR], |r| {
                Ok(SpikeRecord {
                    topic: r.get(0)?,
                    hour: from_ts(r.get(1)?),
                    items: r.get(2)?,
                    expected: r.get(3)?,
                    ratio: r.get(4)?,
                    z: r.get(5)?,
                    incident_id: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Resolves the spike incidents not grown for `quiet_hours`; returns how
    /// many.
    pub fn resolve_quiet_spikes(
        &self,
        now: DateTime<Utc>,
        quiet_hours: i64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let ids: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM incidents WHERE dedup_key LIKE 'spike:%' AND status != 'resolved' AND updated_at < ?1",
            )?;
            stmt.query_map([ts(now) - quiet_hours * HOUR], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        for &id in &ids {
            resolve(&tx, id, now, "system", "quiet")?;
        }
        tx.commit()?;
        Ok(ids.len())
    }

    /// Deletes what is older than `days` before `now`: items (with their
    /// keywords), events, resolved incidents owing nothing (with their
    /// items, timeline, messages and deliveries), hourly topic counts,
    /// spikes, dead messages, handovers and expired silences. Open
    /// incidents keep their items and events whatever their age; reports
    /// and their messages are kept. Deletes in batches, each its own
    /// transaction, so items being recorded wait for one batch at most.
    pub fn prune(&self, now: DateTime<Utc>, days: u32) -> Result<Pruned, StoreError> {
        const BATCH: i64 = 2_000;
        let cutoff = ts(now) - i64::from(days) * 86_400;
        let mut pruned = Pruned::default();
        // Resolved incidents first, so their items are free to go.
        loop {
            let mut conn = self.conn.lock().unwrap();
            let tx = conn.transaction()?;
            let ids: Vec<i64> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM incidents WHERE status = 'resolved' AND pending IS NULL AND updated_at < ?1 LIMIT ?2",
                )?;
                stmt.query_map(params![cutoff, BATCH], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            for id in &ids {
                for sql in [
                    "DELETE FROM incident_items WHERE incident_id = ?1",
                    "DELETE FROM timeline WHERE incident_id = ?1",
                    "DELETE FROM notifications WHERE incident_id = ?1",
                    "DELETE FROM deliveries WHERE incident_id = ?1",
                    "DELETE FROM incidents WHERE id = ?1",
                ] {
                    exec(&tx, sql, [id])?;
                }
            }
            tx.commit()?;
            pruned.incidents += ids.len();
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        loop {
            let mut conn = self.conn.lock().unwrap();
            let tx = conn.transaction()?;
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT item_id FROM items WHERE published_at < ?1 AND processed_at < ?1
                       AND item_id NOT IN (SELECT item_id FROM incident_items) LIMIT ?2",
                )?;
                stmt.query_map(params![cutoff, BATCH], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            for id in &ids {
                exec(&tx, "DELETE FROM item_keywords WHERE item_id = ?1", [id])?;
                exec(&tx, "DELETE FROM items WHERE item_id = ?1", [id])?;
            }
            tx.commit()?;
            pruned.items += ids.len();
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        // The rest, a batch of each table at a time.
        let batched = |table: &str, condition: &str| -> Result<usize, StoreError> {
            let sql = format!(
                "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {condition} LIMIT ?2)"
            );
            let mut total = 0;
            loop {
                let mut conn = self.conn.lock().unwrap();
                let tx = conn.transaction()?;
                let n = exec(&tx, &sql, params![cutoff, BATCH])?;
                tx.commit()?;
                total += n;
                if (n as i64) < BATCH {
                    return Ok(total);
                }
            }
        };
        pruned.events = batched(
            "events",
            "updated_at < ?1 AND event_id NOT IN (SELECT event_id FROM incidents)
               AND event_id NOT IN (SELECT event_id FROM items)",
        )?;
        for (table, condition) in [
            ("topic_hours", "hour < ?1"),
            (
                "spikes",
                "hour < ?1 AND incident_id NOT IN (SELECT id FROM incidents)",
            ),
            ("dead_messages", "received_at < ?1"),
            ("handovers", "at < ?1"),
            ("silences", "ends_at < ?1"),
        ] {
            pruned.other += batched(table, condition)?;
        }
        Ok(pruned)
    }

    /// The event an item belongs to.
    pub fn event_of(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn
            .query_row(
                "SELECT event_id FROM items WHERE item_id = ?1",
                [item_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn item_count(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Notifications due now, oldest first, at most `limit` of each
    /// channel, so a channel that is backed up does not hide the others.
    pub fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingNotification>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, channel, payload, attempts, kind, parts_sent, created_at FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY channel ORDER BY id) AS nth FROM notifications
               WHERE sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?1)
             WHERE nth <= ?2 ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![ts(now), limit as i64], |r| {
                Ok(PendingNotification {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    payload: r.get(2)?,
                    attempts: r.get::<_, i64>(3)? as u32,
                    kind: r.get(4)?,
                    parts_sent: r.get::<_, i64>(5)? as u32,
                    created_at: from_ts(r.get(6)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "UPDATE notifications SET sent_at = ?2, attempts = attempts + 1 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or a dead letter when
    /// `retry_at` is `None`.
    pub fn mark_failed(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        match retry_at {
            Some(t) => conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, ts(t)],
            )?,
            None => conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?2, dead_at = ?3 WHERE id = ?1",
                params![id, error, ts(now)],
            )?,
        };
        Ok(())
    }

    /// Puts a notification off until `at` without counting an attempt:
    /// the channel's rate limit is reached.
    pub fn postpone(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "UPDATE notifications SET next_attempt_at = ?2 WHERE id = ?1",
            // Rounded up: a row due again before `at` would be read and
            // put off again until then.
            params![id, ts(at) + i64::from(at.timestamp_subsec_nanos() > 0)],
        )?;
        Ok(())
    }

    /// Records that the first `parts` requests of a message were made, so
    /// a retry makes only the rest.
    pub fn record_parts(&self, id: i64, parts: u32) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "UPDATE notifications SET parts_sent = MAX(parts_sent, ?2) WHERE id = ?1",
            params![id, i64::from(parts)],
        )?;
        Ok(())
    }

    /// (sent, pending, dead) notification counts.
    pub fn notification_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(sent_at IS NOT NULL), 0), COALESCE(SUM(sent_at IS NULL AND dead_at IS NULL), 0), COALESCE(SUM(dead_at IS NOT NULL), 0) FROM notifications",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
        )?)
    }

    /// Records a login until `expires_at`, and forgets expired ones.
    pub fn create_session(
        &self,
        token_sha256: &str,
        user_id: &str,
        credential: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [ts(now)])?;
        tx.execute(
            "INSERT INTO sessions (token_sha256, user_id, credential, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_sha256, user_id, credential, ts(now), ts(expires_at)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The login behind a cookie's SHA-256, unless it has expired.
    pub fn session(
        &self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT user_id, credential, expires_at FROM sessions WHERE token_sha256 = ?1 AND expires_at > ?2",
        )?;
        Ok(stmt
            .query_row(params![token_sha256, ts(now)], |r| {
                Ok(Session {
                    user_id: r.get(0)?,
                    credential: r.get(1)?,
                    expires_at: from_ts(r.get(2)?),
                })
            })
            .optional()?)
    }

    /// Ends a login (logging out); whether there was one.
    pub fn end_session(&self, token_sha256: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            [token_sha256],
        )? > 0)
    }

    /// The key that signs acknowledgement links: made once, kept here.
    pub fn ack_key(&self) -> Result<Vec<u8>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let fresh = yuqing_model::hex(&random_key());
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('ack_key', ?1)",
            [fresh],
        )?;
        let hex: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'ack_key'", [], |r| {
                r.get(0)
            })?;
        Ok(hex.into_bytes())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Records that the alerter is running at `now` (its engine does so
    /// every minute).
    pub fn heartbeat(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.set_meta(ALIVE_AT, &ts(now).to_string())
    }

    /// Records a start at `now`: when the last heartbeat is more than `gap`
    /// old, the time since is the alerter's last downtime, which
    /// auto-resolution does not count and reports covering it mention.
    /// Returns that downtime.
    pub fn record_start(
        &self,
        now: DateTime<Utc>,
        gap: chrono::Duration,
    ) -> Result<Option<Span>, StoreError> {
        let alive = self.meta(ALIVE_AT)?.and_then(|v| v.parse::<i64>().ok());
        let down = alive
            .map(from_ts)
            .filter(|&at| now - at > gap)
            .map(|at| (at, now));
        if let Some((from, to)) = down {
            self.set_meta(DOWNTIME, &format!("{},{}", ts(from), ts(to)))?;
        }
        self.heartbeat(now)?;
        Ok(down)
    }

    /// The alerter's last downtime (see [`AlertStore::record_start`]).
    pub fn downtime(&self) -> Result<Option<Span>, StoreError> {
        Ok(self.meta(DOWNTIME)?.as_deref().and_then(parse_downtime))
    }

    /// The newest report's period end.
    pub fn last_report(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let t: Option<i64> =
            conn.query_row("SELECT MAX(period_end) FROM reports", [], |r| r.get(0))?;
        Ok(t.map(from_ts))
    }

    /// Records a written report; false when one for this period exists.
    pub fn record_report(&self, r: &ReportRecord) -> Result<bool, StoreError> {
        self.record_report_and_send(r, &[]).map(|(new, _)| new)
    }

    /// The report recorded for the period ending at `period_end`, if any.
    pub fn report_at(&self, period_end: DateTime<Utc>) -> Result<Option<ReportRecord>, StoreError> {
        Ok(self
            .reports_where("WHERE period_end = ?1", ts(period_end), 1)?
            .pop())
    }

    /// Whether the report of the period ending at `period_end` has been
    /// queued for delivery to any channel.
    pub fn report_queued(&self, period_end: DateTime<Utc>) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn
            .query_row(
                "SELECT 1 FROM notifications WHERE incident_id = 0 AND reason = ?1 LIMIT 1",
                [format!("report:{}", ts(period_end))],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// [`AlertStore::record_report`], and in the same transaction its
    /// deliveries into the outbox: `(channel, kind of channel, message)`
    /// each. A channel the period's report was queued for before is not
    /// queued again, so neither a restart nor a second `--send` delivers
    /// it twice, and a report written without sending can be sent later.
    /// Returns whether the report is new, and the deliveries queued.
    pub fn record_report_and_send(
        &self,
        r: &ReportRecord,
        deliveries: &[(String, String, String)],
    ) -> Result<(bool, usize), StoreError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO reports (period_end, period_start, kind, incidents, items, markdown_path, html_path, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                ts(r.period_end),
                ts(r.period_start),
                r.kind.as_str(),
                r.incidents as i64,
                r.items as i64,
                r.markdown_path,
                r.html_path,
                ts(r.created_at)
            ],
        )?;
        let mut queued = 0;
        for (channel, kind, payload) in deliveries {
            // Incident 0: a report is no incident. The unique key (incident,
            // channel, reason, level) keeps one row a channel and period.
            queued += tx.execute(
                "INSERT OR IGNORE INTO notifications (incident_id, channel, reason, level, payload, created_at, next_attempt_at, kind)
                 VALUES (0, ?1, ?2, 'blue', ?3, ?4, ?4, ?5)",
                params![
                    channel,
                    format!("report:{}", ts(r.period_end)),
                    payload,
                    ts(r.created_at),
                    kind
                ],
            )?;
        }
        tx.commit()?;
        Ok((n == 1, queued))
    }

    /// Reports written, newest period first.
    pub fn reports(&self, limit: usize) -> Result<Vec<ReportRecord>, StoreError> {
        self.reports_where("WHERE ?1 = ?1", 0, limit)
    }

    /// Reports matching `filter` (on `?1` = `arg`), newest period first.
    fn reports_where(
        &self,
        filter: &str,
        arg: i64,
        limit: usize,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT kind, period_start, period_end, incidents, items, markdown_path, html_path, created_at
             FROM reports {filter} ORDER BY period_end DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![arg, limit as i64], |r| {
                Ok(ReportRecord {
                    kind: ReportKind::parse(&r.get::<_, String>(0)?).unwrap_or(ReportKind::Daily),
                    period_start: from_ts(r.get(1)?),
                    period_end: from_ts(r.get(2)?),
                    incidents: r.get::<_, i64>(3)? as u64,
                    items: r.get::<_, i64>(4)? as u64,
                    markdown_path: r.get(5)?,
                    html_path: r.get(6)?,
                    created_at: from_ts(r.get(7)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn report_count(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.query_row("SELECT COUNT(*) FROM reports", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn record_dead(
        &self,
        topic: &str,
        key: &str,
        error: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "INSERT INTO dead_messages (topic, key, error, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![topic, key, error, payload, ts(Utc::now())],
        )?;
        Ok(())
    }
}

/// 32 random bytes from the operating system.
pub(crate) fn random_key() -> Vec<u8> {
    use std::io::Read;
    let mut key = vec![0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .is_err()
    {
        // No urandom: the clock and the process id, hashed. Weak, but
        // links are only a convenience over the console.
        use sha2::Digest;
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        key = sha2::Sha256::digest(seed.as_bytes()).to_vec();
    }
    key
}

fn display_title(a: &AnalyzedItem) -> String {
    if !a.item.title.is_empty() {
        return a.item.title.clone();
    }
    let t: String = a.item.text.chars().take(40).collect();
    t.replace('\n', " ")
}

/// The topic a rule hit counts towards: its topic, else its rule's name.
fn topic_of(h: &yuqing_model::RuleHit) -> String {
    if !h.topic.is_empty() {
        h.topic.clone()
    } else if !h.rule_name.is_empty() {
        h.rule_name.clone()
    } else {
        h.rule_id.clone()
    }
}

/// Checks a topic's count for `hour` against its baseline for that hour of
/// the day, and opens or grows the topic's spike incident (keyed
/// `spike:<topic>`). A spike incident notifies when it opens and again each
/// time the spike doubles.
#[allow(clippy::too_many_arguments)]
fn check_spike(
    tx: &Transaction<'_>,
    topic: &str,
    hour: i64,
    cfg: &SpikeConfig,
    now: DateTime<Utc>,
    channels: &[Channel],
    payload: &dyn Fn(&Incident, &str) -> String,
    out: &mut Outcome,
) -> Result<(), StoreError> {
    let count: u32 = row(
        tx,
        "SELECT items FROM topic_hours WHERE topic = ?1 AND hour = ?2",
        params![topic, hour],
        |r| r.get(0),
    )?;
    if count < cfg.min_count {
        return Ok(());
    }
    // History: the same hour on each earlier day since counting began.
    let first: i64 = row(tx, "SELECT MIN(hour) FROM topic_hours", [], |r| r.get(0))?;
    let days = ((hour - first) / (24 * HOUR)).clamp(0, i64::from(cfg.history_days));
    let mut history = Vec::with_capacity(days as usize);
    {
        let mut stmt =
            tx.prepare_cached("SELECT items FROM topic_hours WHERE topic = ?1 AND hour = ?2")?;
        for d in 1..=days {
            let c: Option<u32> = stmt
                .query_row(params![topic, hour - d * 24 * HOUR], |r| r.get(0))
                .optional()?;
            history.push(c.unwrap_or(0));
        }
    }
    let Some(size) = detect(count, &Baseline::from_same_hour(&history), cfg) else {
        return Ok(());
    };
    let dedup_key = format!("spike:{topic}");
    let detail = spike_detail(topic, &size);
    let open: Option<(i64, i64)> = row(
        tx,
        "SELECT id, updated_at FROM incidents WHERE dedup_key = ?1 AND status != 'resolved'",
        [&dedup_key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    let open = match open {
        // A spike incident quiet for longer than `quiet_hours` is over;
        // this is a new spike.
        Some((id, updated)) if ts(now) - updated > i64::from(cfg.quiet_hours) * HOUR => {
            resolve(tx, id, now, "system", "quiet")?;
            None
        }
        other => other.map(|(id, _)| id),
    };
    let previous: Option<f64> = row(
        tx,
        "SELECT MAX(notified_ratio) FROM spikes WHERE topic = ?1 AND incident_id = ?2",
        params![topic, open.unwrap_or(-1)],
        |r| r.get(0),
    )
    .optional()?
    .flatten();
    let (incident_id, reason) = match open {
        None => {
            exec(
tx,
                "INSERT INTO incidents (dedup_key, rule_id, rule_name, topic, event_id, level, status, title, url, item_count, opened_at, updated_at)
                 VALUES (?1, 'spike', '信息量激增', ?2, '', ?3, 'triggered', ?4, '', ?5, ?6, ?6)",
                params![dedup_key, topic, cfg.level.as_str(), detail, count, ts(now)],
            )?;
            let id = tx.last_insert_rowid();
            timeline(tx, id, now, "system", "triggered", &detail)?;
            out.spikes.push((id, topic.to_string()));
            (id, Some("opened".to_string()))
        }
        Some(id) => {
            exec(
                tx,
                "UPDATE incidents SET title = ?2, item_count = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, detail, count, ts(now)],
            )?;
            // Notify again each time the spike doubles.
            let doubled = previous.is_some_and(|p| size.ratio >= 2.0 * p);
            if doubled {
                timeline(tx, id, now, "system", "grew", &detail)?;
                out.raised.push(id);
            }
            let reason = doubled.then(|| format!("grew:{:.0}x", size.ratio.log2().floor().exp2()));
            (id, reason)
        }
    };
    let notified = if reason.is_some() { size.ratio } else { 0.0 };
    exec(
tx,
        "INSERT INTO spikes (topic, hour, items, expected, ratio, z, incident_id, notified_ratio, detected_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(topic, hour) DO UPDATE SET items = excluded.items, expected = excluded.expected,
           ratio = MAX(ratio, excluded.ratio), z = excluded.z, incident_id = excluded.incident_id,
           notified_ratio = MAX(notified_ratio, excluded.notified_ratio)",
        params![topic, hour, count, size.expected, size.ratio, size.z, incident_id, notified, ts(now)],
    )?;
    if let Some(reason) = reason {
        out.notifications += enqueue(tx, incident_id, &reason, channels, payload, now)?;
    }
    Ok(())
}

fn spike_detail(topic: &str, s: &SpikeSize) -> String {
    format!(
        "专题「{topic}」信息量激增：本小时 {} 条，同时段常态 {:.1} 条（{:.1} 倍）",
        s.count, s.expected, s.ratio
    )
}

/// Resolves an incident; whoever was told of it is told it is over.
/// The open (not resolved) incident of `dedup_key`, if any.
pub(crate) fn open_incident(
    tx: &Transaction<'_>,
    dedup_key: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id FROM incidents WHERE dedup_key = ?1 AND status != 'resolved'",
            [dedup_key],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn resolve(
    tx: &Transaction<'_>,
    id: i64,
    now: DateTime<Utc>,
    actor: &str,
    why: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE incidents SET status = 'resolved', updated_at = ?2, resolved_at = ?2, next_escalation_at = NULL,
           ack_expires_at = NULL, held = NULL,
           pending = CASE WHEN last_notified_at IS NOT NULL THEN 'resolved' END,
           pending_since = CASE WHEN last_notified_at IS NOT NULL THEN ?2 END
         WHERE id = ?1",
        params![id, ts(now)],
    )?;
    timeline(tx, id, now, actor, "resolved", why)
}

/// Where an item went among the events.
struct Joined {
    event_id: String,
    /// Whether the item's fingerprint is indexed for later items to join.
    fingerprinted: bool,
    /// The indexed item it is nearest to, when it joined an event.
    reprint_of: Option<String>,
    distance: Option<u32>,
    heat: f64,
}

/// `execute` through the connection's statement cache: recording an item
/// runs the same statements every time, and parsing them again was a
/// visible share of the alerter's time.
fn exec(tx: &Transaction<'_>, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

/// `query_row` through the connection's statement cache.
fn row<T>(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.prepare_cached(sql)?.query_row(p, f)
}

/// What [`AlertStore::process`] does for one item, inside `tx`: the
/// outcome, and how the event cache changes once the item is in.
fn process_in(
    tx: &Transaction<'_>,
    cache: &EventCache,
    a: &AnalyzedItem,
    policy: &Policy,
    channels: &[Channel],
    payload: &dyn Fn(&Incident, &str) -> String,
    now: DateTime<Utc>,
) -> Result<(Outcome, CacheChange), StoreError> {
    let min_level = policy.min_level;
    let mut spiking: Vec<String> = Vec::new();
    let hour = ts(a.item.time()).div_euclid(HOUR) * HOUR;
    let existing: Option<String> = row(
        tx,
        "SELECT event_id FROM items WHERE item_id = ?1",
        [&a.item.id],
        |r| r.get(0),
    )
    .optional()?;
    let replayed = existing.is_some();
    let mut change = CacheChange::None;
    let event_id = match existing {
        Some(e) => e,
        None => {
            let joined = assign_event(tx, cache, a, now)?;
            let event_id = joined.event_id.clone();
            if joined.fingerprinted {
                change = CacheChange::Add {
                    simhash: a.simhash,
                    pairs: a.simhash_pairs,
                    event: event_id.clone(),
                    item: a.item.id.clone(),
                };
            }
            exec(
tx,
                "INSERT INTO items (item_id, event_id, source, source_type, title, url, level, score, published_at, processed_at, sentiment,
                                    site, simhash, simhash_pairs, reprint_of, distance, heat)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                params![
                    a.item.id,
                    event_id,
                    a.item.source,
                    a.item.source_type.as_str(),
                    display_title(a),
                    a.item.url,
                    a.level.map(Level::as_str),
                    a.score,
                    ts(a.item.time()),
                    ts(now),
                    a.sentiment.map(|s| s.label.as_str()),
                    a.item.site,
                    joined.fingerprinted.then_some(a.simhash as i64),
                    joined.fingerprinted.then_some(a.simhash_pairs as i64),
                    joined.reprint_of,
                    joined.distance,
                    joined.heat
                ],
            )?;
            for k in &a.keywords {
                exec(
                    tx,
                    "INSERT OR IGNORE INTO item_keywords (item_id, word, weight) VALUES (?1, ?2, ?3)",
                    params![a.item.id, k.word, f64::from(k.weight)],
                )?;
            }
            // Each topic the item's rules belong to counts it once in
            // the hour it was published.
            let mut topics: Vec<String> = a.hits.iter().map(topic_of).collect();
            topics.sort_unstable();
            topics.dedup();
            for t in topics {
                exec(
                    tx,
                    "INSERT INTO topic_hours (topic, hour, items) VALUES (?1, ?2, 1)
                     ON CONFLICT(topic, hour) DO UPDATE SET items = items + 1",
                    params![t, hour],
                )?;
                // Only the current and the previous hour can spike: a
                // backfill of old items raises nothing.
                if policy.spike.enabled && hour >= ts(now).div_euclid(HOUR) * HOUR - HOUR {
                    spiking.push(t);
                }
            }
            event_id
        }
    };
    let mut out = Outcome {
        event_id: event_id.clone(),
        ..Default::default()
    };
    let item_level = a.level.unwrap_or(Level::Blue);
    if a.level.is_some_and(|l| l >= min_level) {
        for hit in &a.hits {
            let dedup_key = format!("rule:{}:event:{}", hit.rule_id, event_id);
            let open: Option<(i64, String)> = row(
                tx,
                "SELECT id, level FROM incidents WHERE dedup_key = ?1 AND status != 'resolved'",
                [&dedup_key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
            // A replayed item that already belongs to an incident of this
            // rule and event (resolved since, or not): handled, not news
            // again, neither for a new incident nor for a later one.
            if replayed
                && row(
                    tx,
                    "SELECT 1 FROM incident_items ii JOIN incidents i ON i.id = ii.incident_id
                     WHERE ii.item_id = ?1 AND i.dedup_key = ?2",
                    params![a.item.id, dedup_key],
                    |_| Ok(()),
                )
                .optional()?
                .is_some()
            {
                continue;
            }
            let (incident_id, reason) = match open {
                None => {
                    let (title, url) = row(
                        tx,
                        "SELECT first_title, first_url FROM events WHERE event_id = ?1",
                        [&event_id],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                    )?;
                    let region = policy
                        .regions
                        .get(&a.item.source)
                        .map_or("", String::as_str);
                    exec(
tx,
                        "INSERT INTO incidents (dedup_key, rule_id, rule_name, topic, event_id, level, status, title, url, item_count, opened_at, updated_at,
                                               source_type, region)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'triggered', ?7, ?8, 1, ?9, ?9, ?10, ?11)",
                        params![dedup_key, hit.rule_id, hit.rule_name, hit.topic, event_id, item_level.as_str(), title, url, ts(now),
                                a.item.source_type.as_str(), region],
                    )?;
                    let id = tx.last_insert_rowid();
                    exec(
                        tx,
                        "INSERT INTO incident_items (incident_id, item_id) VALUES (?1, ?2)",
                        params![id, a.item.id],
                    )?;
                    timeline(
                        tx,
                        id,
                        now,
                        "system",
                        "triggered",
                        &format!("{} level, rule {}", item_level, hit.rule_id),
                    )?;
                    out.opened.push(id);
                    (id, "opened")
                }
                Some((id, level)) => {
                    let added = exec(
                        tx,
                        "INSERT OR IGNORE INTO incident_items (incident_id, item_id) VALUES (?1, ?2)",
                        params![id, a.item.id],
                    )?;
                    if added == 0 {
                        continue;
                    }
                    exec(
                        tx,
                        "UPDATE incidents SET item_count = item_count + 1, updated_at = ?2 WHERE id = ?1",
                        params![id, ts(now)],
                    )?;
                    let current: Level = level.parse().unwrap_or(Level::Blue);
                    if item_level <= current {
                        continue;
                    }
                    exec(
                        tx,
                        "UPDATE incidents SET level = ?2 WHERE id = ?1",
                        params![id, item_level.as_str()],
                    )?;
                    timeline(
                        tx,
                        id,
                        now,
                        "system",
                        "raised",
                        &format!("{current} → {item_level}"),
                    )?;
                    out.raised.push(id);
                    (id, "raised")
                }
            };
            out.notifications += enqueue(tx, incident_id, reason, channels, payload, now)?;
        }
    }
    for topic in spiking {
        check_spike(
            tx,
            &topic,
            hour,
            &policy.spike,
            now,
            channels,
            payload,
            &mut out,
        )?;
    }
    Ok((out, change))
}

/// Finds the event of the item's near-duplicates (SimHash within the
/// cache's distance of any indexed item of a live event) or starts a new
/// one. The earliest-published item is the event's first publisher; the
/// event's heat is the sum of its items' heat.
fn assign_event(
    tx: &Transaction<'_>,
    cache: &EventCache,
    a: &AnalyzedItem,
    now: DateTime<Utc>,
) -> Result<Joined, StoreError> {
    let fingerprinted =
        a.text_tokens.len() + a.title_tokens.len() >= MIN_TOKENS_FOR_EVENT && a.simhash != 0;
    let published = ts(a.item.time());
    let cutoff = ts(now) - EVENT_WINDOW_SECS;
    let heat = item_heat(a.item.source_type, &a.item.engagement);
    let assignment = if fingerprinted {
        cache.clusterer.assign(a.simhash, a.simhash_pairs, |e| {
            cache.updated.get(e).is_some_and(|at| *at >= cutoff)
        })
    } else {
        Assignment::Starts
    };
    match assignment {
        Assignment::Joins {
            event,
            of,
            distance,
        } => {
            exec(
                tx,
                "UPDATE events SET item_count = item_count + 1, updated_at = ?2, heat = heat + ?3 WHERE event_id = ?1",
                params![event, ts(now), heat],
            )?;
            // An earlier item becomes the event's first publisher.
            exec(
tx,
                "UPDATE events SET first_item_id = ?2, first_title = ?3, first_url = ?4, first_source = ?5, first_published_at = ?6
                 WHERE event_id = ?1 AND first_published_at > ?6",
                params![event, a.item.id, display_title(a), a.item.url, a.item.source, published],
            )?;
            Ok(Joined {
                event_id: event,
                fingerprinted,
                reprint_of: Some(of),
                distance: Some(distance),
                heat,
            })
        }
        Assignment::Starts => {
            let event_id = a.item.id.clone();
            exec(
tx,
                "INSERT INTO events (event_id, simhash, first_item_id, first_title, first_url, first_source, first_published_at, item_count, updated_at, fingerprinted, heat)
                 VALUES (?1, ?2, ?1, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9)",
                params![event_id, a.simhash as i64, display_title(a), a.item.url, a.item.source, published, ts(now), fingerprinted, heat],
            )?;
            Ok(Joined {
                event_id,
                fingerprinted,
                reprint_of: None,
                distance: None,
                heat,
            })
        }
    }
}

/// Writes a notification of the incident for every channel whose level it
/// reaches, once per (incident, channel, reason, level): a replay adds none.
fn enqueue(
    tx: &Transaction<'_>,
    incident_id: i64,
    reason: &str,
    channels: &[Channel],
    payload: &dyn Fn(&Incident, &str) -> String,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    // The routed message owed: the first reason owed stays until it is
    // sent. (A resolution's is set by `resolve`.)
    if reason != "resolved" {
        let owed = if reason == "opened" {
            "opened"
        } else {
            "raised"
        };
        exec(
tx,
            "UPDATE incidents SET pending = COALESCE(pending, ?2), pending_since = COALESCE(pending_since, ?3)
             WHERE id = ?1 AND status != 'resolved'",
            params![incident_id, owed, ts(now)],
        )?;
    }
    let incident = load_incident(tx, incident_id)?;
    let mut added = 0;
    for ch in channels {
        if ch.min_level.is_some_and(|m| incident.level < m) {
            continue;
        }
        added += exec(
tx,
            "INSERT OR IGNORE INTO notifications (incident_id, channel, reason, level, payload, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![incident_id, ch.name, reason, incident.level.as_str(), payload(&incident, reason), ts(now)],
        )?;
    }
    Ok(added)
}

pub(crate) fn timeline(
    tx: &Transaction<'_>,
    id: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO timeline (incident_id, at, actor, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, ts(at), actor, action, detail],
    )?;
    Ok(())
}

const INCIDENT_COLUMNS: &str = "id, dedup_key, rule_id, rule_name, topic, event_id, level, status, title, url, item_count, opened_at, updated_at";

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
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
        item_count: r.get::<_, i64>(10)? as u64,
        opened_at: from_ts(r.get(11)?),
        updated_at: from_ts(r.get(12)?),
    })
}

fn load_incident(conn: &Connection, id: i64) -> Result<Incident, StoreError> {
    load_incident_opt(conn, id)?.ok_or_else(|| StoreError(format!("incident {id} vanished")))
}

fn load_incident_opt(conn: &Connection, id: i64) -> rusqlite::Result<Option<Incident>> {
    conn.query_row(
        &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
        [id],
        incident_row,
    )
    .optional()
}
