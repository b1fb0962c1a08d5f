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
    decode_checked(body, encoding, tld)
}

/// Decodes with the declared encoding unless the bytes prove it wrong (a
/// page that says UTF-8 but is GBK): then with the detected one, when that
/// reads cleanly.
fn decode_checked(
    body: &[u8],
    declared: &'static Encoding,
    tld: Option<&[u8]>,
) -> (String, &'static Encoding) {
    // `decode` strips a BOM of the chosen encoding and replaces malformed
    // sequences instead of failing.
    let (text, used, malformed) = declared.decode(body);
    if malformed && Encoding::for_bom(body).is_none() {
        let detected = detect(body, tld);
        if detected != declared {
            let (better, used2, still) = detected.decode(body);
            if !still {
                return (better.into_owned(), used2);
            }
        }
    }
    (text.into_owned(), used)
}

/// Decodes a feed: BOM, then the HTTP charset (which overrides the XML
/// declaration, RFC 7303), then the XML declaration, then detection. Returns
/// UTF-8 text whose declaration, if any, says UTF-8, so an XML parser does
/// not decode it a second time; leading whitespace before the declaration is
/// removed.
pub fn decode_xml(
    body: &[u8],
    content_type: Option<&str>,
    tld: Option<&[u8]>,
) -> (String, &'static Encoding) {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = if body[start..].starts_with(b"<") {
        &body[start..]
    } else {
        body
    };
    let encoding = Encoding::for_bom(body)
        .map(|(e, _)| e)
        .or_else(|| content_type.and_then(charset_from_content_type))
        .or_else(|| xml_declared(body))
        .unwrap_or_else(|| detect(body, tld));
    let (text, used) = decode_checked(body, encoding, tld);
    (utf8_declaration(text.trim_start()), used)
}

/// Comments between the declaration and the root element are valid XML, but
/// some feed parsers stop at them; they carry nothing a feed needs.
fn without_prolog_comments(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        match t
            .strip_prefix("<!--")
            .and_then(|r| r.find("-->").map(|e| &r[e + 3..]))
        {
            Some(rest) => s = rest,
            None => return t,
        }
    }
}

/// `encoding="..."` of an `<?xml ...?>` declaration.
fn xml_declared(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(256)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = find(head, b"?>")?;
    let decl = &head[..end];
    let at = find(decl, b"encoding")?;
    let rest = &decl[at + 8..];
    let q = rest.iter().position(|&c| c == b'"' || c == b'\'')?;
    let quote = rest[q];
    let value = &rest[q + 1..];
    let close = value.iter().position(|&c| c == quote)?;
    let enc = Encoding::for_label(&value[..close])?;
    // A UTF-16 label on bytes we read as ASCII is wrong; trust detection.
    (enc != encoding_rs::UTF_16LE && enc != encoding_rs::UTF_16BE).then_some(enc)
}

/// Rewrites the declaration's encoding to UTF-8.
fn utf8_declaration(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("<?xml")
        && let Some(end) = rest.find("?>")
    {
        let decl = &rest[..end];
        let cleaned: String = match decl.find("encoding") {
            Some(at) => {
                let after = &decl[at..];
                let value_end = after
                    .char_indices()
                    .filter(|(_, c)| *c == '"' || *c == '\'')
                    .nth(1)
                    .map_or(after.len(), |(i, _)| i + 1);
                format!("{}encoding=\"UTF-8\"{}", &decl[..at], &after[value_end..])
            }
            None => decl.to_string(),
        };
        return format!(
            "<?xml{cleaned}?>{}",
            without_prolog_comments(&rest[end + 2..])
        );
    }
    without_prolog_comments(text).to_string()
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
    fn feeds_follow_http_then_declaration_then_detection() {
        let (gbk, _, _) = encoding_rs::GBK.encode("<?xml version=\"1.0\" encoding=\"big5\"?><rss><channel><title>江州日报</title></channel></rss>");
        let (text, enc) = decode_xml(&gbk, Some("application/rss+xml; charset='gb2312'"), None);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(text.contains("江州日报"));
        assert!(
            text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{text}"
        );
        let (big5, _, _) = encoding_rs::BIG5.encode("\n  <?xml version='1.0' encoding='big5'?><rss><channel><title>臺灣新聞</title></channel></rss>");
        let (text, enc) = decode_xml(&big5, Some("text/xml"), None);
        assert_eq!(enc, encoding_rs::BIG5);
        assert!(
            text.starts_with("<?xml version='1.0' encoding=\"UTF-8\"?>"),
            "{text}"
        );
        assert!(text.contains("臺灣新聞"));
    }

    #[test]
    fn a_wrong_declared_charset_is_overruled_by_the_bytes() {
        let (gbk, _, _) = encoding_rs::GBK.encode(
            "<html><head><meta charset=\"utf-8\"></head><body>江州市青山区一处老旧居民楼发生局部垮塌，消防部门正在全力救援被困人员。</body></html>",
        );
        let (text, enc) = decode_html(&gbk, Some("text/html; charset=UTF-8"), Some(b"cn"));
        assert_eq!(enc, encoding_rs::GBK);
        assert!(text.contains("老旧居民楼"), "{text}");
        // A correct declaration stays.
        let utf8 = "<meta charset=\"utf-8\"><p>中文</p>".as_bytes();
        assert_eq!(decode_html(utf8, None, None).1, encoding_rs::UTF_8);
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
