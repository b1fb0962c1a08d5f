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
    };
    w.upsert(&a).unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    AppState {
        index,
        alerts: AlertStore::open(&dir.join("alert.db")).unwrap(),
        crawler: None,
        registry: prometheus::Registry::new(),
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
    let app = app(state(dir.path()));
    let (status, body) = get(app, "/?q=%E8%A2%AB%E5%9B%B0").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("&lt;script&gt;"), "title escaped");
    assert!(!body.contains("<script>alert"), "no raw script");
    assert!(!body.contains("<img src=x"), "no raw img");
    assert!(!body.contains("javascript:"), "no javascript: link");
    assert!(body.contains("<mark>被困</mark>"), "highlight kept");
    assert!(body.contains("&lt;b&gt;作者"), "author escaped");
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
    let (s, body) = get(app(st.clone()), "/healthz").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok"));
    let c = prometheus::IntCounter::new("yuqing_test_total", "t").unwrap();
    st.registry.register(Box::new(c.clone())).unwrap();
    c.inc();
    let (s, body) = get(app(st.clone()), "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("yuqing_test_total 1"), "{body}");
    let (s, body) = get(app(st), "/api/incidents").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "[]"));
}

#[test]
fn relative_times() {
    let now = Utc::now();
    assert_eq!(
        crate::parse_since("24h", now).unwrap(),
        now - chrono::Duration::hours(24)
    );
    assert!(crate::parse_since("2026-11-26", now).is_ok());
    assert!(crate::parse_since("soon", now).is_err());
}
