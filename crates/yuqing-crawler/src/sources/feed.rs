//! RSS, Atom and JSON feeds through feed-rs. Decoding is ours: the HTTP
//! charset overrides the XML declaration, and feeds that declare nothing are
//! detected (see [`crate::decode::decode_xml`]).

use chrono::Utc;
use yuqing_config::{FeedSource, SourceConfig};
use yuqing_model::{Engagement, Item, item_id_for_post, item_id_for_url};

use super::{Collected, Ctx, SourceError, host_of};
use crate::fetch::FetchOutcome;
use crate::text::html_to_text;

pub(super) async fn collect(
    f: &FeedSource,
    cfg: &SourceConfig,
    ctx: &Ctx<'_>,
) -> Result<Collected, SourceError> {
    let validators = ctx.state.validators(&f.url)?;
    let fetched = match ctx.get(&f.url, validators.as_ref()).await? {
        FetchOutcome::NotModified => {
            return Ok(Collected {
                unchanged: true,
                ..Collected::default()
            });
        }
        FetchOutcome::Fresh(x) => x,
    };
    let feed = match parse_feed(&fetched.body, fetched.content_type.as_deref(), ctx.tz) {
        Ok(feed) => feed,
        Err(message) => {
            // A login or captcha page where the feed should be is a block,
            // not a malformed feed.
            super::check_wall(&f.url, &fetched.body, fetched.content_type.as_deref())?;
            return Err(SourceError::Parse {
                url: f.url.clone(),
                message,
            });
        }
    };
    let empty = feed.entries.is_empty();
    let site = host_of(&fetched.url);
    let now = Utc::now();
    let mut items = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or(entry.links.first())
            .and_then(|l| fetched.url.join(&l.href).ok());
        let (id, url) = match &link {
            Some(u) => (item_id_for_url(u.as_str()), u.to_string()),
            None if !entry.id.is_empty() => {
                (item_id_for_post(&site, &entry.id), fetched.url.to_string())
            }
            None => continue,
        };
        let title = entry
            .title
            .map(|t| html_to_text(&t.content))
            .unwrap_or_default();
        let body = entry
            .content
            .and_then(|c| c.body)
            .or_else(|| entry.summary.map(|s| s.content))
            .map(|h| html_to_text(&h))
            .unwrap_or_default();
        items.push(Item {
            id,
            source: cfg.id().to_string(),
            source_kind: cfg.kind(),
            source_type: cfg.source_type(),
            site: link.as_ref().map(host_of).unwrap_or_else(|| site.clone()),
            url,
            title,
            text: body,
            author: entry
                .authors
                .first()
                .and_then(|a| a.name.clone())
                .filter(|a| !a.is_empty()),
            published_at: entry.published.or(entry.updated),
            fetched_at: now,
            engagement: Engagement::default(),
            parent_id: None,
        });
    }
    Ok(Collected {
        items,
        cursor: None,
        validators: vec![(f.url.clone(), fetched.validators)],
        warnings: Vec::new(),
        empty,
        unchanged: false,
    })
}

/// Decodes and parses a feed. An `<rss>` root without a `version`, common
/// in the wild, is read as RSS 2.0.
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    tz: chrono_tz::Tz,
) -> Result<feed_rs::model::Feed, String> {
    let (xml, _) = crate::decode::decode_xml(body, content_type, None);
    let xml = match versionless_rss(&xml) {
        Some(at) => format!("{} version=\"2.0\"{}", &xml[..at + 4], &xml[at + 4..]),
        None => xml,
    };
    feed_rs::parser::Builder::new()
        .timestamp_parser(move |s| feed_time(s, tz))
        .build()
        .parse(xml.as_bytes())
        .map_err(|e| format!("malformed feed: {e}"))
}

