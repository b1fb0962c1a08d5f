//! Logins, tokens, roles and cross-site refusals, through the router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use yuqing_config::ServerConfig;

use super::duty_state;
use crate::{Access, AppState, app, hash_password, sha256_hex};

const TOKEN: &str = "yq_test-token-for-grafana";

/// Two logins (an officer who responds, a leader who reads) and a
/// read-only token.
fn server_config(officer_password: &str) -> ServerConfig {
    let toml = format!(
        r#"
[[user]]
id = "zhang"
name = "张伟"
role = "responder"
password_hash = "{}"

[[user]]
id = "li"
name = "李科长"
role = "observer"
password_hash = "{}"

[[token]]
id = "grafana"
role = "observer"
sha256 = "{}"
"#,
        hash_password(officer_password).unwrap(),
        hash_password("leader-pass").unwrap(),
        sha256_hex(TOKEN.as_bytes()),
    );
    toml::from_str(&toml).unwrap()
}

fn with_access(mut st: AppState, cfg: &ServerConfig) -> AppState {
    st.access = Arc::new(Access::new(cfg, &st.registry));
    st
}

/// [`duty_state`] with the logins of [`server_config`] (the officer's
/// password `officer-pass`).
fn login_state(dir: &std::path::Path) -> (AppState, i64, String) {
    let (st, id, link) = duty_state(dir);
    (with_access(st, &server_config("officer-pass")), id, link)
}

/// Whether incident `id` has been acknowledged.
fn acknowledged(st: &AppState, id: i64) -> bool {
    st.alerts
        .timeline(id)
        .unwrap()
        .iter()
        .any(|t| t.action == "acknowledged")
}

struct Answer {
    status: StatusCode,
    location: String,
    set_cookie: String,
    body: String,
}

