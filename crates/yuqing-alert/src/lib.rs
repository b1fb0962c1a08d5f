//! The alerter: the stateful end of the pipeline. It groups analyzed items
//! into events (reprint clusters), opens one incident per rule and event,
//! notifies through the configured channels, and writes the daily report or
//! the nil report on schedule. One active instance; state in SQLite.
//!
//! # At-least-once and idempotence
//!
//! An analyzed item is acknowledged only after its transaction commits.
//! A replayed item finds its own rows (items, incident membership,
//! notifications are unique by key) and changes nothing, so replays never
//! open an incident twice or send a message twice. Notifications are
//! written before they are sent and retried until sent or dead.

mod alerter;
pub mod channels;
mod duty;
mod escalation;
pub mod export;
mod metrics;
mod notify;
mod report;
mod store;

pub use alerter::Alerter;
pub use duty::{AckLinkError, Duty, OnDuty, RouteKey, minute_of_week};
pub use escalation::{
    AckOutcome, DeadLetter, Handover, Matchers, Mention, Message, MessageIncident, Silence,
    TickOutcome, TimelineEntry,
};
pub use metrics::AlertMetrics;
pub use notify::{ALARM_AFTER_ATTEMPTS, RETRY_FOR_HOURS, webhook_payload};
pub use report::{
    Report, ReportError, action_zh, build_incident_report, build_report, write_report, write_whole,
};
pub use store::{
    AlertStore, ChainLink, Channel, EventSummary, Outcome, Policy, Pruned, Session, SpikeRecord,
    StoreError,
};

#[cfg(test)]
mod escalation_tests;
#[cfg(test)]
mod sender_tests;
#[cfg(test)]
mod tests;
