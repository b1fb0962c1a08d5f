//! Setup shared by the crawler's integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use yuqing_bus::{InProcessBus, Topics};
use yuqing_config::Loader;
use yuqing_crawler::state::CrawlState;
use yuqing_crawler::{Crawler, CrawlerMetrics};
use yuqing_model::{Envelope, Item};

/// A crawler over the config text `toml`, with its state in `dir`. Nothing
/// consumes its bus: tests read what it emitted from the state's outbox.
pub fn crawler(dir: &Path, toml: &str) -> (Crawler, CrawlState) {
    let (c, state, _) = crawler_with_metrics(dir, toml);
    (c, state)
}

/// [`crawler`], with the registry of its metrics.
pub fn crawler_with_metrics(dir: &Path, toml: &str) -> (Crawler, CrawlState, prometheus::Registry) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let main = dir.join("main.toml");
    std::fs::write(&main, toml).unwrap();
    let config = Loader::default().load(&main).unwrap();
    let state = CrawlState::open(&dir.join("crawl.db")).unwrap();
    let registry = prometheus::Registry::new();
    let c = Crawler::new(
        &config,
        state.clone(),
        Arc::new(InProcessBus::new(16)),
        Topics::default(),
        CrawlerMetrics::new(&registry),
    )
    .unwrap();
    (c, state, registry)
}

/// The value of the series `name` with exactly `labels`, from the registry's
/// exposition text.
pub fn metric(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let series = format!("{name}{{{}}} ", labels.join(","));
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
}

/// The items a crawler emitted, from its outbox.
pub fn emitted(state: &CrawlState) -> Vec<Item> {
    state
        .outbox_after(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|(_, _, p)| {
            Envelope::<Item>::from_bytes(&p, "item.raw")
                .unwrap()
                .payload
        })
        .collect()
}
