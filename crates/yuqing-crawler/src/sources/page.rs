//! Website article pages: links found on list pages, in sitemaps (indexes
//! followed, `.xml.gz` read) or in a feed; each new article fetched and its
//! main text extracted. Links already seen are not fetched again.

use std::collections::HashSet;

use chrono::Utc;
use scraper::{Html, Selector};
use url::Url;
use yuqing_config::{ConfigError, PageSource, SourceConfig};
use yuqing_model::{Engagement, Item, canonical_url, item_id_for_url};

use super::{Collected, Ctx, SourceError, check_wall_html, host_of, optional_selector, selector};

/// Characters of extracted text past which an article page is content,
/// not a wall.
const ARTICLE_TEXT: usize = 100;
use crate::decode::decode_html;
use crate::extract::extract_parsed;
use crate::fetch::FetchOutcome;
use crate::text::{element_text, parse_document, parse_time};

/// Sitemaps read per run at most (an index can list thousands).
const MAX_SITEMAPS: usize = 20;
/// Largest uncompressed sitemap, bytes.
const MAX_SITEMAP_BYTES: usize = 50 * 1024 * 1024;

#[derive(Debug)]
pub struct PageCollector {
    cfg: PageSource,
    link: Selector,
    title: Option<Selector>,
    content: Option<Selector>,
    author: Option<Selector>,
    time: Option<Selector>,
}

impl PageCollector {
    pub fn new(
        cfg: PageSource,
        index: usize,
        origin: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let opt = |field: &str, css: &Option<String>| optional_selector(origin, index, field, css);
        Ok(PageCollector {
            link: selector(origin, index, "link", &cfg.link)?,
            title: opt("title", &cfg.title)?,
            content: opt("content", &cfg.content)?,
            author: opt("author", &cfg.author)?,
            time: opt("time", &cfg.time)?,
            cfg,
        })
    }

    pub(super) async fn collect(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
    ) -> Result<Collected, SourceError> {
        let mut out = Collected::default();
        let (links, fresh) = self.discover(ctx, &mut out).await?;
        if links.is_empty() {
            // Empty only when something was read: unchanged lists (304)
            // hold nothing new.
            out.empty = fresh;
            out.unchanged = !fresh;
            return Ok(out);
        }
        // Articles already emitted are not fetched again.
        let by_id: Vec<(String, Url)> = links
            .into_iter()
            .map(|u| (item_id_for_url(u.as_str()), u))
            .collect();
        let ids: Vec<String> = by_id.iter().map(|(id, _)| id.clone()).collect();
        let unseen: HashSet<String> = ctx.state.unseen(&ids)?.into_iter().collect();
        let unseen: Vec<Url> = by_id
            .into_iter()
            .filter(|(id, _)| unseen.contains(id))
            .map(|(_, u)| u)
            .collect();
        // A list page is stored as read (its validators kept, so an
        // unchanged copy answers 304 next time) only when every article it
        // led to was read; otherwise the rest would wait for the list to
        // change.
        let mut complete = unseen.len() <= self.cfg.max_pages;
        for url in unseen.into_iter().take(self.cfg.max_pages) {
            match ctx.get(url.as_str(), None).await {
                Ok(FetchOutcome::Fresh(page)) => {
                    let (html, _) = decode_html(&page.body, page.content_type.as_deref(), None);
                    let doc = match parse_document(&html) {
                        Ok(doc) => doc,
                        Err(message) => {
                            out.warnings.push(format!("{url}: {message}"));
                            complete = false;
                            continue;
                        }
                    };
                    let item = self.item(cfg, ctx, &page.url, &url, &html, &doc);
                    // An article with a body of its own is content, whatever
                    // its comment box asks; a page with next to none may be
                    // a wall.
                    let thin = item.text.chars().count() < ARTICLE_TEXT
                        || crate::wall::detect_wall(&item.text).is_some();
                    if thin && let Err(e) = check_wall_html(url.as_str(), &html) {
                        out.warnings.push(e.to_string());
                        complete = false;
                        continue;
                    }
                    out.items.push(item);
                }
                Ok(FetchOutcome::NotModified) => {}
                Err(e) => {
                    out.warnings.push(e.to_string());
                    complete = false;
                }
            }
        }
        if !complete {
            out.validators.clear();
        }
        Ok(out)
    }

