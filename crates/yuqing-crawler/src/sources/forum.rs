//! Forums: a list page of threads, then each thread page with its posts. The
//! first post is the thread; the others are replies, each an item of its own.

use chrono::Utc;
use scraper::{Html, Selector};
use yuqing_config::{ConfigError, ForumSource, PathSeg, SourceConfig, value_span};
use yuqing_model::{Engagement, Item, item_id_for_post, item_id_for_url};

use super::{Collected, Ctx, SourceError, host_of};
use crate::decode::decode_html;
use crate::fetch::{FetchOutcome, Fetched};
use crate::text::{element_text, parse_time};

#[derive(Debug)]
pub struct ForumCollector {
    cfg: ForumSource,
    thread_link: Selector,
    title: Selector,
    post: Selector,
    post_author: Option<Selector>,
    post_content: Selector,
    post_time: Option<Selector>,
}

impl ForumCollector {
    pub fn new(
        cfg: ForumSource,
        index: usize,
        origin: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let parse = |field: &'static str, css: &str| {
            Selector::parse(css).map_err(|e| {
                let mut err =
                    ConfigError::new(origin, format!("invalid CSS selector `{css}`: {e}"))
                        .field(format!("source[{index}].{field}"));
                if let Ok(text) = std::fs::read_to_string(origin)
                    && let Some(span) = value_span(
                        &text,
                        &[
                            PathSeg::Key("source"),
                            PathSeg::Index(index),
                            PathSeg::Key(field),
                        ],
                    )
                {
                    err = err.at_offset(&text, span.start);
                }
                err
            })
        };
        Ok(ForumCollector {
            thread_link: parse("thread_link", &cfg.thread_link)?,
            title: parse("title", &cfg.title)?,
            post: parse("post", &cfg.post)?,
            post_author: cfg
                .post_author
                .as_deref()
                .map(|s| parse("post_author", s))
                .transpose()?,
            post_content: parse("post_content", &cfg.post_content)?,
            post_time: cfg
                .post_time
                .as_deref()
                .map(|s| parse("post_time", s))
                .transpose()?,
            cfg,
        })
    }

    pub(super) async fn collect(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
    ) -> Result<Collected, SourceError> {
        let list = match ctx
            .fetcher
            .get(&self.cfg.list_url, None, ctx.policy)
            .await?
        {
            FetchOutcome::Fresh(f) => f,
            FetchOutcome::NotModified => return Ok(Collected::default()),
        };
        super::check_wall(&self.cfg.list_url, &list.body)?;
        let threads = self.thread_links(&list);
        let mut out = Collected::default();
        if threads.is_empty() {
            out.empty = true;
            out.warnings.push(format!(
                "{}: no thread links match `{}`",
                self.cfg.list_url, self.cfg.thread_link
            ));
            return Ok(out);
        }
        for url in threads.into_iter().take(self.cfg.max_threads) {
            match ctx.fetcher.get(url.as_str(), None, ctx.policy).await {
                Ok(FetchOutcome::Fresh(page)) => match self.posts(cfg, &page, ctx) {
                    Ok(mut items) => out.items.append(&mut items),
                    Err(e) => out.warnings.push(e.to_string()),
                },
                Ok(FetchOutcome::NotModified) => {}
                Err(e) => out.warnings.push(e.to_string()),
            }
        }
        Ok(out)
    }

    fn thread_links(&self, list: &Fetched) -> Vec<url::Url> {
        let (html, _) = decode_html(&list.body, list.content_type.as_deref(), tld(&list.url));
        let doc = Html::parse_document(&html);
        let mut seen = std::collections::HashSet::new();
        doc.select(&self.thread_link)
            .filter_map(|a| a.value().attr("href"))
            .filter_map(|href| list.url.join(href).ok())
            .filter(|u| seen.insert(u.to_string()))
            .collect()
    }

    fn posts(
        &self,
        cfg: &SourceConfig,
        page: &Fetched,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Item>, SourceError> {
        let (html, _) = decode_html(&page.body, page.content_type.as_deref(), tld(&page.url));
        let doc = Html::parse_document(&html);
        let title = doc
            .select(&self.title)
            .next()
            .map(element_text)
            .unwrap_or_default();
        let site = host_of(&page.url);
        let thread_url = page.url.to_string();
        let thread_id = item_id_for_url(&thread_url);
        let now = Utc::now();
        let mut items = Vec::new();
        for (i, post) in doc.select(&self.post).enumerate() {
            let Some(content) = post.select(&self.post_content).next() else {
                continue;
            };
            let text = element_text(content);
            let author = self
                .post_author
                .as_ref()
                .and_then(|s| post.select(s).next())
                .map(element_text)
                .filter(|a| !a.is_empty());
            let published_at = self
                .post_time
                .as_ref()
                .and_then(|s| post.select(s).next())
                .and_then(|t| {
                    // Discuz! keeps the exact time in a `title` attribute
                    // when the visible text is relative ("3 小时前").
                    t.value()
                        .attr("title")
                        .and_then(|a| parse_time(a, ctx.tz))
                        .or_else(|| parse_time(&element_text(t), ctx.tz))
                });
            let pid = self
                .cfg
                .post_id_attr
                .as_deref()
                .and_then(|a| post.value().attr(a))
                .map(str::to_string);
            let first = i == 0;
            let (id, url) = if first {
                (thread_id.clone(), thread_url.clone())
            } else {
                let pid = pid.unwrap_or_else(|| i.to_string());
                (
                    item_id_for_post(&format!("{site}{}", page.url.path()), &pid),
                    format!("{thread_url}#pid{pid}"),
                )
            };
            items.push(Item {
                id,
                source: cfg.id().to_string(),
                source_kind: cfg.kind(),
                source_type: cfg.source_type(),
                site: site.clone(),
                url,
                title: if first { title.clone() } else { String::new() },
                text,
                author,
                published_at,
                fetched_at: now,
                engagement: Engagement::default(),
                parent_id: (!first).then(|| thread_id.clone()),
            });
        }
        if items.is_empty() {
            return Err(SourceError::Parse {
                url: thread_url,
                message: format!(
                    "no posts match `{}` with content `{}`",
                    self.cfg.post, self.cfg.post_content
                ),
            });
        }
        let replies = items.len() as u64 - 1;
        if let Some(first) = items.first_mut() {
            first.engagement.replies = Some(replies);
        }
        Ok(items)
    }
}

fn tld(url: &url::Url) -> Option<&[u8]> {
    url.host_str()
        .and_then(|h| h.rsplit('.').next())
        .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::as_bytes)
}
