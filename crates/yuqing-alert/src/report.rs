//! Daily reports (日报) and nil reports (零报告), as Markdown and HTML files.
//!
//! A report covers the 24 hours before its scheduled time. When no incident
//! at or above the reporting level was opened in that window, the report is
//! an explicit nil report: readers can tell "nothing happened" from "the
//! report did not arrive".

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::Environment;
use serde::Serialize;
use yuqing_config::ReportConfig;
use yuqing_model::{IncidentStatus, ReportKind, ReportRecord, SourceType};

use crate::store::{AlertStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("report template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("writing report {path}: {message}")]
    Write { path: String, message: String },
}

/// A built report.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ReportKind,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub markdown: String,
    pub html: String,
    /// The report in short, Markdown without tables, for IM robots.
    pub brief: String,
    pub incidents: u64,
    pub items: u64,
    /// The most severe level among its incidents (none for a nil report).
    pub level: Option<yuqing_model::Level>,
    /// The incident a special report is about.
    pub incident: Option<i64>,
}

/// Hot words a report lists.
const HOT_WORDS: usize = 10;

#[derive(Serialize)]
struct HotWordRow {
    word: String,
    word_md: String,
    items: u64,
}

#[derive(Serialize)]
struct SourceCount {
    name: String,
    count: u64,
}

#[derive(Serialize)]
struct SourceRow {
    name: String,
    name_md: String,
    state_zh: &'static str,
    reason: String,
    reason_md: String,
    last_success: String,
}

#[derive(Serialize)]
struct IncidentRow {
    level: &'static str,
    level_zh: &'static str,
    title: String,
    title_md: String,
    url: String,
    rule_name: String,
    rule_name_md: String,
    topic: String,
    topic_md: String,
    item_count: u64,
    status_zh: &'static str,
    opened: String,
}

