//! The Kafka bus: one idempotent producer per process (`acks=all`), one
//! consumer per subscription.
//!
//! A receipt resolves when the broker has the message (replicated as the
//! topic requires). A consumer stores a partition's offset only up to its
//! first unacknowledged message, so acknowledgements may come in any order
//! and a crash replays exactly what was not yet acknowledged. Stored offsets
//! are committed every few seconds, on a rebalance and on close.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, Consumer as _, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{Ack, AckTarget, Bus, BusError, Consumer, Delivery, Position, Positions, Receipt};

/// How to reach the brokers and how to make missing topics.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Names this process to the brokers (`client.id`).
    pub client_id: String,
    /// Put before every consumer group name, so that several deployments
    /// can share a cluster (the topic prefix, by default).
    pub group_prefix: String,
    /// Partitions of a topic this bus creates.
    pub partitions: i32,
    /// Replication factor of a topic this bus creates.
    pub replication: i32,
    /// librdkafka properties for every client (security, timeouts…); they
    /// override this bus's defaults.
    pub properties: BTreeMap<String, String>,
}

fn kafka(e: KafkaError) -> BusError {
    BusError::Kafka(e.to_string())
}

/// The Kafka implementation of [`Bus`].
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    opts: KafkaOptions,
    producer: FutureProducer,
    closed: CancellationToken,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.inner.opts.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Connects to the brokers and makes sure every topic in `topics`
    /// exists, creating the missing ones. Fails when the brokers cannot be
    /// reached or a topic neither exists nor can be made.
    pub async fn connect(opts: KafkaOptions, topics: &[String]) -> Result<KafkaBus, BusError> {
        let producer: FutureProducer = client_config(
            &opts,
            &[("linger.ms", "5")],
            &[("enable.idempotence", "true"), ("acks", "all")],
        )
        .create()
        .map_err(kafka)?;
        let bus = KafkaBus {
            inner: Arc::new(Inner {
                opts,
                producer,
                closed: CancellationToken::new(),
            }),
        };
        bus.ensure_topics(topics).await?;
        Ok(bus)
    }

    async fn ensure_topics(&self, topics: &[String]) -> Result<(), BusError> {
        let opts = &self.inner.opts;
        let missing = self.missing_topics(topics).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> =
            client_config(opts, &[], &[]).create().map_err(kafka)?;
        let wanted: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| {
                NewTopic::new(
                    t,
                    opts.partitions,
                    TopicReplication::Fixed(opts.replication),
                )
            })
            .collect();
        let admin_opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(15)));
        let mut refused = HashMap::new();
        match admin.create_topics(&wanted, &admin_opts).await {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(t) => info!(topic = %t, partitions = opts.partitions, "created topic"),
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((t, code)) => {
                            refused.insert(t, code.to_string());
                        }
                    }
                }
            }
            Err(e) => {
                for t in &missing {
                    refused.insert(t.clone(), e.to_string());
                }
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        // Some brokers make topics on first use instead: what counts is
        // that they are there now.
        let still = self.missing_topics(&missing).await?;
        let why: Vec<String> = still
            .iter()
            .map(|t| {
                format!(
                    "{t} ({})",
                    refused.get(t).map_or("not created", String::as_str)
                )
            })
            .collect();
        if why.is_empty() {
            Ok(())
        } else {
            Err(BusError::Kafka(format!(
                "topics missing and not created: {}",
                why.join(", ")
            )))
        }
    }

    /// The topics of `topics` the brokers do not have; an error when the
    /// brokers cannot be reached.
    async fn missing_topics(&self, topics: &[String]) -> Result<Vec<String>, BusError> {
        let producer = self.inner.producer.clone();
        let brokers = self.inner.opts.brokers.clone();
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(None, Duration::from_secs(10))
                .map_err(|e| {
                    BusError::Kafka(format!("cannot reach the brokers at {brokers}: {e}"))
                })?;
            Ok(topics
                .into_iter()
                .filter(|wanted| {
                    !metadata.topics().iter().any(|t| {
                        t.name() == wanted && t.error().is_none() && !t.partitions().is_empty()
                    })
                })
                .collect())
        })
        .await
        .map_err(|e| BusError::Kafka(e.to_string()))?
    }

    /// Stops every consumer of this bus: their `recv` returns `None`.
    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// Waits (up to `timeout`) for every published message to reach the
    /// brokers.
    pub async fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        let producer = self.inner.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| BusError::Kafka(e.to_string()))?
            .map_err(kafka)
    }
}