    /// Article links from every configured place, newest first where the
    /// place says, deduplicated by canonical URL.
    async fn discover(
        &self,
        ctx: &Ctx<'_>,
        out: &mut Collected,
    ) -> Result<(Vec<Url>, bool), SourceError> {
        let mut fresh = false;
        let mut links: Vec<Url> = Vec::new();
        let mut failures = Vec::new();
        for list in &self.cfg.list_urls {
            let validators = ctx.state.validators(list)?;
            match ctx.get(list, validators.as_ref()).await {
                Ok(FetchOutcome::Fresh(page)) => {
                    out.validators.push((list.clone(), page.validators.clone()));
                    fresh = true;
                    let (html, _) = decode_html(&page.body, page.content_type.as_deref(), None);
                    let doc = match parse_document(&html) {
                        Ok(doc) => doc,
                        Err(message) => {
                            failures.push(SourceError::Parse {
                                url: list.clone(),
                                message,
                            });
                            continue;
                        }
                    };
                    let a = Selector::parse("a[href]").expect("static selector");
                    let before = links.len();
                    for el in doc.select(&self.link) {
                        let hrefs: Vec<&str> = if el.value().name() == "a" {
                            el.value().attr("href").into_iter().collect()
                        } else {
                            el.select(&a)
                                .filter_map(|x| x.value().attr("href"))
                                .collect()
                        };
                        links.extend(hrefs.into_iter().filter_map(|h| page.url.join(h).ok()));
                    }
                    // No links: a wall, or a layout the selector misses. A
                    // list with links is a list, whatever its header asks.
                    if links.len() == before {
                        check_wall_html(list, &html)?;
                    }
                }
                Ok(FetchOutcome::NotModified) => {}
                Err(e) => failures.push(SourceError::from(e)),
            }
        }
        if let Some(sitemap) = &self.cfg.sitemap {
            match self.sitemap_links(ctx, sitemap, out).await {
                Ok((mut l, read)) => {
                    // Unchanged sitemaps (304) say nothing of emptiness.
                    fresh |= read;
                    links.append(&mut l);
                }
                Err(e) => failures.push(e),
            }
        }
        if let Some(feed) = &self.cfg.feed {
            match ctx.get(feed, None).await {
                Ok(FetchOutcome::Fresh(f)) => {
                    match super::parse_feed(&f.body, f.content_type.as_deref(), ctx.tz) {
                        Ok(parsed) => {
                            fresh = true;
                            links.extend(
                                parsed
                                    .entries
                                    .iter()
                                    .filter_map(|e| e.links.first())
                                    .filter_map(|l| f.url.join(&l.href).ok()),
                            );
                        }
                        Err(message) => failures.push(SourceError::Parse {
                            url: feed.clone(),
                            message,
                        }),
                    }
                }
                Ok(FetchOutcome::NotModified) => {}
                Err(e) => failures.push(e.into()),
            }
        }
        // Every discovery place failing is a failed run; some failing is a
        // warning.
        let places = self.cfg.list_urls.len()
            + usize::from(self.cfg.sitemap.is_some())
            + usize::from(self.cfg.feed.is_some());
        if places > 0 && failures.len() == places {
            return Err(failures.swap_remove(0));
        }
        out.warnings
            .extend(failures.iter().map(ToString::to_string));
        let mut seen = HashSet::new();
        let links = links
            .into_iter()
            .filter(|u| u.scheme() == "http" || u.scheme() == "https")
            .filter(|u| {
                self.cfg
                    .link_contains
                    .as_deref()
                    .is_none_or(|c| u.as_str().contains(c))
            })
            .filter(|u| seen.insert(canonical_url(u.as_str())))
            .collect();
        Ok((links, fresh))
    }

