//! Forums: thread list pages, then each thread's pages with their posts.
//! The first post of a thread is the thread; the others are replies, each
//! an item of its own. `preset = "discuz"` knows Discuz! X's markup.

use chrono::Utc;
use scraper::{ElementRef, Selector};
use yuqing_config::{ConfigError, ForumSource, ForumSpec, SourceConfig};
use yuqing_model::{Engagement, Item, item_id_for_post, item_id_for_url};

use super::{
    Collected, Ctx, SourceError, check_wall, check_wall_html, field_error, host_of,
    optional_selector, selector,
};
use crate::decode::decode_html;
use crate::fetch::{FetchOutcome, Fetched};
use crate::text::{element_text, parse_document, parse_time};

/// Threads remembered where reading stopped, at most.
const REMEMBERED_THREADS: usize = 1_000;

/// Where reading each long thread goes on (the source's cursor): a thread
/// longer than `max_thread_pages` is read on from the next page in the
/// runs after, and a thread read to its end from its last page, where new
/// replies arrive. Only with `post_id_attr`: without it a reply's id is its
/// position, which a run that starts mid-thread would not know.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// (thread URL, page to read next, thread title), least recent first.
    threads: Vec<(String, String, String)>,
}

impl Progress {
    fn parse(stored: Option<&str>) -> Progress {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    /// The page to read `thread` from, and its title, forgotten until
    /// the thread is read again: a page that fails starts the thread over.
    fn take(&mut self, thread: &str) -> Option<(String, String)> {
        let i = self.threads.iter().position(|t| t.0 == thread)?;
        let (_, page, title) = self.threads.remove(i);
        Some((page, title))
    }

    fn put(&mut self, thread: String, page: String, title: String) {
        self.threads.retain(|t| t.0 != thread);
        self.threads.push((thread, page, title));
        if self.threads.len() > REMEMBERED_THREADS {
            self.threads.remove(0);
        }
    }
}

#[derive(Debug)]
pub struct ForumCollector {
    spec: ForumSpec,
    thread_link: Selector,
    title: Selector,
    post: Selector,
    post_author: Option<Selector>,
    post_content: Selector,
    post_time: Option<Selector>,
    next_page: Option<Selector>,
}

impl ForumCollector {
    pub fn new(
        cfg: ForumSource,
        index: usize,
        origin: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let spec = cfg
            .spec()
            .map_err(|(field, msg)| field_error(origin, index, field, msg))?;
        let parse = |field: &str, css: &str| selector(origin, index, field, css);
        let opt = |field: &str, css: &Option<String>| optional_selector(origin, index, field, css);
        Ok(ForumCollector {
            thread_link: parse("thread_link", &spec.thread_link)?,
            title: parse("title", &spec.title)?,
            post: parse("post", &spec.post)?,
            post_author: opt("post_author", &spec.post_author)?,
            post_content: parse("post_content", &spec.post_content)?,
            post_time: opt("post_time", &spec.post_time)?,
            next_page: opt("next_page", &spec.next_page)?,
            spec,
        })
    }

