//! The indexer role: `items.analyzed` → the index, acknowledged per commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge, Registry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use yuqing_bus::{Ack, Bus, BusError, Positions, Topics};
use yuqing_config::IndexConfig;
use yuqing_model::{AnalyzedItem, Envelope};

use crate::{ItemIndex, ItemWriter};

#[derive(Debug, Clone)]
pub struct IndexerMetrics {
    pub indexed: IntCounter,
    pub commits: IntCounter,
    pub rejected: IntCounter,
    pub docs: IntGauge,
    pub size: IntGauge,
    pub expired: IntCounter,
    /// Failed commits; each batch is retried until it is committed.
    pub failures: IntCounter,
}

impl IndexerMetrics {
    pub fn new(registry: &Registry) -> Self {
        let indexed = IntCounter::new(
            "yuqing_index_documents_written_total",
            "Documents written (upserts).",
        )
        .unwrap();
        let commits = IntCounter::new("yuqing_index_commits_total", "Index commits.").unwrap();
        let rejected = IntCounter::new(
            "yuqing_index_rejected_total",
            "items.analyzed messages that could not be decoded.",
        )
        .unwrap();
        let docs = IntGauge::new("yuqing_index_documents", "Documents in the index.").unwrap();
        let size =
            IntGauge::new("yuqing_index_size_bytes", "Bytes the index takes on disk.").unwrap();
        let expired = IntCounter::new(
            "yuqing_index_retention_runs_total",
            "Retention passes that deleted items older than index.retention_days.",
        )
        .unwrap();
        let failures = IntCounter::new(
            "yuqing_index_commit_failures_total",
            "Failed attempts to write and commit a batch (each is retried).",
        )
        .unwrap();
        for m in [
            Box::new(failures.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(indexed.clone()),
            Box::new(commits.clone()),
            Box::new(rejected.clone()),
            Box::new(docs.clone()),
            Box::new(size.clone()),
            Box::new(expired.clone()),
        ] {
            let _ = registry.register(m);
        }
        IndexerMetrics {
            indexed,
            commits,
            rejected,
            docs,
            size,
            expired,
            failures,
        }
    }
}

/// Attempts to commit a batch before it is left for the next restart: the
/// waits between them double from half a second, about half a minute in
/// all.
const COMMIT_ATTEMPTS: u32 = 7;

/// Consumes `items.analyzed` until shutdown, committing every
/// `commit_every_docs` documents or `commit_every_secs` seconds after the first
/// uncommitted one, and once more on the way out.
pub async fn run_indexer(
    bus: Arc<dyn Bus>,
    topics: Topics,
    index: Arc<ItemIndex>,
    writer: ItemWriter,
    cfg: IndexConfig,
    metrics: IndexerMetrics,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    // On Kafka, each commit stores the positions it covers, and a restart
    // reads on right after them, whatever any consumer group committed.
    let topic = topics.items_analyzed.clone();
    let stored = index.stored_positions(&topic).unwrap_or_else(|e| {
        warn!(error = %e, "reading the topic from its oldest message");
        Positions::new()
    });
    if !stored.is_empty() {
        info!(topic = %topic, positions = ?stored, "the index holds the topic up to these positions");
    }
    let mut consumer = bus.subscribe_whole(&topic, "indexer", &stored).await?;
    // Past every message read so far; what a commit covers once the batch
    // is in it.
    let mut read = stored;
    let writer = Arc::new(Mutex::new(writer));
    let mut batch: Vec<(AnalyzedItem, Ack)> = Vec::new();
    let mut deadline: Option<Instant> = None;
    metrics.docs.set(index.num_docs() as i64);
    metrics.size.set(index.size_bytes() as i64);
    // Retention runs at start, then hourly.
    // A retention longer than the calendar keeps everything.
    let retention_cutoff = || {
        chrono::Utc::now()
            .checked_sub_signed(chrono::Duration::days(i64::from(cfg.retention_days)))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    };
    if cfg.retention_days > 0 {
        expire(&index, &writer, retention_cutoff(), &metrics).await;
    }
    let hour = Duration::from_secs(3_600);
    let mut retention = tokio::time::interval_at(Instant::now() + hour, hour);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = retention.tick(), if cfg.retention_days > 0 => {
                expire(&index, &writer, retention_cutoff(), &metrics).await;
            }
            _ = timer => {
                flush(&index, &writer, &mut batch, (&topic, &read), &metrics, &shutdown).await;
                deadline = None;
            }
            d = consumer.recv() => {
                let Some(d) = d else { break };
                if let Some(p) = d.position {
                    let next = read.entry(p.partition).or_insert(0);
                    *next = (*next).max(p.offset + 1);
                }
                match Envelope::<AnalyzedItem>::from_bytes(&d.payload, "item.analyzed") {
                    Ok(env) => {
                        batch.push((env.payload, d.ack));
                        if deadline.is_none() {
                            deadline = Some(Instant::now() + Duration::from_secs(cfg.commit_every_secs));
                        }
                        if batch.len() >= cfg.commit_every_docs {
                            flush(&index, &writer, &mut batch, (&topic, &read), &metrics, &shutdown).await;
                            deadline = None;
                        }
                    }
                    Err(e) => {
                        // Poison: the analyzer only publishes valid items, so
                        // this is a foreign or newer producer. Keep going.
                        warn!(key = %d.key, error = %e, "undecodable analyzed item skipped");
                        metrics.rejected.inc();
                        d.ack.ack();
                    }
                }
            }
        }
    }
    flush(
        &index,
        &writer,
        &mut batch,
        (&topic, &read),
        &metrics,
        &shutdown,
    )
    .await;
    info!(documents = index.num_docs(), "indexer stopped");
    Ok(())
}

