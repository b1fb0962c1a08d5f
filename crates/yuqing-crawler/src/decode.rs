//! Bytes to text: BOM, then the HTTP charset, then `<meta>` in the first
//! 1024 bytes, then detection. Labels map to encodings as the WHATWG
//! Encoding Standard says (so `gb2312` decodes as GBK, `big5` as Big5-HKSCS).

use encoding_rs::Encoding;

/// Decodes an HTML page. `tld` (such as `b"cn"`) helps detection.
pub fn decode_html(
    body: &[u8],
    content_type: Option<&str>,
    tld: Option<&[u8]>,
) -> (String, &'static Encoding) {
    let encoding = Encoding::for_bom(body)
        .map(|(e, _)| e)
        .or_else(|| content_type.and_then(charset_from_content_type))
        .or_else(|| meta_charset(body))
        .unwrap_or_else(|| detect(body, tld));
    // `decode` strips a BOM of the chosen encoding and replaces malformed
    // sequences instead of failing.
    let (text, used, _) = encoding.decode(body);
    (text.into_owned(), used)
}

/// The `charset` parameter of a Content-Type header.
pub fn charset_from_content_type(ct: &str) -> Option<&'static Encoding> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("charset") {
            Encoding::for_label(v.trim().trim_matches(|c| c == '"' || c == '\'').as_bytes())
        } else {
            None
        }
    })
}

/// `<meta charset=...>` or `<meta http-equiv content="...; charset=...">` in
/// the first 1024 bytes.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = find(&lower[from..], b"<meta") {
        let start = from + pos;
        let end = find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(cs) = find(tag, b"charset=") {
            let rest = &tag[cs + 8..];
            let rest = rest
                .strip_prefix(b"\"")
                .or_else(|| rest.strip_prefix(b"'"))
                .unwrap_or(rest);
            let label_end = rest
                .iter()
                .position(|&c| matches!(c, b'"' | b'\'' | b';' | b' ' | b'/' | b'>'))
                .unwrap_or(rest.len());
            if let Some(enc) = Encoding::for_label(&rest[..label_end]) {
                // A page cannot really be UTF-16 if we could read ASCII `<meta`.
                return Some(
                    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                        encoding_rs::UTF_8
                    } else {
                        enc
                    },
                );
            }
        }
        from = end;
    }
    None
}

fn detect(body: &[u8], tld: Option<&[u8]>) -> &'static Encoding {
    let mut d = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    d.feed(body, true);
    // chardetng asserts on a TLD that is not lower-case ASCII without dots.
    let tld = tld.filter(|t| {
        t.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    });
    d.guess(tld, chardetng::Utf8Detection::Allow)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_page_declared_in_meta() {
        let (bytes, _, _) = encoding_rs::GBK
            .encode("<html><head><meta charset=\"gbk\"></head><body>江州论坛</body></html>");
        let (text, enc) = decode_html(&bytes, Some("text/html"), None);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(text.contains("江州论坛"));
    }

    #[test]
    fn http_charset_wins_over_meta_and_gb2312_means_gbk() {
        let (bytes, _, _) = encoding_rs::GBK.encode("<meta charset=\"utf-8\">你好");
        let (text, enc) = decode_html(&bytes, Some("text/html; charset=GB2312"), None);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(text.ends_with("你好"));
    }

    #[test]
    fn undeclared_gbk_is_detected() {
        let (bytes, _, _) = encoding_rs::GBK.encode(
            "<html><body>江州市青山区一处老旧居民楼发生局部垮塌，消防部门正在全力救援被困人员。</body></html>",
        );
        let (text, _) = decode_html(&bytes, None, Some(b"cn"));
        assert!(text.contains("老旧居民楼"), "{text}");
    }

    #[test]
    fn bom_wins() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice("中文".as_bytes());
        let (text, enc) = decode_html(&bytes, Some("text/html; charset=gbk"), None);
        assert_eq!(enc, encoding_rs::UTF_8);
        assert_eq!(text, "中文");
    }
}
