//! The notification outbox sender: every notification is a row before it is
//! a request, so a crash between the two re-sends instead of losing it, and
//! the unique keys (incident, channel, reason, level) of plain webhook rows
//! and (incident, round, target) of routed messages mean a replay never
//! enqueues a second one. Each channel keeps to its platform's rate limit;
//! a message the platform throttles waits without using up an attempt.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use yuqing_config::{ChannelConfig, ChannelKind, SmtpTls};
use yuqing_model::Incident;

use crate::channels::{Request, SendFailure, check_answer, render};
use crate::duty::Duty;
use crate::escalation::Message;
use crate::metrics::AlertMetrics;
use crate::store::{AlertStore, PendingNotification};

/// After this many failed attempts of one message (about four minutes of
/// backoff) its channel's delivery incident opens, routed to the other
/// channels. The message itself is still retried, every five minutes at
/// most, until [`RETRY_FOR_HOURS`].
pub const ALARM_AFTER_ATTEMPTS: u32 = 8;

/// A message still undelivered this long after it was queued is a dead
/// letter: an outage of the network or a platform delays messages, and
/// only a day of it loses them.
pub const RETRY_FOR_HOURS: i64 = 24;

/// Seconds before the next attempt after `attempts` failed ones: doubling
/// from 2 s, at most 5 minutes.
fn backoff(attempts: u32) -> i64 {
    2i64.pow(attempts.min(9)).min(300)
}

/// The webhook body: Alertmanager's webhook format (version 4), so tools that
/// accept Alertmanager can take it, plus the incident itself.
pub fn webhook_payload(incident: &Incident, reason: &str, console_url: &str) -> String {
    let status = if incident.status == yuqing_model::IncidentStatus::Resolved {
        "resolved"
    } else {
        "firing"
    };
    let link = format!(
        "{}/incidents/{}",
        console_url.trim_end_matches('/'),
        incident.id
    );
    json!({
        "version": "4",
        "status": status,
        "receiver": "yuqing",
        "groupKey": incident.dedup_key,
        "externalURL": console_url,
        "commonLabels": {"alertname": incident.rule_id, "level": incident.level.as_str()},
        "alerts": [{
            "status": status,
            "fingerprint": incident.dedup_key,
            "labels": {
                "alertname": incident.rule_id,
                "rule": incident.rule_name,
                "topic": incident.topic,
                "level": incident.level.as_str(),
                "event": incident.event_id,
            },
            "annotations": {
                "summary": format!("【{}预警】{}", incident.level.zh(), incident.title),
                "description": format!("规则「{}」命中 {} 条，首发：{}", incident.rule_name, incident.item_count, incident.url),
                "url": incident.url,
            },
            "startsAt": incident.opened_at.to_rfc3339(),
            "generatorURL": link,
        }],
        "yuqing": {"reason": reason, "incident": incident},
    })
    .to_string()
}

/// Where outbox rows go: plain webhooks by name, and the routed channels.
#[derive(Debug, Clone)]
pub struct Outlets {
    pub webhooks: HashMap<String, String>,
    pub duty: Arc<Duty>,
}

/// Send times per channel over the last minute, and channels the platform
/// has told to wait. A channel keeps within its requests a minute and,
/// where the platform has one, its requests a second.
#[derive(Debug, Default)]
struct RateLimiter {
    sent: HashMap<String, VecDeque<DateTime<Utc>>>,
    blocked: HashMap<String, DateTime<Utc>>,
}

impl RateLimiter {
    /// When the channel may send next, if not now.
    fn wait_until(
        &mut self,
        channel: &str,
        per_minute: u32,
        per_second: Option<u32>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if let Some(&until) = self.blocked.get(channel) {
            if until > now {
                return Some(until);
            }
            self.blocked.remove(channel);
        }
        let q = self.sent.entry(channel.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now - *t >= chrono::Duration::minutes(1))
        {
            q.pop_front();
        }
        if q.len() >= per_minute as usize {
            return Some(q[0] + chrono::Duration::minutes(1));
        }
        let per_second = per_second? as usize;
        // A second and a tenth: the platform counts arrivals, and a request
        // can arrive later than the next one leaves.
        let second = chrono::Duration::milliseconds(1_100);
        let recent = q.iter().rev().take_while(|t| now - **t < second).count();
        (recent >= per_second).then(|| q[q.len() - per_second] + second)
    }

