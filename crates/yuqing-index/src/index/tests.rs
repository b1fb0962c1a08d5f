use chrono::{Duration, Utc};
use yuqing_analysis::Segmenter;
use yuqing_model::{AnalyzedItem, Item, Level, SourceKind, SourceType};

use super::*;

fn analyzed(seg: &Segmenter, id: &str, title: &str, text: &str, hours_ago: i64) -> AnalyzedItem {
    let item = Item {
        id: id.into(),
        source: "s".into(),
        source_kind: SourceKind::Feed,
        source_type: SourceType::News,
        site: "example.com".into(),
        url: format!("https://example.com/{id}"),
        title: title.into(),
        text: text.into(),
        author: Some("记者".into()),
        published_at: Some(Utc::now() - Duration::hours(hours_ago)),
        fetched_at: Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    };
    AnalyzedItem {
        title_tokens: seg.tokens(&item.title),
        text_tokens: seg.tokens(&item.text),
        item,
        hits: vec![],
        lexicon_hits: Vec::new(),
        keywords: Vec::new(),
        sentiment: None,
        score: 0,
        level: Some(Level::Blue),
        simhash: 0,
        simhash_pairs: 0,
    }
}

#[test]
fn upsert_is_idempotent_and_search_finds_chinese_words() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segmenter::new([]);
    let index = ItemIndex::open(dir.path(), seg.clone()).unwrap();
    let mut w = index.writer(20_000_000).unwrap();
    let a = analyzed(
        &seg,
        "a",
        "青山区老楼垮塌",
        "三名居民被困，消防正在救援。",
        1,
    );
    let b = analyzed(&seg, "b", "读书节开幕", "江州市图书馆推出阅读活动。", 30);
    w.upsert(&a).unwrap();
    w.upsert(&b).unwrap();
    w.commit().unwrap();
    w.upsert(&a).unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    assert_eq!(index.num_docs(), 2, "replayed item replaced itself");

    let r = index
        .search(&SearchRequest {
            query: "被困".into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].id, "a");
    let (s, e) = r.hits[0].highlights[0];
    assert_eq!(&r.hits[0].snippet[s..e], "被困");

    let r = index
        .search(&SearchRequest {
            query: String::new(),
            since: Some(Utc::now() - Duration::hours(2)),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, 1, "time range filters");

    let r = index
        .search(&SearchRequest {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.hits[0].id, "a", "newest first");

    assert!(matches!(
        index.search(&SearchRequest {
            query: "title:(".into(),
            limit: 10,
            ..Default::default()
        }),
        Err(IndexError::Query(_))
    ));
}
