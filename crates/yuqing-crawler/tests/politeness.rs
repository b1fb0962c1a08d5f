//! The fetcher against misbehaving local servers: robots.txt, 429 with
//! Retry-After, slow responses, huge bodies, redirect loops, private
//! addresses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use yuqing_config::CrawlerConfig;
use yuqing_crawler::fetch::{FetchError, FetchOutcome, Fetcher, Policy};

const OPEN: Policy = Policy {
    allow_private: true,
};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn config() -> CrawlerConfig {
    CrawlerConfig {
        per_host_delay_ms: 0,
        ..Default::default()
    }
}

#[tokio::test]
async fn robots_txt_disallow_is_obeyed_and_cached() {
    let robots_hits = Arc::new(AtomicUsize::new(0));
    let hits = robots_hits.clone();
    let base = serve(
        Router::new()
            .route(
                "/robots.txt",
                get(move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    async { "User-agent: *\nDisallow: /private/\n" }
                }),
            )
            .route("/news/1.html", get(|| async { "<p>ok</p>" }))
            .route("/private/1.html", get(|| async { "<p>secret</p>" })),
    )
    .await;
    let f = Fetcher::new(&config()).unwrap();
    assert!(matches!(
        f.get(&format!("{base}/news/1.html"), None, OPEN).await,
        Ok(FetchOutcome::Fresh(_))
    ));
    let err = f
        .get(&format!("{base}/private/1.html"), None, OPEN)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Disallowed { .. }), "{err}");
    assert!(err.to_string().contains("robots.txt"), "{err}");
    assert_eq!(
        robots_hits.load(Ordering::SeqCst),
        1,
        "robots.txt fetched once"
    );
}

/// A robots.txt that fails (5xx) keeps its site waiting, and says so: not
/// "disallowed", but cannot be read, to be asked again soon.
#[tokio::test]
async fn a_failing_robots_txt_is_named_as_such() {
    let base = serve(
        Router::new()
            .route(
                "/robots.txt",
                get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
            )
            .route("/news/1.html", get(|| async { "<p>ok</p>" })),
    )
    .await;
    let f = Fetcher::new(&CrawlerConfig {
        retries: 0,
        ..config()
    })
    .unwrap();
    let err = f
        .get(&format!("{base}/news/1.html"), None, OPEN)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::RobotsUnavailable { .. }), "{err}");
    assert_eq!(err.label(), "robots_unavailable");
    let text = err.to_string();
    assert!(
        text.contains("robots.txt of") && text.contains("cannot be read") && text.contains("503"),
        "{text}"
    );
}

#[tokio::test]
async fn retry_after_on_429_is_waited_and_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let base = serve(Router::new().route(
        "/feed",
        get(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    "<rss/>".into_response()
                }
            }
        }),
    ))
    .await;
    let f = Fetcher::new(&config()).unwrap();
    let out = f.get(&format!("{base}/feed"), None, OPEN).await.unwrap();
    assert!(matches!(out, FetchOutcome::Fresh(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A long `Retry-After`, up to one no clock can add (it is held to a
/// day), fails the request and defers the host's next ones.
#[tokio::test]
async fn long_retry_after_defers_instead_of_blocking() {
    for wait in ["3600", "18446744073709551615"] {
        let base = serve(Router::new().route(
            "/feed",
            get(move || async move {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, wait)],
                    "maintenance",
                )
            }),
        ))
        .await;
        let f = Fetcher::new(&config()).unwrap();
        let err = f
            .get(&format!("{base}/feed"), None, OPEN)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: 503, .. }),
            "{wait}: {err}"
        );
        let err = f
            .get(&format!("{base}/feed"), None, OPEN)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Deferred { .. }),
            "{wait}: the host's wait is remembered: {err}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let base = serve(Router::new().route(
        "/gone",
        get(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::NOT_FOUND }
        }),
    ))
    .await;
    let f = Fetcher::new(&config()).unwrap();
    let err = f
        .get(&format!("{base}/gone"), None, OPEN)
        .await
        .unwrap_err();
    assert_eq!(err.label(), "http_4xx");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_server_times_out() {
    let base = serve(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            "late"
        }),
    ))
    .await;
    let f = Fetcher::new(&CrawlerConfig {
        timeout_secs: 1,
        retries: 0,
        ..config()
    })
    .unwrap();
    let err = f
        .get(&format!("{base}/slow"), None, OPEN)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn fifty_megabyte_bodies_are_refused() {
    const BIG: usize = 50 * 1024 * 1024;
    let base = serve(
        Router::new()
            .route("/declared", get(|| async { vec![b'a'; BIG] }))
            .route(
                "/streamed",
                get(|| async {
                    // No Content-Length: the limit applies while reading.
                    let chunks =
                        (0..BIG / 65536).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 65536]));
                    Response::new(Body::from_stream(futures::stream::iter(chunks)))
                }),
            ),
    )
    .await;
    let f = Fetcher::new(&config()).unwrap();
    for path in ["declared", "streamed"] {
        let err = f
            .get(&format!("{base}/{path}"), None, OPEN)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{path}: {err}");
    }
}

#[tokio::test]
async fn redirect_loops_stop_at_the_limit() {
    let base = serve(Router::new().route(
        "/loop",
        get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
    ))
    .await;
    let f = Fetcher::new(&config()).unwrap();
    let err = f
        .get(&format!("{base}/loop"), None, OPEN)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Redirect { .. }), "{err}");
    assert!(err.to_string().contains("more than 10 redirects"), "{err}");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let base = serve(Router::new().route("/", get(|| async { "intranet" }))).await;
    let f = Fetcher::new(&config()).unwrap();
    let err = f
        .get(&format!("{base}/"), None, Policy::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Private { .. }), "{err}");
    assert!(err.to_string().contains("allow_private"), "{err}");
    // Names that resolve to loopback are refused after resolution.
    let port = base.rsplit(':').next().unwrap();
    let err = f
        .get(
            &format!("http://localhost:{port}/"),
            None,
            Policy::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Private { .. }), "{err}");
    assert!(matches!(
        f.get(&format!("{base}/"), None, OPEN).await,
        Ok(FetchOutcome::Fresh(_))
    ));
}
