use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentStatus> {
        match s {
            "triggered" => Some(IncidentStatus::Triggered),
            "acknowledged" => Some(IncidentStatus::Acknowledged),
            "resolved" => Some(IncidentStatus::Resolved),
            _ => None,
        }
    }
}

/// What an officer handles: one per rule and event (its `dedup_key`), at the
/// highest level of its items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    /// `rule:<rule id>:event:<event id>`; one open incident per key.
    pub dedup_key: String,
    pub rule_id: String,
    pub rule_name: String,
    pub topic: String,
    pub event_id: String,
    pub level: Level,
    pub status: IncidentStatus,
    /// Title of the event's first item.
    pub title: String,
    /// URL of the event's first item.
    pub url: String,
    pub item_count: u64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
