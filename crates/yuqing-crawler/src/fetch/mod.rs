//! HTTP fetching, politely and safely: robots.txt (cached, Crawl-delay
//! honoured), one request at a time per host with a minimum interval, a
//! global concurrency limit, conditional GET, `Retry-After` on 429 and 503,
//! retries with backoff only for failures a retry can fix, connect and total
//! timeouts, a body size limit, a redirect limit, and a guard against private
//! and loopback addresses on every hop unless the source allows them.

mod guard;
mod robots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{
    CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::{StatusCode, redirect};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;
use yuqing_config::CrawlerConfig;

pub use guard::{GuardedResolver, PrivateAddress, is_private};
use robots::{RobotsCache, Rules};

/// Why a fetch failed. [`FetchError::label`] is the bounded set used in
/// metrics.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("timed out fetching {url}")]
    Timeout { url: String },
    #[error("HTTP {status} from {url}")]
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("body of {url} exceeds {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("refused {url}: {reason}")]
    Private { url: String, reason: String },
    #[error("robots.txt of {site} disallows {url}")]
    Disallowed { url: String, site: String },
    #[error(
        "robots.txt of {site} cannot be read ({reason}), so {url} waits until it can (asked again within 10 minutes)"
    )]
    RobotsUnavailable {
        url: String,
        site: String,
        reason: String,
    },
    #[error("redirects from {url}: {message}")]
    Redirect { url: String, message: String },
    #[error("{url}: the host asked us to wait {wait_secs} s more (Retry-After)")]
    Deferred { url: String, wait_secs: u64 },
    #[error("fetching {url}: {message}")]
    Other { url: String, message: String },
}

impl FetchError {
    /// Bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Connect { .. } => "connect",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Status { status, .. } if *status >= 500 => "http_5xx",
            FetchError::Status { status: 429, .. } => "http_429",
            FetchError::Status { .. } => "http_4xx",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Private { .. } => "private_address",
            FetchError::Disallowed { .. } => "robots",
            FetchError::RobotsUnavailable { .. } => "robots_unavailable",
            FetchError::Redirect { .. } => "redirect",
            FetchError::Deferred { .. } => "deferred",
            FetchError::Other { .. } => "other",
        }
    }

    /// Whether trying again soon can succeed: network failures, timeouts,
    /// 5xx, 408 and 429. Never 4xx, size, robots, redirect loops or refused
    /// addresses.
    fn retryable(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

/// Responses by class (`2xx`, `304`, `4xx`, `5xx`, `timeout`, `connect`,
/// ...), counted per request sent, retries included.
#[derive(Debug, Default)]
pub struct ResponseTally(std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>);

impl ResponseTally {
    fn add(&self, class: &'static str) {
        *self.0.lock().unwrap().entry(class).or_default() += 1;
    }

    /// The counts so far.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// The class of a request's result, or `None` when no request was sent
/// (robots.txt, the address guard, a pending Retry-After).
fn response_class(result: &Result<FetchOutcome, FetchError>) -> Option<&'static str> {
    Some(match result {
        Ok(FetchOutcome::Fresh(_)) => "2xx",
        Ok(FetchOutcome::NotModified) => "304",
        Err(FetchError::Status { status, .. }) => match status / 100 {
            4 => "4xx",
            5 => "5xx",
            _ => "other",
        },
        Err(FetchError::Timeout { .. }) => "timeout",
        Err(FetchError::Connect { .. }) => "connect",
        Err(FetchError::TooLarge { .. }) => "too_large",
        Err(FetchError::Redirect { .. }) => "redirect",
        Err(FetchError::Other { .. }) => "other",
        Err(
            FetchError::Private { .. }
            | FetchError::Disallowed { .. }
            | FetchError::RobotsUnavailable { .. }
            | FetchError::Deferred { .. },
        ) => {
            return None;
        }
    })
}

/// Cache validators of a URL, for conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A fetched response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL after redirects.
    pub url: Url,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub validators: Validators,
}

#[derive(Debug)]
pub enum FetchOutcome {
    Fresh(Fetched),
    /// 304: unchanged since the validators were stored.
    NotModified,
}

/// What a source permits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Fetch private and loopback addresses (intranet sources, the demo).
    pub allow_private: bool,
}

/// The politeness state of one host.
#[derive(Debug, Default)]
struct HostState {
    last: Option<Instant>,
    /// Set by Retry-After.
    not_before: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    guarded: reqwest::Client,
    open: reqwest::Client,
    user_agent: String,
    max_body: usize,
    per_host_delay: Duration,
    retries: u32,
    max_retry_after: Duration,
    respect_robots: bool,
    concurrency: Arc<Semaphore>,
    hosts: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<HostState>>>>>,
    robots: Arc<RobotsCache>,
}

