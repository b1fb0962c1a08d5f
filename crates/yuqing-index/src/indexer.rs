//! The indexer role: `items.analyzed` → the index, acknowledged per commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge, Registry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use yuqing_bus::{Ack, Bus, BusError, Topics};
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
        for m in [
            Box::new(indexed.clone()) as Box<dyn prometheus::core::Collector>,
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
        }
    }
}

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
    let mut consumer = bus.subscribe(&topics.items_analyzed, "indexer").await?;
    let writer = Arc::new(Mutex::new(writer));
    let mut batch: Vec<(AnalyzedItem, Ack)> = Vec::new();
    let mut deadline: Option<Instant> = None;
    metrics.docs.set(index.num_docs() as i64);
    metrics.size.set(index.size_bytes() as i64);
    let mut retention = tokio::time::interval(Duration::from_secs(3_600));
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
                let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(cfg.retention_days));
                expire(&index, &writer, cutoff, &metrics).await;
            }
            _ = timer => {
                flush(&index, &writer, &mut batch, &metrics).await;
                deadline = None;
            }
            d = consumer.recv() => {
                let Some(d) = d else { break };
                match Envelope::<AnalyzedItem>::from_bytes(&d.payload, "item.analyzed") {
                    Ok(env) => {
                        batch.push((env.payload, d.ack));
                        if deadline.is_none() {
                            deadline = Some(Instant::now() + Duration::from_secs(cfg.commit_every_secs));
                        }
                        if batch.len() >= cfg.commit_every_docs {
                            flush(&index, &writer, &mut batch, &metrics).await;
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
    flush(&index, &writer, &mut batch, &metrics).await;
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
        w.delete_before(cutoff)?;
        w.commit()?;
        idx.reload()
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

async fn flush(
    index: &Arc<ItemIndex>,
    writer: &Arc<Mutex<ItemWriter>>,
    batch: &mut Vec<(AnalyzedItem, Ack)>,
    metrics: &IndexerMetrics,
) {
    if batch.is_empty() {
        return;
    }
    let items: Vec<(AnalyzedItem, Ack)> = std::mem::take(batch);
    let w = writer.clone();
    let idx = index.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut w = w.lock().unwrap();
        for (a, _) in &items {
            w.upsert(a)?;
        }
        w.commit()?;
        idx.reload()?;
        Ok::<_, crate::IndexError>(items)
    })
    .await;
    match result {
        Ok(Ok(items)) => {
            metrics.indexed.inc_by(items.len() as u64);
            metrics.commits.inc();
            metrics.docs.set(index.num_docs() as i64);
            metrics.size.set(index.size_bytes() as i64);
            for (_, ack) in items {
                ack.ack();
            }
        }
        // Unacknowledged: the items are replayed after a restart.
        Ok(Err(e)) => error!(error = %e, "index commit failed"),
        Err(e) => error!(error = %e, "index task failed"),
    }
}
