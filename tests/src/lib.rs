//! Fixtures shared by the end-to-end tests: a webhook sink standing in for
//! an IM robot, a tiny server for fixture files, and config builders over
//! the bundled demo config. Everything listens on 127.0.0.1.

pub mod webdriver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use yuqing_config::{Config, Loader};

/// Collects the JSON bodies POSTed to `/hook`.
#[derive(Clone, Default)]
pub struct WebhookSink {
    pub addr: Option<SocketAddr>,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State(b): State<Arc<Mutex<Vec<serde_json::Value>>>>, body: Bytes| async move {
                        match serde_json::from_slice(&body) {
                            Ok(v) => {
                                b.lock().unwrap().push(v);
                                StatusCode::OK
                            }
                            Err(_) => StatusCode::BAD_REQUEST,
                        }
                    },
                ),
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookSink {
            addr: Some(addr),
            bodies,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr.unwrap())
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until at least `n` bodies arrived (or `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let b = self.bodies();
            if b.len() >= n || tokio::time::Instant::now() >= deadline {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Serves one fixture file at `/feed.xml` as RSS.
pub async fn serve_fixture(name: &str) -> SocketAddr {
    let body = std::fs::read(fixture(name)).unwrap();
    let app = Router::new().route(
        "/feed.xml",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/rss+xml")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The bundled demo config, against the sample site at `site`, with state
/// in `data_dir` and notifications to `webhook`.
pub fn demo_config(site: SocketAddr, data_dir: &Path, webhook: &str) -> Config {
    Loader::default()
        .var("DEMO_SITE", site.to_string())
        .var("DEMO_DATA", data_dir.display().to_string())
        .override_value(
            "YUQING__ALERT__WEBHOOK",
            format!("[{{name = \"test-robot\", url = \"{webhook}\"}}]"),
        )
        .load_embedded(yuqing::embedded::FILES, yuqing::embedded::DEMO)
        .unwrap()
}

/// Writes the demo config into `dir` with the given rule files (name,
/// contents) instead of the bundled ones, and loads it.
pub fn demo_config_with_rules(
    dir: &Path,
    site: SocketAddr,
    webhook: &str,
    rules: &[(&str, &str)],
    extra_sources: &str,
) -> Config {
    let demo = yuqing::embedded::FILES
        .iter()
        .find(|(n, _)| *n == yuqing::embedded::DEMO)
        .unwrap()
        .1;
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("demo.toml"), format!("{demo}\n{extra_sources}")).unwrap();
    for (name, text) in rules {
        std::fs::write(dir.join("rules").join(name), text).unwrap();
    }
    Loader::default()
        .var("DEMO_SITE", site.to_string())
        .var("DEMO_DATA", dir.join("data").display().to_string())
        .override_value(
            "YUQING__ALERT__WEBHOOK",
            format!("[{{name = \"test-robot\", url = \"{webhook}\"}}]"),
        )
        .load(&dir.join("demo.toml"))
        .unwrap()
}

/// Pipeline options for a test: the console on a port of the system's
/// choosing.
pub fn on_free_port() -> yuqing::PipelineOptions {
    yuqing::PipelineOptions {
        listen: Some("127.0.0.1:0".into()),
    }
}

/// GET a URL and parse the JSON body.
pub async fn get_json(url: &str) -> serde_json::Value {
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.unwrap()
}