/// Deletes the items published before `cutoff` and commits.
async fn expire(
    index: &Arc<ItemIndex>,
    writer: &Arc<Mutex<ItemWriter>>,
    cutoff: chrono::DateTime<chrono::Utc>,
    metrics: &IndexerMetrics,
) {
    let (w, idx) = (writer.clone(), index.clone());
    let before = index.num_docs();
    let result = tokio::task::spawn_blocking(move || {
        let mut w = w.lock().unwrap();
        let done = w
            .delete_before(cutoff)
            .and_then(|()| w.commit())
            .and_then(|()| idx.reload());
        // No item is uncommitted between batches: rolling back drops only
        // the deletions (retried at the next pass) and leaves the writer
        // free to store positions again.
        if done.is_err()
            && let Err(e) = w.rollback()
        {
            error!(error = %e, "cannot roll the index writer back");
        }
        done
    })
    .await;
    match result {
        Ok(Ok(())) => {
            let after = index.num_docs();
            metrics.expired.inc();
            metrics.docs.set(after as i64);
            metrics.size.set(index.size_bytes() as i64);
            if after < before {
                info!(deleted = before - after, %cutoff, "items past retention deleted");
            }
        }
        Ok(Err(e)) => error!(error = %e, "index retention failed"),
        Err(e) => error!(error = %e, "index task failed"),
    }
}

