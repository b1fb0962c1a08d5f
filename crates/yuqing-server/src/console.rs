//! The analysts' console: server-rendered pages over the same data as the
//! API. minijinja escapes every value in `.html` templates.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{Environment, context};
use serde::Serialize;
use yuqing_model::{Incident, Level};

use crate::auth::Principal;
use crate::{AppState, HotWordParams, SearchParams, safe_url};

/// The user as pages show them: their name, whether they act under their
/// login (else the form asks who acts), and whether they may act at all.
fn me_view(me: &Principal) -> minijinja::Value {
    context! {
        name => &me.name,
        role => me.role.map(yuqing_config::Role::zh),
        known => me.known(),
        responder => me.role == Some(yuqing_config::Role::Responder),
    }
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template("console.html", include_str!("../templates/console.html"))
        .expect("console template parses");
    env.add_template("incident.html", include_str!("../templates/incident.html"))
        .expect("incident template parses");
    env
}

/// A time as the console shows it, in the configured time zone.
fn local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%m-%d %H:%M").to_string()
}

#[derive(Serialize)]
struct IncidentView {
    id: i64,
    level: &'static str,
    level_zh: &'static str,
    title: String,
    rule_id: String,
    rule_name: String,
    topic: String,
    item_count: u64,
    status: &'static str,
    opened: String,
    url: String,
    first_source: Option<String>,
}

fn status_zh(i: &Incident) -> &'static str {
    match i.status {
        yuqing_model::IncidentStatus::Triggered => "待处置",
        yuqing_model::IncidentStatus::Acknowledged => "已认领",
        yuqing_model::IncidentStatus::Resolved => "已处置",
    }
}

impl IncidentView {
    fn new(i: &Incident, first_source: Option<String>, tz: chrono_tz::Tz) -> Self {
        IncidentView {
            id: i.id,
            level: i.level.as_str(),
            level_zh: i.level.zh(),
            title: i.title.clone(),
            rule_id: i.rule_id.clone(),
            rule_name: i.rule_name.clone(),
            topic: i.topic.clone(),
            item_count: i.item_count,
            status: status_zh(i),
            opened: local(i.opened_at, tz),
            url: safe_url(&i.url),
            first_source,
        }
    }
}

#[derive(Serialize)]
struct Part {
    text: String,
    hl: bool,
}

/// Splits a snippet at its highlight ranges, so the template escapes every
/// part and adds `<mark>` itself.
fn parts(snippet: &str, highlights: &[(usize, usize)]) -> Vec<Part> {
    let mut out = Vec::new();
    let mut at = 0;
    for &(s, e) in highlights {
        if s < at
            || e <= s
            || e > snippet.len()
            || !snippet.is_char_boundary(s)
            || !snippet.is_char_boundary(e)
        {
            continue;
        }
        if s > at {
            out.push(Part {
                text: snippet[at..s].to_string(),
                hl: false,
            });
        }
        out.push(Part {
            text: snippet[s..e].to_string(),
            hl: true,
        });
        at = e;
    }
    if at < snippet.len() {
        out.push(Part {
            text: snippet[at..].to_string(),
            hl: false,
        });
    }
    out
}

fn render(name: &str, ctx: minijinja::Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template error: {e}"),
        )
            .into_response(),
    }
}

/// The console's hot-word window: `hw=1h|24h|7d` (default 24h).
#[derive(Debug, serde::Deserialize, Default)]
pub(crate) struct HomeParams {
    hw: Option<String>,
}

const HOT_WINDOWS: [(&str, &str); 3] = [("1h", "1 小时"), ("24h", "24 小时"), ("7d", "7 天")];