/// A client's settings: this bus's `defaults`, then the operator's
/// properties over them, then `forced`, what at-least-once without
/// duplicates rests on and is not the operator's to change.
fn client_config(
    opts: &KafkaOptions,
    defaults: &[(&str, &str)],
    forced: &[(&str, &str)],
) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &opts.brokers)
        .set("client.id", &opts.client_id);
    let operator = opts
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in defaults
        .iter()
        .copied()
        .chain(operator)
        .chain(forced.iter().copied())
    {
        cfg.set(k, v);
    }
    cfg
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: &str, key: &str, payload: Vec<u8>) -> Result<Receipt, BusError> {
        let mut wait = Duration::from_millis(10);
        loop {
            if self.inner.closed.is_cancelled() {
                return Err(BusError::Closed);
            }
            let record = FutureRecord::to(topic).key(key).payload(&payload);
            match self.inner.producer.send_result(record) {
                Ok(delivery) => {
                    return Ok(Receipt::waiting(async move {
                        match delivery.await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err((e, _))) => Err(kafka(e)),
                            Err(_) => Err(BusError::Dropped),
                        }
                    }));
                }
                // The local queue is full: wait for the brokers to catch up.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
                Err((e, _)) => return Err(kafka(e)),
            }
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let c = self.consumer(topic, group)?;
        c.consumer.subscribe(&[topic]).map_err(kafka)?;
        Ok(Box::new(c))
    }

    async fn subscribe_whole(
        &self,
        topic: &str,
        group: &str,
        start: &Positions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let c = self.consumer(topic, group)?;
        let handle = c.consumer.clone();
        let name = topic.to_string();
        let partitions: Vec<i32> = tokio::task::spawn_blocking(move || {
            let metadata = handle
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .map_err(kafka)?;
            Ok::<_, BusError>(
                metadata
                    .topics()
                    .iter()
                    .filter(|t| t.name() == name)
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect(),
            )
        })
        .await
        .map_err(|e| BusError::Kafka(e.to_string()))??;
        if partitions.is_empty() {
            return Err(BusError::Kafka(format!(
                "topic `{topic}` has no partitions"
            )));
        }
        let mut tpl = TopicPartitionList::new();
        {
            let mut tracker = c.shared.tracker.lock().unwrap();
            for &p in &partitions {
                let offset = start
                    .get(&p)
                    .map_or(Offset::Beginning, |&n| Offset::Offset(n));
                tpl.add_partition_offset(topic, p, offset).map_err(kafka)?;
                tracker.assign(p);
            }
        }
        info!(topic, partitions = partitions.len(), positions = ?start, "reading every partition from the stored positions");
        c.consumer.assign(&tpl).map_err(kafka)?;
        Ok(Box::new(c))
    }
}

impl KafkaBus {
    /// A consumer in `group` (prefixed) whose offsets are stored by
    /// acknowledgements and committed by librdkafka every 2 s and on close.
    fn consumer(&self, topic: &str, group: &str) -> Result<KafkaConsumer, BusError> {
        let opts = &self.inner.opts;
        let shared = Arc::new(Shared {
            topic: topic.to_string(),
            tracker: Mutex::new(Tracker::default()),
        });
        let group = format!("{}{group}", opts.group_prefix);
        let consumer: StreamConsumer<Context> = client_config(
            opts,
            &[
                ("auto.commit.interval.ms", "2000"),
                ("auto.offset.reset", "earliest"),
            ],
            &[
                ("group.id", &group),
                ("enable.auto.commit", "true"),
                ("enable.auto.offset.store", "false"),
            ],
        )
        .create_with_context(Context {
            shared: shared.clone(),
        })
        .map_err(kafka)?;
        Ok(KafkaConsumer {
            consumer: Arc::new(Handle {
                consumer: Some(consumer),
            }),
            shared,
            closed: self.inner.closed.clone(),
        })
    }
}

/// Owns a consumer and closes it off the async runtime: closing commits the
/// stored offsets and leaves the group, which blocks until the brokers
/// answer.
struct Handle {
    consumer: Option<StreamConsumer<Context>>,
}

impl std::ops::Deref for Handle {
    type Target = StreamConsumer<Context>;

    fn deref(&self) -> &Self::Target {
        self.consumer.as_ref().expect("taken only in drop")
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(c) = self.consumer.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || drop(c));
            }
            Err(_) => drop(c),
        }
    }
}

/// What a subscription's consumer, its rebalance callback and its
/// acknowledgements share.
struct Shared {
    topic: String,
    tracker: Mutex<Tracker>,
}

/// Per assigned partition, the messages received and not yet
/// acknowledged, to store offsets only up to the first of them.
#[derive(Default)]
struct Tracker {
    generation: u64,
    partitions: HashMap<i32, PartitionState>,
}

