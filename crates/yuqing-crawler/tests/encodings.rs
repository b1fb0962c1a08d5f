//! The feed encoding cases of `../shared/data/feeds-encoding` (from
//! feedparser's test suite): each decodes as its `Header:` and `Expect:`
//! comment say. Set `YUQING_FEEDS_ENCODING_DATA` to use another folder.

use std::path::PathBuf;

use encoding_rs::Encoding;
use yuqing_crawler::decode::decode_xml;
use yuqing_crawler::sources::parse_feed;

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("YUQING_FEEDS_ENCODING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/feeds-encoding")
        });
    dir.is_dir().then_some(dir)
}

/// Encodings feedparser names, as families: GB2312 and GBK are decoded by
/// the GB18030 decoder (WHATWG maps the labels so), Big5 by Big5-HKSCS.
fn family(e: &'static Encoding) -> &'static str {
    if e == encoding_rs::GBK || e == encoding_rs::GB18030 {
        "gb"
    } else if e == encoding_rs::BIG5 {
        "big5"
    } else {
        e.name()
    }
}

fn expected_family(expect: &str) -> &'static str {
    let e = expect.to_ascii_lowercase();
    if e.contains("gb") {
        "gb"
    } else if e.contains("big5") {
        "big5"
    } else {
        "other"
    }
}

#[test]
fn feeds_decode_as_their_headers_say() {
    let Some(dir) = data_dir() else {
        eprintln!(
            "skipping: no ../shared/data/feeds-encoding (set YUQING_FEEDS_ENCODING_DATA to its folder)"
        );
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "xml") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        // The comment is ASCII in every encoding involved.
        let ascii = String::from_utf8_lossy(&bytes);
        let header = ascii
            .lines()
            .find_map(|l| l.strip_prefix("Header:"))
            .and_then(|h| h.trim().strip_prefix("Content-type:"))
            .map(|ct| ct.trim().to_string());
        let expect = ascii
            .lines()
            .find_map(|l| l.strip_prefix("Expect:"))
            .unwrap()
            .to_string();
        let (text, enc) = decode_xml(&bytes, header.as_deref(), None);
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(
            family(enc),
            expected_family(&expect),
            "{name}: decoded as {}, expected {expect}",
            enc.name()
        );
        assert!(
            !text.contains('\u{FFFD}'),
            "{name}: replacement characters in\n{text}"
        );
        // Every case parses once decoded, the ill-formed ones included.
        let feed = parse_feed(&bytes, header.as_deref(), chrono_tz::Asia::Shanghai);
        if name.starts_with("illformed") {
            let feed = feed.unwrap_or_else(|e| panic!("{name}: {e}"));
            let title = feed
                .entries
                .first()
                .and_then(|e| e.title.as_ref())
                .or(feed.title.as_ref())
                .map(|t| t.content.clone())
                .unwrap_or_default();
            assert!(
                title
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{name}: title {title:?}"
            );
            if name.contains("gb2312") {
                assert_eq!(title, "不归移民漫画系列：专业工作");
            }
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} files");
}