    fn record(&mut self, channel: &str, now: DateTime<Utc>) {
        self.sent
            .entry(channel.to_string())
            .or_default()
            .push_back(now);
    }

    /// The platform throttled the channel: nothing goes until `until`.
    fn block(&mut self, channel: &str, until: DateTime<Utc>) {
        self.blocked.insert(channel.to_string(), until);
    }
}

enum Outcome {
    Sent,
    /// Rate-limited here or by the platform after this many requests of
    /// the message: try the rest then.
    Later(DateTime<Utc>, u32),
    /// Failed after this many requests of the message.
    Failed(String, u32),
    /// Cannot ever succeed (the channel is gone, the row unreadable).
    Dead(String),
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Sends due notifications until shutdown.
pub async fn run_sender(
    store: AlertStore,
    outlets: Outlets,
    metrics: AlertMetrics,
    wake: std::sync::Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build HTTP client; notifications stay queued");
            return;
        }
    };
    let limiter = Arc::new(std::sync::Mutex::new(RateLimiter::default()));
    let busy: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Default::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // Rows read while a channel's task runs may already be sent by the
        // time the read returns: only channels idle before the read are
        // given rows from it. Nothing else starts tasks, so they stay idle.
        let busy_before: std::collections::HashSet<String> = busy.lock().unwrap().clone();
        let s = store.clone();
        match blocking(move || s.due_notifications(Utc::now(), 200)).await {
            Some(Ok(rows)) => {
                // Channels send side by side, each in order: a slow mail
                // server does not hold up the robots. A channel still busy
                // with its last batch is left to finish it.
                let mut by_channel: HashMap<String, Vec<PendingNotification>> = HashMap::new();
                for n in rows {
                    by_channel.entry(n.channel.clone()).or_default().push(n);
                }
                for (channel, rows) in by_channel {
                    if busy_before.contains(&channel)
                        || !busy.lock().unwrap().insert(channel.clone())
                    {
                        continue;
                    }
                    let (client, outlets, limiter) =
                        (client.clone(), outlets.clone(), limiter.clone());
                    let (store, metrics, busy, wake) =
                        (store.clone(), metrics.clone(), busy.clone(), wake.clone());
                    tasks.spawn(async move {
                        for n in rows {
                            let outcome = send(&client, &outlets, &limiter, &store, &n).await;
                            settle(&store, &metrics, n, outcome).await;
                        }
                        busy.lock().unwrap().remove(&channel);
                        wake.notify_one();
                    });
                }
                // Reap finished channel tasks.
                while tasks.try_join_next().is_some() {}
            }
            Some(Err(e)) => warn!(error = %e, "cannot read notification outbox"),
            None => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    // Let sends in flight finish, so a sent message is marked sent.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

async fn send(
    client: &reqwest::Client,
    outlets: &Outlets,
    limiter: &std::sync::Mutex<RateLimiter>,
    store: &AlertStore,
    n: &PendingNotification,
) -> Outcome {
    let now = Utc::now();
    if n.kind == "webhook-legacy" {
        let Some(url) = outlets.webhooks.get(&n.channel) else {
            return Outcome::Dead("channel no longer configured".into());
        };
        let request = Request::Http {
            url: url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: n.payload.clone(),
        };
        return match http(client, ChannelKind::Webhook, &request).await {
            Ok(()) => Outcome::Sent,
            Err(f) => Outcome::Failed(f.error, 0),
        };
    }
    let Some(ch) = outlets.duty.channels.get(&n.channel) else {
        return Outcome::Dead("channel no longer configured".into());
    };
    let message: Message = match serde_json::from_str(&n.payload) {
        Ok(m) => m,
        Err(e) => return Outcome::Dead(format!("unreadable message: {e}")),
    };
    let requests = match render(ch, &message, now) {
        Ok(r) => r,
        Err(e) => return Outcome::Dead(e),
    };
    // Each request counts against the limit, and the ones a failed or
    // throttled attempt already made are not made again.
    for (k, r) in requests.iter().enumerate().skip(n.parts_sent as usize) {
        let k = k as u32;
        let now = Utc::now();
        {
            let mut l = limiter.lock().unwrap();
            if let Some(at) =
                l.wait_until(&ch.id, ch.rate_per_minute(), ch.kind.rate_per_second(), now)
            {
                return Outcome::Later(at, k);
            }
            l.record(&ch.id, now);
        }
        let result = match r {
            Request::Http { .. } => http(client, ch.kind, r).await,
            Request::Email { to, subject, html } => email(ch, to, subject, html).await,
        };
        if let Err(f) = result {
            if f.throttled {
                // DingTalk blocks a robot for 10 minutes once it is over.
                let wait = if ch.kind == ChannelKind::Dingtalk {
                    600
                } else {
                    60
                };
                let until = now + chrono::Duration::seconds(wait);
                limiter.lock().unwrap().block(&ch.id, until);
                warn!(channel = %ch.id, error = %f.error, "throttled by the platform");
                return Outcome::Later(until, k);
            }
            return Outcome::Failed(f.error, k);
        }
        // A message of several requests records each one sent, so a
        // restart in the middle goes on from the next.
        if k + 1 < requests.len() as u32 {
            let (s, id) = (store.clone(), n.id);
            if let Some(Err(e)) = blocking(move || s.record_parts(id, k + 1)).await {
                warn!(notification = n.id, error = %e, "cannot record the parts sent");
            }
        }
    }
    Outcome::Sent
}

async fn http(client: &reqwest::Client, kind: ChannelKind, r: &Request) -> Result<(), SendFailure> {
    let Request::Http { url, headers, body } = r else {
        return Ok(());
    };
    let mut req = client.post(url).body(body.clone());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| SendFailure {
        error: e.to_string(),
        throttled: false,
    })?;
    let status = resp.status().as_u16();
    // A robot answers in a line of JSON; more than this is not read.
    const ANSWER_BYTES: usize = 64 * 1024;
    let mut resp = resp;
    let mut bytes = Vec::new();
    while bytes.len() < ANSWER_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ANSWER_BYTES);
    check_answer(kind, status, &String::from_utf8_lossy(&bytes))
}

