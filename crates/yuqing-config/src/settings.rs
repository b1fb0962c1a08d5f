//! The main config file: `config/default.toml`, `config/demo.toml`.

use std::path::PathBuf;

use serde::Deserialize;
use yuqing_model::Level;

use crate::access::{Anonymous, Role, TokenConfig, UserConfig};
use crate::routing::{ChannelConfig, Dur, PersonConfig, PolicyConfig, RosterConfig, RouteConfig};
use crate::source::SourceConfig;

/// The whole configuration as written in the main TOML file. Field docs are
/// the user's reference; README.md links here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory for crawl state, the index, alert state and reports. Relative
    /// paths are relative to the working directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub bus: BusConfig,
    #[serde(default)]
    pub crawler: CrawlerConfig,
    #[serde(default)]
    pub analysis: AnalysisConfig,
    #[serde(default)]
    pub index: IndexConfig,
    #[serde(default)]
    pub alert: AlertConfig,
    #[serde(default)]
    pub report: ReportConfig,
    /// The places to collect from, one `[[source]]` each.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the console, API and `/metrics`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Base URL under which officers reach the console (links in alerts and
    /// reports). Defaults to `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Logins of the console (`[[server.user]]`).
    #[serde(default)]
    pub user: Vec<UserConfig>,
    /// API tokens (`[[server.token]]`).
    #[serde(default)]
    pub token: Vec<TokenConfig>,
    /// What a request with neither a login nor a token may do. Unset, it is
    /// `none` once a user or token is configured, and `responder` while
    /// there are none, which the server allows only on a loopback address.
    #[serde(default)]
    pub anonymous: Option<Anonymous>,
    /// How long a login lasts.
    #[serde(default = "default_session_ttl")]
    pub session_ttl: Dur,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_session_ttl() -> Dur {
    Dur::secs(12 * 3_600)
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            user: Vec::new(),
            token: Vec::new(),
            anonymous: None,
            session_ttl: default_session_ttl(),
        }
    }
}

impl ServerConfig {
    /// The role of a request with neither a login nor a token, if any.
    pub fn anonymous_role(&self) -> Option<Role> {
        match self.anonymous {
            Some(Anonymous::None) => None,
            Some(Anonymous::Observer) => Some(Role::Observer),
            Some(Anonymous::Responder) => Some(Role::Responder),
            None if self.user.is_empty() && self.token.is_empty() => Some(Role::Responder),
            None => None,
        }
    }

    /// Why the console may not serve `listen` as configured: open to
    /// anyone by default (no users, no tokens, `anonymous` unset) on an
    /// address other machines reach. Setting `anonymous` explicitly (behind
    /// a proxy that authenticates, say) is a choice, and allowed.
    pub fn open_to_network(&self, listen: &std::net::SocketAddr) -> Option<String> {
        if self.anonymous.is_some() || self.anonymous_role().is_none() || listen.ip().is_loopback()
        {
            return None;
        }
        Some(format!(
            "the console would listen on {listen} with no login: anyone who reaches it could acknowledge, resolve and silence alerts. Add [[server.user]] logins (`yuqing passwd` makes the hash), or set server.anonymous = \"observer\" or \"responder\" if a proxy in front of it authenticates"
        ))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// Capacity of each in-process topic queue per consumer group; a full
    /// queue makes publishers wait (backpressure).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Prefix of topic names (`yuqing.` gives `yuqing.items.raw`) and, on
    /// Kafka, of consumer group names.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// `in_process` (every role in one process, the default) or `kafka`
    /// (roles in as many processes as wanted, `yuqing run --roles`).
    #[serde(default)]
    pub kind: BusKind,
    #[serde(default)]
    pub kafka: KafkaConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    #[default]
    InProcess,
    Kafka,
}

/// `[bus.kafka]`: the brokers, and how to make topics that are missing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Partitions of each topic yuqing creates; analyzers beyond this
    /// number stay idle.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of each topic yuqing creates (3 on a real
    /// cluster).
    #[serde(default = "default_replication")]
    pub replication: i32,
    /// librdkafka properties for every client, e.g. `security.protocol`,
    /// `sasl.mechanisms`; they override yuqing's own settings.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_partitions() -> i32 {
    6
}
fn default_replication() -> i32 {
    1
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: default_brokers(),
            partitions: default_partitions(),
            replication: default_replication(),
            properties: Default::default(),
        }
    }
}

