//! Who is asking: console logins (a session cookie made by `POST /login`),
//! API tokens (`Authorization: Bearer …`), or nobody. Every request passes
//! [`authorize`], which finds the [`Principal`], refuses what its role may
//! not do, and refuses unsafe requests that another site's page made.
//!
//! Reading is an observer's; anything else that changes state (acknowledge,
//! resolve, silences, handover notes) a responder's. `/healthz`,
//! `/metrics`, the login page and signed acknowledgement links (`/ack/…`,
//! their signature is their authority) are open to all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{PasswordHash, PasswordVerifier};
use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::Utc;
use minijinja::context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use yuqing_config::{Role, ServerConfig};

use crate::AppState;
use crate::duty::blocking;

/// The session cookie's name.
pub const COOKIE: &str = "yuqing_session";

/// Consecutive wrong passwords for one login name before it must wait.
const FREE_FAILURES: u32 = 5;
/// The longest wait after wrong passwords: guessing slows to one try a
/// minute.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Login names whose wrong passwords are remembered; past it, the half
/// least recently tried are forgotten. Every name has a count of its own,
/// so the answers tell nothing about which names exist.
const MAX_NAMES: usize = 10_000;

/// How a request was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Anonymous,
    Session,
    Token,
}

/// Who is asking, and what they may do.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// The login or token id; empty when anonymous.
    pub id: String,
    pub name: String,
    pub role: Option<Role>,
    pub via: Via,
}

impl Principal {
    /// Whether the request names a login or token, so what it does is
    /// recorded under that id rather than a name the request gives.
    pub fn known(&self) -> bool {
        self.via != Via::Anonymous
    }

    fn may(&self, need: Role) -> bool {
        self.role.is_some_and(|r| r >= need)
    }
}

struct User {
    name: String,
    role: Role,
    hash: String,
    /// Fingerprint of `hash`, kept with each session.
    credential: String,
}

/// Wrong passwords of one login name.
struct Failures {
    count: u32,
    last: Instant,
}

/// The logins, tokens and policy of `[server]`, ready for requests.
pub struct Access {
    users: HashMap<String, User>,
    /// SHA-256 (hex) of each token → its principal.
    tokens: HashMap<String, Principal>,
    anonymous: Option<Role>,
    session_ttl: chrono::Duration,
    /// Cookies only over HTTPS when the console's public URL is HTTPS.
    secure_cookie: bool,
    /// The public URL's origin (`https://yuqing.example.gov.cn`), accepted
    /// as a request's `Origin` besides its own `Host`.
    public_origin: Option<String>,
    /// The public URL's host, and the listening address's when it is not
    /// every address: the names anonymous requests may use.
    public_host: Option<String>,
    listen_host: Option<String>,
    failures: Mutex<HashMap<String, Failures>>,
    /// One password check at a time: each takes argon2's memory and tens of
    /// milliseconds of a core.
    verifying: Arc<tokio::sync::Semaphore>,
    /// Checked for unknown login names, so they take as long as known ones.
    decoy: String,
    /// `yuqing_server_logins_total{outcome}`.
    logins: prometheus::IntCounterVec,
}

/// Hex SHA-256 of `s`.
pub fn sha256_hex(s: &[u8]) -> String {
    yuqing_model::hex(&Sha256::digest(s))
}

/// A password's argon2id hash in PHC form, with a random salt and the
/// crate's default cost (19 MiB, two passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// A new API token (`yq_` and 43 characters of base64url: 256 random
/// bits).
pub fn new_token() -> Result<String, String> {
    Ok(format!("yq_{}", random_b64()?))
}

