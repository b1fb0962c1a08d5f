//! The crawler: collects items from the configured sources on their
//! schedules and publishes the new ones on `items.raw`.
//!
//! # At-least-once, no duplicates after restart
//!
//! A run's new items, the source's cursor and its HTTP validators are stored
//! in one SQLite transaction, items into an outbox. A publisher drains the
//! outbox onto the bus and deletes a row only when the bus reports the item
//! durable. A crash loses nothing (the outbox is published again, and sinks
//! upsert by item id), and a restart never emits an item a second time,
//! because its id is in the seen-set.
//!
//! # Health
//!
//! Every source's last run, last success, consecutive failures and last
//! error are kept in memory and exported as metrics; a failing source never
//! stops the others. A source whose new items stop coming for longer than
//! its own history makes ordinary is `quiet` (see [`quiet`]).

mod crawler;
pub mod decode;
pub mod extract;
pub mod fetch;
mod metrics;
pub mod quiet;
pub mod sitemap;
pub mod sources;
pub mod state;
pub mod text;
pub mod wall;

pub use crawler::{Crawler, STATUS_KIND, SourceHealth, TASK_KIND, WORKER_GROUP, build_sources};
pub use metrics::CrawlerMetrics;
