use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a source is doing, as the crawler judges it after each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// The last run succeeded.
    Ok,
    /// Runs keep failing (network, HTTP errors, parse errors).
    Failing,
    /// The site refuses us: 403/418/432, a captcha or a login wall.
    Blocked,
    /// Runs succeed but find nothing at all, as when a page layout changed
    /// under the selectors.
    Empty,
    /// Runs succeed and find the pages' items, but no new one has come for
    /// far longer than the same hours brought on previous days: a frozen
    /// list page, a feed no longer updated, a cursor stuck.
    Quiet,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Ok => "ok",
            SourceState::Failing => "failing",
            SourceState::Blocked => "blocked",
            SourceState::Empty => "empty",
            SourceState::Quiet => "quiet",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            SourceState::Ok => "正常",
            SourceState::Failing => "采集失败",
            SourceState::Blocked => "被封禁",
            SourceState::Empty => "无数据",
            SourceState::Quiet => "更新停滞",
        }
    }

    /// Every state, healthy first.
    pub const ALL: [SourceState; 5] = [
        SourceState::Ok,
        SourceState::Failing,
        SourceState::Blocked,
        SourceState::Empty,
        SourceState::Quiet,
    ];

    pub fn parse(s: &str) -> Option<SourceState> {
        SourceState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A source's state after a run, sent by the crawler to the alerter on
/// `sources.status`. Each message is a whole snapshot, so a lost or
/// replayed one is corrected by the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub source: String,
    pub name: String,
    pub state: SourceState,
    pub consecutive_failures: u32,
    /// Why the state is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// One run of one source, published by the scheduler on `crawl.tasks` with
/// the source's host as key, and run by whichever crawler worker owns that
/// key's partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlTask {
    /// The source id.
    pub source: String,
    /// The host of the source's start URL (the message key).
    pub host: String,
    pub scheduled_at: DateTime<Utc>,
}