fn random_b64() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random numbers from the system: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Access {
    /// Validated config in; see [`yuqing_config::ServerConfig`]. Login
    /// counts go to `registry`.
    pub fn new(cfg: &ServerConfig, registry: &prometheus::Registry) -> Access {
        let logins = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "yuqing_server_logins_total",
                "Console logins, by outcome (ok, refused).",
            ),
            &["outcome"],
        )
        .expect("metric is valid");
        // Registered once per registry; tests build several apps on one.
        let _ = registry.register(Box::new(logins.clone()));
        let users = cfg
            .user
            .iter()
            .map(|u| {
                (
                    u.id.clone(),
                    User {
                        name: u.display_name().to_string(),
                        role: u.role,
                        hash: u.password_hash.clone(),
                        credential: sha256_hex(u.password_hash.as_bytes())[..16].to_string(),
                    },
                )
            })
            .collect();
        let tokens = cfg
            .token
            .iter()
            .map(|t| {
                (
                    t.sha256.clone(),
                    Principal {
                        id: t.id.clone(),
                        name: t.id.clone(),
                        role: Some(t.role),
                        via: Via::Token,
                    },
                )
            })
            .collect();
        let public = cfg
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok());
        // The decoy costs what the configured hashes cost.
        let decoy = cfg
            .user
            .first()
            .map(|u| u.password_hash.clone())
            .unwrap_or_default();
        Access {
            users,
            tokens,
            anonymous: cfg.anonymous_role(),
            session_ttl: chrono::Duration::seconds(cfg.session_ttl.as_secs()),
            secure_cookie: public.as_ref().is_some_and(|u| u.scheme() == "https"),
            public_host: public
                .as_ref()
                .and_then(|u| u.host_str())
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()),
            listen_host: cfg
                .listen
                .parse::<std::net::SocketAddr>()
                .ok()
                .filter(|a| !a.ip().is_unspecified())
                .map(|a| a.ip().to_string()),
            public_origin: public.map(|u| u.origin().ascii_serialization()),
            failures: Mutex::new(HashMap::new()),
            verifying: Arc::new(tokio::sync::Semaphore::new(1)),
            decoy,
            logins,
        }
    }

    fn anonymous(&self) -> Principal {
        Principal {
            id: String::new(),
            name: String::new(),
            role: self.anonymous,
            via: Via::Anonymous,
        }
    }

    /// Counts an attempt of `login` as failed before its password is
    /// checked, so attempts sent at once count each; the wait left when
    /// there is one, and the attempt is then not made.
    fn attempt(&self, login: &str) -> Result<(), Duration> {
        let mut all = self.failures.lock().unwrap();
        if all.len() >= MAX_NAMES && !all.contains_key(login) {
            let mut ages: Vec<Instant> = all.values().map(|f| f.last).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            all.retain(|_, f| f.last > cutoff);
        }
        let f = all.entry(login.to_string()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        if f.count >= FREE_FAILURES {
            // 1 s after the fifth wrong password, doubling, at most a
            // minute.
            let wait = Duration::from_secs(1 << (f.count - FREE_FAILURES).min(6)).min(MAX_WAIT);
            if let Some(left) = wait.checked_sub(f.last.elapsed()) {
                return Err(left);
            }
        }
        f.count = f.count.saturating_add(1);
        f.last = Instant::now();
        Ok(())
    }

    /// A wrong password: the wait runs from now, when it was refused.
    fn failed(&self, login: &str) {
        if let Some(f) = self.failures.lock().unwrap().get_mut(login) {
            f.last = Instant::now();
        }
    }

    fn succeeded(&self, login: &str) {
        self.failures.lock().unwrap().remove(login);
    }

    /// Checks a password; the user when it is right. The permit goes into
    /// the check itself, so a client that hangs up does not free it while
    /// the check still runs.
    async fn check_password(&self, login: &str, password: &str) -> Option<&User> {
        let user = self.users.get(login);
        let hash = user.map_or(self.decoy.clone(), |u| u.hash.clone());
        let password = password.to_string();
        let turn = self.verifying.clone().acquire_owned().await.ok()?;
        let right = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            PasswordHash::new(&hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        user.filter(|_| right)
    }

    /// Whether `host` (a `Host` header) names this console: a loopback
    /// name or address, or the host of `server.public_url`. Anonymous
    /// access is refused under any other name, so a page of another site
    /// cannot reach it by pointing its own name at 127.0.0.1 (DNS
    /// rebinding).
    fn own_host(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self
                .public_host
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(name))
            || self
                .listen_host
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(name))
    }

    /// Whether `who` is the id of a login or token, which only that login
    /// or token may act as.
    pub(crate) fn is_known_id(&self, who: &str) -> bool {
        self.users.contains_key(who) || self.tokens.values().any(|p| p.id == who)
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Role(Role),
}