    pub(super) async fn collect(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
    ) -> Result<Collected, SourceError> {
        let mut out = Collected::default();
        let mut threads: Vec<url::Url> = Vec::new();
        let mut failures = Vec::new();
        let mut fresh = 0;
        for list_url in &self.spec.list_urls {
            let mut next = Some(list_url.clone());
            for page in 0..self.spec.max_list_pages {
                let Some(url) = next.take() else { break };
                // An unchanged list page (304) means no thread on it has a
                // new reply: its threads are not fetched again.
                let validators = ctx.state.validators(&url)?;
                match ctx.get(&url, validators.as_ref()).await {
                    Ok(FetchOutcome::Fresh(list)) => {
                        out.validators.push((url.clone(), list.validators.clone()));
                        fresh += 1;
                        // A list page that cannot be read fails as a list
                        // that cannot be fetched: the other lists go on.
                        let (links, following) = match self.list_page(&list) {
                            Ok(read) => read,
                            Err(e) if page == 0 => {
                                failures.push(e);
                                continue;
                            }
                            Err(e) => {
                                out.warnings.push(e.to_string());
                                continue;
                            }
                        };
                        // No thread links: a wall, or markup the selector
                        // misses. A board with threads is read, whatever
                        // it tells guests (您需要登录后才可以发帖).
                        if links.is_empty() {
                            check_wall(&url, &list.body, list.content_type.as_deref())?;
                        }
                        for u in links {
                            if !threads.contains(&u) {
                                threads.push(u);
                            }
                        }
                        next = following.map(|u| u.to_string());
                    }
                    Ok(FetchOutcome::NotModified) => {}
                    Err(e) if page == 0 => failures.push(SourceError::from(e)),
                    Err(e) => out.warnings.push(e.to_string()),
                }
            }
        }
        if failures.len() == self.spec.list_urls.len() {
            return Err(failures.swap_remove(0));
        }
        out.warnings
            .extend(failures.iter().map(ToString::to_string));
        if threads.is_empty() {
            if fresh == 0 {
                // Every list page unchanged since the last run.
                out.unchanged = true;
                return Ok(out);
            }
            out.empty = true;
            out.warnings
                .push(format!("no thread links match `{}`", self.spec.thread_link));
            return Ok(out);
        }
        // List pages count as read (validators kept, so next time an
        // unchanged list answers 304 and its threads are skipped) only when
        // every thread on them was read to its end.
        let stored = ctx.state.cursor(cfg.id())?;
        let mut progress = Progress::parse(stored.as_deref());
        let mut complete = threads.len() <= self.spec.max_threads;
        for url in threads.into_iter().take(self.spec.max_threads) {
            match self.thread(cfg, ctx, url, &mut progress, &mut out).await {
                Ok(read_to_end) => complete &= read_to_end,
                Err(e) => {
                    out.warnings.push(e.to_string());
                    complete = false;
                }
            }
        }
        if !complete {
            out.validators.clear();
        }
        if stored.is_some() || !progress.threads.is_empty() {
            out.cursor = serde_json::to_string(&progress)
                .ok()
                .filter(|c| Some(c) != stored.as_ref());
        }
        Ok(out)
    }

    /// The pages of one thread, following the next-page link, from its
    /// first page or from where `progress` says reading goes on, up to
    /// `max_thread_pages`. True when it read the thread to its end.
    async fn thread(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
        first: url::Url,
        progress: &mut Progress,
        out: &mut Collected,
    ) -> Result<bool, SourceError> {
        let thread_url = first.to_string();
        let resume = self
            .spec
            .post_id_attr
            .as_ref()
            .and_then(|_| progress.take(&thread_url))
            .and_then(|(page, title)| Some((url::Url::parse(&page).ok()?, title)));
        // Resuming, the thread's first post was read in an earlier run.
        let (mut next, mut title, mut index) = match resume {
            Some((page, title)) => (Some(page), title, 1),
            None => (Some(first.clone()), String::new(), 0),
        };
        let resumed = index > 0;
        let mut thread_item: Option<usize> = None;
        let (mut last_read, mut pages_read): (Option<url::Url>, usize) = (None, 0);
        for _ in 0..self.spec.max_thread_pages {
            let Some(url) = next.take() else { break };
            let page = match ctx.get(url.as_str(), None).await? {
                FetchOutcome::Fresh(p) => p,
                FetchOutcome::NotModified => break,
            };
            let (html, _) = decode_html(&page.body, page.content_type.as_deref(), tld(&page.url));
            let doc = parse_document(&html).map_err(|message| SourceError::Parse {
                url: url.to_string(),
                message,
            })?;
            if title.is_empty() {
                title = doc
                    .select(&self.title)
                    .next()
                    .map(element_text)
                    .unwrap_or_default();
            }
            let before = out.items.len();
            for post in doc.select(&self.post) {
                if let Some(item) =
                    self.post_item(cfg, ctx, &page, &thread_url, &title, post, index)
                {
                    if index == 0 {
                        thread_item = Some(out.items.len());
                    }
                    out.items.push(item);
                    index += 1;
                }
            }
            // No posts on the page: a wall, or markup the selectors miss.
            if out.items.len() == before {
                check_wall_html(url.as_str(), &html)?;
            }
            if out.items.len() == before && index == 0 {
                return Err(SourceError::Parse {
                    url: url.to_string(),
                    message: format!(
                        "no posts match `{}` with content `{}`",
                        self.spec.post, self.spec.post_content
                    ),
                });
            }
            next = self
                .next_page
                .as_ref()
                .and_then(|s| doc.select(s).next())
                .and_then(|a| a.value().attr("href"))
                .and_then(|h| page.url.join(h).ok())
                .filter(|n| *n != page.url);
            last_read = Some(page.url);
            pages_read += 1;
        }
        if let Some(i) = thread_item {
            out.items[i].engagement.replies = Some(index.saturating_sub(1) as u64);
        }
        let resumable = self.spec.post_id_attr.is_some();
        if let Some(rest) = next {
            out.warnings.push(if resumable {
                progress.put(thread_url.clone(), rest.to_string(), title);
                format!(
                    "{thread_url}: more than {} pages (`max_thread_pages`) this run; the next run reads on from {rest}",
                    self.spec.max_thread_pages
                )
            } else {
                format!(
                    "{thread_url}: more than {} pages (`max_thread_pages`); its replies from {rest} on are not read",
                    self.spec.max_thread_pages
                )
            });
            return Ok(false);
        }
        // New replies come on the last page and after it.
        // (Not for a thread of one page, whose first post a resumed run
        // would take for a reply.)
        if let Some(last) = last_read.filter(|_| resumable && (resumed || pages_read > 1)) {
            progress.put(thread_url, last.to_string(), title);
        }
        Ok(true)
    }

