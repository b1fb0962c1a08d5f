//! The HTTP face of yuqing: the analysts' console, the JSON API, `/metrics`
//! for Prometheus and `/healthz` for probes.
//!
//! Everything shown comes from crawled, hostile text: pages are rendered by
//! templates with HTML auto-escaping, highlights are built from escaped
//! parts, and only http(s) links are ever emitted.

mod auth;
mod console;
mod duty;

pub use auth::{Access, COOKIE, Principal, Via, hash_password, new_token, sha256_hex};

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use yuqing_alert::AlertStore;
use yuqing_crawler::Crawler;
use yuqing_index::{IndexError, ItemIndex, SearchRequest};

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub index: Arc<ItemIndex>,
    pub alerts: AlertStore,
    pub crawler: Option<Arc<Crawler>>,
    pub registry: prometheus::Registry,
    /// The configured rules, for backtests of saved rules.
    pub rules: Arc<Vec<yuqing_config::RuleConfig>>,
    /// Routing and duty, for acknowledgements and who is on duty; none when
    /// the alerter does not run in this process.
    pub duty: Option<Arc<yuqing_alert::Duty>>,
    /// `alert.timezone`: the console's times, histogram days and backtest
    /// days are in it.
    pub timezone: chrono_tz::Tz,
    /// `[report]`: the title that heads special reports, and the fonts of
    /// reports downloaded as PDF.
    pub report: yuqing_config::ReportConfig,
    /// Logins, tokens, and what anonymous requests may do.
    pub access: Arc<Access>,
}

/// Seconds east of UTC of `tz` at `at`.
pub fn utc_offset(tz: chrono_tz::Tz, at: DateTime<Utc>) -> i32 {
    use chrono::{Offset, TimeZone};
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The router, apart from serving, so tests call it directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(console::home))
        .route("/incidents/{id}", get(console::incident))
        .route("/incidents/{id}/report", get(console::special_report))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/search", get(search))
        .route("/api/incidents", get(incidents))
        .route("/api/sources", get(sources))
        .route("/api/reports", get(reports))
        .route("/api/hotwords", get(hot_words))
        .route("/api/spikes", get(spikes))
        .route("/api/backtest", get(backtest))
        .route("/api/events/{id}", get(event))
        .route("/reports/{period_end}", get(console::report))
        .route("/incidents/{id}/ack", post(duty::console_ack))
        .route("/incidents/{id}/resolve", post(duty::console_resolve))
        .route("/ack/{id}", get(duty::ack_page).post(duty::ack_post))
        .route("/api/incidents/{id}/ack", post(duty::api_ack))
        .route("/api/incidents/{id}/resolve", post(duty::api_resolve))
        .route("/api/incidents/{id}/timeline", get(duty::api_timeline))
        .route("/api/silences", get(duty::silences).post(duty::add_silence))
        .route("/api/silences/{id}", delete(duty::expire_silence))
        .route("/api/oncall", get(duty::oncall))
        .route(
            "/api/rosters/{id}/handovers",
            get(duty::handovers).post(duty::add_handover),
        )
        .route("/api/notifications/dead", get(duty::dead_letters))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .with_state(state)
}

/// A page of one template, `source` (a `.html` name, so values are
/// escaped), rendered with `ctx` and answered with `status`.
pub(crate) fn single_page(
    status: StatusCode,
    name: &'static str,
    source: &'static str,
    ctx: minijinja::Value,
) -> Response {
    let mut env = minijinja::Environment::new();
    let html = env
        .add_template(name, source)
        .and_then(|()| env.get_template(name))
        .and_then(|t| t.render(ctx));
    match html {
        Ok(h) => (status, axum::response::Html(h)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template error: {e}"),
        )
            .into_response(),
    }
}

/// One error type for the API: a status and a message, as JSON.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub fn message(&self) -> &str {
        &self.1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// A query syntax error: 400 with the message and the character position
/// (counted from 0) where the query goes wrong.
pub struct QueryError {
    message: String,
    position: usize,
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": self.message, "position": self.position })),
        )
            .into_response()
    }
}

/// Either kind of API failure.
pub enum SearchError {
    Api(ApiError),
    Query(QueryError),
}

impl IntoResponse for SearchError {
    fn into_response(self) -> Response {
        match self {
            SearchError::Api(e) => e.into_response(),
            SearchError::Query(e) => e.into_response(),
        }
    }
}

impl From<ApiError> for SearchError {
    fn from(e: ApiError) -> Self {
        SearchError::Api(e)
    }
}

