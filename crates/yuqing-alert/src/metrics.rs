use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Debug, Clone)]
pub struct AlertMetrics {
    pub items: prometheus::IntCounter,
    pub incidents: IntCounterVec,
    pub notifications: IntCounterVec,
    pub reports: IntCounterVec,
    pub spikes: IntCounterVec,
    pub escalations: prometheus::IntCounter,
    /// Failed writes of an item or a source status to `alert.db`; each is
    /// retried until it succeeds.
    pub store_errors: prometheus::IntCounter,
    /// Messages the store refused for half a minute, retried in the
    /// background while the ones after them go on.
    pub parked: prometheus::IntGauge,
    /// Rows deleted from `alert.db` past `alert.retention_days`, by kind.
    pub pruned: IntCounterVec,
}

impl AlertMetrics {
    pub fn new(registry: &Registry) -> Self {
        let items = prometheus::IntCounter::new(
            "yuqing_alert_items_total",
            "Analyzed items processed by the alerter.",
        )
        .unwrap();
        let incidents = IntCounterVec::new(
            Opts::new(
                "yuqing_alert_incidents_opened_total",
                "Incidents opened, by level.",
            ),
            &["level"],
        )
        .unwrap();
        let notifications = IntCounterVec::new(
            Opts::new(
                "yuqing_alert_notifications_total",
                "Notification attempts by channel and outcome (sent, retry, dead).",
            ),
            &["channel", "outcome"],
        )
        .unwrap();
        let reports = IntCounterVec::new(
            Opts::new(
                "yuqing_alert_reports_total",
                "Reports written, by kind (daily, nil).",
            ),
            &["kind"],
        )
        .unwrap();
        let spikes = IntCounterVec::new(
            Opts::new(
                "yuqing_alert_spikes_total",
                "Spike incidents opened, by rule topic.",
            ),
            &["topic"],
        )
        .unwrap();
        let escalations = prometheus::IntCounter::new(
            "yuqing_alert_escalations_total",
            "Incidents escalated to their policy's next step for want of an acknowledgement.",
        )
        .unwrap();
        let store_errors = prometheus::IntCounter::new(
            "yuqing_alert_store_errors_total",
            "Failed attempts to record an item or a source status in alert.db (each is retried).",
        )
        .unwrap();
        let parked = prometheus::IntGauge::new(
            "yuqing_alert_parked_messages",
            "Messages alert.db refused for half a minute, unacknowledged and retried in the background (up to every 5 minutes) while the ones after them go on.",
        )
        .unwrap();
        let pruned = IntCounterVec::new(
            Opts::new(
                "yuqing_alert_pruned_total",
                "Rows deleted from alert.db past alert.retention_days, by kind (items, events, incidents, other).",
            ),
            &["kind"],
        )
        .unwrap();
        for m in [
            Box::new(escalations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pruned.clone()),
            Box::new(store_errors.clone()),
            Box::new(parked.clone()),
            Box::new(items.clone()),
            Box::new(incidents.clone()),
            Box::new(notifications.clone()),
            Box::new(reports.clone()),
            Box::new(spikes.clone()),
        ] {
            let _ = registry.register(m);
        }
        AlertMetrics {
            items,
            incidents,
            notifications,
            reports,
            spikes,
            escalations,
            store_errors,
            parked,
            pruned,
        }
    }
}
