//! Sitemaps (sitemaps.org): `<urlset>` of pages and `<sitemapindex>` of
//! sitemaps, plain or gzip-compressed.

use std::io::Read;

/// What one sitemap file holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// Page URLs with their `<lastmod>`, as written.
    pub pages: Vec<(String, Option<String>)>,
    /// Child sitemaps of an index.
    pub sitemaps: Vec<String>,
}

/// Gunzips when the bytes are gzip (by magic number, whatever the URL says).
pub fn maybe_gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid gzip: {e}"))?;
    if out.len() > limit {
        return Err(format!("sitemap larger than {limit} bytes uncompressed"));
    }
    Ok(out)
}

/// Parses a sitemap or sitemap index.
pub fn parse(xml: &str) -> Result<Sitemap, String> {
    let is_index = xml.contains("<sitemapindex");
    if !is_index && !xml.contains("<urlset") {
        return Err("not a sitemap: no <urlset> or <sitemapindex>".into());
    }
    let entry_tag = if is_index { "sitemap" } else { "url" };
    let mut out = Sitemap::default();
    for block in blocks(xml, entry_tag) {
        let Some(loc) = tag_text(block, "loc") else {
            continue;
        };
        if is_index {
            out.sitemaps.push(loc);
        } else {
            out.pages.push((loc, tag_text(block, "lastmod")));
        }
    }
    Ok(out)
}

/// The contents of every `<tag>...</tag>` (also with a namespace prefix).
fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        // `<url>` or `<url ...>`, not `<urlset>`.
        if !after.starts_with('>') && !after.starts_with(' ') {
            rest = after;
            continue;
        }
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn tag_text(block: &str, tag: &str) -> Option<String> {
    let inner = blocks(block, tag).into_iter().next()?;
    let text = inner.split_once('>').map_or(inner, |(_, t)| t);
    let text = text
        .trim()
        .trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .trim();
    (!text.is_empty()).then(|| unescape(text))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlsets_and_indexes() {
        let set = r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://e.gov.cn/a?x=1&amp;y=2</loc><lastmod>2026-11-26</lastmod></url>
<url><loc> https://e.gov.cn/b </loc></url></urlset>"#;
        let s = parse(set).unwrap();
        assert_eq!(
            s.pages,
            vec![
                (
                    "https://e.gov.cn/a?x=1&y=2".to_string(),
                    Some("2026-11-26".to_string())
                ),
                ("https://e.gov.cn/b".to_string(), None)
            ]
        );
        let idx = r#"<sitemapindex><sitemap><loc>https://e.gov.cn/s1.xml.gz</loc></sitemap></sitemapindex>"#;
        assert_eq!(
            parse(idx).unwrap().sitemaps,
            vec!["https://e.gov.cn/s1.xml.gz"]
        );
        assert!(parse("<html></html>").is_err());
    }

    #[test]
    fn gzip_by_magic() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"<urlset></urlset>").unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(maybe_gunzip(&bytes, 1000).unwrap(), b"<urlset></urlset>");
        assert_eq!(maybe_gunzip(b"<urlset/>", 1000).unwrap(), b"<urlset/>");
        assert!(maybe_gunzip(&bytes, 5).is_err());
    }
}
