//! The message bus between the pipeline's roles, behind one interface with
//! two implementations: in-process (bounded queues, the embedded default)
//! and Kafka (for more than one machine).
//!
//! # At-least-once and idempotence
//!
//! Every consumer acknowledges a message only after its output is durable
//! (an index commit, an alert-state row, or its own published output being
//! durable in turn). A publisher gets a [`Receipt`] that resolves when the
//! message is durable:
//!
//! - in Kafka, when the broker has replicated it (`acks=all`);
//! - in process, where memory is not durable, when every consumer group of
//!   the topic has acknowledged it.
//!
//! Nothing upstream forgets a message before its receipt resolves (the
//! crawler keeps items in its SQLite outbox until then), so a crash replays
//! instead of losing. Replays reach sinks that upsert by item id, so they
//! never duplicate.

mod in_process;
#[cfg(feature = "kafka")]
mod kafka;
mod topics;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

pub use in_process::InProcessBus;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaBus, KafkaOptions};
pub use topics::Topics;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus is closed")]
    Closed,
    #[error("topic `{0}` has no consumer group; the message would be lost")]
    NoSubscribers(String),
    #[error("message was dropped before it became durable")]
    Dropped,
    #[error("kafka: {0}")]
    Kafka(String),
}

/// Where a message sits in its topic: Kafka's partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Per partition, the offset of the next message to read: what a sink
/// stores with its output so that a restart resumes right after it.
pub type Positions = BTreeMap<i32, i64>;

/// One message as a consumer receives it.
#[derive(Debug)]
pub struct Delivery {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// Set by buses whose topics have positions (Kafka).
    pub position: Option<Position>,
    pub ack: Ack,
}

/// Acknowledges one delivery. Call [`Ack::ack`] only after the consumer's
/// output is durable; dropping it without acking leaves the message
/// unacknowledged (it is replayed after a restart).
#[derive(Debug)]
pub struct Ack {
    inner: Option<Arc<dyn AckTarget>>,
}

impl Ack {
    pub(crate) fn new(target: Arc<dyn AckTarget>) -> Self {
        Ack {
            inner: Some(target),
        }
    }

    /// An ack that does nothing, for messages that did not come from a bus.
    pub fn none() -> Self {
        Ack { inner: None }
    }

    pub fn ack(mut self) {
        if let Some(t) = self.inner.take() {
            t.ack();
        }
    }
}

pub(crate) trait AckTarget: Send + Sync + std::fmt::Debug {
    fn ack(&self);
}

type Durable = Pin<Box<dyn Future<Output = Result<(), BusError>> + Send>>;

/// Resolves when a published message is durable (see the crate docs).
pub struct Receipt {
    wait: Option<Durable>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("pending", &self.wait.is_some())
            .finish()
    }
}

impl Receipt {
    pub(crate) fn pending(rx: tokio::sync::oneshot::Receiver<()>) -> Self {
        Receipt::waiting(async move { rx.await.map_err(|_| BusError::Dropped) })
    }

    pub(crate) fn waiting(f: impl Future<Output = Result<(), BusError>> + Send + 'static) -> Self {
        Receipt {
            wait: Some(Box::pin(f)),
        }
    }

    pub fn ready() -> Self {
        Receipt { wait: None }
    }

    /// Waits until the message is durable.
    pub async fn durable(self) -> Result<(), BusError> {
        match self.wait {
            None => Ok(()),
            Some(f) => f.await,
        }
    }
}

/// A stream of deliveries for one consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// The next message, or `None` once the bus is closed and drained.
    async fn recv(&mut self) -> Option<Delivery>;
}

/// The interface every role talks to.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes one message, waiting while the topic is full
    /// (backpressure). `key` picks the partition in Kafka: crawl tasks are
    /// keyed by host, items by item id.
    async fn publish(&self, topic: &str, key: &str, payload: Vec<u8>) -> Result<Receipt, BusError>;

    /// Joins consumer group `group` on `topic`. Consumers in one group share
    /// the messages; every group sees every message.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError>;

    /// One consumer that alone reads every partition of `topic`, starting
    /// each at its position in `start`, or at the oldest message kept when
    /// `start` has none: for a sink whose own durable state records how far
    /// it got (the index), so that it never depends on a group's commits
    /// and two such sinks never split a topic between them. `group` still
    /// names it to the brokers, for lag monitoring. Buses without positions
    /// (in process) make it an ordinary member of `group`.
    async fn subscribe_whole(
        &self,
        topic: &str,
        group: &str,
        start: &Positions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let _ = start;
        self.subscribe(topic, group).await
    }
}
