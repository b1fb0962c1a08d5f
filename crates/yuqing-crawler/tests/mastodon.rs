//! `kind = "microblog"` against a Mastodon-like API: the first run reads
//! the newest page, later runs page forward with `min_id` and miss nothing.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
struct Server {
    newest: u64,
    paths: Vec<String>,
}

fn status(id: u64) -> Value {
    let mut s = json!({
        "id": id.to_string(),
        "created_at": "2026-11-26T08:00:00.000Z",
        "url": format!("https://m.example/@jz/{id}"),
        "content": format!("<p>第{id}条嘟文 <a href=\"https://m.example/tags/江州\">#江州</a></p>"),
        "spoiler_text": "",
        "account": {"acct": "jiangzhou@m.example"},
        "replies_count": 1, "reblogs_count": 2, "favourites_count": 3,
        "reblog": null
    });
    if id.is_multiple_of(50) {
        s["reblog"] = json!({"id": format!("9{id}"), "url": format!("https://other.example/@a/9{id}"),
            "content": "<p>被转嘟的原文</p>", "created_at": "2026-11-26T07:00:00Z", "account": {"acct": "a@other.example"}});
    }
    s
}

async fn timeline(
    State(st): State<Arc<Mutex<Server>>>,
    Query(q): Query<HashMap<String, String>>,
    path: axum::http::Uri,
) -> Json<Vec<Value>> {
    let mut s = st.lock().unwrap();
    s.paths.push(path.to_string());
    let limit: u64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let ids: Vec<u64> = match q.get("min_id").and_then(|m| m.parse::<u64>().ok()) {
        Some(min) => (min + 1..=s.newest).take(limit as usize).collect(),
        None => (1..=s.newest).rev().take(limit as usize).collect(),
    };
    let mut ids = ids;
    ids.sort_by(|a, b| b.cmp(a));
    Json(ids.into_iter().map(status).collect())
}

async fn tag(Path(tag): Path<String>, State(st): State<Arc<Mutex<Server>>>) -> Json<Vec<Value>> {
    st.lock().unwrap().paths.push(format!("tag:{tag}"));
    Json(vec![status(7)])
}

#[tokio::test]
async fn pages_forward_from_the_last_status_seen() {
    let server = Arc::new(Mutex::new(Server {
        newest: 50,
        paths: Vec::new(),
    }));
    let app = Router::new()
        .route("/api/v1/timelines/public", get(timeline))
        .route("/api/v1/timelines/tag/{tag}", get(tag))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (c, state) = common::crawler(
        dir.path(),
        &format!(
            "[crawler]\nper_host_delay_ms = 0\n\n[[source]]\nid = \"m\"\nkind = \"microblog\"\nallow_private = true\ninstance = \"http://{addr}\"\n\n\
             [[source]]\nid = \"tag\"\nkind = \"microblog\"\nallow_private = true\ninstance = \"http://{addr}\"\ntimeline = \"tag:江州\"\n"
        ),
    );

    assert_eq!(c.run_source(0).await.unwrap(), 40, "the newest page first");
    server.lock().unwrap().newest = 150;
    assert_eq!(
        c.run_source(0).await.unwrap(),
        100,
        "everything since, over three pages"
    );
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    let paths = server.lock().unwrap().paths.clone();
    assert!(
        paths[1].contains("min_id=50")
            && paths[2].contains("min_id=90")
            && paths[3].contains("min_id=130"),
        "{paths:?}"
    );

    assert_eq!(c.run_source(1).await.unwrap(), 1);
    assert!(
        server
            .lock()
            .unwrap()
            .paths
            .contains(&"tag:江州".to_string())
    );

    let items: Vec<yuqing_model::Item> = common::emitted(&state);
    let first = items.iter().find(|i| i.url.ends_with("/60")).unwrap();
    assert_eq!(first.text, "第60条嘟文 #江州");
    assert_eq!(first.author.as_deref(), Some("jiangzhou@m.example"));
    assert_eq!(first.engagement.reposts, Some(2));
    assert_eq!(first.source_type, yuqing_model::SourceType::Microblog);
    let boost = items.iter().find(|i| i.url.ends_with("/9100")).unwrap();
    assert_eq!(
        boost.text, "被转嘟的原文",
        "a boost is read as the boosted status"
    );
}