/// A feed's date as Chinese sites write it: `CST` is China Standard Time
/// (+08:00), not the US Central time of RFC 2822; `UTC` and ` Z` are UTC;
/// a wrong weekday is passed over; a date without a zone (`2024-03-05
/// 14:30:00`) is in `tz`.
pub fn feed_time(raw: &str, tz: chrono_tz::Tz) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = raw.trim();
    let zoned = [(" CST", " +0800"), (" UTC", " +0000"), (" Z", " +0000")]
        .iter()
        .find_map(|(zone, offset)| s.strip_suffix(zone).map(|rest| format!("{rest}{offset}")))
        .unwrap_or_else(|| s.to_string());
    let rfc2822 = |t: &str| {
        chrono::DateTime::parse_from_rfc2822(t)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    // `Wed, 25 Aug 2012` was a Saturday, and `Thurs,` is no RFC 2822 day:
    // the date wins.
    let dated = zoned
        .split_once(", ")
        .filter(|(day, _)| !day.is_empty() && day.chars().all(|c| c.is_ascii_alphabetic()))
        .map_or(zoned.as_str(), |(_, rest)| rest);
    let local = || {
        ["%d %b %Y %H:%M:%S", "%d %b %Y %H:%M"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(dated, f).ok())
            .and_then(|t| {
                use chrono::TimeZone;
                tz.from_local_datetime(&t).earliest()
            })
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    rfc2822(&zoned)
        .or_else(|| rfc2822(dated))
        // No zone: the configured one.
        .or_else(local)
        .or_else(|| crate::text::parse_time(&zoned, tz))
}

/// Byte offset of an `<rss` root tag that has no `version` attribute.
fn versionless_rss(xml: &str) -> Option<usize> {
    let at = xml.find("<rss")?;
    let tag_end = at + xml[at..].find('>')?;
    let tag = &xml[at..tag_end];
    let next = tag.as_bytes().get(4).copied();
    (matches!(next, Some(b' ' | b'\n' | b'\t' | b'\r') | None) && !tag.contains("version"))
        .then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_times_as_chinese_sites_write_them() {
        let tz = chrono_tz::Asia::Shanghai;
        let t = |s: &str| feed_time(s, tz).map(|t| t.to_rfc3339());
        let beijing = Some("2024-03-05T06:30:00+00:00".to_string());
        // CST is China Standard Time here, not US Central.
        assert_eq!(t("Tue, 05 Mar 2024 14:30:00 CST"), beijing);
        assert_eq!(t("Tue, 05 Mar 2024 14:30:00 +0800"), beijing);
        assert_eq!(t("Tue, 05 Mar 2024 06:30:00 GMT"), beijing);
        assert_eq!(t("Tue, 05 Mar 2024 06:30:00 UTC"), beijing);
        // The weekday is wrong (the 5th was a Tuesday): the date wins.
        assert_eq!(t("Fri, 05 Mar 2024 14:30:00 +0800"), beijing);
        // No zone: the configured one.
        assert_eq!(t("2024-03-05 14:30:00"), beijing);
        assert_eq!(t("2024-03-05T14:30:00"), beijing);
        assert_eq!(t("2024-03-05T14:30:00+08:00"), beijing);
        assert_eq!(t("Tue, 05 Mar 2024 14:30:00"), beijing);
        assert_eq!(t("Tuesday, 05 Mar 2024 14:30:00 +0800"), beijing);
        assert_eq!(t("5 Mar 2024 14:30"), beijing);
        assert_eq!(t("next week"), None);
    }

    #[test]
    fn a_feed_dated_in_cst_is_dated_in_beijing_time() {
        let rss = "<rss version=\"2.0\"><channel><title>t</title><item><title>a</title>\
                   <link>http://e.com/a</link><pubDate>Tue, 05 Mar 2024 14:30:00 CST</pubDate></item>\
                   </channel></rss>";
        let feed = parse_feed(rss.as_bytes(), None, chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(
            feed.entries[0].published.unwrap().to_rfc3339(),
            "2024-03-05T06:30:00+00:00"
        );
    }
}