/// Commits the batch with the bus positions it covers (none on a bus
/// without positions), then acknowledges it. A failed write or commit is
/// retried, waiting twice as long each time from half a second, from the
/// last good commit with the whole batch again, up to `COMMIT_ATTEMPTS`
/// times. A batch given up (after those, or at shutdown) is not
/// acknowledged: it comes again after the restart, and the writer stores
/// no positions past it until a rollback. Giving up lets the items behind
/// it through, and on one machine keeps the analyzer and the alerter from
/// waiting on a full index volume.
async fn flush(
    index: &Arc<ItemIndex>,
    writer: &Arc<Mutex<ItemWriter>>,
    batch: &mut Vec<(AnalyzedItem, Ack)>,
    (topic, read): (&str, &Positions),
    metrics: &IndexerMetrics,
    shutdown: &CancellationToken,
) {
    if batch.is_empty() {
        return;
    }
    let (items, acks): (Vec<AnalyzedItem>, Vec<Ack>) = std::mem::take(batch).into_iter().unzip();
    let items = Arc::new(items);
    let positions = (!read.is_empty()).then(|| (topic.to_string(), read.clone()));
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=COMMIT_ATTEMPTS {
        let (w, idx, docs, positions) = (
            writer.clone(),
            index.clone(),
            items.clone(),
            positions.clone(),
        );
        let result = tokio::task::spawn_blocking(move || {
            let mut w = w.lock().unwrap();
            if attempt > 1 {
                w.rollback()?;
            }
            w.upsert_all(docs.iter())?;
            if let Some((topic, next)) = positions {
                w.set_positions(&topic, &next);
            }
            w.commit()?;
            idx.reload()
        })
        .await;
        let error = match result {
            Ok(Ok(())) => {
                committed(index, metrics, items.len(), acks);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("index task failed: {e}"),
        };
        metrics.failures.inc();
        let give_up = || {
            writer.lock().unwrap().abandon();
            error!(
                documents = items.len(),
                "the batch is left unacknowledged and comes again after a restart"
            );
        };
        if shutdown.is_cancelled() || attempt == COMMIT_ATTEMPTS {
            error!(%error, attempt, "index commit failed");
            give_up();
            return;
        }
        error!(%error, documents = items.len(), attempt, retry_in = ?wait, "index commit failed; retrying");
        tokio::select! {
            _ = shutdown.cancelled() => {
                give_up();
                return;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        wait *= 2;
    }
}

/// After a batch's commit: metrics, then its acknowledgements.
fn committed(index: &ItemIndex, metrics: &IndexerMetrics, documents: usize, acks: Vec<Ack>) {
    metrics.indexed.inc_by(documents as u64);
    metrics.commits.inc();
    metrics.docs.set(index.num_docs() as i64);
    metrics.size.set(index.size_bytes() as i64);
    for ack in acks {
        ack.ack();
    }
}

#[cfg(test)]
mod tests {
    use yuqing_analysis::Segmenter;
    use yuqing_bus::InProcessBus;

    use super::*;

    fn analyzed(seg: &Segmenter, id: &str, days_ago: i64) -> AnalyzedItem {
        crate::index::tests::analyzed(seg, id, "临江暴雨", "群众紧急转移。", days_ago * 24)
    }

    /// An indexer on `index` reading an in-process bus, committing every
    /// document.
    struct Running {
        bus: Arc<dyn Bus>,
        topics: Topics,
        metrics: IndexerMetrics,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<Result<(), BusError>>,
    }

    fn start(index: &Arc<ItemIndex>, retention_days: u32) -> Running {
        start_with(
            index,
            IndexConfig {
                commit_every_docs: 1,
                retention_days,
                ..IndexConfig::default()
            },
        )
    }

    fn start_with(index: &Arc<ItemIndex>, cfg: IndexConfig) -> Running {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(16));
        let topics = Topics::default();
        let metrics = IndexerMetrics::new(&Registry::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_indexer(
            bus.clone(),
            topics.clone(),
            index.clone(),
            index.writer(20_000_000).unwrap(),
            cfg,
            metrics.clone(),
            shutdown.clone(),
        ));
        Running {
            bus,
            topics,
            metrics,
            shutdown,
            task,
        }
    }

    impl Running {
        /// Publishes `item` once the indexer has joined its group.
        async fn publish(&self, item: AnalyzedItem) -> yuqing_bus::Receipt {
            let key = item.item.id.clone();
            let env = yuqing_model::Envelope::new("item.analyzed", item);
            loop {
                match self
                    .bus
                    .publish(&self.topics.items_analyzed, &key, env.to_bytes())
                    .await
                {
                    Ok(r) => return r,
                    Err(BusError::NoSubscribers(_)) => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.task.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_indexer_commits_what_it_receives_and_deletes_what_is_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segmenter::new([]);
        let index = Arc::new(ItemIndex::open(dir.path(), seg.clone()).unwrap());
        {
            let mut w = index.writer(20_000_000).unwrap();
            w.upsert(&analyzed(&seg, "old", 40)).unwrap();
            w.upsert(&analyzed(&seg, "recent", 3)).unwrap();
            w.commit().unwrap();
        }
        index.reload().unwrap();
        assert_eq!(index.num_docs(), 2);

        let indexer = start(&index, 30);
        let receipt = indexer.publish(analyzed(&seg, "new", 0)).await;
        receipt.durable().await.unwrap();
        // The message is durable once the indexer acknowledged it, after
        // its commit; retention ran before the indexer read anything.
        let ids = |index: &ItemIndex| {
            let mut v: Vec<String> = index
                .search(&crate::SearchRequest {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.id)
                .collect();
            v.sort();
            v
        };
        assert_eq!(ids(&index), ["new", "recent"]);
        let metrics = &indexer.metrics;
        assert_eq!(metrics.docs.get(), 2);
        assert!(metrics.size.get() > 0);
        assert_eq!(metrics.expired.get(), 1);
        assert_eq!(metrics.indexed.get(), 1);
        indexer.stop().await;

        // A retention longer than the calendar keeps everything.
        let indexer = start(&index, u32::MAX);
        let receipt = indexer.publish(analyzed(&seg, "newer", 0)).await;
        receipt.durable().await.unwrap();
        assert_eq!(ids(&index), ["new", "newer", "recent"]);
        indexer.stop().await;
    }

    /// Fewer items than a commit's worth are committed, and acknowledged,
    /// when the commit interval comes round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partial_batch_is_committed_when_the_interval_comes_round() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segmenter::new([]);
        let index = Arc::new(ItemIndex::open(dir.path(), seg.clone()).unwrap());
        let indexer = start_with(
            &index,
            IndexConfig {
                commit_every_docs: 1_000,
                commit_every_secs: 1,
                retention_days: 0,
                ..IndexConfig::default()
            },
        );
        let mut receipts = Vec::new();
        for id in ["a", "b", "c"] {
            receipts.push(indexer.publish(analyzed(&seg, id, 0)).await);
        }
        for r in receipts {
            tokio::time::timeout(Duration::from_secs(60), r.durable())
                .await
                .expect("acknowledged after the timed commit")
                .unwrap();
        }
        assert_eq!(index.num_docs(), 3);
        assert_eq!(indexer.metrics.indexed.get(), 3);
        // The interval may come round between two of the publishes.
        let commits = indexer.metrics.commits.get();
        assert!((1..=3).contains(&commits), "{commits} commits");
        indexer.stop().await;
    }

    /// The index's directory disappears (a plain file stands in its place,
    /// as on a volume that came unmounted) while an item arrives: the
    /// commit fails and is retried until the directory is back, then the
    /// item is committed and acknowledged, without a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_is_retried_until_the_index_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let seg = Segmenter::new([]);
        let index = Arc::new(ItemIndex::open(&path, seg.clone()).unwrap());
        let indexer = start(&index, 0);
        let metrics = indexer.metrics.clone();
        let aside = dir.path().join("index.aside");
        std::fs::rename(&path, &aside).unwrap();
        std::fs::write(&path, "not a directory").unwrap();
        let receipt = indexer.publish(analyzed(&seg, "a", 0)).await;
        let mut receipt = Box::pin(receipt.durable());
        for _ in 0..200 {
            if metrics.failures.get() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(metrics.failures.get() >= 2, "retried while failing");
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut receipt)
                .await
                .is_err(),
            "not acknowledged before its commit"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&aside, &path).unwrap();
        tokio::time::timeout(Duration::from_secs(60), receipt)
            .await
            .expect("acknowledged once committed")
            .unwrap();
        assert_eq!(index.num_docs(), 1);
        assert_eq!(metrics.indexed.get(), 1);
        indexer.stop().await;
        // The commit is durable: a new reader of the directory sees it.
        let reopened = ItemIndex::open(&path, seg).unwrap();
        assert_eq!(reopened.num_docs(), 1);
    }
}
