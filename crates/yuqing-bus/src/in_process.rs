//! The in-process bus: one bounded queue per (topic, consumer group).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::{Ack, AckTarget, Bus, BusError, Consumer, Delivery, Receipt};

#[derive(Debug)]
struct Message {
    key: String,
    payload: Arc<Vec<u8>>,
    pending: Arc<Pending>,
}

/// Counts the groups that still have to acknowledge a message; the last one
/// resolves the publisher's receipt.
#[derive(Debug)]
struct Pending {
    remaining: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl AckTarget for Pending {
    fn ack(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(tx) = self.done.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    }
}

type SharedReceiver = Arc<tokio::sync::Mutex<mpsc::Receiver<Message>>>;

#[derive(Debug, Default)]
struct Topic {
    /// group name → (sender, receiver shared by the group's consumers)
    groups: Vec<(String, mpsc::Sender<Message>, SharedReceiver)>,
}

/// Bounded in-memory queues: a publisher waits while any group's queue for
/// the topic is full, which slows the crawler down to the analyzer's pace
/// instead of growing memory.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    capacity: usize,
    topics: Arc<Mutex<Option<HashMap<String, Topic>>>>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        InProcessBus {
            capacity: capacity.max(1),
            topics: Arc::new(Mutex::new(Some(HashMap::new()))),
        }
    }

    /// Creates the queues of `groups` on `topic` before anyone subscribes,
    /// so messages published before a consumer starts wait for it instead
    /// of finding no group.
    pub fn declare(&self, topic: &str, groups: &[&str]) {
        let mut guard = self.topics.lock().unwrap();
        let Some(topics) = guard.as_mut() else {
            return;
        };
        let t = topics.entry(topic.to_string()).or_default();
        for g in groups {
            if !t.groups.iter().any(|(name, _, _)| name == g) {
                let (tx, rx) = mpsc::channel(self.capacity);
                t.groups
                    .push((g.to_string(), tx, Arc::new(tokio::sync::Mutex::new(rx))));
            }
        }
    }

    /// Closes every queue: consumers drain what is queued, then see `None`.
    pub fn close(&self) {
        self.topics.lock().unwrap().take();
    }

    /// Messages queued and not yet received, per topic and group.
    pub fn queued(&self) -> Vec<(String, String, usize)> {
        let guard = self.topics.lock().unwrap();
        let Some(topics) = guard.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<_> = topics
            .iter()
            .flat_map(|(t, topic)| {
                topic
                    .groups
                    .iter()
                    .map(|(g, tx, _)| (t.clone(), g.clone(), tx.max_capacity() - tx.capacity()))
            })
            .collect();
        out.sort();
        out
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, topic: &str, key: &str, payload: Vec<u8>) -> Result<Receipt, BusError> {
        let senders: Vec<mpsc::Sender<Message>> = {
            let guard = self.topics.lock().unwrap();
            let topics = guard.as_ref().ok_or(BusError::Closed)?;
            topics
                .get(topic)
                .map(|t| t.groups.iter().map(|(_, tx, _)| tx.clone()).collect())
                .unwrap_or_default()
        };
        if senders.is_empty() {
            return Err(BusError::NoSubscribers(topic.to_string()));
        }
        let (tx, rx) = oneshot::channel();
        let pending = Arc::new(Pending {
            remaining: AtomicUsize::new(senders.len()),
            done: Mutex::new(Some(tx)),
        });
        let payload = Arc::new(payload);
        for s in senders {
            let msg = Message {
                key: key.to_string(),
                payload: payload.clone(),
                pending: pending.clone(),
            };
            s.send(msg).await.map_err(|_| BusError::Closed)?;
        }
        Ok(Receipt::pending(rx))
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let mut guard = self.topics.lock().unwrap();
        let topics = guard.as_mut().ok_or(BusError::Closed)?;
        let t = topics.entry(topic.to_string()).or_default();
        let rx = match t.groups.iter().find(|(g, _, _)| g == group) {
            Some((_, _, rx)) => rx.clone(),
            None => {
                let (tx, rx) = mpsc::channel(self.capacity);
                let rx = Arc::new(tokio::sync::Mutex::new(rx));
                t.groups.push((group.to_string(), tx, rx.clone()));
                rx
            }
        };
        Ok(Box::new(InProcessConsumer {
            topic: topic.to_string(),
            rx,
        }))
    }
}