fn need(method: &Method, path: &str) -> Need {
    if matches!(path, "/healthz" | "/metrics" | "/login" | "/logout") || path.starts_with("/ack/") {
        return Need::Nothing;
    }
    if safe(method) {
        Need::Role(Role::Observer)
    } else {
        Need::Role(Role::Responder)
    }
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a page of another site (or another origin of this one) made
/// the request: the browser says so in `Sec-Fetch-Site`, or older ones
/// only by an `Origin` that is neither this host nor the public URL.
fn cross_site(h: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(site) = h.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = h.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    if public_origin == Some(origin) {
        return false;
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    !(bare.is_some() && bare == host)
}

fn cookie<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn wants_json(path: &str, h: &HeaderMap) -> bool {
    path.starts_with("/api/") || bearer(h).is_some()
}

fn refusal(status: StatusCode, json: bool, message: &str) -> Response {
    if json {
        let mut r = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"yuqing\""),
            );
        }
        r
    } else {
        (status, message.to_string()).into_response()
    }
}

/// The principal of a request, or the answer refusing it.
async fn identify(
    st: &AppState,
    h: &HeaderMap,
    json: bool,
    needed: Need,
) -> Result<Principal, Response> {
    let access = &st.access;
    // Other schemes (a proxy's Basic credentials) are not ours to judge.
    if let Some(token) = bearer(h) {
        let found = access.tokens.get(&sha256_hex(token.as_bytes()));
        return match found {
            Some(p) => Ok(p.clone()),
            // An open path answers whatever the token.
            None if needed == Need::Nothing => Ok(access.anonymous()),
            None => Err(refusal(
                StatusCode::UNAUTHORIZED,
                true,
                "unknown token: send `Authorization: Bearer <token>` with a token of [[server.token]]",
            )),
        };
    }
    let Some(cookie) = cookie(h, COOKIE) else {
        return Ok(access.anonymous());
    };
    let digest = sha256_hex(cookie.as_bytes());
    let store = st.alerts.clone();
    let session = blocking(move || store.session(&digest, Utc::now()))
        .await
        .map_err(|e| refusal(e.0, json, &e.1))?;
    // A user no longer configured, or with another password since, is
    // logged out; so is an expired session.
    Ok(session
        .and_then(|s| {
            let u = access.users.get(&s.user_id)?;
            (u.credential == s.credential).then(|| Principal {
                id: s.user_id,
                name: u.name.clone(),
                role: Some(u.role),
                via: Via::Session,
            })
        })
        .unwrap_or_else(|| access.anonymous()))
}

/// The answer to a request its principal's role does not allow: a known
/// login or token is forbidden; an anonymous API call must log in; an
/// anonymous page view goes to the login page and comes back.
fn refuse_role(
    principal: &Principal,
    role: Role,
    json: bool,
    method: &Method,
    uri: &axum::http::Uri,
) -> Response {
    if principal.known() {
        return refusal(
            StatusCode::FORBIDDEN,
            json,
            &format!(
                "`{}` is an {} and may not do this: it needs a {}",
                principal.id,
                principal.role.map_or("anonymous", Role::as_str),
                role.as_str()
            ),
        );
    }
    if json || !safe(method) {
        return refusal(StatusCode::UNAUTHORIZED, json, "log in first");
    }
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/login?next={back}")).into_response()
}

