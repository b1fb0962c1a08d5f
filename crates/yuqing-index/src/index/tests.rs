use chrono::{Duration, Utc};
use yuqing_analysis::Segmenter;
use yuqing_model::{AnalyzedItem, Item, Level, SourceKind, SourceType};

use super::*;

/// An analyzed news item of example.com, published `hours_ago`.
pub(crate) fn analyzed(
    seg: &Segmenter,
    id: &str,
    title: &str,
    text: &str,
    hours_ago: i64,
) -> AnalyzedItem {
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
    // A replayed batch, the same items twice within it too, and a batch
    // replayed before its first commit.
    w.upsert_all([&a, &b, &a]).unwrap();
    w.commit().unwrap();
    w.upsert_all([&b, &a]).unwrap();
    w.upsert_all([&a, &b]).unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    assert_eq!(index.num_docs(), 2, "replayed batches replaced themselves");

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
    assert!(r.hits[0].title_highlights.is_empty(), "not in the title");
    assert!(r.hits[0].fetched_at.is_some(), "when it was collected");
    // A word of the title is marked there; one scoped to the title is not
    // looked for in the text.
    for q in ["垮塌", "title:垮塌"] {
        let r = index
            .search(&SearchRequest {
                query: q.into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let h = &r.hits[0];
        let marked: Vec<&str> = h
            .title_highlights
            .iter()
            .map(|&(s, e)| &h.title[s..e])
            .collect();
        assert_eq!(marked, vec!["垮塌"], "{q}");
    }

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
        Err(IndexError::Syntax { pos: 7, .. })
    ));
}

/// A small corpus with every field varied.
fn corpus(dir: &std::path::Path) -> (ItemIndex, Segmenter) {
    let seg = Segmenter::new(["暴雨", "转移"]);
    let index = ItemIndex::open(dir, seg.clone()).unwrap();
    let mut w = index.writer(20_000_000).unwrap();
    let mut item =
        |id: &str, title: &str, text: &str, hours_ago: i64, f: &dyn Fn(&mut AnalyzedItem)| {
            let mut a = analyzed(&seg, id, title, text, hours_ago);
            f(&mut a);
            w.upsert(&a).unwrap();
        };
    let hit = |rule: &str| yuqing_model::RuleHit {
        rule_id: rule.into(),
        rule_name: rule.into(),
        topic: String::new(),
        level: Level::Red,
        weight: 50,
        terms: vec![],
        marks: vec![],
    };
    let sentiment = |label| yuqing_model::Sentiment {
        label,
        confidence: 0.9,
        positive: 0.1,
    };
    // Near: 暴雨 and 转移 a few characters apart.
    item(
        "near",
        "临江暴雨",
        "暴雨过后，群众紧急转移到安置点。",
        2,
        &|a| {
            a.hits.push(hit("flood"));
            a.level = Some(Level::Red);
            a.score = 90;
            a.sentiment = Some(sentiment(yuqing_model::SentimentLabel::Negative));
            a.item.site = "news.linjiang.gov.cn".into();
            a.item.source_type = SourceType::Government;
        },
    );
    // Far: both words, more than 20 characters apart.
    item(
        "far",
        "天气",
        "今天下了暴雨。市图书馆举办读书节，吸引了许多市民前来参加阅读和交流活动，随后志愿者帮助转移书籍。",
        5,
        &|a| {
            a.score = 20;
            a.item.engagement.reposts = Some(500);
            a.item.source_type = SourceType::Microblog;
            a.sentiment = Some(sentiment(yuqing_model::SentimentLabel::Neutral));
        },
    );
    item("forum", "转移", "论坛里说要转移。", 30, &|a| {
        a.item.source_type = SourceType::Forum;
        a.item.author = Some("江边 散步的人".into());
        a.sentiment = Some(sentiment(yuqing_model::SentimentLabel::Negative));
    });
    item("old", "暴雨", "去年的暴雨。", 24 * 40, &|_| {});
    w.commit().unwrap();
    index.reload().unwrap();
    (index, seg)
}

fn ids(r: &SearchResults) -> Vec<&str> {
    r.hits.iter().map(|h| h.id.as_str()).collect()
}

