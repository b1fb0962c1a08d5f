use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct CrawlerMetrics {
    pub runs: IntCounterVec,
    pub items: IntCounterVec,
    pub responses: IntCounterVec,
    pub tasks: IntCounterVec,
    pub published: prometheus::IntCounter,
    pub outbox: IntGauge,
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
        for m in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(items.clone()),
            Box::new(responses.clone()),
            Box::new(tasks.clone()),
            Box::new(published.clone()),
            Box::new(outbox.clone()),
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
        }
    }
}
