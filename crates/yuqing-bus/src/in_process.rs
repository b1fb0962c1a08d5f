//! The in-process bus: bounded queues per (topic, consumer group,
//! partition).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{Notify, mpsc, oneshot};

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

/// The consumer side of one group: a queue per partition, and the members
/// that share them.
#[derive(Debug)]
struct GroupShared {
    partitions: Vec<Mutex<mpsc::Receiver<Message>>>,
    members: AtomicUsize,
    closed: AtomicBool,
    /// Woken when the bus closes, for members that own no partition.
    changed: Notify,
}

#[derive(Debug)]
struct Group {
    name: String,
    senders: Vec<mpsc::Sender<Message>>,
    shared: Arc<GroupShared>,
}

#[derive(Debug, Default)]
struct Topic {
    partitions: usize,
    groups: Vec<Group>,
}

impl Topic {
    fn group(&mut self, name: &str, capacity: usize) -> &Group {
        if let Some(i) = self.groups.iter().position(|g| g.name == name) {
            return &self.groups[i];
        }
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..self.partitions.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(capacity);
                (tx, Mutex::new(rx))
            })
            .unzip();
        self.groups.push(Group {
            name: name.to_string(),
            senders,
            shared: Arc::new(GroupShared {
                partitions: receivers,
                members: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                changed: Notify::new(),
            }),
        });
        self.groups.last().expect("just pushed")
    }
}

/// The partition of `key` among `n`: a stable hash (FNV-1a), so a key's
/// messages always go to the same partition and so to the same consumer.
fn partition_of(key: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n.max(1) as u64) as usize
}

/// Bounded in-memory queues: a publisher waits while any group's queue for
/// the topic is full, which slows the crawler down to the analyzer's pace
/// instead of growing memory.
///
/// A topic has one partition unless [`InProcessBus::set_partitions`] gives
/// it more. As in Kafka, a message goes to the partition of its key, and
/// each partition of a group belongs to one consumer of the group
/// (partition `p` to the consumer that joined `p mod members`-th), so the
/// messages of one key are handled by one consumer, in order.
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

    /// Gives `topic` `n` partitions. Only before any group exists on it:
    /// later calls change nothing.
    pub fn set_partitions(&self, topic: &str, n: usize) {
        let mut guard = self.topics.lock().unwrap();
        let Some(topics) = guard.as_mut() else {
            return;
        };
        let t = topics.entry(topic.to_string()).or_default();
        if t.groups.is_empty() {
            t.partitions = n.max(1);
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
            t.group(g, self.capacity);
        }
    }

    /// Closes every queue: consumers drain what is queued, then see `None`.
    pub fn close(&self) {
        let Some(topics) = self.topics.lock().unwrap().take() else {
            return;
        };
        for g in topics.values().flat_map(|t| &t.groups) {
            g.shared.closed.store(true, Ordering::Release);
            g.shared.changed.notify_waiters();
        }
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
                topic.groups.iter().map(|g| {
                    let n = g
                        .senders
                        .iter()
                        .map(|tx| tx.max_capacity() - tx.capacity())
                        .sum();
                    (t.clone(), g.name.clone(), n)
                })
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
                .map(|t| {
                    t.groups
                        .iter()
                        .map(|g| g.senders[partition_of(key, g.senders.len())].clone())
                        .collect()
                })
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
        let shared = t.group(group, self.capacity).shared.clone();
        let member = shared.members.fetch_add(1, Ordering::AcqRel);
        Ok(Box::new(InProcessConsumer {
            topic: topic.to_string(),
            shared,
            member,
            drained: Vec::new(),
        }))
    }
}

struct InProcessConsumer {
    topic: String,
    shared: Arc<GroupShared>,
    /// This consumer's place among the group's members.
    member: usize,
    /// Partitions closed and emptied.
    drained: Vec<usize>,
}

enum Poll {
    Message(Message),
    /// Every partition this consumer owns is closed and empty.
    Drained,
    /// More consumers than partitions: this one owns none.
    Idle,
}

#[async_trait]
impl Consumer for InProcessConsumer {
    async fn recv(&mut self) -> Option<Delivery> {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let polled = std::future::poll_fn(|cx| {
                let members = self.shared.members.load(Ordering::Acquire).max(1);
                let (mut owned, mut drained) = (0, 0);
                for (p, rx) in self.shared.partitions.iter().enumerate() {
                    if p % members != self.member {
                        continue;
                    }
                    owned += 1;
                    if self.drained.contains(&p) {
                        drained += 1;
                        continue;
                    }
                    match rx.lock().unwrap().poll_recv(cx) {
                        std::task::Poll::Ready(Some(m)) => {
                            return std::task::Poll::Ready(Poll::Message(m));
                        }
                        std::task::Poll::Ready(None) => {
                            self.drained.push(p);
                            drained += 1;
                        }
                        std::task::Poll::Pending => {}
                    }
                }
                if owned == 0 {
                    std::task::Poll::Ready(Poll::Idle)
                } else if drained == owned {
                    std::task::Poll::Ready(Poll::Drained)
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
            match polled {
                Poll::Message(msg) => {
                    return Some(Delivery {
                        topic: self.topic.clone(),
                        key: msg.key,
                        payload: Arc::try_unwrap(msg.payload).unwrap_or_else(|p| (*p).clone()),
                        position: None,
                        ack: Ack::new(msg.pending),
                    });
                }
                Poll::Drained => return None,
                Poll::Idle => {
                    if self.shared.closed.load(Ordering::Acquire) {
                        return None;
                    }
                    changed.await;
                }
            }
        }
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
    async fn a_key_stays_with_one_consumer_of_a_partitioned_topic() {
        let bus = InProcessBus::new(64);
        bus.set_partitions("tasks", 4);
        let mut consumers = Vec::new();
        for _ in 0..2 {
            consumers.push(bus.subscribe("tasks", "workers").await.unwrap());
        }
        let keys = [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "e.example",
        ];
        for round in 0..3u8 {
            for k in keys {
                bus.publish("tasks", k, vec![round]).await.unwrap();
            }
        }
        bus.close();
        let mut seen: Vec<(usize, String, u8)> = Vec::new();
        for (i, c) in consumers.iter_mut().enumerate() {
            while let Some(d) = c.recv().await {
                seen.push((i, d.key.clone(), d.payload[0]));
                d.ack.ack();
            }
        }
        assert_eq!(seen.len(), 15, "every message delivered once");
        for k in keys {
            let owners: std::collections::BTreeSet<usize> =
                seen.iter().filter(|s| s.1 == k).map(|s| s.0).collect();
            assert_eq!(owners.len(), 1, "{k} went to {owners:?}");
            let rounds: Vec<u8> = seen.iter().filter(|s| s.1 == k).map(|s| s.2).collect();
            assert_eq!(rounds, vec![0, 1, 2], "{k} in order");
        }
        let used: std::collections::BTreeSet<usize> = seen.iter().map(|s| s.0).collect();
        assert_eq!(used.len(), 2, "both consumers got work");
    }

    #[tokio::test]
    async fn a_consumer_without_partitions_ends_when_the_bus_closes() {
        let bus = InProcessBus::new(4);
        let mut first = bus.subscribe("t", "g").await.unwrap();
        let mut second = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", "k", vec![1]).await.unwrap();
        let idle = tokio::spawn(async move { second.recv().await.is_none() });
        assert_eq!(first.recv().await.unwrap().payload, vec![1]);
        bus.close();
        assert!(idle.await.unwrap());
        assert!(first.recv().await.is_none());
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
