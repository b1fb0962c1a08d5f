//! Crawl state in SQLite: which items were emitted, cache validators, cursors,
//! and the outbox of items not yet durable downstream.
//!
//! Recording a run is one transaction: new items go into `seen` and the
//! outbox together with the source's new cursor and validators, so a crash
//! either keeps all of a run or none of it. Outbox rows leave only when the
//! bus says the item is durable; on restart they are published again, which
//! the idempotent sinks absorb.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use yuqing_model::Item;

use crate::fetch::Validators;
use crate::quiet::{HISTORY_DAYS, Silence};

#[derive(Debug, thiserror::Error)]
#[error("crawl state: {0}")]
pub struct StateError(String);

impl From<rusqlite::Error> for StateError {
    fn from(e: rusqlite::Error) -> Self {
        StateError(e.to_string())
    }
}

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE seen (
        item_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        first_seen INTEGER NOT NULL
    );
    CREATE INDEX seen_by_time ON seen(first_seen);
    CREATE TABLE validators (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT
    );
    CREATE TABLE cursors (
        source TEXT PRIMARY KEY,
        cursor TEXT NOT NULL
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );",
    ),
    // Quiet-source checks count a source's new items in a stretch of time.
    M::up("CREATE INDEX seen_by_source ON seen(source, first_seen);"),
];

/// What one run of a source produced, recorded atomically.
#[derive(Debug, Default)]
pub struct RunRecord {
    pub items: Vec<Item>,
    pub cursor: Option<String>,
    pub validators: Vec<(String, Validators)>,
}

#[derive(Debug, Clone)]
pub struct CrawlState {
    conn: Arc<Mutex<Connection>>,
}