/// Maps an index error for `query`: syntax errors become a 400 with the
/// character position.
pub fn search_error(e: IndexError, query: &str) -> SearchError {
    match e {
        IndexError::Syntax { pos, message } => SearchError::Query(QueryError {
            position: query.get(..pos).map_or(0, |p| p.chars().count()),
            message: format!("invalid query: {message}"),
        }),
        IndexError::Query(m) => SearchError::Api(ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid query: {m}"),
        )),
        other => SearchError::Api(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            other.to_string(),
        )),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    /// RFC 3339 time, or a relative `24h` / `7d`.
    pub since: Option<String>,
    pub until: Option<String>,
    pub source_type: Option<String>,
    pub site: Option<String>,
    /// 正面/中性/负面 or positive/neutral/negative.
    pub sentiment: Option<String>,
    /// 蓝/黄/橙/红 or blue/yellow/orange/red.
    pub level: Option<String>,
    pub rule: Option<String>,
    /// An event id: only its items.
    pub event: Option<String>,
    /// `time` (default), `score` or `heat`.
    pub sort: Option<String>,
    /// `hour` or `day` histogram buckets.
    pub interval: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `2026-11-26T08:00:00Z`, a local `2026-11-26` (its midnight) or
/// `2026-11-26 08:30` in `tz`, or a span back from now (`90m`, `24h`,
/// `7d`).
pub fn parse_since(
    s: &str,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"));
    if let Ok(t) = local {
        use chrono::TimeZone;
        // In a gap of a clock change, the time after it.
        return tz
            .from_local_datetime(&t)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("invalid time `{s}` in {tz}"));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("invalid time `{s}`: use RFC 3339, YYYY-MM-DD [HH:MM] (local) or 24h / 7d")
    })?;
    let span = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        _ => return Err(format!("invalid time `{s}`: the unit must be m, h or d")),
    };
    span.and_then(|span| now.checked_sub_signed(span))
        .ok_or_else(|| format!("invalid time `{s}`: further back than any date"))
}

impl SearchParams {
    /// The index's request for these parameters, with histogram days in
    /// `tz`.
    pub fn to_request(&self, tz: chrono_tz::Tz) -> Result<SearchRequest, String> {
        let now = Utc::now();
        let since = self
            .since
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_since(s, now, tz))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_since(s, now, tz))
            .transpose()?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err("since must be before until".into());
        }
        Ok(SearchRequest {
            query: self.q.clone(),
            since,
            until,
            source_type: self
                .source_type
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    yuqing_model::SourceType::parse(s)
                        .map(|t| t.as_str().to_string())
                        .ok_or(format!("unknown source_type `{s}`"))
                })
                .transpose()?,
            site: non_empty(&self.site).map(|s| s.to_ascii_lowercase()),
            sentiment: non_empty(&self.sentiment)
                .map(|s| match s {
                    "positive" | "正面" => Ok("positive".to_string()),
                    "neutral" | "中性" => Ok("neutral".to_string()),
                    "negative" | "负面" => Ok("negative".to_string()),
                    _ => Err(format!(
                        "unknown sentiment `{s}`: positive, neutral or negative"
                    )),
                })
                .transpose()?,
            level: non_empty(&self.level)
                .map(|s| {
                    s.parse::<yuqing_model::Level>()
                        .map(|l| l.as_str().to_string())
                        .or_else(|_| {
                            [
                                yuqing_model::Level::Blue,
                                yuqing_model::Level::Yellow,
                                yuqing_model::Level::Orange,
                                yuqing_model::Level::Red,
                            ]
                            .into_iter()
                            .find(|l| l.zh() == s || l.zh().starts_with(s))
                            .map(|l| l.as_str().to_string())
                            .ok_or(format!("unknown level `{s}`: blue, yellow, orange or red"))
                        })
                })
                .transpose()?,
            rule: non_empty(&self.rule).map(str::to_string),
            ids: None,
            sort: match non_empty(&self.sort) {
                None => yuqing_index::SortBy::Time,
                Some(s) => yuqing_index::SortBy::parse(s)
                    .ok_or(format!("unknown sort `{s}`: time, score or heat"))?,
            },
            interval: non_empty(&self.interval)
                .map(|s| {
                    yuqing_index::Interval::parse(s)
                        .ok_or(format!("unknown interval `{s}`: hour or day"))
                })
                .transpose()?,
            utc_offset: Some(utc_offset(tz, Utc::now())),
            limit: self.limit.unwrap_or(20),
            offset: self.offset.unwrap_or(0),
        })
    }
}

