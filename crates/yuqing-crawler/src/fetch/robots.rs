//! robots.txt, fetched once per site and kept for a day.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use texting_robots::Robot;

const TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a robots.txt that could not be read (5xx, a timeout) keeps its
/// site waiting before it is asked again: one bad answer does not stop a
/// site for a day.
const UNAVAILABLE_TTL: Duration = Duration::from_secs(10 * 60);

/// What a site's robots.txt says for our user agent.
#[derive(Debug)]
pub enum Rules {
    /// No robots.txt (4xx): everything is allowed.
    AllowAll,
    /// The server failed (5xx, a timeout; the reason): nothing is fetched
    /// until it answers, asked again after [`UNAVAILABLE_TTL`].
    Unavailable(String),
    Parsed(Box<Robot>),
}

impl Rules {
    pub fn parse(agent: &str, body: &[u8]) -> Rules {
        match Robot::new(agent, body) {
            Ok(r) => Rules::Parsed(Box::new(r)),
            // An unparseable file restricts nothing we can read.
            Err(_) => Rules::AllowAll,
        }
    }

    pub fn allowed(&self, url: &str) -> bool {
        match self {
            Rules::AllowAll => true,
            Rules::Unavailable(_) => false,
            Rules::Parsed(r) => r.allowed(url),
        }
    }

    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Rules::Parsed(r) => r
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                .map(|d| Duration::from_secs_f32(d.min(60.0))),
            _ => None,
        }
    }
}

/// robots.txt rules per site (`scheme://host:port`).
#[derive(Debug, Default)]
pub struct RobotsCache {
    sites: Mutex<HashMap<String, (Instant, std::sync::Arc<Rules>)>>,
}

impl RobotsCache {
    pub fn get(&self, site: &str) -> Option<std::sync::Arc<Rules>> {
        let sites = self.sites.lock().unwrap();
        sites
            .get(site)
            .filter(|(at, r)| {
                at.elapsed()
                    < if matches!(**r, Rules::Unavailable(_)) {
                        UNAVAILABLE_TTL
                    } else {
                        TTL
                    }
            })
            .map(|(_, r)| r.clone())
    }

    pub fn put(&self, site: &str, rules: Rules) -> std::sync::Arc<Rules> {
        let rules = std::sync::Arc::new(rules);
        self.sites
            .lock()
            .unwrap()
            .insert(site.to_string(), (Instant::now(), rules.clone()));
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_for_our_agent() {
        let txt = b"User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n\nUser-agent: BadBot\nDisallow: /\n";
        let r = Rules::parse("yuqing", txt);
        assert!(r.allowed("http://example.com/news/1.html"));
        assert!(!r.allowed("http://example.com/private/x"));
        assert_eq!(r.crawl_delay(), Some(Duration::from_secs(2)));
        assert!(!Rules::Unavailable("HTTP 503".into()).allowed("http://example.com/"));
    }
}