    /// The thread links of a list page, and its next page.
    fn list_page(&self, list: &Fetched) -> Result<(Vec<url::Url>, Option<url::Url>), SourceError> {
        let (html, _) = decode_html(&list.body, list.content_type.as_deref(), tld(&list.url));
        let doc = parse_document(&html).map_err(|message| SourceError::Parse {
            url: list.url.to_string(),
            message,
        })?;
        let mut seen = std::collections::HashSet::new();
        let links = doc
            .select(&self.thread_link)
            .filter_map(|a| a.value().attr("href"))
            .filter_map(|href| list.url.join(href).ok())
            .filter(|u| seen.insert(u.to_string()))
            .collect();
        let next = self
            .next_page
            .as_ref()
            .and_then(|s| doc.select(s).next())
            .and_then(|a| a.value().attr("href"))
            .and_then(|h| list.url.join(h).ok())
            .filter(|n| *n != list.url);
        Ok((links, next))
    }

    #[allow(clippy::too_many_arguments)]
    fn post_item(
        &self,
        cfg: &SourceConfig,
        ctx: &Ctx<'_>,
        page: &Fetched,
        thread_url: &str,
        title: &str,
        post: ElementRef<'_>,
        index: usize,
    ) -> Option<Item> {
        let content = post.select(&self.post_content).next()?;
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
                // Discuz! shows "3 天前" and keeps the exact time in a `title`.
                let exact = std::iter::once(t)
                    .chain(t.descendants().filter_map(ElementRef::wrap))
                    .find_map(|e| e.value().attr("title").and_then(|a| parse_time(a, ctx.tz)));
                exact
                    .or_else(|| parse_time(&element_text(t), ctx.tz))
                    .or_else(|| {
                        crate::extract::parse_visible_time(&element_text(t), ctx.tz, Utc::now())
                    })
            });
        let site = host_of(&page.url);
        let thread_id = item_id_for_url(thread_url);
        let pid = self
            .spec
            .post_id_attr
            .as_deref()
            .and_then(|a| post.value().attr(a))
            .map(str::to_string);
        let first = index == 0;
        let (id, url) = if first {
            (thread_id.clone(), thread_url.to_string())
        } else {
            // A post without the id attribute, where posts have one, is
            // known by its text: a run that starts mid-thread does not know
            // positions.
            let pid = pid.unwrap_or_else(|| match self.spec.post_id_attr {
                Some(_) => format!("text-{}", &item_id_for_post("text", &text)[..16]),
                None => index.to_string(),
            });
            (
                // Scoped by thread: positional numbers repeat across threads.
                item_id_for_post(&yuqing_model::canonical_url(thread_url), &pid),
                format!("{}#{pid}", page.url),
            )
        };
        Some(Item {
            id,
            source: cfg.id().to_string(),
            source_kind: cfg.kind(),
            source_type: cfg.source_type(),
            site,
            url,
            title: if first {
                title.to_string()
            } else {
                String::new()
            },
            text,
            author,
            published_at,
            fetched_at: Utc::now(),
            engagement: Engagement::default(),
            parent_id: (!first).then_some(thread_id),
        })
    }
}

fn tld(url: &url::Url) -> Option<&[u8]> {
    url.host_str()
        .and_then(|h| h.rsplit('.').next())
        .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::as_bytes)
}
