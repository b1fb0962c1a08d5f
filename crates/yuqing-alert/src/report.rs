//! Daily reports (日报) and nil reports (零报告), as Markdown and HTML files.
//!
//! A report covers the 24 hours before its scheduled time. When no incident
//! at or above the reporting level was opened in that window, the report is
//! an explicit nil report: readers can tell "nothing happened" from "the
//! report did not arrive".

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
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

/// Crawled text is hostile: in a Markdown table it must not open links,
/// images, HTML or new cells.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '|' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
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
    env.add_template("report.md", include_str!("../templates/report.md"))
        .expect("report.md template parses");
    env.add_template("report.html", include_str!("../templates/report.html"))
        .expect("report.html template parses");
    env.add_template(
        "report_brief.md",
        include_str!("../templates/report_brief.md"),
    )
    .expect("report_brief.md template parses");
    env
}

/// Builds the report for the 24 hours ending at `period_end`.
pub fn build_report(
    store: &AlertStore,
    cfg: &ReportConfig,
    tz: Tz,
    period_end: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let start = period_end - Duration::hours(24);
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
    let ctx = minijinja::context! {
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
            name: SourceType::parse(t).map_or_else(|| t.clone(), |s| s.zh().to_string()),
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
    })
}

/// Only http(s) links go into reports; anything else (`javascript:`) is dropped.
fn sanitize_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) if p.scheme() == "http" || p.scheme() == "https" => p.to_string(),
        _ => String::new(),
    }
}

/// Writes the report as `<kind>-YYYYMMDD-HHMM.{md,html}` (local time) in
/// `dir`, and returns its record for the report log.
pub fn write_report(dir: &Path, tz: Tz, report: &Report) -> Result<ReportRecord, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::Write {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let stamp = report.period_end.with_timezone(&tz).format("%Y%m%d-%H%M");
    let md = dir.join(format!("{}-{stamp}.md", report.kind.as_str()));
    let html = dir.join(format!("{}-{stamp}.html", report.kind.as_str()));
    for (path, body) in [(&md, &report.markdown), (&html, &report.html)] {
        // Write then rename, so a reader never sees half a report.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| ReportError::Write {
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
