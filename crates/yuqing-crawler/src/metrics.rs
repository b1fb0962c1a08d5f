use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Debug, Clone)]
pub struct CrawlerMetrics {
    pub runs: IntCounterVec,
    pub items: IntCounterVec,
    pub responses: IntCounterVec,
    pub tasks: IntCounterVec,
    pub published: prometheus::IntCounter,
    pub outbox: IntGauge,
    pub state: IntGaugeVec,
}

impl CrawlerMetrics {
    pub fn new(registry: &Registry) -> Self {
        let runs = IntCounterVec::new(
            Opts::new(
                "yuqing_crawler_runs_total",
                "Source runs by result (ok or an error class).",
            ),
            &["source", "result"],
        )
        .unwrap();
        let items = IntCounterVec::new(
            Opts::new(
                "yuqing_crawler_items_total",
                "New items collected per source.",
            ),
            &["source"],
        )
        .unwrap();
        let responses = IntCounterVec::new(
            Opts::new(
                "yuqing_crawler_http_responses_total",
                "HTTP responses per source by class (2xx, 304, 4xx, 5xx, timeout, connect, ...), retries included.",
            ),
            &["source", "class"],
        )
        .unwrap();
        let tasks = IntCounterVec::new(
            Opts::new(
                "yuqing_crawler_tasks_total",
                "Crawl tasks (source runs) taken from crawl.tasks, per worker.",
            ),
            &["worker"],
        )
        .unwrap();
        let published = prometheus::IntCounter::new(
            "yuqing_crawler_published_total",
            "Items published to items.raw and acknowledged as durable.",
        )
        .unwrap();
        let outbox = IntGauge::new(
            "yuqing_crawler_outbox_items",
            "Items waiting in the outbox.",
        )
        .unwrap();
        let state = IntGaugeVec::new(
            Opts::new(
                "yuqing_crawler_source_state",
                "1 for each source's state after its last run (ok, failing, blocked, empty, quiet), 0 for the others.",
            ),
            &["source", "state"],
        )
        .unwrap();
        for m in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(items.clone()),
            Box::new(responses.clone()),
            Box::new(tasks.clone()),
            Box::new(published.clone()),
            Box::new(outbox.clone()),
            Box::new(state.clone()),
        ] {
            let _ = registry.register(m);
        }
        CrawlerMetrics {
            runs,
            items,
            responses,
            tasks,
            published,
            outbox,
            state,
        }
    }
}

impl CrawlerMetrics {
    /// Sets the source's state series: 1 for `state`, 0 for the others.
    pub fn set_state(&self, source: &str, state: yuqing_model::SourceState) {
        for s in yuqing_model::SourceState::ALL {
            self.state
                .with_label_values(&[source, s.as_str()])
                .set(i64::from(s == state));
        }
    }
}