fn client(cfg: &CrawlerConfig, guarded: bool) -> Result<reqwest::Client, String> {
    let max = cfg.max_redirects;
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= max {
            let n = attempt.previous().len();
            attempt.error(format!("more than {n} redirects"))
        } else if guarded && let Some(ip) = guard::private_literal(attempt.url()) {
            attempt.error(PrivateAddress(ip))
        } else {
            attempt.follow()
        }
    });
    let mut b = reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .redirect(policy);
    if guarded {
        b = b.dns_resolver(Arc::new(GuardedResolver));
    }
    b.build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

impl Fetcher {
    pub fn new(cfg: &CrawlerConfig) -> Result<Fetcher, String> {
        Ok(Fetcher {
            guarded: client(cfg, true)?,
            open: client(cfg, false)?,
            user_agent: cfg.user_agent.clone(),
            max_body: cfg.max_body_bytes,
            per_host_delay: Duration::from_millis(cfg.per_host_delay_ms),
            retries: cfg.retries,
            max_retry_after: Duration::from_secs(cfg.max_retry_after_secs),
            respect_robots: cfg.respect_robots,
            concurrency: Arc::new(Semaphore::new(cfg.max_concurrency.max(1))),
            hosts: Default::default(),
            robots: Default::default(),
        })
    }

    /// GETs `url`, with validators for a conditional request, retrying where
    /// a retry can help.
    pub async fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
        policy: Policy,
    ) -> Result<FetchOutcome, FetchError> {
        self.get_tallied(url, validators, policy, None).await
    }

    /// [`Fetcher::get`], counting every request sent in `tally`.
    pub async fn get_tallied(
        &self,
        url: &str,
        validators: Option<&Validators>,
        policy: Policy,
        tally: Option<&ResponseTally>,
    ) -> Result<FetchOutcome, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::Other {
            url: url.to_string(),
            message: format!("invalid URL: {e}"),
        })?;
        if !policy.allow_private
            && let Some(ip) = guard::private_literal(&parsed)
        {
            return Err(FetchError::Private {
                url: url.to_string(),
                reason: PrivateAddress(ip).to_string(),
            });
        }
        let delay = if self.respect_robots {
            let rules = self.robots_for(&parsed, policy).await;
            if let Rules::Unavailable(reason) = &*rules {
                return Err(FetchError::RobotsUnavailable {
                    url: url.to_string(),
                    site: site_of(&parsed),
                    reason: reason.clone(),
                });
            }
            if !rules.allowed(url) {
                return Err(FetchError::Disallowed {
                    url: url.to_string(),
                    site: site_of(&parsed),
                });
            }
            rules
                .crawl_delay()
                .unwrap_or_default()
                .max(self.per_host_delay)
        } else {
            self.per_host_delay
        };
        let mut attempt = 0;
        loop {
            let result = self.get_once(&parsed, validators, policy, delay).await;
            if let Some(t) = tally
                && let Some(class) = response_class(&result)
            {
                t.add(class);
            }
            match result {
                Err(e) if e.retryable() && attempt < self.retries => {
                    let wait = match &e {
                        FetchError::Status {
                            retry_after: Some(d),
                            ..
                        } => *d,
                        _ => {
                            Duration::from_millis(2u64.saturating_pow(attempt).saturating_mul(500))
                        }
                    };
                    if wait > self.max_retry_after {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn host(&self, url: &Url) -> Arc<tokio::sync::Mutex<HostState>> {
        let key = site_of(url);
        self.hosts.lock().unwrap().entry(key).or_default().clone()
    }

    /// One request: waits for the host's turn (one request at a time, at
    /// least `delay` apart, not before a Retry-After), then for a global slot.
    async fn get_once(
        &self,
        url: &Url,
        validators: Option<&Validators>,
        policy: Policy,
        delay: Duration,
    ) -> Result<FetchOutcome, FetchError> {
        let host = self.host(url).await;
        let mut state = host.lock().await;
        let now = Instant::now();
        if let Some(nb) = state.not_before
            && nb > now
        {
            let wait = nb - now;
            if wait > self.max_retry_after {
                return Err(FetchError::Deferred {
                    url: url.to_string(),
                    wait_secs: wait.as_secs(),
                });
            }
            tokio::time::sleep(wait).await;
        }
        if let Some(last) = state.last {
            tokio::time::sleep_until(last + delay).await;
        }
        let _slot = self
            .concurrency
            .acquire()
            .await
            .expect("semaphore never closes");
        let result = self.request(url, validators, policy).await;
        state.last = Some(Instant::now());
        if let Err(FetchError::Status {
            retry_after: Some(d),
            ..
        }) = &result
        {
            state.not_before = Instant::now().checked_add(*d);
        }
        result
    }

    async fn request(
        &self,
        url: &Url,
        validators: Option<&Validators>,
        policy: Policy,
    ) -> Result<FetchOutcome, FetchError> {
        let client = if policy.allow_private {
            &self.open
        } else {
            &self.guarded
        };
        let mut req = client.get(url.clone());
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                req = req.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(IF_MODIFIED_SINCE, lm);
            }
        }
        let url_s = url.to_string();
        let mut resp = req.send().await.map_err(|e| classify(&url_s, e))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url_s,
                status: status.as_u16(),
                retry_after: retry_after(resp.headers()),
            });
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(FetchError::TooLarge {
                url: url_s,
                limit: self.max_body,
            });
        }
        let headers = resp.headers().clone();
        let final_url = resp.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&url_s, e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(FetchError::TooLarge {
                    url: url_s,
                    limit: self.max_body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fresh(Fetched {
            url: final_url,
            body,
            content_type: header(&headers, CONTENT_TYPE),
            validators: Validators {
                etag: header(&headers, ETAG),
                last_modified: header(&headers, LAST_MODIFIED),
            },
        }))
    }

    /// The site's robots.txt rules, fetched through the same politeness.
    async fn robots_for(&self, url: &Url, policy: Policy) -> Arc<Rules> {
        let site = site_of(url);
        if let Some(r) = self.robots.get(&site) {
            return r;
        }
        let robots_url = match url.join("/robots.txt") {
            Ok(u) => u,
            Err(_) => return self.robots.put(&site, Rules::AllowAll),
        };
        let rules = match self
            .get_once(&robots_url, None, policy, self.per_host_delay)
            .await
        {
            Ok(FetchOutcome::Fresh(f)) => Rules::parse(&self.user_agent, &f.body),
            Ok(FetchOutcome::NotModified) => Rules::AllowAll,
            Err(FetchError::Status { status, .. }) if (400..500).contains(&status) => {
                Rules::AllowAll
            }
            // A failing robots.txt means the site cannot say what it allows:
            // wait until it can.
            Err(e @ (FetchError::Status { .. } | FetchError::Timeout { .. })) => {
                Rules::Unavailable(e.to_string())
            }
            // Unreachable or refused: the page fetch reports the same error.
            Err(_) => return Arc::new(Rules::AllowAll),
        };
        self.robots.put(&site, rules)
    }
}

