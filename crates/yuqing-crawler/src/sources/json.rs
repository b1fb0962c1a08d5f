//! A generic JSON API (Weibo-like timelines): posts found by JSON pointers,
//! newest first, and a cursor (the newest id seen) passed back so each run
//! asks only for what is new.

use chrono::Utc;
use serde_json::Value;
use yuqing_config::{JsonSource, SourceConfig};
use yuqing_model::{Engagement, Item, item_id_for_post};

use super::{Collected, Ctx, SourceError};
use crate::fetch::FetchOutcome;
use crate::text::{html_to_text, parse_time};

pub(super) async fn collect(
    m: &JsonSource,
    cfg: &SourceConfig,
    ctx: &Ctx<'_>,
) -> Result<Collected, SourceError> {
    let cursor = ctx.state.cursor(cfg.id())?;
    let mut url = url::Url::parse(&m.url).map_err(|e| SourceError::Parse {
        url: m.url.clone(),
        message: e.to_string(),
    })?;
    if let Some(c) = &cursor {
        url.query_pairs_mut().append_pair(&m.cursor_param, c);
    }
    let fetched = match ctx.get(url.as_str(), None).await? {
        FetchOutcome::Fresh(f) => f,
        FetchOutcome::NotModified => return Ok(Collected::default()),
    };
    let parse_err = |message: String| SourceError::Parse {
        url: url.to_string(),
        message,
    };
    let doc: Value = match serde_json::from_slice(&fetched.body) {
        Ok(v) => v,
        Err(e) => {
            super::check_wall(url.as_str(), &fetched.body)?;
            return Err(parse_err(format!("invalid JSON: {e}")));
        }
    };
    let posts = doc
        .pointer(&m.items)
        .and_then(Value::as_array)
        .ok_or_else(|| parse_err(format!("no array at `{}`", m.items)))?;
    let platform = m
        .platform
        .clone()
        .unwrap_or_else(|| url.host_str().unwrap_or_default().to_string());
    let now = Utc::now();
    let mut items = Vec::with_capacity(posts.len());
    let mut newest = cursor.clone();
    let mut warnings = Vec::new();
    for (i, post) in posts.iter().enumerate() {
        let Some(post_id) = post.pointer(&m.id_field).and_then(scalar) else {
            warnings.push(format!("{url}: post {i} has no id at `{}`", m.id_field));
            continue;
        };
        if cursor.as_deref().is_some_and(|c| !newer(&post_id, c)) {
            continue;
        }
        if newest.as_deref().is_none_or(|n| newer(&post_id, n)) {
            newest = Some(post_id.clone());
        }
        let text = post
            .pointer(&m.text_field)
            .and_then(Value::as_str)
            .map(html_to_text)
            .unwrap_or_default();
        let count = |ptr: &str| post.pointer(ptr).and_then(Value::as_u64);
        let link = m.url_template.replace("{id}", &post_id);
        items.push(Item {
            id: item_id_for_post(&platform, &post_id),
            source: cfg.id().to_string(),
            source_kind: cfg.kind(),
            source_type: cfg.source_type(),
            site: url::Url::parse(&link)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| platform.clone()),
            url: link,
            title: String::new(),
            text,
            author: post.pointer(&m.author_field).and_then(scalar),
            published_at: post
                .pointer(&m.time_field)
                .and_then(scalar)
                .and_then(|t| parse_time(&t, ctx.tz)),
            fetched_at: now,
            engagement: Engagement {
                replies: count(&m.comments_field),
                reposts: count(&m.reposts_field),
                likes: count(&m.likes_field),
                views: None,
            },
            parent_id: None,
        });
    }
    Ok(Collected {
        // With a cursor an empty page only means nothing new.
        empty: cursor.is_none() && posts.is_empty(),
        items,
        cursor: newest.filter(|n| Some(n) != cursor.as_ref()),
        validators: Vec::new(),
        warnings,
    })
}

/// A JSON string or number as a string.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether id `a` is newer than `b`: numerically when both are numbers
/// (Weibo and Mastodon ids grow), else by length then lexically.
pub(super) fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => (a.len(), a) > (b.len(), b),
    }
}