fn q(index: &ItemIndex, query: &str) -> SearchResults {
    index
        .search(&SearchRequest {
            query: query.into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn the_rule_language_is_the_query_box() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = corpus(dir.path());
    assert_eq!(ids(&q(&index, "暴雨 AND 转移")), ["near", "far"]);
    assert_eq!(ids(&q(&index, "暴雨 + 转移 - 读书节")), ["near"]);
    assert_eq!(
        ids(&q(&index, "暴雨 | 论坛")),
        ["near", "far", "forum", "old"]
    );
    assert_eq!(ids(&q(&index, "title:暴雨")), ["near", "old"]);
    // NEAR is checked on the text of each candidate.
    let r = q(&index, "暴雨 NEAR/10 转移");
    assert_eq!(ids(&r), ["near"]);
    assert_eq!(r.total, 1);
    let v = r.verified.unwrap();
    assert_eq!((v.candidates, v.truncated), (2, false));
    assert_eq!(ids(&q(&index, "转移 ONEAR/20 暴雨")), Vec::<&str>::new());
    // Under a NOT, items with both words far apart are kept: only the
    // text says they are not near.
    assert_eq!(ids(&q(&index, "暴雨 -(暴雨 NEAR/10 转移)")), ["far", "old"]);
    assert_eq!(
        ids(&q(&index, "转移 AND NOT (暴雨 NEAR/10 转移)")),
        ["far", "forum"]
    );
    // Field tests.
    assert_eq!(ids(&q(&index, "转移 AND site:linjiang.gov.cn")), ["near"]);
    assert_eq!(ids(&q(&index, "转移 AND source_type:论坛")), ["forum"]);
    assert_eq!(ids(&q(&index, "转移 AND author:散步")), ["forum"]);
    // A syntax error says where.
    match index.search(&SearchRequest {
        query: "暴雨 AND (转移".into(),
        limit: 10,
        ..Default::default()
    }) {
        Err(IndexError::Syntax { pos, message }) => {
            assert_eq!(pos, "暴雨 AND ".len(), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn filters_sorts_facets_and_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = corpus(dir.path());
    let search = |f: &dyn Fn(&mut SearchRequest)| {
        let mut r = SearchRequest {
            limit: 10,
            ..Default::default()
        };
        f(&mut r);
        index.search(&r).unwrap()
    };
    assert_eq!(
        ids(&search(&|r| r.sentiment = Some("negative".into()))),
        ["near", "forum"]
    );
    assert_eq!(ids(&search(&|r| r.level = Some("red".into()))), ["near"]);
    assert_eq!(ids(&search(&|r| r.rule = Some("flood".into()))), ["near"]);
    assert_eq!(
        ids(&search(&|r| r.site = Some("news.linjiang.gov.cn".into()))),
        ["near"]
    );
    assert_eq!(
        ids(&search(&|r| r.ids = Some(vec!["far".into(), "old".into()]))),
        ["far", "old"]
    );
    assert_eq!(ids(&search(&|r| r.sort = SortBy::Score))[0], "near");
    assert_eq!(
        ids(&search(&|r| r.sort = SortBy::Heat))[0],
        "far",
        "500 reposts"
    );
    let page = search(&|r| {
        r.limit = 2;
        r.offset = 2;
    });
    assert_eq!((page.total, ids(&page)), (4, vec!["forum", "old"]));

    let r = search(&|_| {});
    let count =
        |v: &[FacetCount], value: &str| v.iter().find(|f| f.value == value).map_or(0, |f| f.count);
    assert_eq!(count(&r.facets.sentiment, "negative"), 2);
    assert_eq!(count(&r.facets.sentiment, "neutral"), 1);
    assert_eq!(count(&r.facets.source_type, "government"), 1);
    assert_eq!(count(&r.facets.source_type, "news"), 1);
    assert_eq!(count(&r.facets.level, "blue"), 3);
    assert_eq!(count(&r.facets.site, "example.com"), 3);
    // Open range: day buckets at local midnight (UTC+8), 40 days of them.
    assert_eq!(r.interval, Interval::Day);
    assert_eq!(r.histogram.iter().map(|b| b.count).sum::<u64>(), 4);
    assert!(r.histogram.len() >= 40, "{}", r.histogram.len());
    for b in &r.histogram {
        assert_eq!(
            b.start.timestamp().rem_euclid(86_400),
            16 * 3_600,
            "local midnight"
        );
    }
    // A range of a day: hour buckets.
    let r = search(&|r| r.since = Some(Utc::now() - Duration::hours(24)));
    assert_eq!(r.interval, Interval::Hour);
    assert_eq!(r.histogram.iter().map(|b| b.count).sum::<u64>(), 2);
}

/// Hourly buckets over years of items are refused as a bad request, not
/// an index failure.
#[test]
fn a_histogram_of_too_many_buckets_is_a_query_error() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segmenter::new([]);
    let index = ItemIndex::open(dir.path(), seg.clone()).unwrap();
    let mut w = index.writer(20_000_000).unwrap();
    w.upsert(&analyzed(&seg, "new", "新闻", "正文", 1)).unwrap();
    w.upsert(&analyzed(&seg, "old", "旧闻", "正文", 24 * 365 * 10))
        .unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    let mut req = SearchRequest {
        limit: 10,
        interval: Some(Interval::Hour),
        ..Default::default()
    };
    match index.search(&req) {
        Err(IndexError::Query(m)) => assert!(m.contains("interval=day"), "{m}"),
        other => panic!("{other:?}"),
    }
    req.interval = Some(Interval::Day);
    assert_eq!(index.search(&req).unwrap().total, 2);
}

#[test]
fn backtests_count_exact_matches_per_day_and_retention_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = corpus(dir.path());
    let rules = yuqing_analysis::RuleSet::of_query("暴雨 NEAR/10 转移 | 去年").unwrap();
    let bt = index
        .backtest(
            &rules,
            Utc::now() - Duration::days(60),
            Utc::now(),
            8 * 3_600,
            3,
        )
        .unwrap();
    assert_eq!(bt.scanned, 4);
    assert_eq!(bt.matches, 2, "{bt:?}");
    assert!(bt.days.len() >= 60);
    let with: Vec<_> = bt.days.iter().filter(|d| d.matches > 0).collect();
    assert_eq!(with.len(), 2);
    assert_eq!(with[1].examples[0].id, "near");
    assert_eq!(with[0].examples[0].id, "old");
    // A substring the index does not hold as a word is still found:
    // backtests read the text as rules do.
    let rules = yuqing_analysis::RuleSet::of_query("书节").unwrap();
    let bt = index
        .backtest(&rules, Utc::now() - Duration::days(60), Utc::now(), 0, 3)
        .unwrap();
    assert_eq!(bt.matches, 1);

    let mut w = index.writer(20_000_000).unwrap();
    w.delete_before(Utc::now() - Duration::days(30)).unwrap();
    w.set_positions(
        "items.analyzed",
        &yuqing_bus::Positions::from([(0, 42), (1, 7)]),
    );
    w.commit().unwrap();
    index.reload().unwrap();
    assert_eq!(index.num_docs(), 3, "the 40-day-old item is gone");
    assert_eq!(
        index.stored_positions("items.analyzed").unwrap(),
        yuqing_bus::Positions::from([(0, 42), (1, 7)])
    );
    assert!(index.stored_positions("other").unwrap().is_empty());
    // Later commits keep the positions.
    w.commit().unwrap();
    assert_eq!(index.stored_positions("items.analyzed").unwrap().len(), 2);
    assert!(index.size_bytes() > 0);
}

/// A carry-over cut short is done again; one cut short after it copied
/// everything, between moving the old index aside and the new one in, is
/// finished.
#[test]
fn a_carry_over_cut_short_is_done_again_or_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let tmp = dir.path().join("index.migrating");
    {
        corpus(&path);
    }
    std::fs::write(path.join("yuqing-schema-version"), "1").unwrap();
    // Cut short while copying: a stale half copy.
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("meta.json"), "half").unwrap();
    let index = ItemIndex::open(&path, Segmenter::new([])).unwrap();
    assert_eq!(index.num_docs(), 4);
    assert!(!tmp.exists());
    drop(index);
    // Cut short between the renames: the copy is complete, the index gone.
    let done = dir.path().join("done");
    std::fs::rename(&path, &done).unwrap();
    std::fs::rename(&done, &tmp).unwrap();
    std::fs::write(tmp.join("yuqing-migrated"), "4").unwrap();
    let index = ItemIndex::open(&path, Segmenter::new([])).unwrap();
    assert_eq!(index.num_docs(), 4);
    assert!(!tmp.exists() && !path.join("yuqing-migrated").exists());
}

#[test]
fn an_index_of_an_older_schema_is_moved_aside_and_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let before = {
        let (index, _) = corpus(&path);
        assert_eq!(index.num_docs(), 4);
        q(&index, "暴雨 NEAR/10 转移")
    };
    std::fs::write(path.join("yuqing-schema-version"), "1").unwrap();
    let index = ItemIndex::open(&path, Segmenter::new(["暴雨", "转移"])).unwrap();
    // Every item is searchable again, with its filters and facets.
    assert_eq!(index.num_docs(), 4);
    assert_eq!(ids(&q(&index, "暴雨 AND 转移")), ["near", "far"]);
    let after = q(&index, "暴雨 NEAR/10 转移");
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(after.hits[0].url, before.hits[0].url);
    let filtered = index
        .search(&SearchRequest {
            level: Some("red".into()),
            rule: Some("flood".into()),
            sentiment: Some("negative".into()),
            source_type: Some("government".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&filtered), ["near"]);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.schema-1-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
}
