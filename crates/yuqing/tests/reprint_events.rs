//! The reprint test set through the alerter's own store: every generated
//! page, extracted and analyzed, processed in publication order into a
//! real SQLite file. The events it forms must score as the bench says, and
//! each event's first publisher and chain must be right.

use std::collections::HashMap;
use std::path::Path;

use yuqing::reprints;
use yuqing_alert::{AlertStore, Channel, Policy};
use yuqing_analysis::Analyzer;
use yuqing_analysis::events::ReprintThresholds;
use yuqing_config::Loader;
use yuqing_model::Level;

#[test]
fn the_alerter_groups_reprints_with_first_publisher_and_chain() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = Loader::default()
        .load(&root.join("config/default.toml"))
        .unwrap();
    let thresholds = ReprintThresholds::from_config(&config.settings.alert);
    let policy = Policy {
        min_level: Level::Red,
        ..Policy::from_config(&config.settings.alert)
    };
    let articles = reprints::read_articles(&root.join("tests/fixtures/reprints")).unwrap();
    let pages = reprints::generate(&articles);
    let (analyzer, _) = Analyzer::new(&config);

    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
    let mut order: Vec<usize> = (0..pages.len()).collect();
    order.sort_by_key(|&i| (pages[i].published, i));
    let payload = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let channels: Vec<Channel> = Vec::new();
    let mut event_of = vec![String::new(); pages.len()];
    let mut ids = vec![String::new(); pages.len()];
    for &i in &order {
        let p = &pages[i];
        let item = reprints::page_item(p);
        ids[i] = item.id.clone();
        let a = analyzer.analyze(item);
        let out = store.process(&a, &policy, &channels, &payload).unwrap();
        event_of[i] = out.event_id;
    }

    // Pairwise precision and recall of the stored events.
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for i in 0..pages.len() {
        for j in i + 1..pages.len() {
            match (
                event_of[i] == event_of[j],
                pages[i].article == pages[j].article,
            ) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    eprintln!("stored events: precision {precision:.3}, recall {recall:.3}");
    assert!(
        precision >= 0.95 && recall >= 0.90,
        "P {precision} R {recall}"
    );
    // The same figures as the in-memory clusterer the bench uses.
    let bench = reprints::score(&reprints::analyze_pages(&pages, &analyzer), thresholds);
    assert!((bench.precision - precision).abs() < 1e-9);
    assert!((bench.recall - recall).abs() < 1e-9);

    // Each article's original page is the first publisher of the event
    // that holds it, and a chain lists the event's pages by time.
    let mut checked = 0;
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in event_of.iter().enumerate() {
        members.entry(e).or_default().push(i);
    }
    for (event, m) in &members {
        let summary = store.event(event).unwrap().unwrap();
        let chain = store.event_chain(event).unwrap();
        assert_eq!(chain.len(), m.len());
        assert_eq!(summary.item_count as usize, m.len());
        assert!(
            chain
                .windows(2)
                .all(|w| w[0].published_at <= w[1].published_at)
        );
        assert!(chain[0].reprint_of.is_none());
        assert!(chain[1..].iter().all(|l| l.reprint_of.is_some()));
        assert!(summary.heat > 0.0);
        if let Some(&orig) = m.iter().find(|&&i| !pages[i].reprint) {
            assert_eq!(summary.first_url, pages[orig].url);
            assert_eq!(chain[0].item_id, ids[orig]);
            checked += 1;
        }
    }
    assert_eq!(checked, articles.len(), "every original heads its event");
}
