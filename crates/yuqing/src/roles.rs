//! Some or all roles in one process over the Kafka bus (`yuqing run
//! --roles`): the same role code as the embedded pipeline, with Kafka
//! between the processes.
//!
//! The index and the alert state stay files in the data directory: the
//! server role reads the index the indexer role writes, and the alert
//! state the alerter role keeps, so it runs on their machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use yuqing_bus::{Bus, KafkaBus, KafkaOptions, Topics};
use yuqing_config::Config;
use yuqing_crawler::Crawler;
use yuqing_index::ItemIndex;
use yuqing_server::{AppState, app, metrics_app};

use crate::pipeline::{
    PipelineOptions, bind, load_analyzer, new_crawler, new_registry, open_alerter, open_index,
    spawn_alerter, spawn_analyzer, spawn_crawler, spawn_indexer, spawn_server, stop_stages,
};

/// The roles one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub crawler: bool,
    pub analyzer: bool,
    pub indexer: bool,
    pub alerter: bool,
    pub server: bool,
}

impl Roles {
    pub const NAMES: [&str; 5] = ["crawler", "analyzer", "indexer", "alerter", "server"];

    /// Reads `all` or a comma-separated list of role names.
    pub fn parse(text: &str) -> Result<Roles> {
        let mut r = Roles {
            crawler: false,
            analyzer: false,
            indexer: false,
            alerter: false,
            server: false,
        };
        for name in text.split(',').map(str::trim) {
            match name {
                "all" => r = Roles::all(),
                "crawler" => r.crawler = true,
                "analyzer" => r.analyzer = true,
                "indexer" => r.indexer = true,
                "alerter" => r.alerter = true,
                "server" => r.server = true,
                other => bail!(
                    "unknown role `{other}`; roles are all, {}",
                    Roles::NAMES.join(", ")
                ),
            }
        }
        Ok(r)
    }

    pub fn all() -> Roles {
        Roles {
            crawler: true,
            analyzer: true,
            indexer: true,
            alerter: true,
            server: true,
        }
    }

    pub fn is_all(&self) -> bool {
        *self == Roles::all()
    }
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = [
            self.crawler,
            self.analyzer,
            self.indexer,
            self.alerter,
            self.server,
        ];
        let names: Vec<&str> = Roles::NAMES
            .iter()
            .zip(on)
            .filter_map(|(n, on)| on.then_some(*n))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Connects to the brokers of `[bus.kafka]`, creating missing topics.
pub async fn connect(config: &Config, client: &str) -> Result<KafkaBus> {
    let s = &config.settings;
    let k = &s.bus.kafka;
    let topics = Topics::with_prefix(&s.bus.topic_prefix);
    let opts = KafkaOptions {
        brokers: k.brokers.clone(),
        client_id: format!("yuqing-{client}"),
        group_prefix: s.bus.topic_prefix.clone(),
        partitions: k.partitions,
        replication: k.replication,
        properties: k.properties.clone(),
    };
    let all = [
        topics.crawl_tasks,
        topics.items_raw,
        topics.items_analyzed,
        topics.items_dead,
        topics.sources_status,
    ];
    tokio::time::timeout(Duration::from_secs(60), KafkaBus::connect(opts, &all))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no answer from the Kafka brokers at {} within 60 s",
                k.brokers
            )
        })?
        .with_context(|| format!("connecting to Kafka at {}", k.brokers))
}

