//! The HTTP face of yuqing: the analysts' console, the JSON API, `/metrics`
//! for Prometheus and `/healthz` for probes.
//!
//! Everything shown comes from crawled, hostile text: pages are rendered by
//! templates with HTML auto-escaping, highlights are built from escaped
//! parts, and only http(s) links are ever emitted.

mod console;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
}

/// The router, apart from serving, so tests call it directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(console::home))
        .route("/incidents/{id}", get(console::incident))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/search", get(search))
        .route("/api/incidents", get(incidents))
        .route("/api/sources", get(sources))
        .route("/api/reports", get(reports))
        .route("/api/hotwords", get(hot_words))
        .route("/api/spikes", get(spikes))
        .route("/api/events/{id}", get(event))
        .route("/reports/{period_end}", get(console::report))
        .with_state(state)
}

/// One error type for the API: a status and a message, as JSON.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Query(m) => {
                ApiError(StatusCode::BAD_REQUEST, format!("invalid query: {m}"))
            }
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
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
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// Parses `2026-11-26T08:00:00Z`, `2026-11-26`, or a span back from now
/// (`90m`, `24h`, `7d`).
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid time `{s}`: use RFC 3339, YYYY-MM-DD or 24h / 7d"))?;
    let span = match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("invalid time `{s}`: the unit must be m, h or d")),
    };
    Ok(now - span)
}

impl SearchParams {
    pub fn to_request(&self) -> Result<SearchRequest, String> {
        let now = Utc::now();
        let since = self
            .since
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_since(s, now))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_since(s, now))
            .transpose()?;
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
            limit: self.limit.unwrap_or(20),
            offset: self.offset.unwrap_or(0),
        })
    }
}

async fn search(
    State(st): State<AppState>,
    Query(p): Query<SearchParams>,
) -> Result<impl IntoResponse, ApiError> {
    let req = p
        .to_request()
        .map_err(|m| ApiError(StatusCode::BAD_REQUEST, m))?;
    let index = st.index.clone();
    let res = tokio::task::spawn_blocking(move || index.search(&req))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
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

impl HotWordParams {
    /// The window `(from, to]`, checked.
    pub fn window(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let pick = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_since(s, now))
                .transpose()
        };
        let from = pick(&self.since)?.unwrap_or(now - Duration::hours(24));
        let to = pick(&self.until)?.unwrap_or(now);
        if from >= to {
            return Err("since must be before until".into());
        }
        Ok((from, to))
    }
}

/// The words most items of a window are about: keywords ranked by how
/// many items published in the window have them.
pub fn hot_words_in(store: &AlertStore, p: &HotWordParams) -> Result<Vec<HotWord>, ApiError> {
    let (from, to) = p
        .window(Utc::now())
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
    let store = st.alerts.clone();
    let words = tokio::task::spawn_blocking(move || hot_words_in(&store, &p))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(words))
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
    let since = parse_since(p.since.as_deref().unwrap_or("7d"), Utc::now())
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

async fn metrics(State(st): State<AppState>) -> Response {
    let mut buf = String::new();
    let families = st.registry.gather();
    match prometheus::TextEncoder::new().encode_utf8(&families, &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Only http(s) links leave the server; anything else becomes `#`.
pub fn safe_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) if p.scheme() == "http" || p.scheme() == "https" => p.to_string(),
        _ => "#".to_string(),
    }
}

#[cfg(test)]
mod tests;
