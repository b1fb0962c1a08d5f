//! A generic JSON API (Weibo-like timelines): posts found by JSON pointers,
//! newest first, and a cursor (the newest id seen) passed back so each run
//! asks only for what is new. With `max_id_param`, a run pages back from
//! the newest post to the cursor, so a backlog is caught up; a backlog
//! longer than `max_pages` responses is finished by the next runs.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yuqing_config::{JsonSource, SourceConfig};
use yuqing_model::{Engagement, Item, item_id_for_post};

use super::{Collected, Ctx, SourceError};
use crate::fetch::FetchOutcome;
use crate::text::{html_to_text, parse_time};

/// Where a json source stands, stored as its cursor: the newest id
/// collected as plain text, or, while a backlog is being caught up, JSON
/// with the band still to read.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Every post at or below this id has been collected.
    since: Option<String>,
    /// The newest id collected while catching up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upto: Option<String>,
    /// Catching up: the posts from here down to `since` are still to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<String>,
}

impl Cursor {
    fn parse(stored: Option<String>) -> Cursor {
        match stored {
            Some(s) if s.starts_with('{') => serde_json::from_str(&s).unwrap_or(Cursor {
                since: Some(s),
                ..Cursor::default()
            }),
            since => Cursor {
                since,
                ..Cursor::default()
            },
        }
    }

    fn encode(&self) -> Option<String> {
        if self.resume.is_none() {
            self.since.clone()
        } else {
            serde_json::to_string(self).ok()
        }
    }
}

pub(super) async fn collect(
    m: &JsonSource,
    cfg: &SourceConfig,
    ctx: &Ctx<'_>,
) -> Result<Collected, SourceError> {
    let stored = ctx.state.cursor(cfg.id())?;
    let cursor = Cursor::parse(stored.clone());
    let base = url::Url::parse(&m.url).map_err(|e| SourceError::Parse {
        url: m.url.clone(),
        message: e.to_string(),
    })?;
    let platform = m
        .platform
        .clone()
        .unwrap_or_else(|| base.host_str().unwrap_or_default().to_string());
    let now = Utc::now();
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    let mut newest = cursor.upto.clone();
    // Posts at or above `max_id` are collected already (this run's earlier
    // pages, or the runs before when resuming).
    let mut max_id = cursor.resume.clone();
    // The first run reads only the newest page, and without `max_id_param`
    // every run reads one page.
    let mut reached = cursor.since.is_none() || m.max_id_param.is_none();
    let mut first_page_empty = false;
    let mut pages = 0;
    loop {
        let mut url = base.clone();
        if let Some(c) = &cursor.since {
            url.query_pairs_mut().append_pair(&m.cursor_param, c);
        }
        if let (Some(param), Some(mx)) = (&m.max_id_param, &max_id) {
            url.query_pairs_mut().append_pair(param, mx);
        }
        let fetched = match ctx.get(url.as_str(), None).await? {
            FetchOutcome::Fresh(f) => f,
            FetchOutcome::NotModified => break,
        };
        pages += 1;
        let parse_err = |message: String| SourceError::Parse {
            url: url.to_string(),
            message,
        };
        let doc: Value = match serde_json::from_slice(&fetched.body) {
            Ok(v) => v,
            Err(e) => {
                super::check_wall(url.as_str(), &fetched.body, fetched.content_type.as_deref())?;
                return Err(parse_err(format!("invalid JSON: {e}")));
            }
        };
        let posts = doc
            .pointer(&m.items)
            .and_then(Value::as_array)
            .ok_or_else(|| parse_err(format!("no array at `{}`", m.items)))?;
        if pages == 1 {
            first_page_empty = posts.is_empty();
        }
        // Only an id as long as most on the page moves the cursor: one odd
        // id (an advert's `ad_…`, a 20-digit id among 16-digit ones) ranks
        // above every real post, and would make the next runs skip them.
        let typical_len = typical_len(
            posts
                .iter()
                .filter_map(|p| p.pointer(&m.id_field).and_then(scalar))
                .map(|id| id.len()),
            cursor.since.as_deref(),
        );
        // The oldest post not collected before, where the next page starts.
        let mut oldest: Option<String> = None;
        // Whether the page went below `max_id`, and whether it held posts
        // above it (an API that ignores the parameter).
        let (mut below, mut above) = (false, false);
        // The page's last post of a typical id, and whether any post was
        // collected before: the backlog is reached when the last one was
        // (newest first), not when any was, since a timeline shows its
        // pinned post, however old, at the top.
        let (mut last_typical, mut old_seen): (Option<String>, bool) = (None, false);
        for (i, post) in posts.iter().enumerate() {
            let Some(post_id) = post.pointer(&m.id_field).and_then(scalar) else {
                warnings.push(format!("{url}: post {i} has no id at `{}`", m.id_field));
                continue;
            };
            if Some(post_id.len()) == typical_len {
                last_typical = Some(post_id.clone());
            }
            if cursor.since.as_deref().is_some_and(|c| !newer(&post_id, c)) {
                old_seen = true;
                continue;
            }
            // Only posts not collected before say whether the page went
            // below `max_id`: a pinned old post tops every page.
            if let Some(mx) = &max_id {
                below |= newer(mx, &post_id);
                above |= newer(&post_id, mx);
            }
            if oldest.as_deref().is_none_or(|o| newer(o, &post_id)) {
                oldest = Some(post_id.clone());
            }
            if max_id.as_deref().is_some_and(|mx| !newer(mx, &post_id)) {
                continue;
            }
            if Some(post_id.len()) == typical_len
                && newest.as_deref().is_none_or(|n| newer(&post_id, n))
            {
                newest = Some(post_id.clone());
            }
            items.push(post_item(m, cfg, ctx, post, &post_id, &platform, now));
        }
        reached |= match (&last_typical, cursor.since.as_deref()) {
            (Some(last), Some(since)) => !newer(last, since),
            _ => old_seen,
        };
        if reached {
            break;
        }
        if max_id.is_some() && !below {
            if above {
                warnings.push(format!(
                    "{url}: `{}` did not page back; the backlog below {} is not read",
                    m.max_id_param.as_deref().unwrap_or_default(),
                    max_id.as_deref().unwrap_or_default()
                ));
            }
            // Nothing older than what was read: the backlog is done.
            reached = true;
            break;
        }
        let Some(oldest) = oldest else {
            // An empty page: nothing older is left.
            reached = true;
            break;
        };
        max_id = Some(oldest);
        if pages >= m.max_pages.max(1) {
            break;
        }
    }
    let next = if reached {
        Cursor {
            since: newest.or(cursor.since.clone()),
            ..Cursor::default()
        }
    } else {
        warnings.push(format!(
            "{}: more than {} pages of new posts; the rest below {} next run",
            m.url,
            m.max_pages,
            max_id.as_deref().unwrap_or_default()
        ));
        Cursor {
            since: cursor.since.clone(),
            upto: newest,
            resume: max_id,
        }
    };
    let next = next.encode();
    Ok(Collected {
        // With a cursor an empty page only means nothing new.
        empty: cursor.since.is_none() && first_page_empty,
        unchanged: false,
        items,
        cursor: next.filter(|n| Some(n) != stored.as_ref()),
        validators: Vec::new(),
        warnings,
    })
}