/// Roles running over Kafka.
pub struct RoleSet {
    /// Where this process answers: the console and API with the server
    /// role, `/metrics` and `/healthz` only without it.
    pub addr: SocketAddr,
    pub registry: prometheus::Registry,
    bus: KafkaBus,
    crawler: Option<Arc<Crawler>>,
    crawl_stop: CancellationToken,
    publish_stop: CancellationToken,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RoleSet {
    pub async fn start(config: Config, roles: Roles, opts: PipelineOptions) -> Result<RoleSet> {
        let s = &config.settings;
        let registry = new_registry();
        // Everything that can fail comes first, so that a failed start
        // leaves nothing running.
        let bus = connect(&config, &roles.to_string().replace(',', "-")).await?;
        let dyn_bus: Arc<dyn Bus> = Arc::new(bus.clone());
        let topics = Topics::with_prefix(&s.bus.topic_prefix);
        // The analyzer also tokenizes the server's queries.
        let analyzer = if roles.analyzer || roles.indexer || roles.server {
            Some(load_analyzer(&config).await?.0)
        } else {
            std::fs::create_dir_all(&s.data_dir).with_context(|| {
                format!("cannot create data directory {}", s.data_dir.display())
            })?;
            None
        };
        let (index, writer) = match &analyzer {
            Some(an) if roles.indexer => {
                let (index, writer) = open_index(&config, an)?;
                (Some(index), Some(writer))
            }
            // A server beside an indexer in another process reads the
            // index that process writes.
            Some(an) if roles.server => {
                let dir = s.data_dir.join("index");
                let index = ItemIndex::open_existing(&dir, an.segmenter().clone())
                    .with_context(|| format!("opening the index at {}", dir.display()))?;
                (Some(Arc::new(index)), None)
            }
            _ => (None, None),
        };
        // Every process answers on `server.listen`: the console and API
        // with the server role, `/metrics` and `/healthz` without.
        let (listener, addr, bound_url) = bind(&config, &opts, roles.server).await?;
        // Links in alerts point at the console, wherever it runs.
        let console_url = if roles.server {
            bound_url
        } else {
            s.server
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", s.server.listen))
        };
        let alerting = if roles.alerter || roles.server {
            Some(open_alerter(&config, console_url, &registry)?)
        } else {
            None
        };
        let crawler = if roles.crawler {
            Some(new_crawler(&config, dyn_bus.clone(), &topics, &registry)?)
        } else {
            None
        };

        let crawl_stop = CancellationToken::new();
        let publish_stop = CancellationToken::new();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        if let (Some(index), Some(w)) = (&index, writer) {
            tasks.push(spawn_indexer(
                &dyn_bus, &topics, index, w, &config, &registry, &stop,
            ));
        }
        if let (true, Some(an)) = (roles.analyzer, &analyzer) {
            tasks.push(spawn_analyzer(&dyn_bus, &topics, an, &registry, &stop));
        }
        if let (true, Some((alerter, _))) = (roles.alerter, &alerting) {
            tasks.push(spawn_alerter(&dyn_bus, &topics, alerter, &stop));
        }
        if let Some(c) = &crawler {
            tasks.push(spawn_crawler(c, &crawl_stop, &publish_stop));
        }
        let router = match (roles.server, index, alerting) {
            (true, Some(index), Some((alerter, store))) => app(AppState {
                index,
                alerts: store,
                crawler: crawler.clone(),
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
            _ => metrics_app(registry.clone()),
        };
        tasks.push(spawn_server(listener, router, &stop));
        info!(roles = %roles, brokers = %s.bus.kafka.brokers, "roles running over Kafka");
        Ok(RoleSet {
            addr,
            registry,
            bus,
            crawler,
            crawl_stop,
            publish_stop,
            stop,
            tasks,
        })
    }

    /// Stops collecting, lets collected items reach the brokers (up to
    /// `drain`), then stops every role; consumers commit what their sinks
    /// made durable.
    pub async fn shutdown(self, drain: Duration) {
        stop_stages(
            self.crawler.as_ref(),
            &self.crawl_stop,
            &self.publish_stop,
            &self.stop,
            self.tasks,
            drain,
        )
        .await;
        if let Err(e) = self.bus.flush(Duration::from_secs(10)).await {
            warn!(error = %e, "messages not confirmed by the brokers before stopping");
        }
        self.bus.close();
        info!("roles stopped");
    }
}