/// Crawled text is hostile: in a Markdown table it must not open links
/// (bare addresses included, as viewers link them), images, HTML,
/// strike-through or new cells.
pub(crate) fn md_escape(s: &str) -> String {
    let plain = crate::channels::plain(s);
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '|' | '!' | '#' | '&'
            | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn status_zh(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Triggered => "待处置",
        IncidentStatus::Acknowledged => "已认领",
        IncidentStatus::Resolved => "已处置",
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Crawled text for IM robots, which honour no backslash escapes: made
    // inert with full-width look-alikes, and cut to a line's length.
    env.add_filter("im", |s: String| {
        let short: String = s.chars().take(80).collect();
        let cut = if short.len() < s.len() { "…" } else { "" };
        format!("{}{cut}", crate::channels::md_escape(&short))
    });
    for (name, source) in [
        ("report.md", include_str!("../templates/report.md")),
        ("report.html", include_str!("../templates/report.html")),
        (
            "report_brief.md",
            include_str!("../templates/report_brief.md"),
        ),
        ("incident.md", include_str!("../templates/incident.md")),
        ("incident.html", include_str!("../templates/incident.html")),
        (
            "incident_brief.md",
            include_str!("../templates/incident_brief.md"),
        ),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not parse: {e}"));
    }
    env
}

/// Builds the report of the period from `start` to `period_end`.
pub fn build_report(
    store: &AlertStore,
    cfg: &ReportConfig,
    tz: Tz,
    start: DateTime<Utc>,
    period_end: DateTime<Utc>,
) -> Result<Report, ReportError> {
    // Collector incidents are about our sources, not public opinion: they
    // appear in the sources section instead.
    let mut incidents = store.incidents_between(start, period_end, cfg.min_level)?;
    incidents.retain(|i| i.rule_id != "collector");
    let counts = store.item_counts_by_source_type(start, period_end)?;
    let sentiments = store.item_counts_by_sentiment(start, period_end)?;
    let hot = store.hot_words(start, period_end, HOT_WORDS)?;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let nil = incidents.is_empty();
    let rows: Vec<IncidentRow> = incidents
        .iter()
        .map(|i| IncidentRow {
            level: i.level.as_str(),
            level_zh: i.level.zh(),
            title_md: md_escape(&i.title),
            title: i.title.clone(),
            url: sanitize_url(&i.url),
            rule_name_md: md_escape(&i.rule_name),
            rule_name: i.rule_name.clone(),
            topic_md: md_escape(&i.topic),
            topic: i.topic.clone(),
            item_count: i.item_count,
            status_zh: status_zh(i.status),
            opened: local(i.opened_at),
        })
        .collect();
    let statuses = store.source_statuses()?;
    let troubled: Vec<SourceRow> = statuses
        .iter()
        .filter(|s| s.state != yuqing_model::SourceState::Ok)
        .map(|s| SourceRow {
            name: s.name.clone(),
            name_md: md_escape(&s.name),
            state_zh: s.state.zh(),
            reason: s.reason.clone().unwrap_or_default(),
            reason_md: md_escape(s.reason.as_deref().unwrap_or_default()),
            last_success: s
                .last_success_at
                .map(local)
                .unwrap_or_else(|| "从未".into()),
        })
        .collect();
    // The alerter's last downtime, when it falls in the period.
    let down = store
        .downtime()?
        .filter(|&(from, to)| from < period_end && to > start)
        .map(|(from, to)| format!("{} 至 {}", local(from), local(to)));
    let ctx = minijinja::context! {
        down => down,
        sources_total => statuses.len(),
        sources_ok => statuses.len() - troubled.len(),
        troubled_sources => minijinja::value::Serde(&troubled),
        title => cfg.title.clone(),
        kind_zh => if nil { "零报告" } else { "日报" },
        nil => nil,
        timezone => tz.name(),
        period_start => local(start),
        period_end => local(period_end),
        generated => local(Utc::now()),
        total_items => counts.iter().map(|(_, n)| n).sum::<u64>(),
        by_source_type => minijinja::value::Serde(counts.iter().map(|(t, n)| SourceCount {
            name: source_type_zh(t),
            count: *n,
        }).collect::<Vec<_>>()),
        incidents => minijinja::value::Serde(&rows),
        by_sentiment => minijinja::value::Serde(sentiments.iter().map(|(label, n)| SourceCount {
            name: match label.as_str() {
                "positive" => "正面",
                "negative" => "负面",
                _ => "中性",
            }
            .to_string(),
            count: *n,
        }).collect::<Vec<_>>()),
        hot_words => minijinja::value::Serde(hot.iter().map(|(w, n)| HotWordRow {
            word_md: md_escape(w),
            word: w.clone(),
            items: *n,
        }).collect::<Vec<_>>()),
        min_level_zh => format!("{}（{}级）", cfg.min_level.zh(), cfg.min_level.grade()),
    };
    let env = environment();
    let markdown = env.get_template("report.md")?.render(&ctx)?;
    let html = env.get_template("report.html")?.render(&ctx)?;
    let brief = env.get_template("report_brief.md")?.render(&ctx)?;
    Ok(Report {
        kind: if nil {
            ReportKind::Nil
        } else {
            ReportKind::Daily
        },
        period_start: start,
        period_end,
        markdown,
        html,
        brief,
        incidents: incidents.len() as u64,
        items: counts.iter().map(|(_, n)| n).sum(),
        level: incidents.iter().map(|i| i.level).max(),
        incident: None,
    })
}

/// A stored source type in Chinese (`forum` → 论坛), or as stored when it
/// is not one.
fn source_type_zh(t: &str) -> String {
    SourceType::parse(t).map_or_else(|| t.to_string(), |s| s.zh().to_string())
}

/// What happened to an incident, in the words of the timeline.
pub fn action_zh(action: &str) -> &str {
    match action {
        "triggered" => "触发",
        "raised" => "级别上调",
        "grew" => "继续激增",
        "spread" => "事件扩散",
        "notified" => "已通知",
        "held" => "暂缓通知",
        "escalated" => "升级通知",
        "exhausted" => "升级已到尽头",
        "acknowledged" => "已确认",
        "retriggered" => "重新触发",
        "resolved" => "已解除",
        "failed" => "发送失败",
        "unreachable" => "无人可通知",
        other => other,
    }
}

#[derive(Serialize)]
struct ChainRow {
    published: String,
    site: String,
    site_md: String,
    source_type: String,
    title: String,
    title_md: String,
    url: String,
    /// Position (from 1) of the item this one reprints.
    reprint_of: Option<usize>,
}

#[derive(Serialize)]
struct TimelineRow {
    at: String,
    actor: String,
    actor_md: String,
    action: String,
    detail: String,
    detail_md: String,
}

/// The special report (专报) of incident `id` as it stands at `now`: what
/// it is, how it spread (its event's reprint chain, or its items), and
/// what was done about it. `None` when there is no such incident.
pub fn build_incident_report(
    store: &AlertStore,
    cfg: &ReportConfig,
    tz: Tz,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Report>, ReportError> {
    let Some(i) = store.incident(id)? else {
        return Ok(None);
    };
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let event = store.event(&i.event_id)?;
    let mut links = store.event_chain(&i.event_id)?;
    if links.is_empty() {
        links = store.incident_items(id)?;
    }
    let position: std::collections::HashMap<&str, usize> = links
        .iter()
        .enumerate()
        .map(|(n, l)| (l.item_id.as_str(), n + 1))
        .collect();
    let items: Vec<ChainRow> = links
        .iter()
        .map(|l| ChainRow {
            published: local(l.published_at),
            site_md: md_escape(&l.site),
            site: l.site.clone(),
            source_type: source_type_zh(&l.source_type),
            title_md: md_escape(&l.title),
            title: l.title.clone(),
            url: sanitize_url(&l.url),
            reprint_of: l
                .reprint_of
                .as_deref()
                .and_then(|r| position.get(r).copied()),
        })
        .collect();
    let mut by_type: Vec<SourceCount> = Vec::new();
    for l in &links {
        let name = source_type_zh(&l.source_type);
        match by_type.iter_mut().find(|c| c.name == name) {
            Some(c) => c.count += 1,
            None => by_type.push(SourceCount { name, count: 1 }),
        }
    }
    by_type.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    let timeline: Vec<TimelineRow> = store
        .timeline(id)?
        .into_iter()
        .map(|t| TimelineRow {
            at: local(t.at),
            actor_md: md_escape(&t.actor),
            actor: t.actor,
            action: action_zh(&t.action).to_string(),
            detail_md: md_escape(&t.detail),
            detail: t.detail,
        })
        .collect();
    let first = event.as_ref().map(|e| {
        minijinja::context! {
            source => e.first_source.clone(),
            source_md => md_escape(&e.first_source),
            published => local(e.first_published_at),
            url => sanitize_url(&e.first_url),
        }
    });
    let ctx = minijinja::context! {
        title => cfg.title.clone(),
        timezone => tz.name(),
        generated => local(now),
        i => minijinja::context! {
            level => i.level.as_str(),
            level_zh => i.level.zh(),
            grade => i.level.grade(),
            status_zh => status_zh(i.status),
            title => i.title.clone(),
            title_md => md_escape(&i.title),
            rule_name => i.rule_name.clone(),
            rule_name_md => md_escape(&i.rule_name),
            topic => i.topic.clone(),
            topic_md => md_escape(&i.topic),
            opened => local(i.opened_at),
            updated => local(i.updated_at),
        },
        first => first,
        heat => event.as_ref().map(|e| format!("{:.1}", e.heat)),
        by_source_type => minijinja::value::Serde(&by_type),
        items => minijinja::value::Serde(&items),
        timeline => minijinja::value::Serde(&timeline),
    };
    let env = environment();
    Ok(Some(Report {
        kind: ReportKind::Special,
        period_start: i.opened_at,
        period_end: now,
        markdown: env.get_template("incident.md")?.render(&ctx)?,
        html: env.get_template("incident.html")?.render(&ctx)?,
        brief: env.get_template("incident_brief.md")?.render(&ctx)?,
        incidents: 1,
        items: links.len() as u64,
        level: Some(i.level),
        incident: Some(id),
    }))
}

/// Only http(s) links go into reports, with the characters that would end
/// a Markdown link or an HTML attribute encoded; anything else
/// (`javascript:`) is dropped.
fn sanitize_url(u: &str) -> String {
    crate::channels::safe_link(u).unwrap_or_default()
}

/// Writes `body` to `path` then renames it into place, so a reader never
/// sees half a file; the temporary file is named for this process and
/// removed when the writing fails.
pub fn write_whole(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&tmp, body)
        .and_then(|_| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// Writes the report as `<kind>-YYYYMMDD-HHMM.{md,html}` (local time) in
/// `dir`, and returns its record for the report log.
pub fn write_report(dir: &Path, tz: Tz, report: &Report) -> Result<ReportRecord, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let stamp = report.period_end.with_timezone(&tz).format("%Y%m%d-%H%M");
    let name = match report.kind {
        // Special reports are written on request, several a minute at
        // times: each keeps its own file.
        ReportKind::Special => format!(
            "{}-{}-{}",
            report.kind.as_str(),
            report.incident.unwrap_or_default(),
            report
                .period_end
                .with_timezone(&tz)
                .format("%Y%m%d-%H%M%S%.3f")
        ),
        _ => format!("{}-{stamp}", report.kind.as_str()),
    };
    let md = dir.join(format!("{name}.md"));
    let html = dir.join(format!("{name}.html"));
    for (path, body) in [(&md, &report.markdown), (&html, &report.html)] {
        write_whole(path, body.as_bytes()).map_err(|e| ReportError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(ReportRecord {
        kind: report.kind,
        period_start: report.period_start,
        period_end: report.period_end,
        incidents: report.incidents,
        items: report.items,
        markdown_path: md.display().to_string(),
        html_path: html.display().to_string(),
        created_at: Utc::now(),
    })
}
