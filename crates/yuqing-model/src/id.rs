use sha2::{Digest, Sha256};
use url::Url;

/// Query parameters that only track the reader and never change the content.
const TRACKING_PARAMS: &[&str] = &[
    "spm",
    "from",
    "fbclid",
    "gclid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "share_token",
    "scene",
    "srcid",
    "isappinstalled",
    "wfr",
    "_hsenc",
    "_hsmi",
];

/// The canonical form of a URL, so that one page reached by different links
/// gets one id: lowercase scheme and host (the `url` crate does both), no
/// fragment, no default port, tracking parameters (`utm_*`, `spm`, `from`, ...)
/// removed and the remaining query sorted.
///
/// Returns the input unchanged when it does not parse as an absolute URL.
pub fn canonical_url(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw.trim()) else {
        return raw.trim().to_string();
    };
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !k.starts_with("utm_") && !TRACKING_PARAMS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Stable item id for a page: the first 16 bytes of SHA-256 of its canonical
/// URL, in hex.
pub fn item_id_for_url(url: &str) -> String {
    hash_hex(&canonical_url(url))
}

/// Stable item id for a post whose platform gives it an id of its own
/// (a microblog status, a forum post id): the hash of `platform:post_id`,
/// where `platform` names the site or API, not the configured source, so two
/// sources over the same platform agree.
pub fn item_id_for_post(platform: &str, post_id: &str) -> String {
    hash_hex(&format!("{platform}:{post_id}"))
}

fn hash_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes())[..16])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_url_drops_tracking_fragment_and_sorts_query() {
        assert_eq!(
            canonical_url("HTTPS://News.Example.COM:443/a/b?utm_source=x&z=1&spm=abc&a=2#top"),
            "https://news.example.com/a/b?a=2&z=1"
        );
        assert_eq!(
            canonical_url("http://example.com/x?from=timeline"),
            "http://example.com/x"
        );
    }

    #[test]
    fn ids_are_stable_across_equivalent_urls() {
        let a = item_id_for_url("https://example.com/p?id=1&utm_medium=feed");
        let b = item_id_for_url("https://EXAMPLE.com/p?id=1#comments");
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert_ne!(a, item_id_for_url("https://example.com/p?id=2"));
    }

    #[test]
    fn post_ids_depend_on_platform_and_id() {
        assert_eq!(
            item_id_for_post("weibo", "1"),
            item_id_for_post("weibo", "1")
        );
        assert_ne!(
            item_id_for_post("weibo", "1"),
            item_id_for_post("mastodon", "1")
        );
    }

    #[test]
    fn unparseable_urls_are_kept_as_given() {
        assert_eq!(canonical_url(" not a url "), "not a url");
    }
}