fn post_item(
    m: &JsonSource,
    cfg: &SourceConfig,
    ctx: &Ctx<'_>,
    post: &Value,
    post_id: &str,
    platform: &str,
    now: chrono::DateTime<Utc>,
) -> Item {
    let text = post
        .pointer(&m.text_field)
        .and_then(Value::as_str)
        .map(html_to_text)
        .unwrap_or_default();
    let count = |ptr: &str| post.pointer(ptr).and_then(Value::as_u64);
    let link = m.url_template.replace("{id}", post_id);
    Item {
        id: item_id_for_post(platform, post_id),
        source: cfg.id().to_string(),
        source_kind: cfg.kind(),
        source_type: cfg.source_type(),
        site: url::Url::parse(&link)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| platform.to_string()),
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
    }
}

/// A JSON string or number as a string.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The length of the ids that may become a cursor: that of more than half
/// the page's ids, or, without such a majority (an advert beside one new
/// post), that of the cursor already kept. `None`: no id moves the cursor.
pub(super) fn typical_len(lens: impl Iterator<Item = usize>, kept: Option<&str>) -> Option<usize> {
    let mut lens: Vec<usize> = lens.collect();
    lens.sort_unstable();
    let n = lens.len();
    lens.chunk_by(|a, b| a == b)
        .find(|run| 2 * run.len() > n)
        .map(|run| run[0])
        .or(kept.map(str::len))
}

/// Whether id `a` is newer than `b`: numerically when both are numbers
/// (Weibo and Mastodon ids grow), else by length then lexically.
pub(super) fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => (a.len(), a) > (b.len(), b),
    }
}
