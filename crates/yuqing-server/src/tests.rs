use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use tower::ServiceExt;
use yuqing_alert::AlertStore;
use yuqing_analysis::Segmenter;
use yuqing_index::ItemIndex;
use yuqing_model::{AnalyzedItem, Item, SourceKind, SourceType};

use crate::{AppState, app};

fn state(dir: &std::path::Path) -> AppState {
    let seg = Segmenter::new([]);
    let index = Arc::new(ItemIndex::open(&dir.join("index"), seg.clone()).unwrap());
    let mut w = index.writer(20_000_000).unwrap();
    let item = Item {
        id: "x".into(),
        source: "s".into(),
        source_kind: SourceKind::Forum,
        source_type: SourceType::Forum,
        site: "bbs.example.com".into(),
        url: "javascript:alert(1)".into(),
        title: "<script>alert('标题')</script>".into(),
        text: "正文里有<img src=x onerror=alert(1)>和被困两个字".into(),
        author: Some("<b>作者</b>".into()),
        published_at: Some(Utc::now()),
        fetched_at: Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    };
    let a = AnalyzedItem {
        title_tokens: seg.tokens(&item.title),
        text_tokens: seg.tokens(&item.text),
        item,
        hits: vec![],
        lexicon_hits: Vec::new(),
        keywords: Vec::new(),
        sentiment: None,
        score: 0,
        level: None,
        simhash: 0,
        simhash_pairs: 0,
    };
    w.upsert(&a).unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    AppState {
        index,
        alerts: AlertStore::open(&dir.join("alert.db")).unwrap(),
        crawler: None,
        registry: prometheus::Registry::new(),
        rules: Default::default(),
        duty: None,
        timezone: chrono_tz::Asia::Shanghai,
        report: yuqing_config::ReportConfig {
            title: "舆情专报测试".into(),
            ..Default::default()
        },
        access: Arc::new(crate::Access::new(
            &yuqing_config::ServerConfig::default(),
            &prometheus::Registry::new(),
        )),
    }
}

