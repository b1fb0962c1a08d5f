//! HTTP fetching with conditional GET, timeouts and a body size limit.

use std::time::Duration;

use reqwest::header::{
    CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::{StatusCode, redirect};
use url::Url;
use yuqing_config::CrawlerConfig;

/// Why a fetch failed. Variants are the bounded set used as metric labels.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("timed out fetching {url}")]
    Timeout { url: String },
    #[error("HTTP {status} from {url}")]
    Status { url: String, status: u16 },
    #[error("body of {url} exceeds {limit} bytes")]
    TooLarge { url: String, limit: usize },
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
            FetchError::Status { .. } => "http_4xx",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Other { .. } => "other",
        }
    }
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

#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body: usize,
}

impl Fetcher {
    pub fn new(cfg: &CrawlerConfig) -> Result<Fetcher, String> {
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .redirect(redirect::Policy::limited(10))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Fetcher {
            client,
            max_body: cfg.max_body_bytes,
        })
    }

    pub async fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<FetchOutcome, FetchError> {
        let mut req = self.client.get(url);
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                req = req.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(IF_MODIFIED_SINCE, lm);
            }
        }
        let mut resp = req.send().await.map_err(|e| classify(url, e))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        if resp
            .content_length()
            .is_some_and(|n| n as usize > self.max_body)
        {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit: self.max_body,
            });
        }
        let headers = resp.headers().clone();
        let final_url = resp.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(url, e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
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
}

fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn classify(url: &str, e: reqwest::Error) -> FetchError {
    let url = url.to_string();
    if e.is_timeout() {
        FetchError::Timeout { url }
    } else if e.is_connect() {
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message = s.to_string();
            src = s.source();
        }
        FetchError::Connect { url, message }
    } else {
        FetchError::Other {
            url,
            message: e.to_string(),
        }
    }
}
