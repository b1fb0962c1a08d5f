use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use yuqing_bus::{Bus, Topics};
use yuqing_config::{Config, ConfigErrors, SourceConfig};
use yuqing_model::{CrawlTask, Envelope, Item, SourceState, SourceStatus};

use crate::fetch::Fetcher;
use crate::metrics::CrawlerMetrics;
use crate::quiet::Silence;
use crate::sources::{Collected, Ctx, Source, SourceError};
use crate::state::{CrawlState, RunRecord};

/// Kind of an `items.raw` message.
const RAW_KIND: &str = "item.raw";
/// Kind of a `crawl.tasks` message.
pub const TASK_KIND: &str = "crawl.task";
/// The consumer group of the crawler workers on `crawl.tasks`.
pub const WORKER_GROUP: &str = "crawler";
/// Kind of a `sources.status` message.
pub const STATUS_KIND: &str = "source.status";

/// The state of one source, for the API, metrics and reports.
#[derive(Debug, Clone, Serialize)]
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
    /// `ok`, `failing`, `blocked` or `empty` (see [`SourceState`]).
    pub state: SourceState,
    /// Runs by result: `ok`, or the error class (`http_4xx`, `http_5xx`,
    /// `timeout`, `blocked`, ...).
    pub runs_by_result: BTreeMap<String, u64>,
    /// Runs in a row that found nothing at all.
    pub consecutive_empty: u32,
    /// New items per successful run, smoothed (exponential moving average).
    pub usual_yield: f64,
    /// Every HTTP response since start, by class (`2xx`, `304`, `4xx`,
    /// `5xx`, `timeout`, `connect`, ...), retries included.
    pub http_responses: BTreeMap<String, u64>,
    /// The responses of the last run, by class.
    pub last_run_responses: BTreeMap<String, u64>,
    /// Why the source is `quiet`: how long since its last new item, against
    /// what the same hours brought before.
    pub quiet: Option<String>,
}

impl SourceHealth {
    fn new(id: &str) -> Self {
        SourceHealth {
            id: id.to_string(),
            name: String::new(),
            kind: String::new(),
            url: String::new(),
            runs: 0,
            last_run_at: None,
            last_success_at: None,
            consecutive_failures: 0,
            last_error: None,
            last_warnings: Vec::new(),
            last_new_items: 0,
            total_new_items: 0,
            state: SourceState::Ok,
            runs_by_result: BTreeMap::new(),
            consecutive_empty: 0,
            usual_yield: 0.0,
            http_responses: BTreeMap::new(),
            last_run_responses: BTreeMap::new(),
            quiet: None,
        }
    }

    /// The snapshot sent to the alerter.
    pub fn status(&self) -> SourceStatus {
        let reason = match self.state {
            SourceState::Ok => None,
            SourceState::Empty => Some(format!(
                "{} runs in a row found nothing{}",
                self.consecutive_empty,
                self.last_warnings
                    .first()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            )),
            SourceState::Quiet => self.quiet.clone(),
            _ => self.last_error.clone(),
        };
        SourceStatus {
            source: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            consecutive_failures: self.consecutive_failures,
            reason,
            last_success_at: self.last_success_at,
            at: self.last_run_at.unwrap_or_else(Utc::now),
        }
    }
}

