//! The Kafka bus against librdkafka's mock cluster: a Kafka-protocol broker
//! on 127.0.0.1 inside the test process.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::mocking::MockCluster;

use super::*;

fn options(brokers: String) -> KafkaOptions {
    KafkaOptions {
        brokers,
        client_id: "yuqing-test".into(),
        group_prefix: "test.".into(),
        partitions: 2,
        replication: 1,
        properties: BTreeMap::from([("session.timeout.ms".to_string(), "6000".to_string())]),
    }
}

async fn next(c: &mut Box<dyn Consumer>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(60), c.recv())
        .await
        .expect("a message within a minute")
        .expect("the bus is open")
}

async fn publish_all(bus: &KafkaBus, topic: &str, n: usize) {
    let mut receipts = Vec::new();
    for i in 0..n {
        receipts.push(
            bus.publish(topic, &format!("k{i}"), format!("m{i}").into_bytes())
                .await
                .unwrap(),
        );
    }
    for r in receipts {
        r.durable().await.unwrap();
    }
}

#[tokio::test]
async fn messages_arrive_with_their_keys_and_positions() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("t", 2, 1).unwrap();
    let bus = KafkaBus::connect(options(mock.bootstrap_servers()), &["t".into()])
        .await
        .unwrap();
    publish_all(&bus, "t", 10).await;
    let mut c = bus.subscribe("t", "g").await.unwrap();
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        let d = next(&mut c).await;
        let pos = d.position.expect("kafka deliveries have positions");
        assert_eq!(
            String::from_utf8(d.payload).unwrap(),
            d.key.replace('k', "m")
        );
        assert!(seen.insert((pos.partition, pos.offset), d.key).is_none());
        d.ack.ack();
    }
    assert_eq!(seen.len(), 10);
    assert!(seen.keys().all(|(p, _)| (0..2).contains(p)));
}

#[tokio::test]
async fn a_partition_resumes_at_its_first_unacknowledged_message() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("one", 1, 1).unwrap();
    let bus = KafkaBus::connect(options(mock.bootstrap_servers()), &["one".into()])
        .await
        .unwrap();
    publish_all(&bus, "one", 5).await;
    {
        let mut c = bus.subscribe("one", "g").await.unwrap();
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(next(&mut c).await);
        }
        assert_eq!(
            held.iter()
                .map(|d| d.position.unwrap().offset)
                .collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        // Acknowledged out of order, all but offset 2.
        let third = held.remove(2);
        for d in held.into_iter().rev() {
            d.ack.ack();
        }
        drop(third);
        // Closing the consumer commits what it stored.
    }
    let mut again = bus.subscribe("one", "g").await.unwrap();
    let d = next(&mut again).await;
    assert_eq!(
        d.position.unwrap().offset,
        2,
        "resumes at the unacknowledged message"
    );
    assert_eq!(d.key, "k2");
}

#[tokio::test]
async fn a_whole_topic_reader_starts_at_stored_positions_or_the_oldest_message() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("s", 2, 1).unwrap();
    let bus = KafkaBus::connect(options(mock.bootstrap_servers()), &["s".into()])
        .await
        .unwrap();
    publish_all(&bus, "s", 12).await;
    // The group has read and committed everything: a whole-topic reader
    // does not care.
    {
        let mut c = bus.subscribe("s", "indexer").await.unwrap();
        for _ in 0..12 {
            next(&mut c).await.ack.ack();
        }
    }
    let mut c = bus
        .subscribe_whole("s", "indexer", &Positions::from([(0, 2)]))
        .await
        .unwrap();
    let mut got: Vec<(i32, i64)> = Vec::new();
    while got.len() < 12 - 2 {
        let d = next(&mut c).await;
        let p = d.position.unwrap();
        got.push((p.partition, p.offset));
    }
    let first = |part: i32| {
        got.iter()
            .filter(|(p, _)| *p == part)
            .map(|(_, o)| *o)
            .min()
    };
    assert_eq!(first(0), Some(2), "partition 0 from its stored position");
    assert_eq!(
        first(1),
        Some(0),
        "partition 1, with none stored, from the oldest"
    );
}

#[tokio::test]
async fn a_closed_bus_ends_its_consumers_and_refuses_messages() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("c", 1, 1).unwrap();
    let bus = KafkaBus::connect(options(mock.bootstrap_servers()), &["c".into()])
        .await
        .unwrap();
    let mut c = bus.subscribe("c", "g").await.unwrap();
    bus.close();
    assert!(c.recv().await.is_none());
    assert!(matches!(
        bus.publish("c", "k", b"x".to_vec()).await,
        Err(BusError::Closed)
    ));
}

#[test]
fn offsets_are_stored_only_up_to_the_first_unacknowledged_message() {
    let mut t = Tracker::default();
    let g: Vec<u64> = (10..14).map(|o| t.received(0, o)).collect();
    assert_eq!(t.ack(0, 11, g[1]), None, "10 is still out");
    assert_eq!(t.ack(0, 12, g[2]), None);
    assert_eq!(t.ack(0, 10, g[0]), Some(13));
    assert_eq!(t.ack(0, 10, g[0]), None, "an acknowledgement counts once");
    assert_eq!(t.ack(0, 13, g[3]), Some(14));
    // After a revoke and a new assignment, late acknowledgements of the
    // old assignment store nothing.
    let old = t.received(1, 5);
    t.revoke(1);
    t.assign(1);
    assert_eq!(t.ack(1, 5, old), None);
}