/// The middleware in front of every route.
pub(crate) async fn authorize(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = admit(st, req, next).await;
    protect(resp.headers_mut());
    resp
}

/// The request's answer: the route's, or a refusal.
async fn admit(st: AppState, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let json = wants_json(&path, req.headers());
    let method = req.method().clone();
    let needed = need(&method, &path);
    let principal = match identify(&st, req.headers(), json, needed).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // A browser never sends a bearer token on its own, so only requests
    // without one can be forged by another site's page.
    if !safe(&method)
        && principal.via != Via::Token
        && cross_site(req.headers(), st.access.public_origin.as_deref())
    {
        warn!(%path, "refused a request another site's page made");
        return refusal(
            StatusCode::FORBIDDEN,
            json,
            "refused: the request came from another site's page",
        );
    }
    // HTTP/2 names the host in the request's authority, not a header.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if principal.via == Via::Anonymous
        && principal.role.is_some()
        && needed != Need::Nothing
        && let Some(host) = host
        && !st.access.own_host(&host)
    {
        warn!(%path, host = ?host, "refused an anonymous request to another host name");
        return refusal(
            StatusCode::MISDIRECTED_REQUEST,
            json,
            "this console answers requests without a login only under its own names (localhost, its address, server.public_url)",
        );
    }
    if let Need::Role(role) = needed
        && !principal.may(role)
    {
        return refuse_role(&principal, role, json, &method, req.uri());
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Headers on every answer: no page of another site may frame the console
/// (a hidden 解除预警 button under a decoy), the console's addresses do not
/// leak to the crawled sites it links to, and browsers take content types
/// as sent.
fn protect(h: &mut HeaderMap) {
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
}

/// Where to go after logging in: a path of this server, never another
/// site (`//evil.example`, `/\evil.example`).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>, login: &str) -> Response {
    crate::single_page(
        status,
        "login.html",
        include_str!("../templates/login.html"),
        context! { next => next, error => error, login => login },
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the form.
pub(crate) async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    login_page(StatusCode::OK, &local_path(q.next.as_deref()), None, "")
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /login`: checks the password, then sets the session cookie and
/// goes where the user was going.
pub(crate) async fn login(State(st): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let next = local_path(f.next.as_deref());
    let login: String = f.user.trim().chars().take(64).collect();
    let access = &st.access;
    if let Err(wait) = access.attempt(&login) {
        let secs = wait.as_secs().max(1);
        let mut r = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some(&format!("密码错误次数过多，请 {secs} 秒后再试。")),
            &login,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let Some(user) = access.check_password(&login, &f.password).await else {
        access.failed(&login);
        access.logins.with_label_values(&["refused"]).inc();
        warn!(login = %login.escape_debug(), "login refused: wrong name or password");
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("用户名或密码错误。"),
            &login,
        );
    };
    access.succeeded(&login);
    let token = match random_b64() {
        Ok(t) => t,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let now = Utc::now();
    let expires = now + access.session_ttl;
    let (digest, id, credential) = (
        sha256_hex(token.as_bytes()),
        login.clone(),
        user.credential.clone(),
    );
    let store = st.alerts.clone();
    if let Err(e) =
        blocking(move || store.create_session(&digest, &id, &credential, now, expires)).await
    {
        return (e.0, e.1).into_response();
    }
    access.logins.with_label_values(&["ok"]).inc();
    info!(user = %login, role = user.role.as_str(), "logged in");
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        access.session_ttl.num_seconds(),
        if access.secure_cookie { "; Secure" } else { "" }
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: ends the session and forgets the cookie.
pub(crate) async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(c) = cookie(&headers, COOKIE) {
        let digest = sha256_hex(c.as_bytes());
        let store = st.alerts.clone();
        if let Err(e) = blocking(move || store.end_session(&digest)).await {
            return (e.0, e.1).into_response();
        }
    }
    let mut r = Redirect::to("/login").into_response();
    let forget = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&forget) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