    /// Pages of a sitemap, following an index breadth-first, newest
    /// `<lastmod>` first, and whether any sitemap was read (not all
    /// unchanged). A child sitemap that cannot be read or parsed is a
    /// warning; the others are still read.
    async fn sitemap_links(
        &self,
        ctx: &Ctx<'_>,
        start: &str,
        out: &mut Collected,
    ) -> Result<(Vec<Url>, bool), SourceError> {
        let mut queue = vec![start.to_string()];
        let mut pages: Vec<(String, Option<String>)> = Vec::new();
        let mut read = 0;
        let mut fresh = false;
        while let Some(next) = queue.pop() {
            if read == MAX_SITEMAPS {
                out.warnings.push(format!(
                    "{start}: more than {MAX_SITEMAPS} sitemaps; the rest wait"
                ));
                break;
            }
            read += 1;
            // Sitemaps that list pages are fetched conditionally; an index
            // is always read, since a child can change while the index
            // stays the same.
            let validators = ctx.state.validators(&next)?;
            let (body, fresh_validators) = match ctx.get(&next, validators.as_ref()).await {
                Ok(FetchOutcome::Fresh(f)) => (f.body, f.validators),
                Ok(FetchOutcome::NotModified) => continue,
                Err(e) if next == start => return Err(e.into()),
                Err(e) => {
                    out.warnings.push(e.to_string());
                    continue;
                }
            };
            let parsed = crate::sitemap::maybe_gunzip(&body, MAX_SITEMAP_BYTES).and_then(|xml| {
                let (text, _) = crate::decode::decode_xml(&xml, None, None);
                crate::sitemap::parse(&text)
            });
            let map = match parsed {
                Ok(map) => map,
                Err(message) if next == start => {
                    return Err(SourceError::Parse { url: next, message });
                }
                Err(message) => {
                    out.warnings.push(format!("{next}: {message}"));
                    continue;
                }
            };
            if map.sitemaps.is_empty() {
                // A list of pages read (an index alone says nothing of
                // whether there are any).
                fresh = true;
                out.validators.push((next.clone(), fresh_validators));
            }
            pages.extend(map.pages);
            queue.extend(map.sitemaps.into_iter().rev());
        }
        // ISO dates sort as text; undated pages go last.
        pages.sort_by(|a, b| b.1.cmp(&a.1));
        let links = pages
            .into_iter()
            .filter_map(|(u, _)| Url::parse(&u).ok())
            .collect();
        Ok((links, fresh))
    }

    fn item(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
        final_url: &Url,
        link: &Url,
        html: &str,
        doc: &Html,
    ) -> Item {
        let now = Utc::now();
        let auto = extract_parsed(html, doc, Some(final_url.as_str()), ctx.tz, now);
        let pick = |sel: &Option<Selector>| {
            sel.as_ref()
                .and_then(|s| doc.select(s).next())
                .map(element_text)
                .filter(|t| !t.is_empty())
        };
        Item {
            id: item_id_for_url(link.as_str()),
            source: cfg.id().to_string(),
            source_kind: cfg.kind(),
            source_type: cfg.source_type(),
            site: host_of(final_url),
            url: canonical_url(link.as_str()),
            title: pick(&self.title).unwrap_or(auto.title),
            text: pick(&self.content).unwrap_or(auto.text),
            author: pick(&self.author).or(auto.author),
            published_at: pick(&self.time)
                .and_then(|t| {
                    parse_time(&t, ctx.tz)
                        .or_else(|| crate::extract::parse_visible_time(&t, ctx.tz, now))
                })
                .or(auto.published_at),
            fetched_at: now,
            engagement: Engagement::default(),
            parent_id: None,
        }
    }
}