async fn get(app: axum::Router, uri: &str) -> (StatusCode, String) {
    let resp = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 10_000_000)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn console_escapes_crawled_text_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    let (status, body) = get(app(st.clone()), "/?q=%E8%A2%AB%E5%9B%B0").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("&lt;script&gt;"), "title escaped");
    assert!(!body.contains("<script>alert"), "no raw script");
    assert!(!body.contains("<img src=x"), "no raw img");
    assert!(!body.contains("javascript:"), "no javascript: link");
    assert!(body.contains("<mark>被困</mark>"), "highlight kept");
    assert!(body.contains("&lt;b&gt;作者"), "author escaped");
    // A word of the hostile title is marked, and the rest still escaped.
    let (status, title_body) = get(app(st.clone()), "/?q=%E6%A0%87%E9%A2%98").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        title_body
            .contains("&lt;script&gt;alert(&#x27;<mark>标题</mark>&#x27;)&lt;&#x2f;script&gt;"),
        "{title_body}"
    );
    // Facets narrow the search; the histogram shows the matches.
    assert!(
        body.contains(
            "来源：<a href=\"?q=%E8%A2%AB%E5%9B%B0&amp;source_type=forum\">论坛</a>（1）"
        ),
        "{body}"
    );
    assert!(body.contains("id=\"histogram\""), "{body}");
    // A facet link keeps every filter of the search it narrows.
    let (_, body) = get(
        app(st.clone()),
        "/?q=%E8%A2%AB%E5%9B%B0&since=7d&until=2099-01-01&sort=score&interval=hour",
    )
    .await;
    assert!(
        body.contains(
            "来源：<a href=\"?q=%E8%A2%AB%E5%9B%B0&amp;since=7d&amp;until=2099-01-01&amp;sort=score&amp;interval=hour&amp;source_type=forum\">"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn api_search_healthz_metrics_and_bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    let (s, body) = get(app(st.clone()), "/api/search?q=%E8%A2%AB%E5%9B%B0").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 1);
    let (s, body) = get(app(st.clone()), "/api/search?q=title:(").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid query"), "{body}");
    let (s, _) = get(app(st.clone()), "/api/search?since=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Queries nested past any rule, and spans past any date, are refused
    // as bad requests, on every path that takes them.
    let deep = format!("{}a", "(".repeat(50_000));
    let not = format!("b+{}a", "-".repeat(50_000));
    for (uri, status) in [
        (format!("/api/search?q={deep}"), StatusCode::BAD_REQUEST),
        (format!("/api/search?q={not}"), StatusCode::BAD_REQUEST),
        (format!("/api/backtest?q={deep}"), StatusCode::BAD_REQUEST),
        // The console shows the error above its empty results.
        (format!("/?q={not}"), StatusCode::OK),
    ] {
        let (s, body) = get(app(st.clone()), &uri).await;
        assert!(
            s == status && body.contains("nested more than 100 deep"),
            "{}: {s} {}",
            &uri[..20],
            &body[..body.len().min(300)]
        );
    }
    for uri in [
        "/api/search?since=99999999999d",
        "/api/hotwords?since=999999999999999m",
        "/api/spikes?since=99999999999d",
        // An empty range, and ranges too long to count.
        "/api/search?since=1h&until=2h",
        "/api/backtest?q=a&since=2000-01-01",
        "/api/hotwords?since=1990-01-01",
    ] {
        let (s, body) = get(app(st.clone()), uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
    // Each filter reaches the index: the fixture's one item (a forum post
    // on bbs.example.com, published now, no level, sentiment or rule)
    // passes or fails it.
    for (params, total, hits) in [
        ("site=bbs.example.com", 1, 1),
        ("site=example.com", 1, 1),
        ("site=www.example.com", 1, 1),
        ("site=WWW.bbs.Example.com", 1, 1),
        ("site=other.example.com", 0, 0),
        ("source_type=%E8%AE%BA%E5%9D%9B", 1, 1),
        ("source_type=news", 0, 0),
        ("since=1h", 1, 1),
        ("until=1h", 0, 0),
        ("level=red", 0, 0),
        ("sentiment=negative", 0, 0),
        ("rule=collapse", 0, 0),
        ("offset=1", 1, 0),
    ] {
        let (s, body) = get(app(st.clone()), &format!("/api/search?{params}")).await;
        assert_eq!(s, StatusCode::OK, "{params}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["total"], total, "{params}: {body}");
        assert_eq!(
            v["hits"].as_array().unwrap().len(),
            hits,
            "{params}: {body}"
        );
    }
    let (s, body) = get(app(st.clone()), "/healthz").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok"));
    let c = prometheus::IntCounter::new("yuqing_test_total", "t").unwrap();
    st.registry.register(Box::new(c.clone())).unwrap();
    c.inc();
    let (s, body) = get(app(st.clone()), "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("yuqing_test_total 1"), "{body}");
    let (s, body) = get(app(st.clone()), "/api/incidents").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "[]"));
    let (s, body) = get(app(st.clone()), "/api/spikes?since=7d").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "[]"));
    let (s, _) = get(app(st), "/api/spikes?since=whenever").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[test]
fn relative_and_local_times() {
    let now = Utc::now();
    let tz = chrono_tz::Asia::Shanghai;
    let parse = |s: &str| crate::parse_since(s, now, tz);
    assert_eq!(parse("24h").unwrap(), now - chrono::Duration::hours(24));
    // A date is its local midnight; a date and time are local.
    assert_eq!(
        parse("2026-11-26").unwrap().to_rfc3339(),
        "2026-11-25T16:00:00+00:00"
    );
    assert_eq!(
        parse("2026-11-26 08:30").unwrap().to_rfc3339(),
        "2026-11-26T00:30:00+00:00"
    );
    assert_eq!(
        parse("2026-11-26T08:30:00Z").unwrap().to_rfc3339(),
        "2026-11-26T08:30:00+00:00"
    );
    assert!(parse("soon").is_err());
    for far in ["99999999999d", "999999999999999m", "9223372036854775807h"] {
        let e = parse(far).unwrap_err();
        assert!(e.contains("further back than any date"), "{far}: {e}");
    }
}

/// An analyzed item for the alert store: `keywords` as its keywords,
/// `simhash` as both fingerprints, published `hours_ago`.
fn alert_item(
    id: &str,
    title: &str,
    keywords: &[&str],
    simhash: u64,
    hours_ago: i64,
) -> AnalyzedItem {
    let item = Item {
        id: id.into(),
        source: "s".into(),
        source_kind: SourceKind::Page,
        source_type: SourceType::News,
        site: "<i>news</i>.example.com".into(),
        url: format!("https://news.example.com/{id}"),
        title: title.into(),
        text: "正文".into(),
        author: None,
        published_at: Some(Utc::now() - chrono::Duration::hours(hours_ago)),
        fetched_at: Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    };
    let tok = yuqing_model::Token {
        text: "词语".into(),
        start: 0,
        end: 6,
    };
    AnalyzedItem {
        item,
        title_tokens: vec![],
        text_tokens: vec![tok; 20],
        hits: vec![yuqing_model::RuleHit {
            rule_id: "r".into(),
            rule_name: "规则".into(),
            topic: "专题".into(),
            level: yuqing_model::Level::Red,
            weight: 50,
            terms: vec![],
            marks: vec![],
        }],
        lexicon_hits: Vec::new(),
        keywords: keywords
            .iter()
            .map(|w| yuqing_model::Keyword {
                word: w.to_string(),
                weight: 1.0,
            })
            .collect(),
        sentiment: None,
        score: 50,
        level: Some(yuqing_model::Level::Red),
        simhash,
        simhash_pairs: simhash,
    }
}

#[tokio::test]
async fn hot_words_for_any_window_and_reprint_chains() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path());
    let policy = yuqing_alert::Policy {
        min_level: yuqing_model::Level::Blue,
        reprints: yuqing_analysis::events::ReprintThresholds {
            max_distance: 3,
            max_combined: 6,
        },
        spike: Default::default(),
        regions: Default::default(),
        source_types: Default::default(),
    };
    let p = |_: &yuqing_model::Incident, r: &str| r.to_string();
    let h = 0x1234_5678_9abc_def0u64;
    let items = [
        alert_item(
            "a",
            "<script>首发</script>",
            &["暴雨", "<b>积水</b>"],
            h,
            30,
        ),
        alert_item("b", "转载", &["暴雨", "转移"], h ^ 0b11, 2),
        alert_item("c", "另一篇", &["暴雨"], !h, 1),
    ];
    let mut event = String::new();
    for a in &items {
        let o = st.alerts.process(a, &policy, &[], &p).unwrap();
        if a.item.id == "a" {
            event = o.event_id;
        }
    }

    // The last 24 hours hold b and c; the last 48 all three.
    let (s, body) = get(app(st.clone()), "/api/hotwords?since=24h").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["word"], "暴雨");
    assert_eq!(v[0]["items"], 2);
    assert_eq!(v.as_array().unwrap().len(), 2, "{body}");
    let (_, body) = get(app(st.clone()), "/api/hotwords?since=48h&limit=1").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["items"], 3);
    let (s, _) = get(app(st.clone()), "/api/hotwords?since=1h&until=2h").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = get(app(st.clone()), "/api/hotwords?since=later").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The console shows the window's hot words, escaped, linked to search.
    let (_, body) = get(app(st.clone()), "/?hw=7d").await;
    assert!(body.contains("&lt;b&gt;积水&lt;"), "{body}");
    assert!(!body.contains("<b>积水"));
    assert!(body.contains("<b>7 天</b>"));
    assert!(body.contains("href=\"/?q=%E6%9A%B4%E9%9B%A8\""), "{body}");

    // The event: first publisher a, b reprinted from it, c elsewhere.
    let (s, body) = get(app(st.clone()), &format!("/api/events/{event}")).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"]["item_count"], 2);
    assert_eq!(v["event"]["first_url"], "https://news.example.com/a");
    assert!(v["event"]["heat"].as_f64().unwrap() >= 4.0);
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0]["item_id"], "a");
    assert_eq!(chain[1]["reprint_of"], "a");
    assert_eq!(chain[1]["distance"], 4);
    let (s, _) = get(app(st.clone()), "/api/events/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A search narrowed to the event finds its items and nothing else.
    let mut w = st.index.writer(20_000_000).unwrap();
    w.upsert_all(&items).unwrap();
    w.commit().unwrap();
    st.index.reload().unwrap();
    let (s, body) = get(app(st.clone()), "/api/search?since=7d").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 4, "{body}");
    let (s, body) = get(
        app(st.clone()),
        &format!("/api/search?since=7d&event={event}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut ids: Vec<&str> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["a", "b"], "{body}");
    let (_, body) = get(app(st.clone()), "/api/search?event=nope").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 0, "an unknown event has no items: {body}");

    // The incident page lists the chain, escaped.
    let incident = st
        .alerts
        .incidents(10)
        .unwrap()
        .into_iter()
        .find(|i| i.event_id == event)
        .unwrap();
    let (s, body) = get(app(st.clone()), &format!("/incidents/{}", incident.id)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("转载链（2 条）"), "{body}");
    assert!(body.contains("&lt;script&gt;首发"), "{body}");
    assert!(body.contains("&lt;i&gt;news&lt;"), "{body}");
    assert!(!body.contains("<i>news"));
    assert!(!body.contains("<script>首发"));
    assert!(body.contains("#1（相差 4 位）"), "{body}");
    assert!(body.contains(&format!("href=\"/incidents/{}/report\"", incident.id)));

    // Its special report: the chain with the reprint marked, the
    // timeline, every crawled string escaped.
    let (s, body) = get(
        app(st.clone()),
        &format!("/incidents/{}/report", incident.id),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("舆情专报测试（专报）"), "{body}");
    assert!(body.contains("<h2>传播链</h2>"), "{body}");
    assert!(
        body.contains("<td>#1</td>"),
        "the reprint points at the first: {body}"
    );
    assert!(
        body.contains("<h2>处置经过</h2>") && body.contains("触发"),
        "{body}"
    );
    assert!(body.contains("&lt;script&gt;首发"), "{body}");
    assert!(!body.contains("<script>首发"));
    // As a Word document to download, and an unknown format refused.
    let resp = app(st.clone())
        .oneshot(
            Request::get(format!("/incidents/{}/report?format=docx", incident.id))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"special-{}.docx\"", incident.id)
    );
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(bytes.starts_with(b"PK"));
    let (s, body) = get(
        app(st.clone()),
        &format!("/incidents/{}/report?format=odt", incident.id),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = get(app(st), "/incidents/999999/report").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_filters_facets_syntax_positions_and_backtests() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = state(dir.path());
    st.rules = std::sync::Arc::new(
        yuqing_config::Loader::default()
            .load(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml"),
            )
            .unwrap()
            .rules,
    );
    let (s, body) = get(
        app(st.clone()),
        "/api/search?q=%E8%A2%AB%E5%9B%B0&source_type=%E8%AE%BA%E5%9D%9B&sort=score&interval=hour",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["facets"]["source_type"][0]["value"], "forum");
    assert_eq!(v["interval"], "hour");
    assert_eq!(v["histogram"].as_array().unwrap().len(), 1);
    // The position of a syntax error is in characters.
    let (s, body) = get(
        app(st.clone()),
        "/api/search?q=%E8%A2%AB%E5%9B%B0%20AND%20(",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["position"], 8, "{body}");
    for bad in [
        "sort=loudest",
        "sentiment=angry",
        "level=purple",
        "interval=week",
        // A page too deep to set aside room for is refused, not allocated.
        "offset=10000000000",
        "offset=9990&limit=20",
    ] {
        let (s, _) = get(app(st.clone()), &format!("/api/search?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, body) = get(app(st.clone()), "/api/search?offset=9980&limit=20").await;
    assert_eq!(s, StatusCode::OK, "the last page allowed: {body}");
    // Backtests: a draft query, a saved rule, and the mistakes.
    let (s, body) = get(
        app(st.clone()),
        "/api/backtest?q=%E8%A2%AB%E5%9B%B0&since=2d",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["backtest"]["matches"], 1, "{body}");
    assert_eq!(v["backtest"]["scanned"], 1);
    let rule = &st.rules[0].id;
    let (s, body) = get(app(st.clone()), &format!("/api/backtest?rule={rule}")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = get(app(st.clone()), "/api/backtest?rule=nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Without a rule or a query, every saved rule runs, each counted.
    let (s, body) = get(app(st.clone()), "/api/backtest?since=2d").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["backtest"]["rules"].as_array().unwrap().len(),
        st.rules.len(),
        "{body}"
    );
    let (s, _) = get(
        app(st.clone()),
        &format!("/api/backtest?rule={rule}&q=%E8%A2%AB%E5%9B%B0"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a rule or a query, not both");
    let (s, body) = get(app(st), "/api/backtest?q=(%E8%A2%AB%E5%9B%B0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("position"), "{body}");
}

async fn send(
    app: axum::Router,
    method: &str,
    uri: &str,
    ctype: &str,
    body: &str,
) -> (StatusCode, String) {
    let resp = app
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", ctype)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 10_000_000)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

const DUTY: &str = r#"
[[person]]
id = "zhang"
name = "张伟"
mobile = "13800000001"
channels = ["ding"]

[[channel]]
id = "ding"
kind = "dingtalk"
url = "http://127.0.0.1:9/robot/send?access_token=t"
secret = "SECabc"

[[roster]]
id = "duty"
name = "总值班"
[[roster.shift]]
when = "mon-sun 00:00-24:00"
person = "zhang"

[[policy]]
id = "p"
[[policy.step]]
targets = ["roster:duty"]

[[route]]
id = "all"
policy = "p"
group_wait = "0s"
"#;

/// A state with routing, and one red incident that has been notified:
/// returns the state, the incident and the acknowledgement link sent.
fn duty_state(dir: &std::path::Path) -> (AppState, i64, String) {
    let mut st = state(dir);
    let alert: yuqing_config::AlertConfig = toml::from_str(DUTY).unwrap();
    let duty = Arc::new(yuqing_alert::Duty::new(
        &alert,
        chrono_tz::Asia::Shanghai,
        "http://console.test",
        b"key".to_vec(),
    ));
    st.duty = Some(duty.clone());
    let item = Item {
        id: "i1".into(),
        source: "s".into(),
        source_kind: SourceKind::Feed,
        source_type: SourceType::News,
        site: "e.com".into(),
        url: "https://e.com/1".into(),
        title: "某地 <b>桥梁</b> 垮塌".into(),
        text: "正文".into(),
        author: None,
        published_at: Some(Utc::now()),
        fetched_at: Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    };
    let a = AnalyzedItem {
        item,
        title_tokens: vec![],
        text_tokens: vec![],
        hits: vec![yuqing_model::RuleHit {
            rule_id: "r".into(),
            rule_name: "垮塌".into(),
            topic: "安全".into(),
            level: yuqing_model::Level::Red,
            weight: 50,
            terms: vec![],
            marks: vec![],
        }],
        lexicon_hits: vec![],
        keywords: vec![],
        sentiment: None,
        score: 50,
        level: Some(yuqing_model::Level::Red),
        simhash: 0,
        simhash_pairs: 0,
    };
    let policy = yuqing_alert::Policy::from_config(&Default::default());
    let out = st
        .alerts
        .process(&a, &policy, &[], &|_, r| r.to_string())
        .unwrap();
    let id = out.opened[0];
    st.alerts.tick(&duty, Utc::now()).unwrap();
    let due = st
        .alerts
        .due_notifications(Utc::now() + chrono::Duration::days(1), 10)
        .unwrap();
    let msg: yuqing_alert::Message = serde_json::from_str(&due[0].payload).unwrap();
    let link = msg.incidents[0].ack_link.clone().unwrap();
    (st, id, link.replace("http://console.test", ""))
}

#[tokio::test]
async fn a_signed_link_acknowledges_once_and_not_after_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, link) = duty_state(dir.path());
    // The link shows the incident and a button; opening it changes nothing.
    let (s, body) = get(app(st.clone()), &link).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(
        body.contains("&lt;b&gt;桥梁") && !body.contains("<b>"),
        "escaped: {body}"
    );
    assert!(body.contains("id=\"ack\""));
    assert_eq!(
        st.alerts.incident(id).unwrap().unwrap().status,
        yuqing_model::IncidentStatus::Triggered
    );
    // A tampered link is refused.
    let tampered = link.replace("who=zhang", "who=li");
    let (s, _) = get(app(st.clone()), &tampered).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The button posts the signed fields.
    let form = link.split_once('?').unwrap().1;
    let (s, body) = send(
        app(st.clone()),
        "POST",
        &format!("/ack/{id}"),
        "application/x-www-form-urlencoded",
        form,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("已确认"));
    let (s, body) = get(app(st.clone()), &format!("/api/incidents/{id}/timeline")).await;
    assert_eq!(s, StatusCode::OK);
    let tl: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ack = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "acknowledged")
        .expect("acknowledged in the timeline");
    assert_eq!(ack["actor"], "zhang");
    assert_eq!(ack["detail"], "via link");
    // Resolved through the API: the link no longer acknowledges.
    let (s, _) = send(
        app(st.clone()),
        "POST",
        &format!("/api/incidents/{id}/resolve"),
        "application/json",
        r#"{"who":"王主任"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = send(
        app(st.clone()),
        "POST",
        &format!("/ack/{id}"),
        "application/x-www-form-urlencoded",
        form,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _) = send(
        app(st.clone()),
        "POST",
        &format!("/api/incidents/{id}/ack"),
        "application/json",
        r#"{"who":"张伟"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // An expired link is refused.
    let old = st
        .duty
        .as_ref()
        .unwrap()
        .ack_link(id, "zhang", Utc::now() - chrono::Duration::days(2))
        .replace("http://console.test", "");
    let (s, _) = get(app(st.clone()), &old).await;
    assert_eq!(s, StatusCode::GONE);
}

#[tokio::test]
async fn console_and_api_acknowledge_and_show_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, _) = duty_state(dir.path());
    let (s, _) = send(
        app(st.clone()),
        "POST",
        &format!("/api/incidents/{id}/ack"),
        "application/json",
        r#"{"who":""}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "who is required");
    let (s, _) = send(
        app(st.clone()),
        "POST",
        &format!("/incidents/{id}/ack"),
        "application/x-www-form-urlencoded",
        "who=%E5%BC%A0%E4%BC%9F",
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, body) = get(app(st.clone()), &format!("/incidents/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("id=\"timeline\""), "{body}");
    assert!(
        body.contains("<td>张伟</td><td>已确认</td><td>via console</td>"),
        "{body}"
    );
    assert!(!body.contains("id=\"ack\""), "acknowledged: no ack button");
    assert!(body.contains("id=\"resolve\""));
    let (_, home) = get(app(st.clone()), "/").await;
    assert!(home.contains("总值班值班：<b>张伟</b>"), "{home}");
}

/// An override in force puts its person on duty in the API and on the
/// console's home page, with its note.
#[tokio::test]
async fn an_override_in_force_is_who_is_on_duty() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = state(dir.path());
    let tz = chrono_tz::Asia::Shanghai;
    let local =
        |t: chrono::DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let (from, until) = (
        local(Utc::now() - chrono::Duration::hours(2)),
        local(Utc::now() + chrono::Duration::hours(30)),
    );
    let text = DUTY.replace(
        "[[policy]]",
        &format!(
            "[[roster.override]]\nfrom = \"{from}\"\nuntil = \"{until}\"\nperson = \"li\"\nnote = \"<调班>\"\n\n\
             [[person]]\nid = \"li\"\nname = \"李娜\"\nchannels = [\"ding\"]\n\n[[policy]]"
        ),
    );
    let alert: yuqing_config::AlertConfig = toml::from_str(&text).unwrap();
    st.duty = Some(Arc::new(yuqing_alert::Duty::new(
        &alert,
        tz,
        "http://console.test",
        b"key".to_vec(),
    )));
    let (_, body) = get(app(st.clone()), "/api/oncall").await;
    let oncall: serde_json::Value = serde_json::from_str(&body).unwrap();
    let d = &oncall[0]["on_duty"];
    assert_eq!(d["name"], "李娜", "{body}");
    assert_eq!(d["note"], "<调班>");
    assert_eq!(d["override"], true);
    assert_eq!(d["shift"], format!("{from} – {until}"));
    let (_, home) = get(app(st), "/").await;
    assert!(
        home.contains("总值班值班：<b>李娜</b>（&lt;调班&gt;，至 "),
        "{home}"
    );
}

#[tokio::test]
async fn silences_oncall_handovers_and_dead_letters_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _, _) = duty_state(dir.path());
    let json = "application/json";
    let (s, body) = send(
        app(st.clone()),
        "POST",
        "/api/silences",
        json,
        r#"{"matchers":{},"ends_at":"2h","author":"王","comment":"x"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = send(
        app(st.clone()),
        "POST",
        "/api/silences",
        json,
        r#"{"matchers":{"topic":"安全"},"ends_at":"2h","author":"王主任","comment":"已在处置"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (_, body) = get(app(st.clone()), "/api/silences").await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["author"], "王主任");
    assert_eq!(list[0]["matchers"]["topic"], "安全");
    let (s, _) = send(
        app(st.clone()),
        "DELETE",
        &format!("/api/silences/{id}"),
        json,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = send(
        app(st.clone()),
        "DELETE",
        &format!("/api/silences/{id}"),
        json,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = send(
        app(st.clone()),
        "POST",
        "/api/rosters/duty/handovers",
        json,
        r#"{"author":"张伟","note":"桥梁事件已由区里接手，夜间关注评论区"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = send(
        app(st.clone()),
        "POST",
        "/api/rosters/nobody/handovers",
        json,
        r#"{"author":"张伟","note":"x"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, body) = get(app(st.clone()), "/api/oncall").await;
    let oncall: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(oncall[0]["on_duty"]["name"], "张伟");
    assert_eq!(oncall[0]["on_duty"]["roster_name"], "总值班");
    assert!(
        oncall[0]["handover"]["note"]
            .as_str()
            .unwrap()
            .contains("夜间关注")
    );
    let (s, body) = get(app(st.clone()), "/api/notifications/dead").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "[]"));
}
mod auth;
