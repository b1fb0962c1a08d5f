//! The analyzer role: `items.raw` → analysis → `items.analyzed`.

use std::sync::Arc;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use yuqing_bus::{Bus, Topics};
use yuqing_model::{AnalyzedItem, Envelope, Item};

use crate::Analyzer;

/// Kind of an `items.raw` message.
pub const RAW_KIND: &str = "item.raw";
/// Kind of an `items.analyzed` message.
pub const ANALYZED_KIND: &str = "item.analyzed";
/// Kind of an `items.dead` message.
pub const DEAD_KIND: &str = "item.dead";

#[derive(Debug, Clone)]
pub struct AnalyzerMetrics {
    pub items: IntCounter,
    pub dead: IntCounter,
    pub hits: IntCounterVec,
}

impl AnalyzerMetrics {
    pub fn new(registry: &Registry) -> Self {
        let items = IntCounter::new(
            "yuqing_analysis_items_total",
            "Items analyzed and published to items.analyzed.",
        )
        .unwrap();
        let dead = IntCounter::new(
            "yuqing_analysis_dead_total",
            "Raw messages that could not be decoded and went to items.dead.",
        )
        .unwrap();
        let hits = IntCounterVec::new(
            Opts::new(
                "yuqing_analysis_rule_hits_total",
                "Rule hits by alert level.",
            ),
            &["level"],
        )
        .unwrap();
        for m in [
            Box::new(items.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(dead.clone()),
            Box::new(hits.clone()),
        ] {
            let _ = registry.register(m);
        }
        AnalyzerMetrics { items, dead, hits }
    }
}

/// A poison message, kept with the reason it could not be processed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeadMessage {
    pub topic: String,
    pub key: String,
    pub error: String,
    /// The original payload, lossily decoded as UTF-8.
    pub payload: String,
}

/// Runs one analyzer consumer until shutdown or the bus closes. A raw
/// message is acknowledged only once its analyzed result is durable.
pub async fn run_analyzer(
    bus: Arc<dyn Bus>,
    topics: Topics,
    analyzer: Arc<Analyzer>,
    metrics: AnalyzerMetrics,
    shutdown: CancellationToken,
) -> Result<(), yuqing_bus::BusError> {
    let mut consumer = bus.subscribe(&topics.items_raw, "analyzer").await?;
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break,
            d = consumer.recv() => match d {
                Some(d) => d,
                None => break,
            },
        };
        let (out_topic, key, payload) = match Envelope::<Item>::from_bytes(
            &delivery.payload,
            RAW_KIND,
        ) {
            Ok(env) => {
                let a = analyzer.clone();
                let analyzed: AnalyzedItem =
                    match tokio::task::spawn_blocking(move || a.analyze(env.payload)).await {
                        Ok(x) => x,
                        Err(e) => {
                            warn!(error = %e, "analysis task failed");
                            continue;
                        }
                    };
                for h in &analyzed.hits {
                    metrics.hits.with_label_values(&[h.level.as_str()]).inc();
                }
                metrics.items.inc();
                debug!(item = %analyzed.item.id, score = analyzed.score, "analyzed");
                let key = analyzed.item.id.clone();
                (
                    topics.items_analyzed.clone(),
                    key,
                    Envelope::new(ANALYZED_KIND, analyzed).to_bytes(),
                )
            }
            Err(e) => {
                warn!(topic = %delivery.topic, key = %delivery.key, error = %e, "poison message to items.dead");
                metrics.dead.inc();
                let dead = DeadMessage {
                    topic: delivery.topic.clone(),
                    key: delivery.key.clone(),
                    error: e.to_string(),
                    payload: String::from_utf8_lossy(&delivery.payload).into_owned(),
                };
                (
                    topics.items_dead.clone(),
                    delivery.key.clone(),
                    Envelope::new(DEAD_KIND, dead).to_bytes(),
                )
            }
        };
        let receipt = match bus.publish(&out_topic, &key, payload).await {
            Ok(r) => r,
            Err(e) => {
                // Not acknowledged: the message is replayed after a restart.
                warn!(topic = %out_topic, error = %e, "publish failed");
                continue;
            }
        };
        let ack = delivery.ack;
        tokio::spawn(async move {
            if receipt.durable().await.is_ok() {
                ack.ack();
            }
        });
    }
    Ok(())
}