async fn search(
    State(st): State<AppState>,
    Query(p): Query<SearchParams>,
) -> Result<impl IntoResponse, SearchError> {
    let mut req = p
        .to_request(st.timezone)
        .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?;
    if let Some(event) = non_empty(&p.event) {
        let store = st.alerts.clone();
        let event = event.to_string();
        let chain = tokio::task::spawn_blocking(move || store.event_chain(&event))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        req.ids = Some(chain.into_iter().map(|l| l.item_id).collect());
    }
    let index = st.index.clone();
    let query = req.query.clone();
    let res = tokio::task::spawn_blocking(move || index.search(&req))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| search_error(e, &query))?;
    Ok(Json(res))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<usize>,
}

async fn incidents(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let store = st.alerts.clone();
    let limit = p.limit.unwrap_or(100).min(1000);
    let list = tokio::task::spawn_blocking(move || store.incidents(limit))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(list))
}

async fn reports(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let store = st.alerts.clone();
    let limit = p.limit.unwrap_or(30).min(1000);
    let list = tokio::task::spawn_blocking(move || store.reports(limit))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(list))
}

/// The window of `/api/hotwords` and of the console's hot words.
#[derive(Debug, Deserialize, Default)]
pub struct HotWordParams {
    /// Start: RFC 3339, YYYY-MM-DD or a span back from now; default 24h.
    pub since: Option<String>,
    /// End, in the same forms; default now.
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// One hot word of a window.
#[derive(Debug, serde::Serialize)]
pub struct HotWord {
    pub word: String,
    /// Items published in the window with it among their keywords.
    pub items: u64,
}

/// Longest window of hot words: they are counted from `alert.db`, under
/// the lock the alerter records with.
pub const MAX_HOT_WORD_DAYS: i64 = 31;

/// Longest backtest: every stored item of the range is read.
pub const MAX_BACKTEST_DAYS: i64 = 366;

impl HotWordParams {
    /// The window `(from, to]`, checked.
    pub fn window(
        &self,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let pick = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_since(s, now, tz))
                .transpose()
        };
        let from = pick(&self.since)?.unwrap_or(now - Duration::hours(24));
        let to = pick(&self.until)?.unwrap_or(now);
        if from >= to {
            return Err("since must be before until".into());
        }
        if to - from > Duration::days(MAX_HOT_WORD_DAYS) {
            return Err(format!(
                "hot words cover at most {MAX_HOT_WORD_DAYS} days; narrow since/until"
            ));
        }
        Ok((from, to))
    }
}

/// The words most items of a window are about: keywords ranked by how
/// many items published in the window have them.
pub fn hot_words_in(
    store: &AlertStore,
    p: &HotWordParams,
    tz: chrono_tz::Tz,
) -> Result<Vec<HotWord>, ApiError> {
    let (from, to) = p
        .window(Utc::now(), tz)
        .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?;
    let limit = p.limit.unwrap_or(20).clamp(1, 200);
    Ok(store
        .hot_words(from, to, limit)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .into_iter()
        .map(|(word, items)| HotWord { word, items })
        .collect())
}

async fn hot_words(
    State(st): State<AppState>,
    Query(p): Query<HotWordParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (store, tz) = (st.alerts.clone(), st.timezone);
    let words = tokio::task::spawn_blocking(move || hot_words_in(&store, &p, tz))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(words))
}

/// A backtest: `rule` (a configured rule's id) or `q` (a draft query),
/// over `since` (default 30d) to `until` (default now).
#[derive(Debug, Deserialize, Default)]
pub struct BacktestParams {
    pub rule: Option<String>,
    pub q: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Examples per day (default 3, at most 20).
    pub examples: Option<usize>,
}

impl BacktestParams {
    /// The range `[since, until)`: `since` defaults to 30 days back,
    /// `until` to now (this very second included), and the range is at
    /// most [`MAX_BACKTEST_DAYS`].
    pub fn range(
        &self,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let since = parse_since(non_empty(&self.since).unwrap_or("30d"), now, tz)?;
        let until = non_empty(&self.until)
            .map(|u| parse_since(u, now, tz))
            .transpose()?
            .unwrap_or(now + Duration::seconds(1));
        if since >= until {
            return Err("since must be before until".into());
        }
        // `until` defaults to a second past now, so `since=366d` fits.
        if until - since > Duration::days(MAX_BACKTEST_DAYS) + Duration::seconds(1) {
            return Err(format!(
                "a backtest covers at most {MAX_BACKTEST_DAYS} days; narrow since/until"
            ));
        }
        Ok((since, until))
    }
}