impl CrawlState {
    pub fn open(path: &Path) -> Result<CrawlState, StateError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| StateError(format!("migrating {}: {e}", path.display())))?;
        Ok(CrawlState {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub fn validators(&self, url: &str) -> Result<Option<Validators>, StateError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn
            .query_row(
                "SELECT etag, last_modified FROM validators WHERE url = ?1",
                [url],
                |r| {
                    Ok(Validators {
                        etag: r.get(0)?,
                        last_modified: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// The ids among `ids` not seen before, in their order.
    pub fn unseen(&self, ids: &[String]) -> Result<Vec<String>, StateError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached("SELECT 1 FROM seen WHERE item_id = ?1")?;
        let mut out = Vec::new();
        for id in ids {
            if !stmt.exists([id])? {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    pub fn cursor(&self, source: &str) -> Result<Option<String>, StateError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn
            .query_row(
                "SELECT cursor FROM cursors WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a run; returns the items not seen before, which are now in the
    /// outbox. `encode` turns an item into its bus payload.
    pub fn record(
        &self,
        source: &str,
        run: RunRecord,
        encode: impl Fn(&Item) -> Vec<u8>,
    ) -> Result<Vec<Item>, StateError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let now = chrono::Utc::now().timestamp();
        let mut new = Vec::new();
        {
            let mut seen = tx.prepare_cached(
                "INSERT OR IGNORE INTO seen (item_id, source, first_seen) VALUES (?1, ?2, ?3)",
            )?;
            let mut outbox = tx.prepare_cached(
                "INSERT INTO outbox (item_id, payload, created_at) VALUES (?1, ?2, ?3)",
            )?;
            for item in run.items {
                if seen.execute(params![item.id, source, now])? == 1 {
                    outbox.execute(params![item.id, encode(&item), now])?;
                    new.push(item);
                }
            }
        }
        if let Some(c) = run.cursor {
            tx.execute(
                "INSERT INTO cursors (source, cursor) VALUES (?1, ?2)
                 ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor",
                params![source, c],
            )?;
        }
        for (url, v) in run.validators {
            tx.execute(
                "INSERT INTO validators (url, etag, last_modified) VALUES (?1, ?2, ?3)
                 ON CONFLICT(url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified",
                params![url, v.etag, v.last_modified],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// Up to `limit` outbox rows with `seq` above `after`, oldest first.
    pub fn outbox_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, Vec<u8>)>, StateError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, item_id, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn remove_from_outbox(&self, seq: i64) -> Result<(), StateError> {
        let conn = self.conn.lock().unwrap();
        conn.execute("DELETE FROM outbox WHERE seq = ?1", [seq])?;
        Ok(())
    }

    /// Item ids ever emitted (within the seen-set's expiry).
    pub fn seen_count(&self) -> Result<u64, StateError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.query_row("SELECT COUNT(*) FROM seen", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn outbox_len(&self) -> Result<u64, StateError> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// The source's silence: when its newest item was first seen, and how
    /// many new items the same stretch of time (to `now`) brought on each
    /// of the previous days, in `tz`'s days. None when it has no item on
    /// record, or its newest came less than `at_least` ago.
    pub fn silence(
        &self,
        source: &str,
        now: DateTime<Utc>,
        at_least: chrono::Duration,
        tz: chrono_tz::Tz,
    ) -> Result<Option<Silence>, StateError> {
        let newest: Option<i64> = self.conn.lock().unwrap().query_row(
            "SELECT MAX(first_seen) FROM seen WHERE source = ?1",
            [source],
            |r| r.get(0),
        )?;
        let Some(since) = newest.and_then(|t| DateTime::from_timestamp(t, 0)) else {
            return Ok(None);
        };
        if now - since < at_least {
            return Ok(None);
        }
        self.stretch(source, since, now, tz).map(Some)
    }

    /// The new items of `source` first seen in `(from, to]`, and in the
    /// same stretch of time on each of the previous days, in `tz`'s days
    /// (so a change of clocks keeps the same hours).
    pub fn stretch(
        &self,
        source: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Result<Silence, StateError> {
        let conn = self.conn.lock().unwrap();
        let mut count = conn.prepare_cached(
            "SELECT COUNT(*) FROM seen WHERE source = ?1 AND first_seen > ?2 AND first_seen <= ?3",
        )?;
        let back = |t: DateTime<Utc>, days: u64| {
            t.with_timezone(&tz)
                .checked_sub_days(chrono::Days::new(days))
                .map_or(t - chrono::Duration::days(days as i64), |t| {
                    t.with_timezone(&Utc)
                })
                .timestamp()
        };
        let mut counted = |from: i64, to: i64| -> Result<u32, StateError> {
            let n: i64 = count.query_row(params![source, from, to], |r| r.get(0))?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        let mut history = [0u32; HISTORY_DAYS];
        for (k, slot) in history.iter_mut().enumerate() {
            *slot = counted(back(from, k as u64 + 1), back(to, k as u64 + 1))?;
        }
        Ok(Silence {
            since: from,
            now: to,
            count: counted(from.timestamp(), to.timestamp())?,
            history,
        })
    }

    /// Forgets seen ids older than `days`, so the table stays bounded.
    pub fn expire_seen(&self, days: u32) -> Result<usize, StateError> {
        let cutoff = chrono::Utc::now().timestamp() - i64::from(days) * 86_400;
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute("DELETE FROM seen WHERE first_seen < ?1", [cutoff])?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use yuqing_model::{SourceKind, SourceType};

    use super::*;

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            source: "s".into(),
            source_kind: SourceKind::Feed,
            source_type: SourceType::News,
            site: "e.com".into(),
            url: format!("https://e.com/{id}"),
            title: String::new(),
            text: String::new(),
            author: None,
            published_at: None,
            fetched_at: Utc::now(),
            engagement: Default::default(),
            parent_id: None,
        }
    }

    #[test]
    fn items_are_new_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crawl.db");
        let st = CrawlState::open(&path).unwrap();
        let run = RunRecord {
            items: vec![item("a"), item("b")],
            cursor: Some("42".into()),
            validators: vec![(
                "https://e.com/feed".into(),
                Validators {
                    etag: Some("\"v1\"".into()),
                    last_modified: None,
                },
            )],
        };
        let new = st.record("s", run, |i| i.id.as_bytes().to_vec()).unwrap();
        assert_eq!(new.len(), 2);
        drop(st);
        let st = CrawlState::open(&path).unwrap();
        let again = RunRecord {
            items: vec![item("b"), item("c")],
            ..Default::default()
        };
        let new = st.record("s", again, |i| i.id.as_bytes().to_vec()).unwrap();
        assert_eq!(
            new.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            vec!["c"]
        );
        assert_eq!(st.cursor("s").unwrap().as_deref(), Some("42"));
        assert_eq!(
            st.validators("https://e.com/feed")
                .unwrap()
                .unwrap()
                .etag
                .as_deref(),
            Some("\"v1\"")
        );
        let rows = st.outbox_after(0, 10).unwrap();
        assert_eq!(rows.len(), 3);
        st.remove_from_outbox(rows[0].0).unwrap();
        assert_eq!(st.outbox_len().unwrap(), 2);
    }
}
