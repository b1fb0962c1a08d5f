//! The source kinds. Each turns one configured source into the items it
//! currently publishes; the crawler records what is new.

mod feed;
mod forum;
mod json;
mod mastodon;
mod page;

use chrono_tz::Tz;
use yuqing_config::{ConfigError, SourceConfig};
use yuqing_model::Item;

use crate::fetch::{FetchError, FetchOutcome, Fetcher, Policy, ResponseTally, Validators};
use crate::state::{CrawlState, StateError};

pub use feed::parse_feed;
pub use forum::ForumCollector;
pub use page::PageCollector;

/// Why a run of a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {message}")]
    Parse { url: String, message: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{url}: blocked: {reason}")]
    Blocked { url: String, reason: String },
}

impl SourceError {
    /// Bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SourceError::Fetch(f) => f.label(),
            SourceError::Parse { .. } => "parse",
            SourceError::State(_) => "state",
            SourceError::Blocked { .. } => "blocked",
        }
    }
}

/// What one run found.
#[derive(Debug, Default)]
pub struct Collected {
    pub items: Vec<Item>,
    pub cursor: Option<String>,
    pub validators: Vec<(String, Validators)>,
    /// Failures that did not stop the run (one thread page of a forum).
    pub warnings: Vec<String>,
    /// The source answered but held nothing at all (a feed with no entries,
    /// a list page where the selectors match nothing): its layout may have
    /// changed.
    pub empty: bool,
    /// Every page the source reads answered 304 (not modified): the pages
    /// are as the last read found them, empty or not.
    pub unchanged: bool,
}

impl SourceError {
    /// Whether the site refuses us (403/418/432, a captcha, a login wall).
    pub fn is_block(&self) -> bool {
        matches!(self, SourceError::Blocked { .. })
            || matches!(
                self,
                SourceError::Fetch(FetchError::Status {
                    status: 403 | 418 | 432,
                    ..
                })
            )
    }
}

/// A list page that should be content but is a wall, read in its own
/// encoding (a GBK page's 请先登录 is not UTF-8).
pub(crate) fn check_wall(
    url: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<(), SourceError> {
    let head = &body[..body.len().min(64 * 1024)];
    let (html, _) = crate::decode::decode_html(head, content_type, None);
    check_wall_html(url, &html)
}

/// [`check_wall`] of a decoded page. Pages whose content the source's
/// selectors or the extractor found are not checked: a forum thread says
/// 您需要登录后才可以回帖 under its posts, and an article has a login box
/// for its comments.
pub(crate) fn check_wall_html(url: &str, html: &str) -> Result<(), SourceError> {
    match crate::wall::detect_wall(html) {
        Some(reason) => Err(SourceError::Blocked {
            url: url.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

pub(crate) struct Ctx<'a> {
    pub fetcher: &'a Fetcher,
    pub state: &'a CrawlState,
    pub tz: Tz,
    pub policy: Policy,
    /// Every response of the run, by class.
    pub responses: ResponseTally,
}

impl Ctx<'_> {
    /// GETs `url` under the source's policy, counting the responses.
    pub async fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<FetchOutcome, FetchError> {
        self.fetcher
            .get_tallied(url, validators, self.policy, Some(&self.responses))
            .await
    }
}

/// A source ready to run: config checked, selectors compiled.
#[derive(Debug)]
pub enum Source {
    Feed(yuqing_config::FeedSource),
    Forum(ForumCollector),
    Json(yuqing_config::JsonSource),
    Microblog(yuqing_config::MastodonSource),
    Page(PageCollector),
}

impl Source {
    /// Builds a source; errors name the config field.
    pub fn build(
        cfg: &SourceConfig,
        index: usize,
        origin: &std::path::Path,
    ) -> Result<Source, ConfigError> {
        Ok(match cfg {
            SourceConfig::Feed(f) => Source::Feed(f.clone()),
            SourceConfig::Forum(f) => Source::Forum(ForumCollector::new(f.clone(), index, origin)?),
            SourceConfig::Json(m) => Source::Json(m.clone()),
            SourceConfig::Microblog(m) => Source::Microblog(m.clone()),
            SourceConfig::Page(p) => Source::Page(PageCollector::new(p.clone(), index, origin)?),
        })
    }

    pub(crate) async fn collect(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
    ) -> Result<Collected, SourceError> {
        match self {
            Source::Feed(f) => feed::collect(f, cfg, ctx).await,
            Source::Forum(f) => f.collect(cfg, ctx).await,
            Source::Json(m) => json::collect(m, cfg, ctx).await,
            Source::Microblog(m) => mastodon::collect(m, cfg, ctx).await,
            Source::Page(p) => p.collect(cfg, ctx).await,
        }
    }
}

/// An error about field `field` of `[[source]]` number `index`, located in
/// the config file when it can be read.
pub(crate) fn field_error(
    origin: &std::path::Path,
    index: usize,
    field: &str,
    message: String,
) -> ConfigError {
    let mut err = ConfigError::new(origin, message).field(format!("source[{index}].{field}"));
    if let Ok(text) = std::fs::read_to_string(origin)
        && let Some(span) = yuqing_config::value_span(
            &text,
            &[
                yuqing_config::PathSeg::Key("source"),
                yuqing_config::PathSeg::Index(index),
                yuqing_config::PathSeg::Key(field),
            ],
        )
    {
        err = err.at_offset(&text, span.start);
    }
    err
}

/// Compiles the CSS selector in a source's `field`.
pub(crate) fn selector(
    origin: &std::path::Path,
    index: usize,
    field: &str,
    css: &str,
) -> Result<scraper::Selector, ConfigError> {
    scraper::Selector::parse(css).map_err(|e| {
        field_error(
            origin,
            index,
            field,
            format!("invalid CSS selector `{css}`: {e}"),
        )
    })
}

/// The same, for an optional selector.
pub(crate) fn optional_selector(
    origin: &std::path::Path,
    index: usize,
    field: &str,
    css: &Option<String>,
) -> Result<Option<scraper::Selector>, ConfigError> {
    css.as_deref()
        .map(|c| selector(origin, index, field, c))
        .transpose()
}

/// Host of a URL, for the item's `site`.
pub(crate) fn host_of(url: &url::Url) -> String {
    url.host_str().unwrap_or_default().to_ascii_lowercase()
}