/// Sends an HTML email through the channel's SMTP server.
async fn email(
    c: &ChannelConfig,
    to: &[String],
    subject: &str,
    html: &str,
) -> Result<(), SendFailure> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let fail = |e: String| SendFailure {
        error: e,
        throttled: false,
    };
    let smtp = c.smtp.as_deref().unwrap_or("");
    let (host, port) = smtp
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| fail(format!("bad smtp address `{smtp}`")))?;
    // TLS from the first byte (465) or after STARTTLS (587), verified
    // against the system's roots plus the channel's own CA, if any.
    let tls = match c.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(ca) = &c.ca_file {
                let pem = std::fs::read(ca).map_err(|e| fail(format!("ca_file {ca}: {e}")))?;
                let cert =
                    Certificate::from_pem(&pem).map_err(|e| fail(format!("ca_file {ca}: {e}")))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build().map_err(|e| fail(e.to_string()))?;
            if mode == SmtpTls::Implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(tls);
    let mut builder = builder.port(port).timeout(Some(Duration::from_secs(20)));
    if let (Some(u), Some(p)) = (&c.username, &c.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let transport = builder.build();
    let from = c.from.as_deref().unwrap_or("");
    let mut m = lettre::Message::builder()
        .from(
            from.parse()
                .map_err(|e| fail(format!("from `{from}`: {e}")))?,
        )
        .subject(subject);
    for t in to {
        m = m.to(t
            .parse()
            .map_err(|e| fail(format!("recipient `{t}`: {e}")))?);
    }
    let message = m
        .header(ContentType::TEXT_HTML)
        .body(html.to_string())
        .map_err(|e| fail(e.to_string()))?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| fail(e.to_string()))
}

