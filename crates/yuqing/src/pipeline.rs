//! Every role in one process over the in-process bus (embedded mode).
//!
//! Start-up order matters for at-least-once: the bus queues of every
//! consumer group are declared before anything publishes. Shutdown is
//! staged: collection stops first, the crawler's outbox drains through the
//! stages into durable sinks, and only then do the consumers stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use yuqing_alert::{AlertMetrics, AlertStore, Alerter};
use yuqing_analysis::{Analyzer, AnalyzerMetrics, run_analyzer};
use yuqing_bus::{Bus, InProcessBus, Topics};
use yuqing_config::{Config, ConfigError};
use yuqing_crawler::state::CrawlState;
use yuqing_crawler::{Crawler, CrawlerMetrics};
use yuqing_index::{IndexerMetrics, ItemIndex, ItemWriter, run_indexer};
use yuqing_model::Level;
use yuqing_server::{AppState, app};

#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Overrides `server.listen` (tests use `127.0.0.1:0`).
    pub listen: Option<String>,
}

/// Counts for the demo's running summary and for scripts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub collected: u64,
    pub indexed: u64,
    pub incidents: Vec<(Level, u64)>,
    pub notifications_sent: u64,
    pub notifications_pending: u64,
    pub notifications_dead: u64,
    pub reports: u64,
    pub failing_sources: Vec<String>,
}

impl Summary {
    pub fn incident_total(&self) -> u64 {
        self.incidents.iter().map(|(_, n)| n).sum()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by_level: Vec<String> = self
            .incidents
            .iter()
            .rev()
            .map(|(l, n)| format!("{}{n}", l.zh().trim_end_matches('色')))
            .collect();
        write!(
            f,
            "collected {} · indexed {} · incidents {} ({}) · notifications sent {} pending {} dead {} · reports {}",
            self.collected,
            self.indexed,
            self.incident_total(),
            by_level.join(" "),
            self.notifications_sent,
            self.notifications_pending,
            self.notifications_dead,
            self.reports
        )?;
        if !self.failing_sources.is_empty() {
            write!(f, " · failing sources: {}", self.failing_sources.join(", "))?;
        }
        Ok(())
    }
}

/// A running pipeline.
pub struct Pipeline {
    pub addr: SocketAddr,
    pub crawler: Arc<Crawler>,
    pub index: Arc<ItemIndex>,
    pub alerter: Alerter,
    pub registry: prometheus::Registry,
    /// Rule files, lexicon lines and rules left out (reported at start).
    pub rule_errors: Vec<ConfigError>,
    bus: InProcessBus,
    crawl_stop: CancellationToken,
    publish_stop: CancellationToken,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub async fn start(config: Config, opts: PipelineOptions) -> Result<Pipeline> {
        let s = &config.settings;
        let registry = new_registry();
        let (analyzer, rule_errors) = load_analyzer(&config).await?;
        let (index, writer) = open_index(&config, &analyzer)?;
        let (listener, addr, console_url) = bind(&config, &opts, true).await?;
        let (alerter, store) = open_alerter(&config, console_url, &registry)?;

        let bus = InProcessBus::new(s.bus.capacity);
        let topics = Topics::with_prefix(&s.bus.topic_prefix);
        // One partition per crawler worker: a host's tasks go to one worker.
        bus.set_partitions(&topics.crawl_tasks, s.crawler.workers.max(1));
        bus.declare(&topics.crawl_tasks, &[yuqing_crawler::WORKER_GROUP]);
        bus.declare(&topics.items_raw, &["analyzer"]);
        bus.declare(&topics.items_analyzed, &["indexer", "alerter"]);
        bus.declare(&topics.items_dead, &["alerter"]);
        bus.declare(&topics.sources_status, &["alerter"]);
        let dyn_bus: Arc<dyn Bus> = Arc::new(bus.clone());

        let crawler = new_crawler(&config, dyn_bus.clone(), &topics, &registry)?;
        let crawl_stop = CancellationToken::new();
        let publish_stop = CancellationToken::new();
        let stop = CancellationToken::new();
        let tasks = vec![
            spawn_analyzer(&dyn_bus, &topics, &analyzer, &registry, &stop),
            spawn_indexer(&dyn_bus, &topics, &index, writer, &config, &registry, &stop),
            spawn_alerter(&dyn_bus, &topics, &alerter, &stop),
            spawn_server(
                listener,
                app(AppState {
                    index: index.clone(),
                    alerts: store,
                    crawler: Some(crawler.clone()),
                    registry: registry.clone(),
                    rules: Arc::new(config.rules.clone()),
                    duty: Some(alerter.duty()),
                    timezone: config.timezone(),
                    report: config.settings.report.clone(),
                    access: Arc::new(yuqing_server::Access::new(
                        &config.settings.server,
                        &registry,
                    )),
                }),
                &stop,
            ),
            spawn_crawler(&crawler, &crawl_stop, &publish_stop),
        ];
        info!(%addr, sources = config.settings.sources.len(), "pipeline running");

        Ok(Pipeline {
            addr,
            crawler,
            index,
            alerter,
            registry,
            rule_errors,
            bus,
            crawl_stop,
            publish_stop,
            stop,
            tasks,
        })
    }

