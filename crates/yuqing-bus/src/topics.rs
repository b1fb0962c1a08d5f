/// Topic names, with the configured prefix (`yuqing.` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub crawl_tasks: String,
    pub items_raw: String,
    pub items_analyzed: String,
    /// Poison messages, with the error that made them poison.
    pub items_dead: String,
    /// Source health snapshots from the crawler, for collector incidents.
    pub sources_status: String,
}

impl Topics {
    pub fn with_prefix(prefix: &str) -> Self {
        Topics {
            crawl_tasks: format!("{prefix}crawl.tasks"),
            items_raw: format!("{prefix}items.raw"),
            items_analyzed: format!("{prefix}items.analyzed"),
            items_dead: format!("{prefix}items.dead"),
            sources_status: format!("{prefix}sources.status"),
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics::with_prefix("yuqing.")
    }
}
