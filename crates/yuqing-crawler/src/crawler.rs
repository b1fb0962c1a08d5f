use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use yuqing_bus::{Bus, Topics};
use yuqing_config::{Config, ConfigErrors, SourceConfig};
use yuqing_model::{Envelope, Item};

use crate::fetch::Fetcher;
use crate::metrics::CrawlerMetrics;
use crate::sources::{Collected, Ctx, Source, SourceError};
use crate::state::{CrawlState, RunRecord};

/// Kind of an `items.raw` message.
const RAW_KIND: &str = "item.raw";

/// The state of one source, for the API, metrics and reports.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SourceHealth {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub runs: u64,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_warnings: Vec<String>,
    pub last_new_items: usize,
    pub total_new_items: u64,
}

/// Builds every configured source, reporting every invalid one.
pub fn build_sources(config: &Config) -> Result<Vec<(SourceConfig, Source)>, ConfigErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, cfg) in config.settings.sources.iter().enumerate() {
        match Source::build(cfg, i, &config.origin) {
            Ok(s) => out.push((cfg.clone(), s)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

pub struct Crawler {
    sources: Vec<(SourceConfig, Source)>,
    fetcher: Fetcher,
    state: CrawlState,
    bus: Arc<dyn Bus>,
    topics: Topics,
    tz: chrono_tz::Tz,
    default_interval: Duration,
    seen_ttl_days: u32,
    health: Mutex<HashMap<String, SourceHealth>>,
    metrics: CrawlerMetrics,
    outbox_ready: Notify,
}

impl std::fmt::Debug for Crawler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crawler").finish_non_exhaustive()
    }
}

impl Crawler {
    pub fn new(
        config: &Config,
        state: CrawlState,
        bus: Arc<dyn Bus>,
        topics: Topics,
        metrics: CrawlerMetrics,
    ) -> Result<Crawler, ConfigErrors> {
        let sources = build_sources(config)?;
        let fetcher = Fetcher::new(&config.settings.crawler)
            .map_err(|m| ConfigErrors(vec![yuqing_config::ConfigError::new(&config.origin, m)]))?;
        // Series exist from the start at 0, so rate() and increase() see the
        // first run of every source.
        for (c, _) in &sources {
            metrics.runs.with_label_values(&[c.id(), "ok"]);
            metrics.items.with_label_values(&[c.id()]);
        }
        let health = sources
            .iter()
            .map(|(c, _)| {
                (
                    c.id().to_string(),
                    SourceHealth {
                        id: c.id().to_string(),
                        name: c.name().to_string(),
                        kind: c.kind().as_str().to_string(),
                        url: c.start_url().to_string(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        Ok(Crawler {
            sources,
            fetcher,
            state,
            bus,
            topics,
            tz: config.timezone(),
            default_interval: Duration::from_secs(config.settings.crawler.interval_secs),
            seen_ttl_days: config.settings.crawler.seen_ttl_days,
            health: Mutex::new(health),
            metrics,
            outbox_ready: Notify::new(),
        })
    }

    /// Health of every source, in config order.
    pub fn health(&self) -> Vec<SourceHealth> {
        let h = self.health.lock().unwrap();
        self.sources
            .iter()
            .filter_map(|(c, _)| h.get(c.id()).cloned())
            .collect()
    }

    pub fn outbox_len(&self) -> u64 {
        self.state.outbox_len().unwrap_or(0)
    }

    /// Runs one source once: collect, record what is new, wake the publisher.
    /// Returns the number of new items.
    pub async fn run_source(&self, index: usize) -> Result<usize, SourceError> {
        let (cfg, source) = &self.sources[index];
        let ctx = Ctx {
            fetcher: &self.fetcher,
            state: &self.state,
            tz: self.tz,
            policy: crate::fetch::Policy {
                allow_private: cfg.allow_private(),
            },
        };
        let started = Utc::now();
        let result = source.collect(cfg, &ctx).await;
        let result = match result {
            Ok(c) => self.record(cfg, c).await,
            Err(e) => Err((e, Vec::new())),
        };
        let mut health = self.health.lock().unwrap();
        let h = health.entry(cfg.id().to_string()).or_default();
        h.runs += 1;
        h.last_run_at = Some(started);
        match result {
            Ok((n, warnings)) => {
                h.last_success_at = Some(started);
                h.consecutive_failures = 0;
                h.last_error = None;
                h.last_new_items = n;
                h.total_new_items += n as u64;
                for w in &warnings {
                    warn!(source = cfg.id(), warning = %w, "source run incomplete");
                }
                h.last_warnings = warnings;
                self.metrics.runs.with_label_values(&[cfg.id(), "ok"]).inc();
                self.metrics
                    .items
                    .with_label_values(&[cfg.id()])
                    .inc_by(n as u64);
                Ok(n)
            }
            Err((e, _)) => {
                h.consecutive_failures += 1;
                h.last_error = Some(e.to_string());
                self.metrics
                    .runs
                    .with_label_values(&[cfg.id(), e.label()])
                    .inc();
                warn!(source = cfg.id(), failures = h.consecutive_failures, error = %e, "source run failed");
                Err(e)
            }
        }
    }

    async fn record(
        &self,
        cfg: &SourceConfig,
        c: Collected,
    ) -> Result<(usize, Vec<String>), (SourceError, Vec<String>)> {
        let state = self.state.clone();
        let source = cfg.id().to_string();
        let Collected {
            items,
            cursor,
            validators,
            warnings,
        } = c;
        let run = RunRecord {
            items,
            cursor,
            validators,
        };
        let new = tokio::task::spawn_blocking(move || {
            state.record(&source, run, |item: &Item| {
                Envelope::new(RAW_KIND, item.clone()).to_bytes()
            })
        })
        .await
        .expect("record task does not panic")
        .map_err(|e| (SourceError::State(e), Vec::new()))?;
        if !new.is_empty() {
            info!(source = cfg.id(), new = new.len(), "new items");
            self.outbox_ready.notify_one();
        }
        Ok((new.len(), warnings))
    }

    /// Runs every source on its schedule and the outbox publisher, until
    /// `shutdown`. Publishing continues until `publish_shutdown`, so the
    /// outbox can drain after collection stops.
    pub async fn run(
        self: Arc<Self>,
        shutdown: CancellationToken,
        publish_shutdown: CancellationToken,
    ) {
        if let Ok(n) = self.state.expire_seen(self.seen_ttl_days)
            && n > 0
        {
            info!(expired = n, "forgot old seen item ids");
        }
        let publisher = tokio::spawn(self.clone().publish_outbox(publish_shutdown));
        let mut tasks = Vec::new();
        for (i, (cfg, _)) in self.sources.iter().enumerate() {
            let me = self.clone();
            let interval = cfg
                .interval_secs()
                .map(Duration::from_secs)
                .unwrap_or(me.default_interval);
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = me.run_source(i) => {}
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(interval) => {}
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let _ = publisher.await;
    }

    /// Publishes outbox rows in order; each leaves the outbox once durable.
    async fn publish_outbox(self: Arc<Self>, shutdown: CancellationToken) {
        // Rows at or below `after` are published and waiting for their
        // receipts; a receipt that never resolves (the bus closed) leaves the
        // row for the next start.
        let mut after = 0i64;
        loop {
            let rows = {
                let state = self.state.clone();
                tokio::task::spawn_blocking(move || state.outbox_after(after, 256))
                    .await
                    .expect("outbox read does not panic")
            };
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "cannot read outbox");
                    Vec::new()
                }
            };
            self.metrics.outbox.set(self.outbox_len() as i64);
            if rows.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.outbox_ready.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            for (seq, key, payload) in rows {
                let receipt = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.bus.publish(&self.topics.items_raw, &key, payload) => r,
                };
                match receipt {
                    Ok(receipt) => {
                        after = seq;
                        let me = self.clone();
                        tokio::spawn(async move {
                            if receipt.durable().await.is_ok() {
                                let state = me.state.clone();
                                let _ = tokio::task::spawn_blocking(move || {
                                    state.remove_from_outbox(seq)
                                })
                                .await;
                                me.metrics.published.inc();
                            }
                        });
                    }
                    Err(e) => {
                        // Kept in the outbox; retried from this row.
                        warn!(error = %e, "cannot publish to items.raw; will retry");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        break;
                    }
                }
            }
        }
    }
}