/// Facet counts as links that narrow the current search by that value.
fn facet_views(p: &SearchParams, f: &yuqing_index::Facets) -> Vec<minijinja::Value> {
    let base = |skip: &str| {
        let mut pairs: Vec<(&str, String)> = vec![("q", p.q.clone())];
        // Every filter of the current search is kept.
        for (k, v) in [
            ("since", &p.since),
            ("until", &p.until),
            ("source_type", &p.source_type),
            ("sentiment", &p.sentiment),
            ("level", &p.level),
            ("site", &p.site),
            ("rule", &p.rule),
            ("event", &p.event),
            ("sort", &p.sort),
            ("interval", &p.interval),
        ] {
            if let Some(v) = v.as_ref().filter(|v| k != skip && !v.is_empty()) {
                pairs.push((k, v.clone()));
            }
        }
        pairs
    };
    let zh = |name: &str, value: &str| -> String {
        match name {
            "source_type" => yuqing_model::SourceType::parse(value)
                .map_or(value.to_string(), |t| t.zh().to_string()),
            "sentiment" => match value {
                "positive" => "正面".into(),
                "neutral" => "中性".into(),
                "negative" => "负面".into(),
                v => v.into(),
            },
            "level" => value
                .parse::<Level>()
                .map_or(value.to_string(), |l| l.zh().to_string()),
            _ => value.to_string(),
        }
    };
    [
        ("source_type", "来源", &f.source_type),
        ("sentiment", "情感", &f.sentiment),
        ("level", "级别", &f.level),
        ("site", "站点", &f.site),
    ]
    .into_iter()
    .filter(|(_, _, v)| !v.is_empty())
    .map(|(name, label, values)| {
        let values: Vec<_> = values
            .iter()
            .take(8)
            .map(|c| {
                let mut pairs = base(name);
                pairs.push((name, c.value.clone()));
                let href = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish();
                context! { value => zh(name, &c.value), count => c.count, href => format!("?{href}") }
            })
            .collect();
        context! { label => label, values => values }
    })
    .collect()
}

pub(crate) async fn home(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Query(p): Query<SearchParams>,
    Query(h): Query<HomeParams>,
) -> Response {
    let tz = st.timezone;
    let window =
        h.hw.filter(|w| HOT_WINDOWS.iter().any(|(v, _)| v == w))
            .unwrap_or_else(|| "24h".into());
    let store = st.alerts.clone();
    let since = window.clone();
    let hot = tokio::task::spawn_blocking(move || {
        crate::hot_words_in(
            &store,
            &HotWordParams {
                since: Some(since),
                until: None,
                limit: Some(20),
            },
            tz,
        )
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    let store = st.alerts.clone();
    let incidents = tokio::task::spawn_blocking(move || store.incidents(50))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let results = match p.to_request(tz) {
        Err(e) => Err(e),
        Ok(mut req) => {
            req.limit = 30;
            let index = st.index.clone();
            match tokio::task::spawn_blocking(move || index.search(&req)).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let (hits, total, error, facets, histogram, verified) = match results {
        Ok(r) => (r.hits, r.total, None, r.facets, r.histogram, r.verified),
        Err(e) => (Vec::new(), 0, Some(e), Default::default(), Vec::new(), None),
    };
    // Counts of a NEAR search cover the candidates checked on their text.
    let unchecked = verified
        .filter(|v| v.truncated)
        .map(|v| (v.candidates, yuqing_index::MAX_VERIFIED));
    let facets = facet_views(&p, &facets);
    let peak = histogram.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let histogram: Vec<_> = histogram
        .iter()
        .map(|b| {
            context! {
                label => local(b.start, tz),
                count => b.count,
                height => (b.count * 100 / peak).max(u64::from(b.count > 0)),
            }
        })
        .collect();
    let hits: Vec<_> = hits
        .into_iter()
        .map(|h| {
            let level = h.level.as_deref().and_then(|l| l.parse::<Level>().ok());
            let title = if h.title.is_empty() {
                parts(&h.snippet.chars().take(40).collect::<String>(), &[])
            } else {
                parts(&h.title, &h.title_highlights)
            };
            context! {
                url => safe_url(&h.url),
                title => minijinja::value::Serde(title),
                level => level.map(Level::as_str),
                level_zh => level.map(Level::zh),
                snippet => minijinja::value::Serde(parts(&h.snippet, &h.highlights)),
                source_type => yuqing_model::SourceType::parse(&h.source_type).map_or(h.source_type.clone(), |t| t.zh().to_string()),
                site => h.site,
                author => h.author,
                published => h.published_at.map(|t| local(t, tz)).unwrap_or_default(),
            }
        })
        .collect();
    let store = st.alerts.clone();
    let reports: Vec<_> = tokio::task::spawn_blocking(move || store.reports(7))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            context! {
                id => r.period_end.timestamp(),
                kind_zh => r.kind.zh(),
                period_end => local(r.period_end, tz),
                incidents => r.incidents,
                items => r.items,
            }
        })
        .collect();
    let sources: Vec<_> = st
        .crawler
        .as_ref()
        .map(|c| c.health())
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            context! {
                name => s.name,
                kind => s.kind,
                last_success => s.last_success_at.map(|t| local(t, tz)).unwrap_or_else(|| "—".into()),
                total_new_items => s.total_new_items,
                last_new_items => s.last_new_items,
                usual_yield => format!("{:.1}", s.usual_yield),
                responses => s
                    .http_responses
                    .iter()
                    .map(|(class, n)| format!("{class} {n}"))
                    .collect::<Vec<_>>()
                    .join(" · "),
                consecutive_failures => s.consecutive_failures,
                state_zh => s.state.zh(),
                troubled => s.state != yuqing_model::SourceState::Ok,
                last_error => s.last_error,
            }
        })
        .collect();
    let on_duty: Vec<_> = st
        .duty
        .as_ref()
        .map(|d| d.on_duty_all(Utc::now()))
        .unwrap_or_default()
        .iter()
        .map(|d| {
            context! {
                roster => &d.roster_name,
                name => &d.name,
                note => &d.note,
                until => local(d.until, tz),
            }
        })
        .collect();
    render(
        "console.html",
        context! {
            me => me_view(&me),
            on_duty => on_duty,
            docs => st.index.num_docs(),
            incidents => minijinja::value::Serde(incidents.iter().map(|i| IncidentView::new(i, None, tz)).collect::<Vec<_>>()),
            facets => facets,
            histogram => histogram,
            sort => p.sort.clone().unwrap_or_default(),
            q => p.q,
            since => p.since.unwrap_or_default(),
            hits => hits,
            total => total,
            unchecked => unchecked,
            error => error,
            sources => sources,
            reports => reports,
            hot => hot
                .iter()
                .map(|w| context! {
                    word => &w.word,
                    items => w.items,
                    q => url::form_urlencoded::byte_serialize(w.word.as_bytes()).collect::<String>(),
                })
                .collect::<Vec<_>>(),
            hw => window,
            hot_windows => HOT_WINDOWS.to_vec(),
        },
    )
}

