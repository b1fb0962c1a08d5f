//! The analyzer role: `items.raw` → analysis → `items.analyzed`.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use yuqing_bus::{Bus, Topics};
use yuqing_model::{Envelope, Item};

use crate::Analyzer;

/// Kind of an `items.raw` message.
pub const RAW_KIND: &str = "item.raw";
/// Kind of an `items.analyzed` message.
pub const ANALYZED_KIND: &str = "item.analyzed";
/// Attempts to publish an analyzed item (about a minute and a half of
/// waits) before it goes to `items.dead` instead.
const PUBLISH_ATTEMPTS: u32 = 8;

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
            "Raw messages that could not be decoded or analyzed and went to items.dead.",
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
///
/// A message that cannot be decoded, or whose analysis panics, goes to
/// `items.dead` with the reason, so it is seen and does not come back at
/// every restart. A publish the bus refuses is tried again (the waits
/// doubling from a second to half a minute), holding up the messages after
/// it as a full topic would, and after [`PUBLISH_ATTEMPTS`] the message goes
/// to `items.dead` instead; a result that does not become durable (the
/// broker lost it, or a consumer gave it up) is published again, up to every
/// five minutes, while the messages after it go on. At shutdown, what is
/// not yet durable stays unacknowledged and comes again after the restart.
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
        let analyzed = match Envelope::<Item>::from_bytes(&delivery.payload, RAW_KIND) {
            Ok(env) => {
                let a = analyzer.clone();
                tokio::task::spawn_blocking(move || a.analyze(env.payload))
                    .await
                    .map_err(|e| format!("analysis failed: {e}"))
            }
            Err(e) => Err(e.to_string()),
        };
        let (out_topic, key, payload) = match analyzed {
            Ok(analyzed) => {
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
            Err(error) => {
                warn!(topic = %delivery.topic, key = %delivery.key, %error, "poison message to items.dead");
                metrics.dead.inc();
                let dead = DeadMessage {
                    topic: delivery.topic.clone(),
                    key: delivery.key.clone(),
                    error,
                    payload: String::from_utf8_lossy(&delivery.payload).into_owned(),
                };
                (
                    topics.items_dead.clone(),
                    delivery.key.clone(),
                    Envelope::new(DEAD_KIND, dead).to_bytes(),
                )
            }
        };
        let (mut out_topic, mut key, mut payload) = (out_topic, key, payload);
        let mut wait = Duration::from_secs(1);
        let mut failures = 0;
        let receipt = loop {
            match bus.publish(&out_topic, &key, payload.clone()).await {
                Ok(r) => break r,
                // Shutting down: unacknowledged, it comes again.
                Err(yuqing_bus::BusError::Closed) => return Ok(()),
                // A result the bus keeps refusing (too large for the
                // broker, say) goes to items.dead, so what comes after it
                // is not held up for good. A bus that refuses items.dead
                // too is down, and everything waits for it.
                Err(e) if failures + 1 >= PUBLISH_ATTEMPTS && out_topic != topics.items_dead => {
                    warn!(topic = %out_topic, %key, error = %e, "publish refused again and again; to items.dead");
                    metrics.dead.inc();
                    let dead = DeadMessage {
                        topic: delivery.topic.clone(),
                        key: delivery.key.clone(),
                        error: format!("cannot publish to {out_topic}: {e}"),
                        payload: String::from_utf8_lossy(&delivery.payload).into_owned(),
                    };
                    out_topic = topics.items_dead.clone();
                    key = delivery.key.clone();
                    payload = Envelope::new(DEAD_KIND, dead).to_bytes();
                    (failures, wait) = (0, Duration::from_secs(1));
                }
                Err(e) => {
                    failures += 1;
                    warn!(topic = %out_topic, error = %e, retry_in = ?wait, "publish failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        };
        let (bus, ack, shutdown) = (bus.clone(), delivery.ack, shutdown.clone());
        tokio::spawn(async move {
            let mut receipt = Some(receipt);
            let mut wait = Duration::from_secs(1);
            loop {
                if let Some(r) = receipt.take() {
                    match r.durable().await {
                        Ok(()) => {
                            ack.ack();
                            return;
                        }
                        Err(e) => {
                            warn!(topic = %out_topic, %key, error = %e, retry_in = ?wait, "published message not durable; publishing it again")
                        }
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(300));
                match bus.publish(&out_topic, &key, payload.clone()).await {
                    Ok(r) => receipt = Some(r),
                    Err(yuqing_bus::BusError::Closed) => return,
                    Err(e) => {
                        warn!(topic = %out_topic, %key, error = %e, "publish failed; retrying")
                    }
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A result the bus refuses at first (nobody consumes `items.analyzed`
    /// yet) is published again until it is taken, and only then is the raw
    /// message acknowledged; an undecodable one goes to `items.dead`.
    #[tokio::test]
    async fn a_refused_publish_is_retried_and_poison_goes_to_items_dead() {
        let bus: Arc<dyn Bus> = Arc::new(yuqing_bus::InProcessBus::new(16));
        let topics = Topics::default();
        let analyzer = Arc::new(Analyzer::new(&crate::tests::config_with_rules("")).0);
        let registry = Registry::new();
        let stop = CancellationToken::new();
        let mut dead = bus.subscribe(&topics.items_dead, "test").await.unwrap();
        let run = tokio::spawn(run_analyzer(
            bus.clone(),
            topics.clone(),
            analyzer,
            AnalyzerMetrics::new(&registry),
            stop.clone(),
        ));
        let publish = |payload: Vec<u8>| {
            let (bus, topic) = (bus.clone(), topics.items_raw.clone());
            async move {
                loop {
                    match bus.publish(&topic, "k", payload.clone()).await {
                        Ok(r) => break r,
                        // The analyzer has not subscribed yet.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
        };
        let poison = publish(b"{not json".to_vec()).await;
        let d = dead.recv().await.unwrap();
        let env = Envelope::<DeadMessage>::from_bytes(&d.payload, DEAD_KIND).unwrap();
        assert_eq!(env.payload.payload, "{not json");
        d.ack.ack();
        poison.durable().await.unwrap();

        let item = crate::tests::item("标题", "正文");
        let raw = publish(Envelope::new(RAW_KIND, item).to_bytes()).await;
        let mut raw = Box::pin(raw.durable());
        // Nobody takes items.analyzed for a while: the raw item stays
        // unacknowledged, and is not lost.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(1), raw.as_mut())
                .await
                .is_err(),
            "acknowledged before its result was taken"
        );
        let mut analyzed = bus.subscribe(&topics.items_analyzed, "test").await.unwrap();
        let d = tokio::time::timeout(Duration::from_secs(10), analyzed.recv())
            .await
            .expect("published again once someone consumes it")
            .unwrap();
        let env =
            Envelope::<yuqing_model::AnalyzedItem>::from_bytes(&d.payload, ANALYZED_KIND).unwrap();
        assert_eq!(env.payload.item.id, "x");
        d.ack.ack();
        tokio::time::timeout(Duration::from_secs(10), raw)
            .await
            .expect("acknowledged once its result is durable")
            .unwrap();
        stop.cancel();
        run.await.unwrap().unwrap();
    }
}