/// `scheme://host:port`, the unit of politeness and of robots.txt.
fn site_of(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The longest a host's `Retry-After` holds its requests back.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` as seconds or an HTTP date, a day at most.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(LONGEST_RETRY_AFTER));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .map(|d| d.min(LONGEST_RETRY_AFTER))
}

fn classify(url: &str, e: reqwest::Error) -> FetchError {
    let url = url.to_string();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut deepest = None;
    while let Some(s) = src {
        if let Some(p) = s.downcast_ref::<PrivateAddress>() {
            return FetchError::Private {
                url,
                reason: p.to_string(),
            };
        }
        deepest = Some(s.to_string());
        src = s.source();
    }
    if e.is_redirect() {
        return FetchError::Redirect {
            url,
            message: deepest.unwrap_or_else(|| e.to_string()),
        };
    }
    if e.is_timeout() {
        FetchError::Timeout { url }
    } else if e.is_connect() {
        FetchError::Connect {
            url,
            message: deepest.unwrap_or_else(|| e.to_string()),
        }
    } else {
        FetchError::Other {
            url,
            message: deepest.unwrap_or_else(|| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::routing::get;

    use super::*;

    /// A public page that redirects into the intranet is refused at the
    /// redirect. (The first hop here is loopback too, so the test calls the
    /// guarded client directly, past `get`'s check of the first URL.)
    #[tokio::test]
    async fn redirect_to_a_private_address_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().route(
            "/go",
            get(move || async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("http://127.0.0.2:{port}/admin"))],
                )
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let c = client(&CrawlerConfig::default(), true).unwrap();
        let url = format!("http://127.0.0.1:{port}/go");
        let err = classify(&url, c.get(&url).send().await.unwrap_err());
        assert!(matches!(err, FetchError::Private { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.2"), "{err}");
    }
}