    pub fn console_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn summary(&self) -> Summary {
        let store = self.alerter.store();
        let incidents = store.incidents(100_000).unwrap_or_default();
        let (sent, pending, dead) = store.notification_counts().unwrap_or_default();
        let health = self.crawler.health();
        Summary {
            collected: health.iter().map(|h| h.total_new_items).sum(),
            indexed: self.index.num_docs(),
            incidents: Level::ALL
                .iter()
                .map(|l| {
                    (
                        *l,
                        incidents.iter().filter(|i| i.level == *l).count() as u64,
                    )
                })
                .collect(),
            notifications_sent: sent,
            notifications_pending: pending,
            notifications_dead: dead,
            reports: store.report_count().unwrap_or(0),
            failing_sources: health
                .iter()
                .filter(|h| h.consecutive_failures > 0)
                .map(|h| h.id.clone())
                .collect(),
        }
    }

    /// Waits until every source has run at least `runs` times and the
    /// outbox is empty (everything collected is durable downstream), or
    /// `timeout` passes. Returns whether it settled.
    pub async fn settle(&self, runs: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ran = self.crawler.health().iter().all(|h| h.runs >= runs);
            if ran && self.crawler.outbox_len() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops collecting, lets what was collected become durable (up to
    /// `drain`), then stops every stage.
    pub async fn shutdown(self, drain: Duration) {
        stop_stages(
            Some(&self.crawler),
            &self.crawl_stop,
            &self.publish_stop,
            &self.stop,
            self.tasks,
            drain,
        )
        .await;
        self.bus.close();
        info!("pipeline stopped");
    }
}

/// Stops a process's roles in stages: collection first; then, once what
/// was collected left the crawl outbox (up to `drain`), publishing and
/// every consumer; returns when every task has ended.
pub(crate) async fn stop_stages(
    crawler: Option<&Arc<Crawler>>,
    crawl_stop: &CancellationToken,
    publish_stop: &CancellationToken,
    stop: &CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    drain: Duration,
) {
    crawl_stop.cancel();
    if let Some(c) = crawler {
        let deadline = tokio::time::Instant::now() + drain;
        while c.outbox_len() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = c.outbox_len();
        if left > 0 {
            warn!(
                items = left,
                "items still in the crawl outbox; they are published again at the next start"
            );
        }
    }
    publish_stop.cancel();
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

/// One Prometheus registry per process (or per pipeline in tests).
pub(crate) fn new_registry() -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    #[cfg(target_os = "linux")]
    let _ = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ));
    registry
}

/// Builds the analyzer. Rule files, lexicon lines and queries that did not
/// load are logged and returned; the rest runs.
pub(crate) async fn load_analyzer(config: &Config) -> Result<(Arc<Analyzer>, Vec<ConfigError>)> {
    std::fs::create_dir_all(&config.settings.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.settings.data_dir.display()
        )
    })?;
    let cfg = config.clone();
    let (analyzer, compile_errors) =
        tokio::task::spawn_blocking(move || Analyzer::new(&cfg)).await?;
    let mut rule_errors = config.rule_errors.clone();
    rule_errors.extend(compile_errors);
    for e in &rule_errors {
        error!("left out: {e}");
    }
    info!(rules = analyzer.rules().len(), "analyzer ready");
    Ok((Arc::new(analyzer), rule_errors))
}

/// Opens the index and its single writer.
pub(crate) fn open_index(
    config: &Config,
    analyzer: &Analyzer,
) -> Result<(Arc<ItemIndex>, ItemWriter)> {
    let s = &config.settings;
    let index = Arc::new(
        ItemIndex::open(&s.data_dir.join("index"), analyzer.segmenter().clone())
            .context("opening the index")?,
    );
    let writer = index
        .writer_with_threads(s.index.writer_heap_mb * 1024 * 1024, s.index.writer_threads)
        .context("opening the index writer (is another yuqing using this data directory?)")?;
    Ok((index, writer))
}

