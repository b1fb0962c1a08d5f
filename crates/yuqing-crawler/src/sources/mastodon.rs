//! Mastodon-compatible servers through their public REST API: public,
//! local, hashtag and account timelines. Runs read forward from the last
//! status seen with `min_id` pages, so a source that was down catches up on
//! everything posted meanwhile (up to `max_pages` pages a run, the rest on
//! the next), with no gap as `since_id` would leave.

use chrono::{DateTime, Utc};
use serde_json::Value;
use url::Url;
use yuqing_config::{MastodonSource, SourceConfig};
use yuqing_model::{Engagement, Item, item_id_for_post};

use super::json::newer;
use super::{Collected, Ctx, SourceError, host_of};
use crate::fetch::FetchOutcome;
use crate::text::html_to_text;

/// Statuses per page: Mastodon's maximum.
const PAGE: usize = 40;

fn timeline_url(m: &MastodonSource) -> Result<Url, String> {
    let base = Url::parse(&m.instance).map_err(|e| format!("instance `{}`: {e}", m.instance))?;
    let (path, local) = match m.timeline.as_str() {
        "public" => ("/api/v1/timelines/public".to_string(), false),
        "local" => ("/api/v1/timelines/public".to_string(), true),
        t => match (t.strip_prefix("tag:"), t.strip_prefix("account:")) {
            (Some(tag), _) => (
                format!(
                    "/api/v1/timelines/tag/{}",
                    urlencode(tag.trim_start_matches('#'))
                ),
                false,
            ),
            (_, Some(id)) => (
                format!("/api/v1/accounts/{}/statuses", urlencode(id)),
                false,
            ),
            _ => return Err(format!("unknown timeline `{t}`")),
        },
    };
    let mut url = base.join(&path).map_err(|e| e.to_string())?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("limit", &PAGE.to_string());
        if local {
            q.append_pair("local", "true");
        }
        if let Some(token) = &m.access_token {
            q.append_pair("access_token", token);
        }
    }
    Ok(url)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) async fn collect(
    m: &MastodonSource,
    cfg: &SourceConfig,
    ctx: &Ctx<'_>,
) -> Result<Collected, SourceError> {
    let base = timeline_url(m).map_err(|message| SourceError::Parse {
        url: m.instance.clone(),
        message,
    })?;
    let host = host_of(&base);
    let start = ctx.state.cursor(cfg.id())?;
    let mut cursor = start.clone();
    let mut out = Collected::default();
    for page in 0..m.max_pages.max(1) {
        let mut url = base.clone();
        if let Some(c) = &cursor {
            url.query_pairs_mut().append_pair("min_id", c);
        }
        let body = match ctx.get(url.as_str(), None).await? {
            FetchOutcome::Fresh(f) => f.body,
            FetchOutcome::NotModified => break,
        };
        let statuses: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(a)) => a,
            Ok(other) => {
                let message = other.get("error").and_then(Value::as_str).map_or_else(
                    || "expected an array of statuses".to_string(),
                    |e| format!("server error: {e}"),
                );
                return Err(SourceError::Parse {
                    url: url.to_string(),
                    message,
                });
            }
            Err(e) => {
                super::check_wall(url.as_str(), &body, None)?;
                return Err(SourceError::Parse {
                    url: url.to_string(),
                    message: format!("invalid JSON: {e}"),
                });
            }
        };
        if page == 0 && start.is_none() && statuses.is_empty() {
            out.empty = true;
        }
        let full = statuses.len() >= PAGE;
        // As for JSON sources: an odd id does not move the cursor.
        let typical = super::json::typical_len(
            statuses
                .iter()
                .filter_map(|s| s.get("id").and_then(Value::as_str))
                .map(str::len),
            start.as_deref(),
        );
        for s in &statuses {
            let Some(id) = s.get("id").and_then(Value::as_str) else {
                out.warnings.push(format!("{url}: a status without an id"));
                continue;
            };
            if Some(id.len()) == typical && cursor.as_deref().is_none_or(|c| newer(id, c)) {
                cursor = Some(id.to_string());
            }
            out.items.push(status_item(s, &host, cfg));
        }
        // Without a cursor the first run reads only the newest page.
        if !full || start.is_none() {
            break;
        }
    }
    out.cursor = cursor.filter(|c| Some(c) != start.as_ref());
    Ok(out)
}

/// One status as an item; a boost is read as the status it boosts.
fn status_item(s: &Value, host: &str, cfg: &SourceConfig) -> Item {
    let s = s.get("reblog").filter(|r| r.is_object()).unwrap_or(s);
    let str_at = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
    let id = str_at("id");
    let url = Some(str_at("url"))
        .filter(|u| !u.is_empty())
        .unwrap_or(str_at("uri"))
        .to_string();
    let mut text = html_to_text(str_at("content"));
    let spoiler = str_at("spoiler_text");
    if !spoiler.is_empty() {
        text = format!("{spoiler}\n{text}");
    }
    let count = |k: &str| s.get(k).and_then(Value::as_u64);
    Item {
        id: item_id_for_post(host, id),
        source: cfg.id().to_string(),
        source_kind: cfg.kind(),
        source_type: cfg.source_type(),
        site: Url::parse(&url)
            .ok()
            .map(|u| host_of(&u))
            .unwrap_or_else(|| host.to_string()),
        url,
        title: String::new(),
        text,
        author: s
            .pointer("/account/acct")
            .and_then(Value::as_str)
            .map(str::to_string),
        published_at: DateTime::parse_from_rfc3339(str_at("created_at"))
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        fetched_at: Utc::now(),
        engagement: Engagement {
            replies: count("replies_count"),
            reposts: count("reblogs_count"),
            likes: count("favourites_count"),
            views: None,
        },
        parent_id: None,
    }
}