struct InProcessConsumer {
    topic: String,
    rx: SharedReceiver,
}

#[async_trait]
impl Consumer for InProcessConsumer {
    async fn recv(&mut self) -> Option<Delivery> {
        let msg = self.rx.lock().await.recv().await?;
        Some(Delivery {
            topic: self.topic.clone(),
            key: msg.key,
            payload: Arc::try_unwrap(msg.payload).unwrap_or_else(|p| (*p).clone()),
            ack: Ack::new(msg.pending),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_group_sees_every_message_and_receipt_waits_for_all_acks() {
        let bus = InProcessBus::new(8);
        let mut a = bus.subscribe("t", "indexer").await.unwrap();
        let mut b = bus.subscribe("t", "alerter").await.unwrap();
        let receipt = bus.publish("t", "k", b"hello".to_vec()).await.unwrap();
        let da = a.recv().await.unwrap();
        let db = b.recv().await.unwrap();
        assert_eq!(da.payload, b"hello");
        assert_eq!(db.key, "k");
        let mut receipt = Box::pin(receipt.durable());
        da.ack.ack();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut receipt)
                .await
                .is_err(),
            "durable before the second group acked"
        );
        db.ack.ack();
        receipt.await.unwrap();
    }

    #[tokio::test]
    async fn consumers_in_one_group_share_messages() {
        let bus = InProcessBus::new(8);
        let mut c1 = bus.subscribe("t", "g").await.unwrap();
        let mut c2 = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", "1", vec![1]).await.unwrap();
        bus.publish("t", "2", vec![2]).await.unwrap();
        let x = c1.recv().await.unwrap();
        let y = c2.recv().await.unwrap();
        let mut got = vec![x.payload[0], y.payload[0]];
        got.sort();
        assert_eq!(got, vec![1, 2]);
    }

    #[tokio::test]
    async fn full_queue_makes_the_publisher_wait() {
        let bus = InProcessBus::new(2);
        let mut c = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", "a", vec![]).await.unwrap();
        bus.publish("t", "b", vec![]).await.unwrap();
        let third = bus.publish("t", "c", vec![]);
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut third)
                .await
                .is_err(),
            "publish did not wait on a full queue"
        );
        c.recv().await.unwrap();
        third.await.unwrap();
        assert_eq!(bus.queued(), vec![("t".into(), "g".into(), 2)]);
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_an_error_not_a_loss() {
        let bus = InProcessBus::new(2);
        assert!(matches!(
            bus.publish("nobody", "k", vec![]).await,
            Err(BusError::NoSubscribers(_))
        ));
    }

    #[tokio::test]
    async fn declared_groups_keep_messages_for_late_consumers() {
        let bus = InProcessBus::new(4);
        bus.declare("t", &["late"]);
        let receipt = bus.publish("t", "k", vec![9]).await.unwrap();
        let mut c = bus.subscribe("t", "late").await.unwrap();
        let d = c.recv().await.unwrap();
        assert_eq!(d.payload, vec![9]);
        d.ack.ack();
        receipt.durable().await.unwrap();
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let bus = InProcessBus::new(4);
        let mut c = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", "a", vec![7]).await.unwrap();
        bus.close();
        assert_eq!(c.recv().await.unwrap().payload, vec![7]);
        assert!(c.recv().await.is_none());
        assert!(matches!(
            bus.publish("t", "b", vec![]).await,
            Err(BusError::Closed)
        ));
    }
}
