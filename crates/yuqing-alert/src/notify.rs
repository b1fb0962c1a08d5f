//! The notification outbox sender: every notification is a row before it is
//! a request, so a crash between the two re-sends instead of losing it, and
//! the unique key (incident, channel, reason, level) means a replay never
//! enqueues a second one.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use yuqing_model::Incident;

use crate::metrics::AlertMetrics;
use crate::store::AlertStore;

/// After this many failed attempts a notification becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 8;

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

/// Sends due notifications until shutdown.
pub async fn run_sender(
    store: AlertStore,
    channels: HashMap<String, String>,
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
    loop {
        let s = store.clone();
        let due = tokio::task::spawn_blocking(move || s.due_notifications(Utc::now(), 50))
            .await
            .expect("store task does not panic");
        match due {
            Ok(rows) => {
                for n in rows {
                    let Some(url) = channels.get(&n.channel) else {
                        let s = store.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            s.mark_failed(n.id, "channel no longer configured", Utc::now(), None)
                        })
                        .await;
                        continue;
                    };
                    let result = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(n.payload.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| {
                            if r.status().is_success() {
                                Ok(())
                            } else {
                                Err(format!("HTTP {}", r.status()))
                            }
                        });
                    let s = store.clone();
                    let now = Utc::now();
                    match result {
                        Ok(()) => {
                            info!(channel = %n.channel, notification = n.id, "notification sent");
                            metrics
                                .notifications
                                .with_label_values(&[&n.channel, "sent"])
                                .inc();
                            let _ =
                                tokio::task::spawn_blocking(move || s.mark_sent(n.id, now)).await;
                        }
                        Err(e) => {
                            let attempts = n.attempts + 1;
                            let retry = (attempts < MAX_ATTEMPTS).then(|| {
                                now + chrono::Duration::seconds(2i64.pow(attempts).min(300))
                            });
                            let outcome = if retry.is_some() { "retry" } else { "dead" };
                            warn!(channel = %n.channel, notification = n.id, attempts, error = %e, outcome, "notification failed");
                            metrics
                                .notifications
                                .with_label_values(&[&n.channel, outcome])
                                .inc();
                            let _ = tokio::task::spawn_blocking(move || {
                                s.mark_failed(n.id, &e, now, retry)
                            })
                            .await;
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read notification outbox"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
