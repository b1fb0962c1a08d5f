use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which report a scheduled run produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// 日报: incidents reached the reporting level in the period.
    Daily,
    /// 零报告: none did; said explicitly, so readers can tell "nothing
    /// happened" from "the report did not arrive".
    Nil,
    /// 专报: one incident, written on request.
    Special,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Daily => "daily",
            ReportKind::Nil => "nil",
            ReportKind::Special => "special",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            ReportKind::Daily => "日报",
            ReportKind::Nil => "零报告",
            ReportKind::Special => "专报",
        }
    }

    pub fn parse(s: &str) -> Option<ReportKind> {
        match s {
            "daily" => Some(ReportKind::Daily),
            "nil" => Some(ReportKind::Nil),
            "special" => Some(ReportKind::Special),
            _ => None,
        }
    }
}

/// A written report, as the report log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub kind: ReportKind,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Incidents listed in the report.
    pub incidents: u64,
    /// Items monitored in the period.
    pub items: u64,
    pub markdown_path: String,
    pub html_path: String,
    pub created_at: DateTime<Utc>,
}