/// `?format=` of a report's page: `html` (the default), `md`, `docx` or
/// `pdf`, the last two as downloads.
#[derive(serde::Deserialize)]
pub(crate) struct ReportFormatParam {
    format: Option<String>,
}

impl ReportFormatParam {
    /// The format asked for, or the response refusing it.
    fn format(&self) -> Result<yuqing_alert::export::ReportFormat, Response> {
        use yuqing_alert::export::ReportFormat;
        match self.format.as_deref().map(ReportFormat::parse) {
            None => Ok(ReportFormat::Html),
            Some(Some(f)) => Ok(f),
            Some(None) => Err((
                StatusCode::BAD_REQUEST,
                "format: expected html, md, docx or pdf",
            )
                .into_response()),
        }
    }
}

/// A report in `format`, from its Markdown and HTML; `name` names the
/// downloaded file.
async fn report_in(
    cfg: &yuqing_config::ReportConfig,
    format: yuqing_alert::export::ReportFormat,
    markdown: String,
    html: String,
    name: String,
) -> Response {
    use axum::http::header;
    use yuqing_alert::export::{self, PdfFonts, ReportFormat};
    let (fonts, preferred) = (cfg.font_dirs.clone(), cfg.fonts.clone());
    let report = name.clone();
    let made = tokio::task::spawn_blocking(move || match format {
        ReportFormat::Html => Ok(html.into_bytes()),
        ReportFormat::Markdown => Ok(markdown.into_bytes()),
        ReportFormat::Docx => export::docx(&markdown),
        ReportFormat::Pdf => {
            let fonts = PdfFonts::cached(&fonts, &preferred)?;
            let pdf = export::pdf(&markdown, &fonts)?;
            if !pdf.missing.is_empty() {
                let missing: String = pdf.missing.iter().collect();
                tracing::warn!(%report, %missing, "no font has these characters: empty boxes in the PDF");
            }
            Ok(pdf.bytes)
        }
    })
    .await;
    let bytes = match made {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let content_type = match format {
        ReportFormat::Html => "text/html; charset=utf-8",
        ReportFormat::Markdown => "text/markdown; charset=utf-8",
        ReportFormat::Docx => {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        }
        ReportFormat::Pdf => "application/pdf",
    };
    let mut headers = vec![(header::CONTENT_TYPE, content_type.to_string())];
    if matches!(format, ReportFormat::Docx | ReportFormat::Pdf) {
        headers.push((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.{}\"", format.extension()),
        ));
    }
    let mut resp = bytes.into_response();
    for (k, v) in headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// A report from the report log, by its period end (Unix seconds). Only
/// files the log names are served, never a path from the request.
pub(crate) async fn report(
    State(st): State<AppState>,
    Path(period_end): Path<i64>,
    Query(q): Query<ReportFormatParam>,
) -> Response {
    let format = match q.format() {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let Some(period_end) = chrono::DateTime::from_timestamp(period_end, 0) else {
        return (StatusCode::NOT_FOUND, "no such report").into_response();
    };
    let store = st.alerts.clone();
    let found = tokio::task::spawn_blocking(move || store.report_at(period_end)).await;
    match found {
        Ok(Ok(Some(r))) => {
            let read = |p: String| async move {
                tokio::fs::read_to_string(&p)
                    .await
                    .map_err(|e| format!("report file {p}: {e}"))
            };
            let files = match format {
                // The HTML page alone needs no Markdown.
                yuqing_alert::export::ReportFormat::Html => {
                    read(r.html_path.clone()).await.map(|h| (String::new(), h))
                }
                _ => read(r.markdown_path.clone())
                    .await
                    .map(|m| (m, String::new())),
            };
            match files {
                Ok((markdown, html)) => {
                    let name = std::path::Path::new(&r.markdown_path)
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("report")
                        .to_string();
                    report_in(&st.report, format, markdown, html, name).await
                }
                Err(e) => (StatusCode::NOT_FOUND, e).into_response(),
            }
        }
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, "no such report").into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The special report (专报) of an incident, as it stands now.
pub(crate) async fn special_report(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ReportFormatParam>,
) -> Response {
    let format = match q.format() {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let cfg = st.report.clone();
    let (store, tz) = (st.alerts.clone(), st.timezone);
    let built = tokio::task::spawn_blocking(move || {
        yuqing_alert::build_incident_report(&store, &cfg, tz, id, chrono::Utc::now())
    })
    .await;
    match built {
        Ok(Ok(Some(r))) => {
            let name = format!("special-{id}");
            report_in(&st.report, format, r.markdown, r.html, name).await
        }
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, format!("no incident {id}")).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub(crate) async fn incident(
    State(st): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Response {
    let tz = st.timezone;
    let store = st.alerts.clone();
    let found = tokio::task::spawn_blocking(move || {
        let Some(i) = store.incident(id)? else {
            return Ok(None);
        };
        let event = store.event(&i.event_id)?;
        let chain = store.event_chain(&i.event_id)?;
        let timeline = store.timeline(id)?;
        Ok::<_, yuqing_alert::StoreError>(Some((i, event, chain, timeline)))
    })
    .await;
    match found {
        Ok(Ok(Some((i, event, chain, timeline)))) => {
            let timeline: Vec<_> = timeline
                .iter()
                .map(|t| {
                    context! {
                        at => local(t.at, tz),
                        actor => &t.actor,
                        action => yuqing_alert::action_zh(&t.action),
                        detail => &t.detail,
                    }
                })
                .collect();
            let ids: std::collections::HashMap<&str, usize> = chain
                .iter()
                .enumerate()
                .map(|(n, l)| (l.item_id.as_str(), n + 1))
                .collect();
            let chain: Vec<_> = chain
                .iter()
                .map(|l| {
                    context! {
                        published => local(l.published_at, tz),
                        site => &l.site,
                        source => &l.source,
                        source_type => yuqing_model::SourceType::parse(&l.source_type)
                            .map_or(l.source_type.clone(), |t| t.zh().to_string()),
                        title => &l.title,
                        url => safe_url(&l.url),
                        reprint_of => l.reprint_of.as_deref().and_then(|r| ids.get(r)),
                        distance => l.distance,
                        heat => format!("{:.1}", l.heat),
                    }
                })
                .collect();
            render(
                "incident.html",
                context! {
                    i => minijinja::value::Serde(IncidentView::new(&i, event.as_ref().map(|e| e.first_source.clone()), tz)),
                    heat => event.as_ref().map(|e| format!("{:.1}", e.heat)),
                    chain => chain,
                    timeline => timeline,
                    open => i.status != yuqing_model::IncidentStatus::Resolved,
                    triggered => i.status == yuqing_model::IncidentStatus::Triggered,
                    me => me_view(&me),
                },
            )
        }
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, "no such incident").into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_parts_follow_highlights() {
        let p = parts("a<b>被困c", &[(4, 10)]);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].text, "被困");
        assert!(p[1].hl);
        assert_eq!(p[0].text, "a<b>");
    }
}
