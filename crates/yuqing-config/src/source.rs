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
            SourceConfig::Forum(s) => &s.list_url,
            SourceConfig::Json(s) => &s.url,
            SourceConfig::Page(s) => s.start_url(),
            SourceConfig::Microblog(s) => &s.instance,
        }
    }

    /// Name of the field holding [`Self::start_url`], for error messages.
    pub fn start_url_field(&self) -> &'static str {
        match self {
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
    /// The board's thread list page.
    pub list_url: String,
    /// Selector of thread links (`<a href>`) on the list page.
    pub thread_link: String,
    /// Selector of the thread title on a thread page.
    #[serde(default = "default_title")]
    pub title: String,
    /// Selector of each post on a thread page; the first post is the thread
    /// itself, the others are replies.
    pub post: String,
    /// Attribute of the post element holding the forum's post id; without
    /// it, posts are numbered by position.
    pub post_id_attr: Option<String>,
    /// Selector of the author inside a post.
    pub post_author: Option<String>,
    /// Selector of the post's body inside a post.
    pub post_content: String,
    /// Selector of the post's time inside a post.
    pub post_time: Option<String>,
    /// At most this many threads are read per run, newest first as listed.
    #[serde(default = "default_max_threads")]
    pub max_threads: usize,
}

fn default_title() -> String {
    "title".into()
}
fn default_max_threads() -> usize {
    50
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
    /// Timeline endpoint. The cursor is added as `?{cursor_param}=<last id>`.
    pub url: String,
    /// Query parameter carrying the cursor (the newest id already seen).
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
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