/// The rule set a backtest runs: a configured rule (with its exclusions)
/// or a draft query.
pub fn backtest_rules(
    p: &BacktestParams,
    rules: &[yuqing_config::RuleConfig],
) -> Result<(yuqing_analysis::RuleSet, String), SearchError> {
    match (non_empty(&p.rule), non_empty(&p.q)) {
        (Some(id), None) => {
            let cfg = rules.iter().find(|r| r.id == id).ok_or_else(|| {
                ApiError(StatusCode::NOT_FOUND, format!("no rule with id `{id}`"))
            })?;
            let (set, errors) = yuqing_analysis::RuleSet::compile(std::slice::from_ref(cfg));
            if let Some(e) = errors.first() {
                return Err(ApiError(StatusCode::BAD_REQUEST, e.to_string()).into());
            }
            Ok((set, cfg.query.clone()))
        }
        (None, Some(q)) => yuqing_analysis::RuleSet::of_query(q)
            .map(|set| (set, q.to_string()))
            .map_err(|e| {
                search_error(
                    IndexError::Syntax {
                        pos: e.pos,
                        message: e.message,
                    },
                    q,
                )
            }),
        (None, None) => {
            // Every saved rule, each counted on its own.
            let (set, errors) = yuqing_analysis::RuleSet::compile(rules);
            if set.is_empty() {
                let why = errors
                    .first()
                    .map_or("no rules are configured".to_string(), |e| e.to_string());
                return Err(ApiError(StatusCode::BAD_REQUEST, why).into());
            }
            Ok((set, String::new()))
        }
        _ => Err(ApiError(
            StatusCode::BAD_REQUEST,
            "give rule (a configured rule's id) or q (a draft query), not both".into(),
        )
        .into()),
    }
}

async fn backtest(
    State(st): State<AppState>,
    Query(p): Query<BacktestParams>,
) -> Result<impl IntoResponse, SearchError> {
    let now = Utc::now();
    let (since, until) = p
        .range(now, st.timezone)
        .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?;
    let (rules, query) = backtest_rules(&p, &st.rules)?;
    let examples = p.examples.unwrap_or(3).min(20);
    let offset = utc_offset(st.timezone, now);
    let index = st.index.clone();
    let result =
        tokio::task::spawn_blocking(move || index.backtest(&rules, since, until, offset, examples))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| search_error(e, &query))?;
    Ok(Json(
        serde_json::json!({ "query": query, "backtest": result }),
    ))
}

#[derive(Debug, Deserialize)]
struct SpikeParams {
    since: Option<String>,
}

/// Topic volume spikes found in hours since `since` (default 7d).
async fn spikes(
    State(st): State<AppState>,
    Query(p): Query<SpikeParams>,
) -> Result<impl IntoResponse, ApiError> {
    let since = parse_since(p.since.as_deref().unwrap_or("7d"), Utc::now(), st.timezone)
        .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?;
    let store = st.alerts.clone();
    let list = tokio::task::spawn_blocking(move || store.spikes(since))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(list))
}

/// A reprint event: its first publisher, item count and heat, and its
/// chain of items in publication order.
async fn event(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let store = st.alerts.clone();
    let found = tokio::task::spawn_blocking(move || {
        Ok::<_, yuqing_alert::StoreError>(match store.event(&id)? {
            Some(e) => Some((e, store.event_chain(&id)?)),
            None => None,
        })
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match found {
        Some((event, chain)) => Ok(Json(serde_json::json!({ "event": event, "chain": chain }))),
        None => Err(ApiError(StatusCode::NOT_FOUND, "no such event".into())),
    }
}

async fn sources(State(st): State<AppState>) -> impl IntoResponse {
    Json(st.crawler.map(|c| c.health()).unwrap_or_default())
}

/// `/metrics` and `/healthz` alone, for a process that runs roles but not
/// the server.
pub fn metrics_app(registry: prometheus::Registry) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(r): State<prometheus::Registry>| async move { render_metrics(&r) }),
        )
        .with_state(registry)
}

async fn metrics(State(st): State<AppState>) -> Response {
    render_metrics(&st.registry)
}

fn render_metrics(registry: &prometheus::Registry) -> Response {
    let mut buf = String::new();
    let families = registry.gather();
    match prometheus::TextEncoder::new().encode_utf8(&families, &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Only http(s) links leave the server; anything else becomes `#`.
pub fn safe_url(u: &str) -> String {
    yuqing_alert::channels::web_url(u).map_or_else(|| "#".to_string(), String::from)
}

#[cfg(test)]
mod tests;
