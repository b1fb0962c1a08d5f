//! Just enough of W3C WebDriver to drive headless Chromium through
//! chromedriver: open pages, type into fields, click, read the page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The element key of W3C WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find(var: &str, paths: &[&str]) -> Option<PathBuf> {
    std::env::var(var)
        .ok()
        .into_iter()
        .chain(paths.iter().map(|p| p.to_string()))
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Where Chromium is: `YUQING_CHROMIUM`, else Debian's paths.
pub fn chromium() -> Option<PathBuf> {
    find(
        "YUQING_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    )
}

/// Where Chromium and chromedriver (`YUQING_CHROMEDRIVER`, else Debian's
/// path) are, if both are.
pub fn browser_paths() -> Option<(PathBuf, PathBuf)> {
    Some((
        chromium()?,
        find("YUQING_CHROMEDRIVER", &["/usr/bin/chromedriver"])?,
    ))
}

/// Says why a browser test is skipped, outside CI; under `CI` a missing
/// browser fails it (`.ci/run` installs one).
pub fn skipping(missing: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {missing} (.ci/run installs it)"
    );
    eprintln!("skipping: no {missing} (see .ci/run for the Debian packages)");
}

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port of 127.0.0.1 and a headless
    /// Chromium session.
    pub async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let ready = async {
                let v: Value = client
                    .get(format!("{base}/status"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                v["value"]["ready"].as_bool()
            };
            if ready.await == Some(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            client,
            _profile: profile,
        };
        let v = b.call(reqwest::Method::POST, "/session", caps).await;
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = self.client.request(method, &url);
        let req = if body.is_null() { req } else { req.json(&body) };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.at("/url"),
            json!({ "url": url }),
        )
        .await;
    }

    /// The address of the page shown, after any redirects.
    pub async fn url(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.at("/url"), Value::Null)
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The address of the page shown, once `ready` accepts it (a click's
    /// navigation may still be under way when the click returns); the last
    /// one seen after ten seconds.
    pub async fn url_when(&self, ready: impl Fn(&str) -> bool) -> String {
        self.until(async |b| b.url().await, ready).await
    }

    /// The page's DOM once `ready` accepts it; the last one seen after ten
    /// seconds.
    pub async fn source_when(&self, ready: impl Fn(&str) -> bool) -> String {
        self.until(async |b| b.source().await, ready).await
    }

    async fn until(
        &self,
        read: impl AsyncFn(&Browser) -> String,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let mut seen = read(self).await;
        for _ in 0..100 {
            if ready(&seen) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = read(self).await;
        }
        seen
    }

    /// The page's DOM as HTML.
    pub async fn source(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.at("/source"), Value::Null)
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                &self.at("/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{id}/value")),
            json!({ "text": text }),
        )
        .await;
    }

    /// Clicks the element `css` selects (a button submits its form; the
    /// next page may still be loading when the call returns: read it with
    /// [`Browser::url_when`] or [`Browser::source_when`]).
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{id}/click")),
            json!({}),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (and Chromium) through the driver, then the
        // driver itself.
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                reqwest::Client::new()
                    .delete(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .ok()
            })
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
