//! Acknowledging and resolving incidents (signed links, the console, the
//! API), incident timelines, silences, who is on duty, handover notes and
//! dead letters.

use axum::Extension;
use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use yuqing_alert::{AckOutcome, Matchers};

use crate::auth::Principal;
use crate::{ApiError, AppState};

fn api(status: StatusCode, m: impl Into<String>) -> ApiError {
    ApiError(status, m.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    api(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, yuqing_alert::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// Who acts: the login or token behind the request, or else the name the
/// request gives (required, and short). A request without a login may not
/// give the id of a login or token: the timeline would not tell them apart.
fn actor(st: &AppState, me: &Principal, who: &str) -> Result<String, ApiError> {
    if me.known() {
        return Ok(me.id.clone());
    }
    let w = who.trim();
    if w.is_empty() || w.chars().count() > 64 {
        return Err(api(
            StatusCode::BAD_REQUEST,
            "`who` must name the person acting (1-64 characters)",
        ));
    }
    if st.access.is_known_id(w) {
        return Err(api(
            StatusCode::FORBIDDEN,
            format!("`{w}` is a login: log in to act as `{w}`"),
        ));
    }
    Ok(w.to_string())
}

/// [`actor`] for the console's forms: a missing name asks for one in the
/// page's language; other refusals keep their status and message.
fn console_actor(st: &AppState, me: &Principal, who: &str) -> Result<String, Response> {
    actor(st, me, who).map_err(|e| match e.0 {
        StatusCode::BAD_REQUEST => (StatusCode::BAD_REQUEST, "请填写处置人").into_response(),
        status => (status, e.1).into_response(),
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct Who {
    #[serde(default)]
    who: String,
}

fn ack_result(id: i64, r: AckOutcome) -> Result<Json<serde_json::Value>, ApiError> {
    match r {
        AckOutcome::Acknowledged => Ok(Json(
            serde_json::json!({"id": id, "status": "acknowledged"}),
        )),
        AckOutcome::Already => Ok(Json(
            serde_json::json!({"id": id, "status": "acknowledged", "already": true}),
        )),
        AckOutcome::Resolved => Err(api(
            StatusCode::CONFLICT,
            format!("incident {id} is resolved"),
        )),
        AckOutcome::NotFound => Err(api(StatusCode::NOT_FOUND, format!("no incident {id}"))),
    }
}

/// `POST /api/incidents/{id}/ack` with `{"who": "…"}`.
pub(crate) async fn api_ack(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Json(w): Json<Who>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = actor(&st, &me, &w.who)?;
    let duty = st
        .duty
        .clone()
        .ok_or_else(|| api(StatusCode::SERVICE_UNAVAILABLE, "alerting is not running"))?;
    let store = st.alerts.clone();
    let r = blocking(move || store.acknowledge(&duty, id, &who, "api", Utc::now())).await?;
    ack_result(id, r)
}

/// `POST /api/incidents/{id}/resolve` with `{"who": "…"}`.
pub(crate) async fn api_resolve(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Json(w): Json<Who>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = actor(&st, &me, &w.who)?;
    let store = st.alerts.clone();
    match blocking(move || store.resolve_by(id, &who, "api", Utc::now())).await? {
        None => Err(api(StatusCode::NOT_FOUND, format!("no incident {id}"))),
        Some(changed) => Ok(Json(
            serde_json::json!({"id": id, "status": "resolved", "already": !changed}),
        )),
    }
}

/// `GET /api/incidents/{id}/timeline`: every transition, oldest first.
pub(crate) async fn api_timeline(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<yuqing_alert::TimelineEntry>>, ApiError> {
    let store = st.alerts.clone();
    let (found, tl) = blocking(move || Ok((store.incident(id)?, store.timeline(id)?))).await?;
    if found.is_none() {
        return Err(api(StatusCode::NOT_FOUND, format!("no incident {id}")));
    }
    Ok(Json(tl))
}

/// The console's buttons: `POST /incidents/{id}/ack` and `/resolve` with a
/// form field `who`; back to the incident page.
pub(crate) async fn console_ack(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Form(w): Form<Who>,
) -> Response {
    let who = match console_actor(&st, &me, &w.who) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(duty) = st.duty.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "alerting is not running").into_response();
    };
    let store = st.alerts.clone();
    match blocking(move || store.acknowledge(&duty, id, &who, "console", Utc::now())).await {
        Ok(AckOutcome::NotFound) => (StatusCode::NOT_FOUND, "no such incident").into_response(),
        Ok(_) => Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn console_resolve(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Form(w): Form<Who>,
) -> Response {
    let who = match console_actor(&st, &me, &w.who) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let store = st.alerts.clone();
    match blocking(move || store.resolve_by(id, &who, "console", Utc::now())).await {
        Ok(None) => (StatusCode::NOT_FOUND, "no such incident").into_response(),
        Ok(Some(_)) => Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AckLink {
    exp: i64,
    #[serde(default)]
    who: String,
    sig: String,
}

fn page(status: StatusCode, title: &str, body: &str, form: Option<(i64, &AckLink)>) -> Response {
    crate::single_page(
        status,
        "ack.html",
        include_str!("../templates/ack.html"),
        context! {
            title => title,
            body => body,
            form => form.map(|(id, l)| context! { id => id, exp => l.exp, who => &l.who, sig => &l.sig }),
        },
    )
}

/// Checks a link; the error page when it is not good.
fn check_link(
    st: &AppState,
    id: i64,
    l: &AckLink,
) -> Result<std::sync::Arc<yuqing_alert::Duty>, Response> {
    let Some(duty) = st.duty.clone() else {
        return Err(page(
            StatusCode::SERVICE_UNAVAILABLE,
            "无法确认",
            "预警服务未运行。",
            None,
        ));
    };
    match duty.verify_ack(id, l.exp, &l.who, &l.sig, Utc::now()) {
        Ok(()) => Ok(duty),
        Err(yuqing_alert::AckLinkError::Expired) => Err(page(
            StatusCode::GONE,
            "链接已过期",
            "此确认链接已过期，请在控制台中确认。",
            None,
        )),
        Err(yuqing_alert::AckLinkError::BadSignature) => Err(page(
            StatusCode::FORBIDDEN,
            "链接无效",
            "此确认链接无效。",
            None,
        )),
    }
}

/// `GET /ack/{id}?exp&who&sig`: the page a message links to. It only
/// shows the incident and a button, so a chat app's link preview cannot
/// acknowledge anything; the button posts the same signed fields.
pub(crate) async fn ack_page(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    Query(l): Query<AckLink>,
) -> Response {
    if let Err(r) = check_link(&st, id, &l) {
        return r;
    }
    let store = st.alerts.clone();
    match blocking(move || store.incident(id)).await {
        Ok(Some(i)) if i.status == yuqing_model::IncidentStatus::Resolved => page(
            StatusCode::CONFLICT,
            "预警已解除",
            &format!("预警 #{id}「{}」已解除，无需确认。", i.title),
            None,
        ),
        Ok(Some(i)) => page(
            StatusCode::OK,
            "确认处理预警",
            &format!("【{}预警】#{id}「{}」", i.level.zh(), i.title),
            Some((id, &l)),
        ),
        Ok(None) => page(StatusCode::NOT_FOUND, "没有此预警", "", None),
        Err(e) => e.into_response(),
    }
}

/// `POST /ack/{id}`: acknowledges through the signed link.
pub(crate) async fn ack_post(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    Form(l): Form<AckLink>,
) -> Response {
    let duty = match check_link(&st, id, &l) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let who = if l.who.is_empty() {
        "link".to_string()
    } else {
        l.who.clone()
    };
    let store = st.alerts.clone();
    match blocking(move || store.acknowledge(&duty, id, &who, "link", Utc::now())).await {
        Ok(AckOutcome::Acknowledged) => page(
            StatusCode::OK,
            "已确认",
            &format!("预警 #{id} 已确认，升级通知已停止。"),
            None,
        ),
        Ok(AckOutcome::Already) => page(
            StatusCode::OK,
            "已确认",
            &format!("预警 #{id} 此前已确认。"),
            None,
        ),
        Ok(AckOutcome::Resolved) => page(
            StatusCode::CONFLICT,
            "预警已解除",
            &format!("预警 #{id} 已解除，无需确认。"),
            None,
        ),
        Ok(AckOutcome::NotFound) => page(StatusCode::NOT_FOUND, "没有此预警", "", None),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewSilence {
    matchers: Matchers,
    /// RFC 3339; default now.
    starts_at: Option<String>,
    /// RFC 3339, or a span from the start (`2h`, `1d`).
    ends_at: String,
    /// Who silences; a login or token is recorded instead.
    #[serde(default)]
    author: String,
    comment: String,
}

/// `GET /api/silences`: silences not yet ended.
pub(crate) async fn silences(
    State(st): State<AppState>,
) -> Result<Json<Vec<yuqing_alert::Silence>>, ApiError> {
    let store = st.alerts.clone();
    Ok(Json(blocking(move || store.silences(Utc::now())).await?))
}

/// `POST /api/silences`: a time-boxed silence, with author and comment.
pub(crate) async fn add_silence(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(n): Json<NewSilence>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let bad = |m: String| api(StatusCode::BAD_REQUEST, m);
    if n.matchers.is_empty() {
        return Err(bad("a silence needs at least one matcher (incident, rule, topic, event, source_type, region, max_level)".into()));
    }
    let author = actor(&st, &me, &n.author)?;
    if n.comment.trim().is_empty() {
        return Err(bad("a silence needs a comment saying why".into()));
    }
    let now = Utc::now();
    let start = match n.starts_at.as_deref() {
        None | Some("") => now,
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|e| bad(format!("starts_at `{s}`: {e}")))?
            .with_timezone(&Utc),
    };
    let end = match DateTime::parse_from_rfc3339(&n.ends_at) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let span = yuqing_config::Dur::parse(&n.ends_at)
                .map_err(|e| bad(format!("ends_at: {e}, or an RFC 3339 time")))?;
            start + chrono::Duration::seconds(span.as_secs())
        }
    };
    if end <= start {
        return Err(bad("ends_at must be after starts_at".into()));
    }
    let store = st.alerts.clone();
    let (m, c) = (n.matchers, n.comment);
    let id = blocking(move || store.add_silence(&m, start, end, &author, &c, now)).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "starts_at": start, "ends_at": end})),
    ))
}

/// `DELETE /api/silences/{id}`: ends a silence now.
pub(crate) async fn expire_silence(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let store = st.alerts.clone();
    if blocking(move || store.expire_silence(id, Utc::now())).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(api(
            StatusCode::NOT_FOUND,
            format!("no active silence {id}"),
        ))
    }
}

/// `GET /api/oncall`: who is on duty now in each roster, with the latest
/// handover note.
pub(crate) async fn oncall(
    State(st): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(duty) = st.duty.clone() else {
        return Ok(Json(serde_json::json!([])));
    };
    let store = st.alerts.clone();
    let out = blocking(move || {
        let now = Utc::now();
        let mut out = Vec::new();
        for d in duty.on_duty_all(now) {
            let note = store.handovers(&d.roster, 1)?.into_iter().next();
            out.push(serde_json::json!({"on_duty": d, "handover": note}));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(serde_json::Value::Array(out)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewHandover {
    #[serde(default)]
    author: String,
    note: String,
}

/// `POST /api/rosters/{id}/handovers`: a note for the next shift.
pub(crate) async fn add_handover(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(roster): Path<String>,
    Json(n): Json<NewHandover>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if !st
        .duty
        .as_ref()
        .is_some_and(|d| d.rosters.contains_key(&roster))
    {
        return Err(api(StatusCode::NOT_FOUND, format!("no roster `{roster}`")));
    }
    let author = actor(&st, &me, &n.author)?;
    if n.note.trim().is_empty() {
        return Err(api(StatusCode::BAD_REQUEST, "the note is empty"));
    }
    let store = st.alerts.clone();
    let id = blocking(move || store.add_handover(&roster, &author, &n.note, Utc::now())).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))))
}

/// `GET /api/rosters/{id}/handovers`: the roster's notes, newest first.
pub(crate) async fn handovers(
    State(st): State<AppState>,
    Path(roster): Path<String>,
) -> Result<Json<Vec<yuqing_alert::Handover>>, ApiError> {
    let store = st.alerts.clone();
    Ok(Json(blocking(move || store.handovers(&roster, 50)).await?))
}

/// `GET /api/notifications/dead`: notifications that failed for good.
pub(crate) async fn dead_letters(
    State(st): State<AppState>,
) -> Result<Json<Vec<yuqing_alert::DeadLetter>>, ApiError> {
    let store = st.alerts.clone();
    Ok(Json(blocking(move || store.dead_letters(100)).await?))
}
