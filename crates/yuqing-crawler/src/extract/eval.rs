//! The extraction benchmark harness: a folder of pages with ground truth,
//! scored by shingle F1 for this extractor and, in the same run, for the
//! readability fallback alone.
//!
//! The folder holds `ground-truth.json` (`{id: {"articleBody": …, "url": …}}`)
//! and `html/<id>.html.gz` (or `.html`), the layout of the scrapinghub
//! article-extraction benchmark.

use std::path::Path;

use chrono::Utc;
use serde::Serialize;

use super::score::{Tokens, page_counts, precision_recall_f1};
use super::{extract, readability_text};
use crate::decode::decode_html;

#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageScore {
    pub id: String,
    pub f1: f64,
    pub baseline_f1: f64,
    pub method: &'static str,
}

/// Metadata found exactly, over the pages whose ground truth has the field
/// (`title`, `author`, `published`; a `null` author or time means the page
/// states none, and finding none is then right).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetadataScores {
    pub title: (usize, usize),
    pub author: (usize, usize),
    pub published: (usize, usize),
    /// `id field: got … want …` for every miss.
    pub misses: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub pages: usize,
    pub extractor: Scores,
    pub baseline: Scores,
    pub per_page: Vec<PageScore>,
    pub metadata: MetadataScores,
}

fn scores(pages: &[(f64, f64, f64)]) -> Scores {
    let (precision, recall, f1) = precision_recall_f1(pages);
    Scores {
        precision,
        recall,
        f1,
    }
}

fn f1_of(c: (f64, f64, f64)) -> f64 {
    precision_recall_f1(&[c]).2
}

/// Scores every page of the folder with `n`-gram shingles of `tokens`.
pub fn evaluate(dir: &Path, n: usize, tokens: Tokens) -> Result<Evaluation, String> {
    let truth_path = dir.join("ground-truth.json");
    let truth_text = std::fs::read_to_string(&truth_path)
        .map_err(|e| format!("{}: {e}", truth_path.display()))?;
    let truth: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&truth_text).map_err(|e| format!("{}: {e}", truth_path.display()))?;
    let mut ids: Vec<&String> = truth.keys().collect();
    ids.sort();
    let tz = chrono_tz::Asia::Shanghai;
    let now = Utc::now();
    let (mut ours, mut base, mut per_page) = (Vec::new(), Vec::new(), Vec::new());
    let mut metadata = MetadataScores::default();
    for id in ids {
        let entry = &truth[id];
        let body = entry
            .get("articleBody")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let url = entry.get("url").and_then(|v| v.as_str());
        let bytes = read_page(dir, id)?;
        let (html, _) = decode_html(&bytes, None, None);
        let e = extract(&html, url, tz, now);
        let b = readability_text(&html, url).unwrap_or_default();
        let co = page_counts(body, &e.text, n, tokens);
        let cb = page_counts(body, &b, n, tokens);
        per_page.push(PageScore {
            id: id.clone(),
            f1: f1_of(co),
            baseline_f1: f1_of(cb),
            method: e.method,
        });
        ours.push(co);
        base.push(cb);
        score_metadata(id, entry, &e, &mut metadata);
    }
    if per_page.is_empty() {
        return Err(format!("{}: no pages", truth_path.display()));
    }
    Ok(Evaluation {
        pages: per_page.len(),
        extractor: scores(&ours),
        baseline: scores(&base),
        per_page,
        metadata,
    })
}

fn score_metadata(
    id: &str,
    truth: &serde_json::Value,
    got: &super::Extracted,
    out: &mut MetadataScores,
) {
    let mut misses = Vec::new();
    let mut tally = |count: &mut (usize, usize), field: &str, ok: bool, got: String| {
        count.1 += 1;
        if ok {
            count.0 += 1;
        } else {
            misses.push(format!("{id} {field}: got {got}, want {}", truth[field]));
        }
    };
    if let Some(want) = truth.get("title").and_then(|v| v.as_str()) {
        tally(
            &mut out.title,
            "title",
            got.title == want,
            format!("{:?}", got.title),
        );
    }
    if let Some(want) = truth.get("author") {
        let ok = want.as_str() == got.author.as_deref();
        tally(&mut out.author, "author", ok, format!("{:?}", got.author));
    }
    if let Some(want) = truth.get("published") {
        let want = want
            .as_str()
            .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
            .map(|w| w.with_timezone(&Utc));
        let shown = got.published_at.map(|t| t.to_rfc3339());
        tally(
            &mut out.published,
            "published",
            want == got.published_at,
            format!("{shown:?}"),
        );
    }
    out.misses.append(&mut misses);
}
fn read_page(dir: &Path, id: &str) -> Result<Vec<u8>, String> {
    let gz = dir.join("html").join(format!("{id}.html.gz"));
    if gz.exists() {
        let f = std::fs::File::open(&gz).map_err(|e| format!("{}: {e}", gz.display()))?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(f), &mut out)
            .map_err(|e| format!("{}: {e}", gz.display()))?;
        return Ok(out);
    }
    let plain = dir.join("html").join(format!("{id}.html"));
    std::fs::read(&plain).map_err(|e| format!("{}: {e}", plain.display()))
}