struct PartitionState {
    /// Which assignment this state belongs to: an acknowledgement of a
    /// message received before the partition was revoked stores nothing.
    generation: u64,
    outstanding: BTreeSet<i64>,
    /// One past the highest offset received.
    next: i64,
    /// The offset last stored.
    stored: i64,
}

impl Tracker {
    fn assign(&mut self, partition: i32) {
        self.generation += 1;
        self.partitions.insert(
            partition,
            PartitionState {
                generation: self.generation,
                outstanding: BTreeSet::new(),
                next: -1,
                stored: -1,
            },
        );
    }

    fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Notes a received message; returns the generation its
    /// acknowledgement must match.
    fn received(&mut self, partition: i32, offset: i64) -> u64 {
        if !self.partitions.contains_key(&partition) {
            self.assign(partition);
        }
        let st = self.partitions.get_mut(&partition).expect("assigned above");
        if st.next < 0 {
            // Where this assignment starts: storing it would change nothing.
            st.stored = offset;
        }
        st.outstanding.insert(offset);
        st.next = st.next.max(offset + 1);
        st.generation
    }

    /// Notes an acknowledgement; returns the offset to store (the next one
    /// to read after a restart) when it moved.
    fn ack(&mut self, partition: i32, offset: i64, generation: u64) -> Option<i64> {
        let st = self.partitions.get_mut(&partition)?;
        if st.generation != generation || !st.outstanding.remove(&offset) {
            return None;
        }
        let next = st.outstanding.first().copied().unwrap_or(st.next);
        (next > st.stored).then(|| {
            st.stored = next;
            next
        })
    }
}

struct Context {
    shared: Arc<Shared>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                {
                    let mut tracker = self.shared.tracker.lock().unwrap();
                    for &p in &parts {
                        tracker.assign(p);
                    }
                }
                let r = if cooperative {
                    consumer.incremental_assign(tpl).map_err(|e| e.to_string())
                } else {
                    consumer.assign(tpl).map_err(|e| e.to_string())
                };
                if let Err(e) = r {
                    warn!(topic = %self.shared.topic, error = %e, "partition assignment failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // librdkafka commits what was stored for these partitions
                // as they are unassigned, before the group moves on.
                {
                    let mut tracker = self.shared.tracker.lock().unwrap();
                    for &p in &parts {
                        tracker.revoke(p);
                    }
                }
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    warn!(topic = %self.shared.topic, error = %e, "partition revocation failed");
                }
            }
            other => {
                warn!(topic = %self.shared.topic, error = ?other, "rebalance error");
                self.shared.tracker.lock().unwrap().partitions.clear();
                if !cooperative {
                    let _ = consumer.unassign();
                }
            }
        }
    }
}

struct KafkaConsumer {
    consumer: Arc<Handle>,
    shared: Arc<Shared>,
    closed: CancellationToken,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn recv(&mut self) -> Option<Delivery> {
        loop {
            let msg = tokio::select! {
                _ = self.closed.cancelled() => return None,
                m = self.consumer.recv() => m,
            };
            let m = match msg {
                Ok(m) => m,
                Err(e) => {
                    warn!(topic = %self.shared.topic, error = %e, "kafka consumer error");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let (partition, offset) = (m.partition(), m.offset());
            let generation = self
                .shared
                .tracker
                .lock()
                .unwrap()
                .received(partition, offset);
            return Some(Delivery {
                topic: self.shared.topic.clone(),
                key: m
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default(),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                position: Some(Position { partition, offset }),
                ack: Ack::new(Arc::new(KafkaAck {
                    consumer: self.consumer.clone(),
                    shared: self.shared.clone(),
                    partition,
                    offset,
                    generation,
                })),
            });
        }
    }
}

struct KafkaAck {
    consumer: Arc<Handle>,
    shared: Arc<Shared>,
    partition: i32,
    offset: i64,
    generation: u64,
}

impl std::fmt::Debug for KafkaAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAck")
            .field("topic", &self.shared.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .finish()
    }
}

impl AckTarget for KafkaAck {
    fn ack(&self) {
        let next =
            self.shared
                .tracker
                .lock()
                .unwrap()
                .ack(self.partition, self.offset, self.generation);
        let Some(next) = next else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        if let Err(e) =
            tpl.add_partition_offset(&self.shared.topic, self.partition, Offset::Offset(next))
        {
            warn!(error = %e, "cannot record an offset");
            return;
        }
        // A partition revoked meanwhile refuses the store; its new owner
        // reads the message again.
        if let Err(e) = self.consumer.store_offsets(&tpl) {
            debug!(topic = %self.shared.topic, partition = self.partition, error = %e, "offset not stored");
        }
    }
}

#[cfg(test)]
mod tests;