fn default_capacity() -> usize {
    1024
}
fn default_prefix() -> String {
    "yuqing.".into()
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            capacity: default_capacity(),
            topic_prefix: default_prefix(),
            kind: BusKind::default(),
            kafka: KafkaConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerConfig {
    /// User-Agent sent with every request.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Connect timeout, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Whole-request timeout, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Largest response body read, bytes; larger bodies are an error.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Default interval between runs of a source, seconds.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// How many days a seen item id is remembered.
    #[serde(default = "default_seen_days")]
    pub seen_ttl_days: u32,
    /// Crawler workers in this process. The scheduler publishes one task
    /// per source run on `crawl.tasks`, keyed by the source's host; the
    /// topic gets one partition per worker, so a host's runs all go to one
    /// worker and its politeness holds.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Requests in flight at once per worker, across all hosts.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Minimum time between two requests to one host (one request at a time
    /// per host); a longer robots.txt Crawl-delay wins.
    #[serde(default = "default_host_delay")]
    pub per_host_delay_ms: u64,
    /// Redirects followed before giving up.
    #[serde(default = "default_redirects")]
    pub max_redirects: usize,
    /// Retries after a failure a retry can fix (network, timeout, 5xx, 429).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Longest `Retry-After` waited inside a run; a longer one defers the
    /// host to a later run.
    #[serde(default = "default_retry_after")]
    pub max_retry_after_secs: u64,
    /// Obey robots.txt.
    #[serde(default = "default_true")]
    pub respect_robots: bool,
    /// A source is `failing` (and opens a collector incident) after this many
    /// failed runs in a row. A block (403/418/432, captcha, login wall) opens
    /// one at once.
    #[serde(default = "default_failing_after")]
    pub failing_after: u32,
    /// A source is `empty` after this many runs in a row that found nothing
    /// at all (no feed entries, no posts).
    #[serde(default = "default_failing_after")]
    pub empty_after: u32,
    /// A source is `quiet` when no new item has come for at least this many
    /// minutes, and the same stretch of time brought at least
    /// `quiet_expected` new items on the previous days (the median of the
    /// last seven) and one week earlier. 0 turns the check off.
    #[serde(default = "default_quiet_after")]
    pub quiet_after_mins: u32,
    /// New items the silent stretch would usually have brought before a
    /// source counts as quiet: at 10, an ordinary stretch of silence is
    /// about 1 in 20,000 (Poisson).
    #[serde(default = "default_quiet_expected")]
    pub quiet_expected: u32,
}

fn default_quiet_after() -> u32 {
    60
}

fn default_quiet_expected() -> u32 {
    10
}

fn default_failing_after() -> u32 {
    3
}

fn default_concurrency() -> usize {
    16
}
fn default_workers() -> usize {
    1
}
fn default_host_delay() -> u64 {
    1000
}
fn default_redirects() -> usize {
    10
}
fn default_retries() -> u32 {
    2
}
fn default_retry_after() -> u64 {
    60
}
fn default_true() -> bool {
    true
}

fn default_user_agent() -> String {
    concat!(
        "yuqing/",
        env!("CARGO_PKG_VERSION"),
        " (public-opinion monitor)"
    )
    .into()
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_timeout() -> u64 {
    30
}
fn default_max_body() -> usize {
    10 * 1024 * 1024
}
fn default_interval() -> u64 {
    600
}
fn default_seen_days() -> u32 {
    30
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            user_agent: default_user_agent(),
            connect_timeout_secs: default_connect_timeout(),
            timeout_secs: default_timeout(),
            max_body_bytes: default_max_body(),
            interval_secs: default_interval(),
            seen_ttl_days: default_seen_days(),
            workers: default_workers(),
            max_concurrency: default_concurrency(),
            per_host_delay_ms: default_host_delay(),
            max_redirects: default_redirects(),
            retries: default_retries(),
            max_retry_after_secs: default_retry_after(),
            respect_robots: true,
            failing_after: default_failing_after(),
            empty_after: default_failing_after(),
            quiet_after_mins: default_quiet_after(),
            quiet_expected: default_quiet_expected(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Directory of rule files (`*.toml`), relative to this config file.
    #[serde(default = "default_rules_dir")]
    pub rules_dir: PathBuf,
    /// Sensitivity score at which an item reaches each level. A rule's own
    /// level is a floor: an item is at least at the level of every rule it
    /// fires.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Lexicon files (`word<TAB>weight<TAB>category` a line), relative to
    /// this config file. Their words add their weights to the score.
    #[serde(default)]
    pub lexicons: Vec<PathBuf>,
    /// Allow-lists (a phrase a line): a lexicon word found inside one of
    /// these phrases does not count (`爆炸` inside `信息爆炸`).
    #[serde(default)]
    pub allow_lists: Vec<PathBuf>,
    /// User dictionaries for the segmenter, in jieba's format (`word
    /// [frequency] [tag]` a line), relative to this config file: names,
    /// places and compounds jieba does not know (`和平精英`), so they are
    /// cut as one word and a `[word]` term inside them does not fire.
    #[serde(default)]
    pub user_dicts: Vec<PathBuf>,
    /// Sentiment model: `bundled` (the model shipped with yuqing), `off`,
    /// or a file written by `yuqing sentiment train`, relative to this
    /// config file.
    #[serde(default = "default_sentiment")]
    pub sentiment_model: String,
}

fn default_sentiment() -> String {
    "bundled".into()
}

fn default_rules_dir() -> PathBuf {
    PathBuf::from("rules")
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            rules_dir: default_rules_dir(),
            thresholds: Thresholds::default(),
            lexicons: Vec::new(),
            allow_lists: Vec::new(),
            user_dicts: Vec::new(),
            sentiment_model: default_sentiment(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub blue: u8,
    pub yellow: u8,
    pub orange: u8,
    pub red: u8,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            blue: 20,
            yellow: 40,
            orange: 60,
            red: 80,
        }
    }
}

impl Thresholds {
    /// The highest level whose threshold `score` reaches.
    pub fn level_for(&self, score: u8) -> Option<Level> {
        [
            (Level::Red, self.red),
            (Level::Orange, self.orange),
            (Level::Yellow, self.yellow),
            (Level::Blue, self.blue),
        ]
        .into_iter()
        .find(|(_, t)| score >= *t)
        .map(|(l, _)| l)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// Commit after this many documents ...
    #[serde(default = "default_commit_docs")]
    pub commit_every_docs: usize,
    /// ... or this many seconds after the first uncommitted document.
    #[serde(default = "default_commit_secs")]
    pub commit_every_secs: u64,
    /// Memory of the tantivy writer, MB.
    #[serde(default = "default_heap_mb")]
    pub writer_heap_mb: usize,
    /// Indexing threads of the writer. One by default: the analyzer has
    /// already segmented the text, and in one process on a small machine
    /// the cores are the analyzer's.
    #[serde(default = "default_writer_threads")]
    pub writer_threads: usize,
    /// Items published longer ago than this many days are deleted from the
    /// index (when the indexer starts, then hourly); 0 keeps everything.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_writer_threads() -> usize {
    1
}

fn default_retention_days() -> u32 {
    365
}

fn default_commit_docs() -> usize {
    1000
}
fn default_commit_secs() -> u64 {
    5
}
fn default_heap_mb() -> usize {
    64
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            commit_every_docs: default_commit_docs(),
            retention_days: default_retention_days(),
            commit_every_secs: default_commit_secs(),
            writer_heap_mb: default_heap_mb(),
            writer_threads: default_writer_threads(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Items at or above this level open (or join) an incident.
    #[serde(default = "default_alert_level")]
    pub min_level: Level,
    /// Time zone for reports and schedules (IANA name).
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// An item is a reprint candidate of another when their word SimHashes
    /// differ in at most this many bits (at most 23).
    #[serde(default = "default_simhash_distance")]
    pub simhash_max_distance: u32,
    /// A candidate is a reprint when its word and word-pair SimHash
    /// distances add up to at most this many bits (of 128).
    #[serde(default = "default_simhash_combined")]
    pub simhash_max_combined: u32,
    /// Level of a collector incident (a source failing, blocked or empty).
    #[serde(default = "default_collector_level")]
    pub collector_level: Level,
    /// Generic webhook channels; every new or raised incident is posted to each.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    /// Volume spikes per rule topic.
    #[serde(default)]
    pub spike: SpikeConfig,
    /// People who can be on duty or named in a policy.
    #[serde(default)]
    pub person: Vec<PersonConfig>,
    /// Where messages go: robots, email, webhooks, an SMS gateway.
    #[serde(default)]
    pub channel: Vec<ChannelConfig>,
    /// Duty rosters (值班表).
    #[serde(default)]
    pub roster: Vec<RosterConfig>,
    /// Escalation policies.
    #[serde(default)]
    pub policy: Vec<PolicyConfig>,
    /// Routes, tried in order; the first that matches an incident takes it.
    #[serde(default)]
    pub route: Vec<RouteConfig>,
    /// Key that signs acknowledgement links. When unset, a random key is
    /// made once and kept in the alert database.
    #[serde(default)]
    pub ack_secret: Option<String>,
    /// How long an acknowledgement link in a message stays valid.
    #[serde(default = "default_ack_link_valid")]
    pub ack_link_valid: Dur,
    /// A rule incident without a new item for this long resolves itself.
    #[serde(default = "default_auto_resolve")]
    pub auto_resolve: Dur,
    /// Days `alert.db` keeps items, events, resolved incidents (with their
    /// timeline and messages), hourly counts and dead messages; 0 keeps
    /// everything. Open incidents and their items are kept whatever their
    /// age.
    #[serde(default = "default_alert_retention_days")]
    pub retention_days: u32,
}

fn default_alert_retention_days() -> u32 {
    365
}

fn default_ack_link_valid() -> Dur {
    Dur::secs(24 * 3_600)
}

fn default_auto_resolve() -> Dur {
    Dur::secs(24 * 3_600)
}

/// When a topic's hourly volume is a spike: against the median of the same
/// hour on previous days (see `yuqing_analysis::spikes`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeConfig {
    pub enabled: bool,
    /// Days of the same hour the baseline looks back over.
    pub history_days: u32,
    /// No spike is called before this many days of history exist.
    pub min_history_days: u32,
    /// Items in the hour, at least.
    pub min_count: u32,
    /// Times the baseline, at least.
    pub min_ratio: f64,
    /// Robust standard deviations above the baseline, at least.
    pub min_z: f64,
    /// Level of a spike incident.
    pub level: Level,
    /// A spike incident resolves after this many hours without a spike.
    pub quiet_hours: u32,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            enabled: true,
            history_days: 14,
            min_history_days: 3,
            min_count: 5,
            min_ratio: 2.0,
            min_z: 4.0,
            level: Level::Orange,
            quiet_hours: 2,
        }
    }
}

fn default_alert_level() -> Level {
    Level::Yellow
}
fn default_tz() -> String {
    "Asia/Shanghai".into()
}
fn default_collector_level() -> Level {
    Level::Orange
}

// Chosen on the reprint test set (`yuqing bench reprints`): a page lies at
// most 17 bits in words (31 in words and word pairs) from the nearest other
// page of its article, while distinct articles on one topic in one place
// come within 13 bits in words but stay at least 34 apart combined.
fn default_simhash_distance() -> u32 {
    18
}
fn default_simhash_combined() -> u32 {
    32
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            min_level: default_alert_level(),
            timezone: default_tz(),
            simhash_max_distance: default_simhash_distance(),
            simhash_max_combined: default_simhash_combined(),
            collector_level: default_collector_level(),
            webhook: Vec::new(),
            spike: SpikeConfig::default(),
            person: Vec::new(),
            channel: Vec::new(),
            roster: Vec::new(),
            policy: Vec::new(),
            route: Vec::new(),
            ack_secret: None,
            ack_link_valid: default_ack_link_valid(),
            auto_resolve: default_auto_resolve(),
            retention_days: default_alert_retention_days(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Channel name, for logs and metrics.
    pub name: String,
    /// URL the JSON notification is POSTed to.
    pub url: String,
    /// Only incidents at or above this level are sent here.
    #[serde(default)]
    pub min_level: Option<Level>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// When the daily report (日报) is written: a cron expression
    /// (`minute hour day month weekday`) in `alert.timezone`. Each report
    /// covers the 24 hours before its scheduled time; a report missed while
    /// the system was down is written once when it comes back.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Incidents at or above this level are reported; when there are none,
    /// a nil report (零报告) is written instead.
    #[serde(default = "default_report_level")]
    pub min_level: Level,
    /// Where reports are written, relative to `data_dir`.
    #[serde(default = "default_report_dir")]
    pub dir: PathBuf,
    /// Title used in reports, e.g. the organisation's name.
    #[serde(default = "default_report_title")]
    pub title: String,
    /// Channels (`[[alert.channel]]` ids) every scheduled report, daily or
    /// nil, is delivered to: a summary with a link to the whole report on
    /// IM robots and SMS, the whole report by email. Deliveries go through
    /// the same outbox as alerts: retried, and a delivery incident when
    /// one finally fails.
    #[serde(default)]
    pub send_to: Vec<String>,
    /// Font families PDF reports are set in, tried in this order before
    /// the usual Chinese families (Noto Sans CJK SC, Source Han Sans SC,
    /// WenQuanYi Micro Hei, ...); each must be installed or in `font_dirs`.
    #[serde(default)]
    pub fonts: Vec<String>,
    /// Directories searched for fonts for PDF reports, besides the
    /// system's.
    #[serde(default)]
    pub font_dirs: Vec<PathBuf>,
}

fn default_schedule() -> String {
    "30 8 * * *".into()
}
fn default_report_level() -> Level {
    Level::Blue
}
fn default_report_dir() -> PathBuf {
    PathBuf::from("reports")
}
fn default_report_title() -> String {
    "舆情监测".into()
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            schedule: default_schedule(),
            min_level: default_report_level(),
            dir: default_report_dir(),
            title: default_report_title(),
            send_to: Vec::new(),
            fonts: Vec::new(),
            font_dirs: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_pick_the_highest_level_reached() {
        let t = Thresholds::default();
        assert_eq!(t.level_for(0), None);
        assert_eq!(t.level_for(20), Some(Level::Blue));
        assert_eq!(t.level_for(59), Some(Level::Yellow));
        assert_eq!(t.level_for(100), Some(Level::Red));
    }
}