/// What a successful run produced.
struct RunResult {
    new: usize,
    warnings: Vec<String>,
    empty: bool,
    /// Every page answered 304: emptiness unknown.
    unchanged: bool,
    /// The silence of a run that found items but none new, when it is
    /// long and unusual enough to make the source quiet.
    quiet: Option<Silence>,
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
    /// One per worker: each has its own per-host politeness and
    /// concurrency limit, as workers on separate machines would.
    fetchers: Vec<Fetcher>,
    state: CrawlState,
    bus: Arc<dyn Bus>,
    topics: Topics,
    tz: chrono_tz::Tz,
    default_interval: Duration,
    seen_ttl_days: u32,
    failing_after: u32,
    empty_after: u32,
    /// Silences shorter than this are not judged; None turns it off.
    quiet_after: Option<chrono::Duration>,
    quiet_expected: u32,
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
        let fetchers = (0..config.settings.crawler.workers.max(1))
            .map(|_| Fetcher::new(&config.settings.crawler))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ConfigErrors(vec![yuqing_config::ConfigError::new(&config.origin, m)]))?;
        // Series exist from the start at 0, so rate() and increase() see the
        // first run of every source.
        for (c, _) in &sources {
            metrics.runs.with_label_values(&[c.id(), "ok"]);
            metrics.items.with_label_values(&[c.id()]);
            metrics.set_state(c.id(), SourceState::Ok);
        }
        let health = sources
            .iter()
            .map(|(c, _)| {
                let mut h = SourceHealth::new(c.id());
                h.name = c.name().to_string();
                h.kind = c.kind().as_str().to_string();
                h.url = c.start_url().to_string();
                (c.id().to_string(), h)
            })
            .collect();
        for w in 0..fetchers.len() {
            metrics.tasks.with_label_values(&[&w.to_string()]);
        }
        Ok(Crawler {
            sources,
            fetchers,
            state,
            bus,
            topics,
            tz: config.timezone(),
            default_interval: Duration::from_secs(config.settings.crawler.interval_secs),
            seen_ttl_days: config.settings.crawler.seen_ttl_days,
            failing_after: config.settings.crawler.failing_after.max(1),
            empty_after: config.settings.crawler.empty_after.max(1),
            quiet_after: match config.settings.crawler.quiet_after_mins {
                0 => None,
                m => Some(chrono::Duration::minutes(i64::from(m))),
            },
            quiet_expected: config.settings.crawler.quiet_expected,
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

    /// Workers in this process.
    pub fn workers(&self) -> usize {
        self.fetchers.len()
    }

    /// Runs one source once: collect, record what is new, wake the publisher.
    /// Returns the number of new items.
    pub async fn run_source(&self, index: usize) -> Result<usize, SourceError> {
        self.run_source_on(index, 0).await
    }

    /// [`Crawler::run_source`] on worker `worker`'s fetcher.
    async fn run_source_on(&self, index: usize, worker: usize) -> Result<usize, SourceError> {
        let (cfg, source) = &self.sources[index];
        let ctx = Ctx {
            fetcher: &self.fetchers[worker],
            state: &self.state,
            tz: self.tz,
            policy: crate::fetch::Policy {
                allow_private: cfg.allow_private(),
            },
            responses: Default::default(),
        };
        let started = Utc::now();
        let result = source.collect(cfg, &ctx).await;
        let responses = ctx.responses.counts();
        for (class, n) in &responses {
            self.metrics
                .responses
                .with_label_values(&[cfg.id(), class])
                .inc_by(*n);
        }
        let result = match result {
            Ok(c) => {
                let (empty, unchanged) = (c.empty, c.unchanged);
                match self.record(cfg, c).await {
                    Ok((new, warnings)) => Ok(RunResult {
                        new,
                        warnings,
                        empty,
                        unchanged,
                        quiet: if empty {
                            None
                        } else {
                            self.silence(cfg.id(), new).await
                        },
                    }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let (outcome, status) = self.update_health(cfg, started, responses, result);
        if let Some(status) = status {
            let payload = Envelope::new(STATUS_KIND, status).to_bytes();
            // A snapshot: the next run sends another, so a failed publish
            // (no alerter in this process) loses nothing that matters.
            if let Err(e) = self
                .bus
                .publish(&self.topics.sources_status, cfg.id(), payload)
                .await
            {
                debug!(source = cfg.id(), error = %e, "source status not published");
            }
        }
        outcome
    }

    /// The source's silence, when it has gone long enough without a new
    /// item to be quiet; or, for a source that is quiet and brought `new`
    /// items, the stretch just past, when it is still far below the usual
    /// (see [`crate::quiet`]).
    async fn silence(&self, source: &str, new: usize) -> Option<Silence> {
        let after = self.quiet_after?;
        let was_quiet = self
            .health
            .lock()
            .unwrap()
            .get(source)
            // Kept through a failed run in between.
            .is_some_and(|h| h.quiet.is_some());
        if new > 0 && !was_quiet {
            return None;
        }
        let (state, tz) = (self.state.clone(), self.tz);
        let id = source.to_string();
        let silence = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let silence = if new == 0 {
                state.silence(&id, now, after, tz)?
            } else {
                None
            };
            // A quiet source's stretch just past, items or not.
            match silence {
                None if was_quiet => state.stretch(&id, now - after, now, tz).map(Some),
                s => Ok(s),
            }
        })
        .await;
        match silence {
            Ok(Ok(s)) => s.filter(|s| s.is_quiet(self.quiet_expected)),
            Ok(Err(e)) => {
                warn!(source, error = %e, "cannot judge the source's silence");
                None
            }
            Err(e) => {
                warn!(source, error = %e, "silence check failed");
                None
            }
        }
    }

    /// Updates a source's health after a run; returns the run's result and
    /// the status to publish.
    fn update_health(
        &self,
        cfg: &SourceConfig,
        started: DateTime<Utc>,
        responses: BTreeMap<&'static str, u64>,
        result: Result<RunResult, SourceError>,
    ) -> (Result<usize, SourceError>, Option<SourceStatus>) {
        let mut health = self.health.lock().unwrap();
        let h = health
            .entry(cfg.id().to_string())
            .or_insert_with(|| SourceHealth::new(cfg.id()));
        h.runs += 1;
        h.last_run_at = Some(started);
        for (class, n) in &responses {
            *h.http_responses.entry(class.to_string()).or_default() += n;
        }
        h.last_run_responses = responses
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        let outcome = match result {
            Ok(RunResult {
                new: n,
                warnings,
                empty,
                unchanged,
                quiet,
            }) => {
                h.last_success_at = Some(started);
                h.consecutive_failures = 0;
                h.last_error = None;
                h.last_new_items = n;
                h.total_new_items += n as u64;
                h.usual_yield = if h.runs_by_result.get("ok").copied().unwrap_or(0) == 0 {
                    n as f64
                } else {
                    0.8 * h.usual_yield + 0.2 * n as f64
                };
                *h.runs_by_result.entry("ok".into()).or_default() += 1;
                // A 304 repeats what the last read found: still empty if
                // it was, and not if it was not.
                h.consecutive_empty = if empty || (unchanged && h.consecutive_empty > 0) {
                    h.consecutive_empty + 1
                } else {
                    0
                };
                h.quiet = quiet.map(|q| q.reason());
                h.state = if h.consecutive_empty >= self.empty_after {
                    SourceState::Empty
                } else if h.quiet.is_some() {
                    SourceState::Quiet
                } else {
                    SourceState::Ok
                };
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
            Err(e) => {
                h.consecutive_failures += 1;
                h.last_error = Some(e.to_string());
                *h.runs_by_result.entry(e.label().into()).or_default() += 1;
                if e.is_block() {
                    h.state = SourceState::Blocked;
                } else if h.consecutive_failures >= self.failing_after {
                    h.state = SourceState::Failing;
                }
                self.metrics
                    .runs
                    .with_label_values(&[cfg.id(), e.label()])
                    .inc();
                warn!(source = cfg.id(), failures = h.consecutive_failures, error = %e, "source run failed");
                Err(e)
            }
        };
        self.metrics.set_state(cfg.id(), h.state);
        (outcome, Some(h.status()))
    }

    async fn record(
        &self,
        cfg: &SourceConfig,
        c: Collected,
    ) -> Result<(usize, Vec<String>), SourceError> {
        let state = self.state.clone();
        let source = cfg.id().to_string();
        let Collected {
            mut items,
            cursor,
            validators,
            mut warnings,
            empty: _,
            unchanged: _,
        } = c;
        for item in &mut items {
            for field in [&mut item.title, &mut item.text] {
                strip_invisible(field);
            }
            if let Some(author) = &mut item.author {
                strip_invisible(author);
            }
        }
        let odd = undate_implausible(&mut items, Utc::now());
        if odd > 0 {
            warnings.push(format!(
                "{odd} item(s) gave a publication time before 1990 or after tomorrow; read as undated"
            ));
        }
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
        .map_err(SourceError::State)?;
        if !new.is_empty() {
            info!(source = cfg.id(), new = new.len(), "new items");
            self.outbox_ready.notify_one();
        }
        Ok((new.len(), warnings))
    }

    /// Runs the scheduler, the workers and the outbox publisher until
    /// `shutdown`. Publishing continues until `publish_shutdown`, so the
    /// outbox can drain after collection stops.
    ///
    /// The scheduler publishes one task per source run on `crawl.tasks`,
    /// keyed by the source's host, and waits for it to be done (its receipt)
    /// before scheduling the source again, so a slow source never has two
    /// runs at once. The workers consume the topic as one consumer group.
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
        // Workers join before the first task is published.
        for w in 0..self.workers() {
            match self
                .bus
                .subscribe(&self.topics.crawl_tasks, WORKER_GROUP)
                .await
            {
                Ok(consumer) => tasks.push(tokio::spawn(self.clone().work(
                    w,
                    consumer,
                    shutdown.clone(),
                ))),
                Err(e) => warn!(worker = w, error = %e, "crawler worker cannot join crawl.tasks"),
            }
        }
        tasks.push(tokio::spawn(self.clone().schedule(shutdown)));
        for t in tasks {
            let _ = t.await;
        }
        let _ = publisher.await;
    }

    /// Publishes a task for every source on its interval, until `shutdown`.
    pub async fn schedule(self: Arc<Self>, shutdown: CancellationToken) {
        let mut loops = Vec::new();
        for (cfg, _) in &self.sources {
            let me = self.clone();
            let interval = cfg
                .interval_secs()
                .map(Duration::from_secs)
                .unwrap_or(me.default_interval);
            let host = url::Url::parse(cfg.start_url())
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .unwrap_or_else(|| cfg.id().to_string());
            let source = cfg.id().to_string();
            let stop = shutdown.clone();
            loops.push(tokio::spawn(async move {
                loop {
                    let task = CrawlTask {
                        source: source.clone(),
                        host: host.clone(),
                        scheduled_at: Utc::now(),
                    };
                    let payload = Envelope::new(TASK_KIND, task).to_bytes();
                    let done = tokio::select! {
                        _ = stop.cancelled() => break,
                        r = me.bus.publish(&me.topics.crawl_tasks, &host, payload) => r,
                    };
                    match done {
                        Ok(receipt) => {
                            tokio::select! {
                                _ = stop.cancelled() => break,
                                _ = receipt.durable() => {}
                            }
                        }
                        Err(e) => warn!(source = %source, error = %e, "cannot publish crawl task"),
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(interval) => {}
                    }
                }
            }));
        }
        for l in loops {
            let _ = l.await;
        }
    }

    /// One worker: runs the tasks of the partitions it owns, several at a
    /// time, and acknowledges each when its run is recorded. Stops taking
    /// tasks at `shutdown` and abandons runs in progress, unacknowledged.
    pub async fn work(
        self: Arc<Self>,
        worker: usize,
        mut consumer: Box<dyn yuqing_bus::Consumer>,
        shutdown: CancellationToken,
    ) {
        let index: HashMap<String, usize> = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (c.id().to_string(), i))
            .collect();
        let label = worker.to_string();
        let mut running = tokio::task::JoinSet::new();
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                d = consumer.recv() => d,
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            };
            let Some(delivery) = delivery else { break };
            let task = match Envelope::<CrawlTask>::from_bytes(&delivery.payload, TASK_KIND) {
                Ok(env) => env.payload,
                Err(e) => {
                    warn!(worker, error = %e, "undecodable crawl task dropped");
                    delivery.ack.ack();
                    continue;
                }
            };
            let Some(&i) = index.get(&task.source) else {
                warn!(worker, source = %task.source, "crawl task for a source this worker does not have");
                delivery.ack.ack();
                continue;
            };
            debug!(worker, source = %task.source, host = %task.host, "crawl task");
            self.metrics.tasks.with_label_values(&[&label]).inc();
            let me = self.clone();
            running.spawn(async move {
                let _ = me.run_source_on(i, worker).await;
                delivery.ack.ack();
            });
        }
        running.shutdown().await;
    }

    /// Publishes outbox rows in order; each leaves the outbox once durable.
    async fn publish_outbox(self: Arc<Self>, shutdown: CancellationToken) {
        // Rows at or below `after` are published and waiting for their
        // receipts; a receipt that never resolves (the bus closed) leaves the
        // row for the next start. One that fails (the broker lost the
        // message, a consumer gave it up) sets `rewind` to its row, and
        // publishing goes back to it; the sinks take the rows published
        // twice as replays.
        let mut after = 0i64;
        let rewind = Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
        // Rewinds since the outbox was last empty: each waits twice as long
        // (up to 5 minutes), so a row the broker always refuses is not
        // published again every second.
        let mut rewinds = 0u32;
        let mut last_rewind = std::time::Instant::now();
        loop {
            let back = rewind.swap(i64::MAX, std::sync::atomic::Ordering::AcqRel);
            if back <= after {
                // A rewind long after the last starts over.
                if last_rewind.elapsed() > Duration::from_secs(600) {
                    rewinds = 0;
                }
                last_rewind = std::time::Instant::now();
                let wait = Duration::from_secs(1 << rewinds.min(9)).min(Duration::from_secs(300));
                rewinds += 1;
                warn!(from = back, retry_in = ?wait, "items.raw did not keep published rows; publishing again");
                after = back - 1;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
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
            let waiting = self.outbox_len();
            self.metrics.outbox.set(waiting as i64);
            if waiting == 0 {
                rewinds = 0;
            }
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
                        let (me, rewind) = (self.clone(), rewind.clone());
                        tokio::spawn(async move {
                            match receipt.durable().await {
                                Ok(()) => {
                                    let state = me.state.clone();
                                    let _ = tokio::task::spawn_blocking(move || {
                                        state.remove_from_outbox(seq)
                                    })
                                    .await;
                                    me.metrics.published.inc();
                                }
                                // Closed at shutdown: the next start
                                // publishes it.
                                Err(yuqing_bus::BusError::Closed) => {}
                                Err(e) => {
                                    debug!(seq, error = %e, "published row not durable");
                                    rewind.fetch_min(seq, std::sync::atomic::Ordering::AcqRel);
                                    me.outbox_ready.notify_one();
                                }
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

/// Clears publication times no item can have (before 1990, or more than a
/// day ahead of `now`: a page's typo, milliseconds read as seconds), so
/// the item counts from when it was fetched instead of sorting first or
/// escaping retention for good. Returns how many it cleared.
fn undate_implausible(items: &mut [Item], now: DateTime<Utc>) -> usize {
    // 1990-01-01T00:00:00Z.
    const EARLIEST: i64 = 631_152_000;
    let latest = now + chrono::Duration::days(1);
    let mut odd = 0;
    for item in items {
        if let Some(t) = item.published_at
            && (t.timestamp() < EARLIEST || t > latest)
        {
            item.published_at = None;
            odd += 1;
        }
    }
    odd
}

/// Whether `c` is a control character (other than a line break or a tab)
/// or a bidirectional mark, embedding, override or isolate: what no text needs,
/// and what a hostile page uses to drive a terminal (ESC sequences) or to
/// show its words in another order than they are (U+202E).
fn is_invisible(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || yuqing_model::is_direction_control(c)
}

/// Removes what [`is_invisible`] names from crawled text, before anything
/// stores, matches or shows it.
fn strip_invisible(s: &mut String) {
    if s.chars().any(is_invisible) {
        s.retain(|c| !is_invisible(c));
    }
}