async fn call(
    st: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = app(st.clone())
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (location, set_cookie) = {
        let h = |k| {
            resp.headers()
                .get(k)
                .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        (h(header::LOCATION), h(header::SET_COOKIE))
    };
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 10_000_000)
        .await
        .unwrap();
    Answer {
        status,
        location,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");

/// Logs in; the `Cookie` header value that carries the session.
async fn log_in(st: &AppState, user: &str, password: &str) -> String {
    let a = call(
        st,
        "POST",
        "/login",
        &[FORM, ("sec-fetch-site", "same-origin")],
        &format!("user={user}&password={password}&next=%2Fincidents%2F1"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location, "/incidents/1");
    a.set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn without_a_login_pages_redirect_and_the_api_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, link) = login_state(dir.path());
    let a = call(&st, "GET", "/?q=%E6%A1%A5", &[], "").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location, "/login?next=%2F%3Fq%3D%25E6%25A1%25A5");
    let a = call(&st, "GET", &a.location, &[], "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains(r#"name="next" value="&#x2f;?q=%E6%A1%A5""#),
        "{}",
        a.body
    );
    for uri in ["/api/search?q=x", "/api/incidents", "/api/oncall"] {
        let a = call(&st, "GET", uri, &[], "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let a = call(
        &st,
        "POST",
        &format!("/api/incidents/{id}/ack"),
        &[JSON],
        r#"{"who":"someone"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Probes, Prometheus and the signed link need no login.
    assert_eq!(
        call(&st, "GET", "/healthz", &[], "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&st, "GET", "/metrics", &[], "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&st, "GET", &link, &[], "").await.status,
        StatusCode::OK
    );
    // Nothing was acknowledged.
    assert!(!acknowledged(&st, id));
}

#[tokio::test]
async fn a_login_acts_under_its_own_name_and_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, _) = login_state(dir.path());

    // A wrong password: no cookie, the form again with the name kept.
    let a = call(
        &st,
        "POST",
        "/login",
        &[FORM],
        "user=zhang&password=wrong&next=%2F",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.set_cookie.is_empty());
    assert!(a.body.contains("用户名或密码错误") && a.body.contains(r#"value="zhang""#));
    let a = call(&st, "POST", "/login", &[FORM], "user=nobody&password=x").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let officer = log_in(&st, "zhang", "officer-pass").await;
    let a = call(
        &st,
        "POST",
        "/login",
        &[FORM],
        "user=zhang&password=officer-pass",
    )
    .await;
    assert!(
        a.set_cookie.contains("HttpOnly")
            && a.set_cookie.contains("SameSite=Lax")
            && a.set_cookie.contains("Max-Age=43200")
            && !a.set_cookie.contains("Secure"),
        "{}",
        a.set_cookie
    );
    // The cookie's value is not what the store keeps.
    let value = officer.trim_start_matches("yuqing_session=");
    assert!(
        st.alerts
            .session(value, chrono::Utc::now())
            .unwrap()
            .is_none()
    );

    let me = [("cookie", officer.as_str())];
    let a = call(&st, "GET", &format!("/incidents/{id}"), &me, "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains(r#"<span id="acting">处置人：张伟</span>"#),
        "{}",
        a.body
    );
    let home = call(&st, "GET", "/", &me, "").await;
    assert!(home.body.contains("张伟（处置）"), "{}", home.body);
    // The name in the request is ignored: the login acts.
    let a = call(
        &st,
        "POST",
        &format!("/incidents/{id}/ack"),
        &[FORM, me[0], ("sec-fetch-site", "same-origin")],
        "who=%E5%88%AB%E4%BA%BA",
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let acked = st.alerts.timeline(id).unwrap();
    let ack = acked.iter().find(|t| t.action == "acknowledged").unwrap();
    assert_eq!(ack.actor, "zhang");

    // The leader reads, and may not resolve.
    let leader = log_in(&st, "li", "leader-pass").await;
    let lm = [("cookie", leader.as_str())];
    let a = call(&st, "GET", &format!("/incidents/{id}"), &lm, "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        !a.body.contains(r#"id="resolve""#),
        "an observer sees no buttons"
    );
    let a = call(
        &st,
        "POST",
        &format!("/api/incidents/{id}/resolve"),
        &[JSON, lm[0]],
        "{}",
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("needs a responder"), "{}", a.body);
    let a = call(
        &st,
        "POST",
        "/api/silences",
        &[JSON, lm[0]],
        r#"{"matchers":{"topic":"安全"},"ends_at":"2h","comment":"演练"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // The officer silences without naming themself.
    let a = call(
        &st,
        "POST",
        "/api/silences",
        &[JSON, me[0]],
        r#"{"matchers":{"topic":"安全"},"ends_at":"2h","comment":"演练"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(
        st.alerts.silences(chrono::Utc::now()).unwrap()[0].author,
        "zhang"
    );

    // Logging out ends the session for good.
    let a = call(
        &st,
        "POST",
        "/logout",
        &[me[0], ("sec-fetch-site", "same-origin")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(a.set_cookie.contains("Max-Age=0"));
    let a = call(&st, "GET", "/api/incidents", &me, "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // A new password ends the sessions made with the old one.
    let cookie = log_in(&st, "zhang", "officer-pass").await;
    let later = with_access(st.clone(), &server_config("new-pass"));
    let a = call(
        &later,
        "GET",
        "/api/incidents",
        &[("cookie", cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_read_and_wrong_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, _) = login_state(dir.path());
    let bearer = format!("Bearer {TOKEN}");
    let a = call(
        &st,
        "GET",
        "/api/incidents",
        &[("authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(
        &st,
        "POST",
        &format!("/api/incidents/{id}/ack"),
        &[JSON, ("authorization", bearer.as_str())],
        "{}",
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "an observer token");
    let a = call(
        &st,
        "GET",
        "/api/incidents",
        &[("authorization", "Bearer yq_guess")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("unknown token"), "{}", a.body);
    // Open paths answer whatever the token.
    let a = call(
        &st,
        "GET",
        "/healthz",
        &[("authorization", "Bearer yq_guess")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

/// A page of another site cannot make a logged-in browser act, whether the
/// browser says so (`Sec-Fetch-Site`) or only sends its `Origin`.
#[tokio::test]
async fn requests_from_other_sites_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, _) = login_state(dir.path());
    let officer = log_in(&st, "zhang", "officer-pass").await;
    let ack = format!("/incidents/{id}/ack");
    for forged in [
        [("sec-fetch-site", "cross-site"), ("host", "console.test")],
        [("sec-fetch-site", "same-site"), ("host", "console.test")],
        [("origin", "http://evil.example"), ("host", "console.test")],
        [("origin", "null"), ("host", "console.test")],
    ] {
        let a = call(
            &st,
            "POST",
            &ack,
            &[FORM, ("cookie", officer.as_str()), forged[0], forged[1]],
            "",
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{forged:?}");
    }
    assert!(!acknowledged(&st, id));
    // Its own origin, by Host, is the console itself.
    let a = call(
        &st,
        "POST",
        &ack,
        &[
            FORM,
            ("cookie", officer.as_str()),
            ("origin", "http://console.test"),
            ("host", "console.test"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_passwords_make_a_login_wait_and_next_stays_local() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _, _) = login_state(dir.path());
    for _ in 0..5 {
        let a = call(&st, "POST", "/login", &[FORM], "user=zhang&password=guess").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now; another login does not.
    let a = call(
        &st,
        "POST",
        "/login",
        &[FORM],
        "user=zhang&password=officer-pass",
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.set_cookie.is_empty());
    assert!(a.body.contains("秒后再试"), "{}", a.body);
    let a = call(
        &st,
        "POST",
        "/login",
        &[FORM],
        "user=li&password=leader-pass&next=%2F%2Fevil.example%2F",
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location, "/", "never to another site");
    let a = call(
        &st,
        "POST",
        "/login",
        &[FORM],
        "user=li&password=leader-pass&next=%2F%5Cevil.example",
    )
    .await;
    assert_eq!(a.location, "/");
    let metrics = call(&st, "GET", "/metrics", &[], "").await.body;
    assert!(
        metrics.contains(r#"yuqing_server_logins_total{outcome="refused"} 5"#),
        "{metrics}"
    );
}

/// With no logins configured, the console is open as before, on a
/// loopback address only, unless `anonymous` is set on purpose.
#[test]
fn an_open_console_stays_on_loopback() {
    let open = ServerConfig::default();
    assert_eq!(open.anonymous_role(), Some(yuqing_config::Role::Responder));
    let lan: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert!(open.open_to_network(&lan).unwrap().contains("no login"));
    assert!(open.open_to_network(&local).is_none());
    let proxied: ServerConfig = toml::from_str("anonymous = \"observer\"").unwrap();
    assert!(proxied.open_to_network(&lan).is_none());
    let logins = server_config("x");
    assert_eq!(logins.anonymous_role(), None);
    assert!(logins.open_to_network(&lan).is_none());
}

/// Wrong passwords sent at once count each: the sixth and later wait
/// without being checked. Unknown names share one count, so they neither
/// fill memory nor hold up a real login.
#[tokio::test]
async fn guesses_sent_at_once_are_throttled_together() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _, _) = login_state(dir.path());
    let guesses: Vec<_> = (0..8)
        .map(|i| {
            let st = st.clone();
            tokio::spawn(async move {
                let body = format!("user=zhang&password=guess{i}");
                call(&st, "POST", "/login", &[FORM], &body).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    let waited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(waited, 3, "{statuses:?}");
    // Every name has a count of its own, known or not, so the answers
    // tell nothing about which names exist; a real login is not held up.
    for _ in 0..6 {
        let name = format!("ghost{}", "x".repeat(10_000));
        call(
            &st,
            "POST",
            "/login",
            &[FORM],
            &format!("user={name}&password=x"),
        )
        .await;
    }
    let cut = format!("user=ghost{}&password=x", "x".repeat(59));
    let a = call(&st, "POST", "/login", &[FORM], &cut).await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "names are cut to 64 characters"
    );
    let a = call(&st, "POST", "/login", &[FORM], "user=ghost9&password=x").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = call(
        &st,
        "POST",
        "/login",
        &[FORM],
        "user=li&password=leader-pass",
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::SEE_OTHER,
        "a real login is not held up"
    );
}

/// Without logins, the console answers only under its own names: a page
/// that points its own name at 127.0.0.1 (DNS rebinding) gets nothing.
/// Probes and a proxy's Basic credentials are left alone.
#[tokio::test]
async fn an_open_console_answers_only_its_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let (st, id, _) = duty_state(dir.path());
    for host in ["rebind.evil.example:8080", "192.168.1.20:8080"] {
        let a = call(&st, "GET", "/api/incidents", &[("host", host)], "").await;
        assert_eq!(a.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        let a = call(
            &st,
            "POST",
            &format!("/api/incidents/{id}/ack"),
            &[JSON, ("host", host), ("sec-fetch-site", "same-origin")],
            r#"{"who":"x"}"#,
        )
        .await;
        assert_eq!(a.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "LOCALHOST",
    ] {
        let a = call(&st, "GET", "/api/incidents", &[("host", host)], "").await;
        assert_eq!(a.status, StatusCode::OK, "{host}");
    }
    let a = call(
        &st,
        "GET",
        "/healthz",
        &[("host", "rebind.evil.example")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let basic = ("authorization", "Basic YWRtaW46YWRtaW4=");
    let a = call(&st, "GET", "/api/incidents", &[basic], "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Basic credentials are no exemption from the cross-site check.
    let a = call(
        &st,
        "POST",
        &format!("/incidents/{id}/ack"),
        &[FORM, basic, ("sec-fetch-site", "cross-site")],
        "who=x",
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // With logins and anonymous responders besides (behind a proxy), an
    // anonymous request may not act under a login's id.
    let mut cfg = server_config("officer-pass");
    cfg.anonymous = Some(yuqing_config::Anonymous::Responder);
    let st = with_access(st, &cfg);
    let a = call(
        &st,
        "POST",
        &format!("/api/incidents/{id}/ack"),
        &[JSON],
        r#"{"who":"zhang"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("log in to act as"), "{}", a.body);
    let a = call(
        &st,
        "POST",
        &format!("/api/incidents/{id}/ack"),
        &[JSON],
        r#"{"who":"夜班值守"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// Every answer, refusals included, forbids framing and keeps the
/// console's addresses from the sites it links to; a crawled link that
/// names the console before an `@` is no link.
#[tokio::test]
async fn answers_cannot_be_framed_and_links_hide_no_host() {
    let dir = tempfile::tempdir().unwrap();
    let (st, _, _) = duty_state(dir.path());
    let refused = with_access(st.clone(), &server_config("officer-pass"));
    for (st, uri) in [(&st, "/"), (&refused, "/api/incidents"), (&st, "/healthz")] {
        let resp = app(st.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let h = resp.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{uri}");
        assert_eq!(h["content-security-policy"], "frame-ancestors 'none'");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    assert_eq!(
        crate::safe_url("https://yuqing.example.gov.cn@evil.example/ack"),
        "#"
    );
    assert_eq!(crate::safe_url("https://e.com/1"), "https://e.com/1");
}
