//! `[[source]]` entries: a closed set of kinds, each with its own options.

use serde::Deserialize;
use yuqing_model::{SourceKind, SourceType};

/// One configured place to collect from. `kind` picks the collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// An RSS, Atom or JSON feed.
    Feed(FeedSource),
    /// A forum: list page → thread pages → posts, by CSS selectors.
    Forum(ForumSource),
    /// A JSON API (Weibo-like timelines): URL, JSON-pointer field mapping,
    /// cursor.
    Json(JsonSource),
    /// A Mastodon-compatible server's public API: public, local, hashtag or
    /// account timelines, read forward from the last status seen.
    Microblog(MastodonSource),
    /// Website article pages, found on list pages, in sitemaps or in a
    /// feed, with the main text extracted.
    Page(PageSource),
}

impl SourceConfig {
    pub fn id(&self) -> &str {
        match self {
            SourceConfig::Feed(s) => &s.id,
            SourceConfig::Forum(s) => &s.id,
            SourceConfig::Json(s) => &s.id,
            SourceConfig::Page(s) => &s.id,
            SourceConfig::Microblog(s) => &s.id,
        }
    }

    pub fn name(&self) -> &str {
        let (id, name) = match self {
            SourceConfig::Feed(s) => (&s.id, &s.name),
            SourceConfig::Forum(s) => (&s.id, &s.name),
            SourceConfig::Json(s) => (&s.id, &s.name),
            SourceConfig::Page(s) => (&s.id, &s.name),
            SourceConfig::Microblog(s) => (&s.id, &s.name),
        };
        name.as_deref().unwrap_or(id)
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            SourceConfig::Feed(_) => SourceKind::Feed,
            SourceConfig::Forum(_) => SourceKind::Forum,
            SourceConfig::Json(_) => SourceKind::Json,
            SourceConfig::Page(_) => SourceKind::Page,
            SourceConfig::Microblog(_) => SourceKind::Microblog,
        }
    }

    pub fn source_type(&self) -> SourceType {
        match self {
            SourceConfig::Feed(s) => s.source_type.unwrap_or(SourceType::News),
            SourceConfig::Forum(s) => s.source_type.unwrap_or(SourceType::Forum),
            SourceConfig::Json(s) => s.source_type.unwrap_or(SourceType::Microblog),
            SourceConfig::Page(s) => s.source_type.unwrap_or(SourceType::News),
            SourceConfig::Microblog(s) => s.source_type.unwrap_or(SourceType::Microblog),
        }
    }

    /// The region the source reports on, when configured.
    pub fn region(&self) -> Option<&str> {
        match self {
            SourceConfig::Feed(s) => s.region.as_deref(),
            SourceConfig::Forum(s) => s.region.as_deref(),
            SourceConfig::Json(s) => s.region.as_deref(),
            SourceConfig::Page(s) => s.region.as_deref(),
            SourceConfig::Microblog(s) => s.region.as_deref(),
        }
    }

    /// Whether the source may fetch private and loopback addresses.
    pub fn allow_private(&self) -> bool {
        match self {
            SourceConfig::Feed(s) => s.allow_private,
            SourceConfig::Forum(s) => s.allow_private,
            SourceConfig::Json(s) => s.allow_private,
            SourceConfig::Page(s) => s.allow_private,
            SourceConfig::Microblog(s) => s.allow_private,
        }
    }

    /// Seconds between runs; `None` means the crawler's default.
    pub fn interval_secs(&self) -> Option<u64> {
        match self {
            SourceConfig::Feed(s) => s.interval_secs,
            SourceConfig::Forum(s) => s.interval_secs,
            SourceConfig::Json(s) => s.interval_secs,
            SourceConfig::Page(s) => s.interval_secs,
            SourceConfig::Microblog(s) => s.interval_secs,
        }
    }

    /// The URLs this source starts from, for validation and health reports.
    pub fn start_url(&self) -> &str {
        match self {
            SourceConfig::Feed(s) => &s.url,
            SourceConfig::Forum(s) => s
                .list_url
                .as_deref()
                .or(s.base_url.as_deref())
                .unwrap_or(""),
            SourceConfig::Json(s) => &s.url,
            SourceConfig::Page(s) => s.start_url(),
            SourceConfig::Microblog(s) => &s.instance,
        }
    }

    /// Name of the field holding [`Self::start_url`], for error messages.
    pub fn start_url_field(&self) -> &'static str {
        match self {
            SourceConfig::Forum(f) if f.list_url.is_none() && f.base_url.is_some() => "base_url",
            SourceConfig::Forum(_) => "list_url",
            SourceConfig::Microblog(_) => "instance",
            SourceConfig::Page(p) if !p.list_urls.is_empty() => "list_urls",
            SourceConfig::Page(p) if p.sitemap.is_some() => "sitemap",
            SourceConfig::Page(_) => "feed",
            _ => "url",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSource {
    /// Unique id of the source, used in item records, metrics and logs.
    pub id: String,
    /// Display name (defaults to the id).
    pub name: Option<String>,
    /// What readers call it (新闻 by default).
    pub source_type: Option<SourceType>,
    /// Seconds between runs.
    pub interval_secs: Option<u64>,
    /// Allow private and loopback addresses (intranet sites). Off by
    /// default: a public source that redirects into the intranet is refused.
    #[serde(default)]
    pub allow_private: bool,
    /// The region the source reports on (a city or district), for routing
    /// its incidents.
    #[serde(default)]
    pub region: Option<String>,
    /// The feed's URL.
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForumSource {
    pub id: String,
    pub name: Option<String>,
    /// 论坛 by default.
    pub source_type: Option<SourceType>,
    pub interval_secs: Option<u64>,
    #[serde(default)]
    pub allow_private: bool,
    /// The region the source reports on (a city or district), for routing
    /// its incidents.
    #[serde(default)]
    pub region: Option<String>,
    /// `discuz` fills in every selector for Discuz! X forums, and with
    /// `base_url` and `forum_ids` the list pages too.
    pub preset: Option<String>,
    /// The forum's root, e.g. `https://bbs.example.com/` (with a preset).
    pub base_url: Option<String>,
    /// Board ids (Discuz! `fid`) to read, with a preset.
    #[serde(default)]
    pub forum_ids: Vec<u32>,
    /// A thread list page (without a preset, or in addition to its boards).
    pub list_url: Option<String>,
    /// Selector of thread links (`<a href>`) on the list page.
    pub thread_link: Option<String>,
    /// Selector of the thread title on a thread page (default `title`).
    pub title: Option<String>,
    /// Selector of each post on a thread page; the first post of the first
    /// page is the thread itself, the others are replies.
    pub post: Option<String>,
    /// Attribute of the post element holding the forum's post id; without
    /// it, posts are numbered by position.
    pub post_id_attr: Option<String>,
    /// Selector of the author inside a post.
    pub post_author: Option<String>,
    /// Selector of the post's body inside a post.
    pub post_content: Option<String>,
    /// Selector of the post's time inside a post; an exact time in a
    /// `title` attribute (Discuz! shows `3 天前` with the time in `title`)
    /// wins over the visible text.
    pub post_time: Option<String>,
    /// Selector of the "next page" link of a thread or a thread list.
    pub next_page: Option<String>,
    /// At most this many threads are read per run, in list order.
    #[serde(default = "default_max_threads")]
    pub max_threads: usize,
    /// At most this many pages of one thread are read.
    #[serde(default = "default_thread_pages")]
    pub max_thread_pages: usize,
    /// Pages of each thread list read per run, following `next_page`.
    #[serde(default = "default_list_pages")]
    pub max_list_pages: usize,
}

/// A forum source with its preset applied: every selector known.
#[derive(Debug, Clone)]
pub struct ForumSpec {
    pub list_urls: Vec<String>,
    pub thread_link: String,
    pub title: String,
    pub post: String,
    pub post_id_attr: Option<String>,
    pub post_author: Option<String>,
    pub post_content: String,
    pub post_time: Option<String>,
    pub next_page: Option<String>,
    pub max_threads: usize,
    pub max_thread_pages: usize,
    pub max_list_pages: usize,
}

impl ForumSource {
    /// Applies the preset; the error names the missing field.
    pub fn spec(&self) -> Result<ForumSpec, (&'static str, String)> {
        let discuz = match self.preset.as_deref() {
            None => false,
            Some("discuz") => true,
            Some(other) => {
                return Err((
                    "preset",
                    format!("unknown preset `{other}` (known: discuz)"),
                ));
            }
        };
        let pick = |v: &Option<String>, preset: &str| {
            v.clone().or_else(|| discuz.then(|| preset.to_string()))
        };
        let mut list_urls = Vec::new();
        if discuz && let Some(base) = &self.base_url {
            let base = base.trim_end_matches('/');
            for fid in &self.forum_ids {
                list_urls.push(format!(
                    "{base}/forum.php?mod=forumdisplay&fid={fid}&orderby=lastpost"
                ));
            }
        }
        list_urls.extend(self.list_url.clone());
        if list_urls.is_empty() {
            return Err((
                "list_url",
                if discuz {
                    "set list_url, or base_url with forum_ids".into()
                } else {
                    "missing: the thread list page".into()
                },
            ));
        }
        let need = |v: Option<String>, field: &'static str| {
            v.ok_or((
                field,
                format!("missing `{field}` (or use preset = \"discuz\")"),
            ))
        };
        Ok(ForumSpec {
            list_urls,
            thread_link: need(pick(&self.thread_link, "a.xst"), "thread_link")?,
            title: pick(&self.title, "#thread_subject").unwrap_or_else(|| "title".into()),
            post: need(pick(&self.post, "div[id^=post_]"), "post")?,
            post_id_attr: pick(&self.post_id_attr, "id"),
            post_author: pick(&self.post_author, ".authi a.xw1"),
            post_content: need(pick(&self.post_content, "td.t_f"), "post_content")?,
            post_time: pick(&self.post_time, "em[id^=authorposton]"),
            next_page: pick(&self.next_page, "div.pg a.nxt"),
            max_threads: self.max_threads,
            max_thread_pages: self.max_thread_pages.max(1),
            max_list_pages: self.max_list_pages.max(1),
        })
    }
}

fn default_max_threads() -> usize {
    50
}
fn default_thread_pages() -> usize {
    5
}
fn default_list_pages() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSource {
    pub id: String,
    pub name: Option<String>,
    /// 微博 by default.
    pub source_type: Option<SourceType>,
    pub interval_secs: Option<u64>,
    #[serde(default)]
    pub allow_private: bool,
    /// The region the source reports on (a city or district), for routing
    /// its incidents.
    #[serde(default)]
    pub region: Option<String>,
    /// Timeline endpoint. The cursor is added as `?{cursor_param}=<last id>`.
    pub url: String,
    /// Query parameter carrying the cursor (the newest id already seen).
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
    /// Query parameter asking for posts at or below an id (Weibo's
    /// `max_id`). With it, a run pages back from the newest post until it
    /// reaches the cursor, so a backlog longer than one response is caught
    /// up; without it, each run reads one response.
    pub max_id_param: Option<String>,
    /// Responses read per run when paging back (default 10). A longer
    /// backlog is finished by the next runs; nothing in it is skipped.
    #[serde(default = "default_json_pages")]
    pub max_pages: usize,
    /// Platform name used in item ids (defaults to the URL's host), so two
    /// sources reading one platform give one post one id.
    pub platform: Option<String>,
    /// JSON pointer to the array of posts in the response.
    #[serde(default = "default_items")]
    pub items: String,
    /// JSON pointers, relative to one post.
    #[serde(default = "default_id")]
    pub id_field: String,
    #[serde(default = "default_text")]
    pub text_field: String,
    #[serde(default = "default_author")]
    pub author_field: String,
    /// Time as RFC 3339, the Weibo format (`Tue Nov 26 10:00:00 +0800 2024`)
    /// or Unix seconds.
    #[serde(default = "default_time")]
    pub time_field: String,
    #[serde(default = "default_reposts")]
    pub reposts_field: String,
    #[serde(default = "default_comments")]
    pub comments_field: String,
    #[serde(default = "default_likes")]
    pub likes_field: String,
    /// Link of a post, `{id}` replaced by its id.
    pub url_template: String,
}

fn default_json_pages() -> usize {
    10
}
fn default_cursor_param() -> String {
    "since_id".into()
}
fn default_items() -> String {
    "/statuses".into()
}
fn default_id() -> String {
    "/id".into()
}
fn default_text() -> String {
    "/text".into()
}
fn default_author() -> String {
    "/user/screen_name".into()
}
fn default_time() -> String {
    "/created_at".into()
}
fn default_reposts() -> String {
    "/reposts_count".into()
}
fn default_comments() -> String {
    "/comments_count".into()
}
fn default_likes() -> String {
    "/attitudes_count".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSource {
    pub id: String,
    pub name: Option<String>,
    /// 新闻 by default.
    pub source_type: Option<SourceType>,
    pub interval_secs: Option<u64>,
    #[serde(default)]
    pub allow_private: bool,
    /// The region the source reports on (a city or district), for routing
    /// its incidents.
    #[serde(default)]
    pub region: Option<String>,
    /// List pages whose links lead to articles.
    #[serde(default)]
    pub list_urls: Vec<String>,
    /// Selector of article links on the list pages (`a[href]` inside it).
    #[serde(default = "default_link")]
    pub link: String,
    /// A sitemap or sitemap index (`.xml` or `.xml.gz`); indexes are followed.
    pub sitemap: Option<String>,
    /// A feed whose entries link to the articles.
    pub feed: Option<String>,
    /// Only links containing this text are articles (e.g. `/content/`).
    pub link_contains: Option<String>,
    /// New articles fetched per run at most; the rest wait for the next run.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Per-site selectors; without them the article extractor decides.
    pub title: Option<String>,
    pub content: Option<String>,
    pub author: Option<String>,
    pub time: Option<String>,
}

impl PageSource {
    /// The first discovery URL.
    pub fn start_url(&self) -> &str {
        self.list_urls
            .first()
            .or(self.sitemap.as_ref())
            .or(self.feed.as_ref())
            .map_or("", String::as_str)
    }
}

fn default_link() -> String {
    "a[href]".into()
}
fn default_max_pages() -> usize {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonSource {
    pub id: String,
    pub name: Option<String>,
    /// 微博 by default.
    pub source_type: Option<SourceType>,
    pub interval_secs: Option<u64>,
    #[serde(default)]
    pub allow_private: bool,
    /// The region the source reports on (a city or district), for routing
    /// its incidents.
    #[serde(default)]
    pub region: Option<String>,
    /// The server, e.g. `https://mastodon.social`.
    pub instance: String,
    /// `public`, `local`, `tag:<hashtag>` or `account:<id>`.
    #[serde(default = "default_timeline")]
    pub timeline: String,
    /// Pages of 40 statuses read per run while catching up.
    #[serde(default = "default_mastodon_pages")]
    pub max_pages: usize,
    /// Bearer token, for servers that require one for timelines.
    pub access_token: Option<String>,
}

fn default_timeline() -> String {
    "public".into()
}
fn default_mastodon_pages() -> usize {
    5
}