/// How long a notification has been retried: since it was queued, less
/// the alerter's last downtime after that.
async fn retrying_for(
    store: &AlertStore,
    n: &PendingNotification,
    now: DateTime<Utc>,
) -> chrono::Duration {
    let s = store.clone();
    let down = blocking(move || s.downtime())
        .await
        .and_then(Result::ok)
        .flatten();
    crate::store::time_up(n.created_at, now, down)
}

/// Records how a send went: sent, put off, retried with backoff, or dead,
/// when a delivery incident is raised for it.
async fn settle(
    store: &AlertStore,
    metrics: &AlertMetrics,
    n: PendingNotification,
    outcome: Outcome,
) {
    let s = store.clone();
    let now = Utc::now();
    let channel = n.channel.clone();
    // Plain webhooks are named apart from routed channels, whose ids they
    // may share.
    let outlet = if n.kind == "webhook-legacy" {
        format!("webhook:{channel}")
    } else {
        channel.clone()
    };
    let (id, attempts) = (n.id, n.attempts + 1);
    match outcome {
        Outcome::Sent => {
            info!(channel = %channel, notification = id, "notification sent");
            metrics
                .notifications
                .with_label_values(&[&channel, "sent"])
                .inc();
            // A channel that delivers again closes its delivery incident.
            let r = blocking(move || {
                s.mark_sent(id, now)?;
                s.resolve_delivery(&outlet, now)
            })
            .await;
            if let Some(Err(e)) = r {
                error!(error = %e, "cannot record a sent notification");
            }
        }
        Outcome::Later(at, parts) => {
            let _ = blocking(move || {
                s.record_parts(id, parts)?;
                s.postpone(id, at)
            })
            .await;
        }
        // A day of retries, not counting the time the alerter was down.
        Outcome::Failed(e, parts)
            if retrying_for(store, &n, now).await < chrono::Duration::hours(RETRY_FOR_HOURS) =>
        {
            let retry = now + chrono::Duration::seconds(backoff(attempts));
            warn!(channel = %channel, notification = id, attempts, error = %e, "notification failed; retrying");
            metrics
                .notifications
                .with_label_values(&[&channel, "retry"])
                .inc();
            let r = blocking(move || {
                s.record_parts(id, parts)?;
                s.mark_failed(id, &e, now, Some(retry))?;
                // Failing long enough for someone to hear of it elsewhere.
                if attempts == ALARM_AFTER_ATTEMPTS {
                    s.record_delivery_failure(id, &outlet, &e, false, now)?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .await;
            if let Some(Err(e)) = r {
                error!(error = %e, "cannot record a failed notification");
            }
        }
        Outcome::Failed(e, _) | Outcome::Dead(e) => {
            error!(channel = %channel, notification = id, attempts, error = %e, "notification failed for good");
            metrics
                .notifications
                .with_label_values(&[&channel, "dead"])
                .inc();
            // A dead letter is in the metrics and the API, and raises a
            // delivery incident, routed to the other channels.
            let r = blocking(move || {
                s.mark_failed(id, &e, now, None)?;
                s.record_delivery_failure(id, &outlet, &e, true, now)
            })
            .await;
            if let Some(Err(e)) = r {
                error!(error = %e, "cannot record a dead notification");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of retries leaves out the time the alerter was down.
    #[tokio::test]
    async fn downtime_does_not_count_towards_a_days_retries() {
        let dir = tempfile::tempdir().unwrap();
        let store = AlertStore::open(&dir.path().join("alert.db")).unwrap();
        let now = Utc::now();
        let hours = |h| chrono::Duration::hours(h);
        let n = PendingNotification {
            id: 1,
            channel: "ding".into(),
            kind: "dingtalk".into(),
            payload: String::new(),
            attempts: 3,
            parts_sent: 0,
            created_at: now - hours(24),
        };
        assert_eq!(retrying_for(&store, &n, now).await.num_minutes(), 24 * 60);
        // Down from 25 hours ago until an hour ago.
        store.heartbeat(now - hours(25)).unwrap();
        store
            .record_start(now - hours(1), chrono::Duration::minutes(3))
            .unwrap();
        assert_eq!(retrying_for(&store, &n, now).await.num_minutes(), 60);
    }
}