/// Binds the console's address; returns it and the console's public URL.
/// With the `console` on it, an address other machines reach needs logins
/// (or `server.anonymous` set on purpose).
pub(crate) async fn bind(
    config: &Config,
    opts: &PipelineOptions,
    console: bool,
) -> Result<(tokio::net::TcpListener, SocketAddr, String)> {
    let s = &config.settings;
    let listen = opts
        .listen
        .clone()
        .unwrap_or_else(|| s.server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen} (set server.listen or YUQING__SERVER__LISTEN)")
        })?;
    let addr = listener.local_addr()?;
    if let Some(why) = s.server.open_to_network(&addr).filter(|_| console) {
        anyhow::bail!("{why}");
    }
    let console_url = s
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    Ok((listener, addr, console_url))
}

pub(crate) fn open_alerter(
    config: &Config,
    console_url: String,
    registry: &prometheus::Registry,
) -> Result<(Alerter, AlertStore)> {
    let store = AlertStore::open(&config.settings.data_dir.join("alert.db"))
        .context("opening alert state")?;
    let alerter = Alerter::new(
        config,
        store.clone(),
        console_url,
        AlertMetrics::new(registry),
    );
    Ok((alerter, store))
}

pub(crate) fn new_crawler(
    config: &Config,
    bus: Arc<dyn Bus>,
    topics: &Topics,
    registry: &prometheus::Registry,
) -> Result<Arc<Crawler>> {
    let state = CrawlState::open(&config.settings.data_dir.join("crawl.db"))
        .context("opening crawl state")?;
    Ok(Arc::new(
        Crawler::new(
            config,
            state,
            bus,
            topics.clone(),
            CrawlerMetrics::new(registry),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    ))
}

pub(crate) fn spawn_analyzer(
    bus: &Arc<dyn Bus>,
    topics: &Topics,
    analyzer: &Arc<Analyzer>,
    registry: &prometheus::Registry,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let (b, t, an, st) = (bus.clone(), topics.clone(), analyzer.clone(), stop.clone());
    let am = AnalyzerMetrics::new(registry);
    tokio::spawn(async move {
        if let Err(e) = run_analyzer(b, t, an, am, st).await {
            error!(error = %e, "analyzer stopped");
        }
    })
}

pub(crate) fn spawn_indexer(
    bus: &Arc<dyn Bus>,
    topics: &Topics,
    index: &Arc<ItemIndex>,
    writer: ItemWriter,
    config: &Config,
    registry: &prometheus::Registry,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let (b, t, st, idx) = (bus.clone(), topics.clone(), stop.clone(), index.clone());
    let im = IndexerMetrics::new(registry);
    let index_cfg = config.settings.index.clone();
    tokio::spawn(async move {
        if let Err(e) = run_indexer(b, t, idx, writer, index_cfg, im, st).await {
            error!(error = %e, "indexer stopped");
        }
    })
}

pub(crate) fn spawn_alerter(
    bus: &Arc<dyn Bus>,
    topics: &Topics,
    alerter: &Alerter,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let (b, t, st, al) = (bus.clone(), topics.clone(), stop.clone(), alerter.clone());
    tokio::spawn(async move {
        if let Err(e) = al.run(b, t, st).await {
            error!(error = %e, "alerter stopped");
        }
    })
}

pub(crate) fn spawn_server(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let st = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(async move { st.cancelled().await })
            .await
        {
            error!(error = %e, "server stopped");
        }
    })
}

pub(crate) fn spawn_crawler(
    crawler: &Arc<Crawler>,
    crawl_stop: &CancellationToken,
    publish_stop: &CancellationToken,
) -> JoinHandle<()> {
    let (c, cs, ps) = (crawler.clone(), crawl_stop.clone(), publish_stop.clone());
    tokio::spawn(async move { c.run(cs, ps).await })
}

/// Reads one item for `yuqing analyze`: the full item JSON, or a minimal
/// `{"url": ..., "title": ..., "text": ...}` with the rest filled in.
pub fn item_from_json(line: &str) -> Result<yuqing_model::Item> {
    #[derive(serde::Deserialize)]
    struct Minimal {
        id: Option<String>,
        url: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        text: String,
        source: Option<String>,
        source_type: Option<yuqing_model::SourceType>,
        author: Option<String>,
        published_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    if let Ok(item) = serde_json::from_str::<yuqing_model::Item>(line) {
        return Ok(item);
    }
    let m: Minimal =
        serde_json::from_str(line).context("expected an item object with at least `url`")?;
    let site = url::Url::parse(&m.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    Ok(yuqing_model::Item {
        id: m
            .id
            .unwrap_or_else(|| yuqing_model::item_id_for_url(&m.url)),
        source: m.source.unwrap_or_else(|| "stdin".into()),
        source_kind: yuqing_model::SourceKind::Feed,
        source_type: m.source_type.unwrap_or(yuqing_model::SourceType::News),
        site,
        url: m.url,
        title: m.title,
        text: m.text,
        author: m.author,
        published_at: m.published_at,
        fetched_at: chrono::Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    })
}
