use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use yuqing_bus::{Bus, BusError, Delivery, Topics};
use yuqing_config::{AlertConfig, Config, ReportConfig};
use yuqing_model::{AnalyzedItem, Envelope, Level, ReportRecord, SourceStatus};

use crate::duty::Duty;
use crate::escalation::{Message, MessageReport};
use crate::metrics::AlertMetrics;
use crate::notify::{Outlets, run_sender, webhook_payload};
use crate::report::{Report, ReportError, build_report, write_report};
use crate::store::{AlertStore, Channel, Outcome, Policy, StoreError};

/// Where the report schedule starts counting, so a first start does not
/// write reports for days the system never saw.
const SCHEDULE_SINCE: &str = "report_schedule_since";

/// Most scheduled reports written after downtime: the latest ones.
pub const MISSED_REPORTS: usize = 7;

/// How often the escalation engine runs.
const ENGINE_TICK: Duration = Duration::from_secs(2);

/// Attempts to record a message in `alert.db` in place, holding up the
/// messages after it, before it is parked and retried in the background:
/// the waits between them double from half a second, about half a minute
/// in all.
const RECORD_ATTEMPTS: u32 = 7;

/// The first wait after a failed attempt to record a message (the unit
/// tests wait less, so they see a message parked within seconds).
const RECORD_FIRST_WAIT: Duration = if cfg!(test) {
    Duration::from_millis(20)
} else {
    Duration::from_millis(500)
};

/// The first wait before a parked message is tried again.
const PARKED_FIRST_WAIT: Duration = if cfg!(test) {
    Duration::from_millis(200)
} else {
    Duration::from_secs(30)
};

/// How often the alerter records that it is running.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// A start this long after the last heartbeat follows downtime.
const DOWN_AFTER: chrono::Duration = chrono::Duration::minutes(3);

/// After downtime, how long reports wait for the backlog to be read.
const CATCH_UP_GRACE: Duration = Duration::from_secs(120);

/// Longest wait between two attempts of a parked message.
const PARKED_RETRY_MAX: Duration = Duration::from_secs(300);

/// Analyzed items recorded in one transaction at most: what has arrived
/// while the last ones were recorded, so an alert waits for no batch to
/// fill.
const BATCH_ITEMS: usize = 256;

#[derive(Clone)]
pub struct Alerter {
    store: AlertStore,
    alert: AlertConfig,
    policy: Policy,
    report: ReportConfig,
    report_dir: PathBuf,
    tz: Tz,
    console_url: String,
    channels: Vec<Channel>,
    urls: HashMap<String, String>,
    duty: Arc<Duty>,
    metrics: AlertMetrics,
    wake_sender: Arc<Notify>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter").finish_non_exhaustive()
    }
}

impl Alerter {
    pub fn new(
        config: &Config,
        store: AlertStore,
        console_url: String,
        metrics: AlertMetrics,
    ) -> Alerter {
        let s = &config.settings;
        // Series exist from the start at 0, so increase() sees the first
        // dead notification of a channel.
        for w in &s.alert.webhook {
            for outcome in ["sent", "retry", "dead"] {
                metrics.notifications.with_label_values(&[&w.name, outcome]);
            }
        }
        for c in &s.alert.channel {
            for outcome in ["sent", "retry", "dead"] {
                metrics.notifications.with_label_values(&[&c.id, outcome]);
            }
        }
        for kind in ["daily", "nil"] {
            metrics.reports.with_label_values(&[kind]);
        }
        let ack_key = match &s.alert.ack_secret {
            Some(k) if !k.is_empty() => k.as_bytes().to_vec(),
            _ => store.ack_key().unwrap_or_else(|e| {
                // Links signed with a key that is not kept stop working
                // at the next start; the console and API still acknowledge.
                error!(error = %e, "cannot keep the acknowledgement key; links last until restart");
                crate::store::random_key()
            }),
        };
        let duty = Arc::new(Duty::new(
            &s.alert,
            config.timezone(),
            &console_url,
            ack_key,
        ));
        let mut policy = Policy::from_config(&s.alert);
        policy.regions = s
            .sources
            .iter()
            .filter_map(|src| Some((src.id().to_string(), src.region()?.to_string())))
            .collect();
        policy.source_types = s
            .sources
            .iter()
            .map(|src| (src.id().to_string(), src.source_type()))
            .collect();
        Alerter {
            store,
            alert: s.alert.clone(),
            policy,
            report: s.report.clone(),
            report_dir: s.data_dir.join(&s.report.dir),
            tz: config.timezone(),
            // Links are built as `{console}/…`.
            console_url: console_url.trim_end_matches('/').to_string(),
            channels: s
                .alert
                .webhook
                .iter()
                .map(|w| Channel {
                    name: w.name.clone(),
                    min_level: w.min_level,
                })
                .collect(),
            urls: s
                .alert
                .webhook
                .iter()
                .map(|w| (w.name.clone(), w.url.clone()))
                .collect(),
            duty,
            metrics,
            wake_sender: Arc::new(Notify::new()),
        }
    }

    pub fn store(&self) -> &AlertStore {
        &self.store
    }

    /// Routing, duty and acknowledgement links.
    pub fn duty(&self) -> Arc<Duty> {
        self.duty.clone()
    }

    /// Runs the escalation engine at `now` and wakes the sender when it
    /// wrote messages.
    pub fn tick(&self, now: DateTime<Utc>) -> Result<crate::TickOutcome, StoreError> {
        let out = self.store.tick(&self.duty, now)?;
        for _ in &out.escalated {
            self.metrics.escalations.inc();
        }
        if out.messages > 0 {
            self.wake_sender.notify_one();
        }
        Ok(out)
    }

    /// Records one analyzed item (idempotent).
    pub fn process(&self, a: &AnalyzedItem) -> Result<Outcome, StoreError> {
        let mut outs = self.process_all(&[a])?;
        Ok(outs.pop().expect("one outcome an item"))
    }

    /// Records analyzed items in one transaction (idempotent): all of them
    /// or, on an error, none.
    pub fn process_all(&self, items: &[&AnalyzedItem]) -> Result<Vec<Outcome>, StoreError> {
        let console = self.console_url.clone();
        let outs =
            self.store
                .process_all(items, &self.policy, &self.channels, &|incident, reason| {
                    webhook_payload(incident, reason, &console)
                })?;
        for (a, out) in items.iter().zip(&outs) {
            self.metrics.items.inc();
            for (_, topic) in &out.spikes {
                self.metrics.spikes.with_label_values(&[topic]).inc();
                self.metrics
                    .incidents
                    .with_label_values(&[self.alert.spike.level.as_str()])
                    .inc();
            }
            for _ in &out.opened {
                if let Some(level) = a.level {
                    self.metrics
                        .incidents
                        .with_label_values(&[level.as_str()])
                        .inc();
                }
            }
        }
        if outs.iter().any(|o| o.notifications > 0) {
            self.wake_sender.notify_one();
        }
        Ok(outs)
    }

    /// Records a source's status: opens a collector incident when it turns
    /// failing, blocked or empty, resolves it when it recovers.
    pub fn record_source_status(&self, status: &SourceStatus) -> Result<Outcome, StoreError> {
        let console = self.console_url.clone();
        let out = self.store.record_source_status(
            status,
            self.alert.collector_level,
            &self.policy,
            &self.channels,
            &|incident, reason| webhook_payload(incident, reason, &console),
        )?;
        for _ in &out.opened {
            self.metrics
                .incidents
                .with_label_values(&[self.alert.collector_level.as_str()])
                .inc();
        }
        if out.notifications > 0 {
            self.wake_sender.notify_one();
        }
        Ok(out)
    }

    /// Builds and writes the report for the 24 hours ending at `period_end`,
    /// once: a second call for the same period writes nothing new.
    pub fn write_report(&self, period_end: DateTime<Utc>) -> Result<ReportRecord, ReportError> {
        self.write_report_sending(period_end, false).map(|(r, _)| r)
    }

    /// [`Alerter::write_report`], and the report delivered to every
    /// `report.send_to` channel through the outbox, when it is new. Also
    /// returns how many deliveries were queued (none for a report written
    /// before).
    pub fn send_report(
        &self,
        period_end: DateTime<Utc>,
    ) -> Result<(ReportRecord, usize), ReportError> {
        self.write_report_sending(period_end, true)
    }

    fn write_report_sending(
        &self,
        period_end: DateTime<Utc>,
        send: bool,
    ) -> Result<(ReportRecord, usize), ReportError> {
        // A period written before keeps its files: the console serves
        // them, and they are what was delivered. Without sending there is
        // nothing more to do for it.
        let written = self.store.report_at(period_end)?;
        if let (Some(r), false) = (&written, send) {
            return Ok((r.clone(), 0));
        }
        let report = self.build_report(period_end)?;
        let record = match written {
            Some(r) => r,
            None => write_report(&self.report_dir, self.tz, &report)?,
        };
        let deliveries = if send {
            let title = format!(
                "{}（{}，{}）",
                self.report.title,
                report.kind.zh(),
                period_end.with_timezone(&self.tz).format("%Y-%m-%d %H:%M")
            );
            let console = &self.console_url;
            let link = format!("{console}/reports/{}", period_end.timestamp());
            self.report_deliveries(&report, title, link)
        } else {
            Vec::new()
        };
        let (new, queued) = self.store.record_report_and_send(&record, &deliveries)?;
        if new {
            self.metrics
                .reports
                .with_label_values(&[record.kind.as_str()])
                .inc();
            info!(kind = record.kind.as_str(), incidents = record.incidents, path = %record.markdown_path, "report written");
        }
        if queued > 0 {
            info!(period_end = %period_end, deliveries = queued, "report queued for delivery");
            self.wake_sender.notify_one();
        }
        Ok((record, queued))
    }

    /// Writes the special report (专报) of incident `id` as it stands at
    /// `now`, and with `send` queues it for every `report.send_to` channel.
    /// `None` when there is no such incident; otherwise its record and the
    /// deliveries queued.
    pub fn special_report(
        &self,
        id: i64,
        now: DateTime<Utc>,
        send: bool,
    ) -> Result<Option<(ReportRecord, usize)>, ReportError> {
        let Some(report) =
            crate::report::build_incident_report(&self.store, &self.report, self.tz, id, now)?
        else {
            return Ok(None);
        };
        let record = write_report(&self.report_dir, self.tz, &report)?;
        let mut queued = 0;
        if send {
            let console = &self.console_url;
            let title = format!("{}（专报）：{}", self.report.title, self.title_of(id));
            let link = format!("{console}/incidents/{id}/report");
            let deliveries = self.report_deliveries(&report, title, link);
            let reason = format!("special:{id}:{}", now.timestamp_millis());
            queued = self.store.queue_report(&reason, &deliveries, now)?;
            if queued > 0 {
                self.wake_sender.notify_one();
            }
        }
        info!(incident = id, path = %record.markdown_path, deliveries = queued, "special report written");
        Ok(Some((record, queued)))
    }

    /// An incident's title, short enough for a message's headline.
    fn title_of(&self, id: i64) -> String {
        let title = self
            .store
            .incident(id)
            .ok()
            .flatten()
            .map(|i| i.title)
            .unwrap_or_default();
        let mut short: String = title.chars().take(40).collect();
        if short.len() < title.len() {
            short.push('…');
        }
        short
    }

    /// The outbox rows that deliver `report`, headed `title` and linking
    /// to `link`, to each `report.send_to` channel: `(channel, kind of
    /// channel, message)`.
    fn report_deliveries(
        &self,
        report: &Report,
        title: String,
        link: String,
    ) -> Vec<(String, String, String)> {
        let console = &self.console_url;
        let r = MessageReport {
            kind: report.kind,
            title,
            period_start: report.period_start,
            period_end: report.period_end,
            incidents: report.incidents,
            items: report.items,
            brief: report.brief.clone(),
            html: report.html.clone(),
            link,
        };
        self.report
            .send_to
            .iter()
            .filter_map(|id| {
                let Some(ch) = self.duty.channels.get(id) else {
                    error!(channel = %id, "report.send_to names no channel; the report is not sent there");
                    return None;
                };
                let m = Message {
                    channel: id.clone(),
                    route: "report".into(),
                    // A template's `{level}` says how bad the worst of it is.
                    level: report.level.unwrap_or(Level::Blue),
                    incidents: Vec::new(),
                    mentions: Vec::new(),
                    console_url: console.to_string(),
                    report: Some(r.clone()),
                };
                let payload = serde_json::to_string(&m).ok()?;
                Some((id.clone(), ch.kind.as_str().to_string(), payload))
            })
            .collect()
    }

    /// The scheduled reports due since the last pass (or the first start)
    /// up to `now` and not yet written (and, if reports are sent, queued),
    /// oldest first, each once. After downtime each missed one is written,
    /// up to the last [`MISSED_REPORTS`].
    pub fn write_due_report(&self, now: DateTime<Utc>) -> Result<Vec<ReportRecord>, ReportError> {
        let cron: croner::Cron = match self.report.schedule.parse() {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "invalid report schedule");
                return Ok(Vec::new());
            }
        };
        let since = match self.store.meta(SCHEDULE_SINCE)? {
            Some(s) => s.parse::<DateTime<Utc>>().unwrap_or(now),
            None => {
                self.store.set_meta(SCHEDULE_SINCE, &now.to_rfc3339())?;
                now
            }
        };
        // The scheduled times after `since` (and within the last fortnight)
        // up to `now`.
        let mut due: Vec<DateTime<Utc>> = Vec::new();
        let mut t = since
            .max(now - chrono::Duration::days(14))
            .with_timezone(&self.tz);
        while let Ok(next) = cron.find_next_occurrence(&t, false) {
            if next.with_timezone(&Utc) > now {
                break;
            }
            due.push(next.with_timezone(&Utc));
            if due.len() > MISSED_REPORTS {
                due.remove(0);
            }
            t = next;
        }
        let mut written = Vec::new();
        for due in due {
            // Done when this very period is written and, if reports are
            // sent, queued: a report written by hand for another time, or
            // for this one without sending, does not stand in for it.
            if self.store.report_at(due)?.is_some()
                && (self.report.send_to.is_empty() || self.store.report_queued(due)?)
            {
                continue;
            }
            written.push(self.send_report(due)?.0);
        }
        // Done up to now: a later change of the schedule, the time zone or
        // `send_to` owes nothing for times already passed.
        self.store.set_meta(SCHEDULE_SINCE, &now.to_rfc3339())?;
        Ok(written)
    }

    /// Where the report of the period ending at `period_end` starts: 24
    /// hours before, or at the scheduled time before it when that is
    /// earlier (at most a week), so a schedule that skips days (weekdays
    /// only) leaves no stretch out of every report.
    pub fn period_start(&self, period_end: DateTime<Utc>) -> DateTime<Utc> {
        let day = period_end - chrono::Duration::hours(24);
        let Ok(cron) = self.report.schedule.parse::<croner::Cron>() else {
            return day;
        };
        match cron.find_previous_occurrence(&period_end.with_timezone(&self.tz), false) {
            Ok(prev) => prev
                .with_timezone(&Utc)
                .clamp(period_end - chrono::Duration::days(7), day),
            Err(_) => day,
        }
    }

    /// The daily (or nil) report of the period ending at `period_end` (see
    /// [`Alerter::period_start`]), built from the store as it is now,
    /// written nowhere.
    pub fn build_report(&self, period_end: DateTime<Utc>) -> Result<Report, ReportError> {
        build_report(
            &self.store,
            &self.report,
            self.tz,
            self.period_start(period_end),
            period_end,
        )
    }

    /// The special report of incident `id` as it stands at `now`, written
    /// nowhere; `None` when there is no such incident.
    pub fn build_special_report(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Report>, ReportError> {
        crate::report::build_incident_report(&self.store, &self.report, self.tz, id, now)
    }

    /// When `report.schedule` writes the report of local date `date`: its
    /// first time that day. `None` when it writes none that day (or the
    /// schedule does not parse).
    pub fn report_time_on(&self, date: chrono::NaiveDate) -> Option<DateTime<Utc>> {
        let cron: croner::Cron = self.report.schedule.parse().ok()?;
        let midnight = self
            .tz
            .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
            .earliest()?;
        let at = cron.find_next_occurrence(&midnight, true).ok()?;
        (at.date_naive() == date).then(|| at.with_timezone(&Utc))
    }

    fn next_report_time(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron: croner::Cron = self.report.schedule.parse().ok()?;
        cron.find_next_occurrence(&now.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Consumes `items.analyzed` and `items.dead`, sends notifications and
    /// writes scheduled reports, until shutdown.
    pub async fn run(
        self,
        bus: Arc<dyn Bus>,
        topics: Topics,
        shutdown: CancellationToken,
    ) -> Result<(), BusError> {
        let mut items = bus.subscribe(&topics.items_analyzed, "alerter").await?;
        let mut dead = bus.subscribe(&topics.items_dead, "alerter").await?;
        let mut statuses = bus.subscribe(&topics.sources_status, "alerter").await?;
        let sender = tokio::spawn(run_sender(
            self.store.clone(),
            Outlets {
                webhooks: self.urls.clone(),
                duty: self.duty.clone(),
            },
            self.metrics.clone(),
            self.wake_sender.clone(),
            shutdown.clone(),
        ));
        let down = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.record_start(Utc::now(), DOWN_AFTER))
                .await
                .ok()
                .and_then(|r| {
                    r.map_err(|e| error!(error = %e, "cannot record the start"))
                        .ok()
                })
                .flatten()
        };
        if let Some((from, to)) = down {
            warn!(%from, %to, "the alerter was down; its incidents do not count that time towards auto-resolving, and reports covering it say so");
        }
        let reports = tokio::spawn(self.clone().run_reports(down.is_some(), shutdown.clone()));
        // The engine runs apart from the item stream, so an item the store
        // refuses for a while, retried in place, holds up no escalation.
        let engine = tokio::spawn(self.clone().run_engine(shutdown.clone()));
        let prune = tokio::spawn(self.clone().run_prune(shutdown.clone()));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                d = items.recv() => {
                    let Some(d) = d else { break };
                    // What else has arrived meanwhile is recorded with it,
                    // in one transaction.
                    let mut batch = vec![d];
                    while batch.len() < BATCH_ITEMS {
                        // Only what is there already: the second branch
                        // is ready at once, and `biased` polls the first
                        // before it.
                        let next = tokio::select! {
                            biased;
                            d = items.recv() => d,
                            () = std::future::ready(()) => None,
                        };
                        match next {
                            Some(d) => batch.push(d),
                            None => break,
                        }
                    }
                    if !self.record_items(batch, &shutdown).await {
                        break;
                    }
                }
                d = statuses.recv() => {
                    let Some(d) = d else { break };
                    match Envelope::<SourceStatus>::from_bytes(&d.payload, "source.status") {
                        Ok(env) => {
                            let status = Arc::new(env.payload);
                            let me = self.clone();
                            self.record_then_ack("source status", d, &shutdown, move || {
                                me.record_source_status(&status)
                            })
                            .await;
                        }
                        Err(e) => {
                            warn!(key = %d.key, error = %e, "undecodable source status skipped");
                            d.ack.ack();
                        }
                    }
                }
                d = dead.recv() => {
                    let Some(d) = d else { break };
                    let text = String::from_utf8_lossy(&d.payload).into_owned();
                    let store = self.store.clone();
                    let (topic, key) = (d.topic.clone(), d.key.clone());
                    self.record_then_ack("dead message", d, &shutdown, move || {
                        store.record_dead(&topic, &key, "dead message", &text)
                    })
                    .await;
                }
            }
        }
        let _ = sender.await;
        let _ = reports.await;
        let _ = engine.await;
        let _ = prune.await;
        Ok(())
    }

    /// Deletes what is past `alert.retention_days` from `alert.db`, at
    /// start and hourly, until shutdown: a task of its own, so a long first
    /// pass delays no escalation.
    async fn run_prune(self, shutdown: CancellationToken) {
        let days = self.alert.retention_days;
        if days == 0 {
            return;
        }
        let mut hourly = tokio::time::interval(Duration::from_secs(3_600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = hourly.tick() => {}
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.store.prune(Utc::now(), days)).await {
                Ok(Ok(p)) => {
                    for (kind, n) in [
                        ("items", p.items),
                        ("events", p.events),
                        ("incidents", p.incidents),
                        ("other", p.other),
                    ] {
                        self.metrics
                            .pruned
                            .with_label_values(&[kind])
                            .inc_by(n as u64);
                    }
                    if p != crate::Pruned::default() {
                        info!(
                            items = p.items,
                            events = p.events,
                            incidents = p.incidents,
                            other = p.other,
                            days,
                            "deleted from alert.db past its retention"
                        );
                    }
                }
                Ok(Err(e)) => {
                    error!(error = %e, "cannot delete from alert.db past its retention; retrying in an hour")
                }
                Err(e) => error!(error = %e, "alert task failed"),
            }
        }
    }

    /// Runs the escalation engine every `ENGINE_TICK`, and resolves spike
    /// incidents gone quiet every five minutes, until shutdown.
    async fn run_engine(self, shutdown: CancellationToken) {
        // The engine's timers are stored; ticking at once after a start
        // fires whatever fell due while the alerter was down.
        let mut ticks = tokio::time::interval(ENGINE_TICK);
        let mut sweep = tokio::time::interval(Duration::from_secs(300));
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = heartbeat.tick() => {
                    let store = self.store.clone();
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.heartbeat(Utc::now())).await {
                        warn!(error = %e, "cannot record the alerter's heartbeat");
                    }
                }
                _ = ticks.tick() => {
                    let me = self.clone();
                    match tokio::task::spawn_blocking(move || me.tick(Utc::now())).await {
                        Ok(Ok(out)) => {
                            if !out.escalated.is_empty() || !out.retriggered.is_empty() {
                                info!(escalated = ?out.escalated, retriggered = ?out.retriggered, "incidents escalated");
                            }
                        }
                        Ok(Err(e)) => error!(error = %e, "escalation engine failed; retrying at the next tick"),
                        Err(e) => error!(error = %e, "alert task failed"),
                    }
                }
                _ = sweep.tick() => {
                    let me = self.clone();
                    let quiet = i64::from(self.alert.spike.quiet_hours);
                    match tokio::task::spawn_blocking(move || me.store.resolve_quiet_spikes(Utc::now(), quiet)).await {
                        Ok(Ok(n)) if n > 0 => info!(resolved = n, "spike incidents quiet again"),
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => error!(error = %e, "cannot resolve quiet spike incidents"),
                        Err(e) => error!(error = %e, "alert task failed"),
                    }
                }
            }
        }
    }

    /// Records analyzed items and acknowledges each once it is recorded:
    /// all of them in one transaction, or, if that fails, one at a time
    /// with retries, so an item the store refuses does not take the others
    /// of its batch down with it (it is retried in place, as alone, and
    /// what comes after it waits as long).
    /// An undecodable message is logged and acknowledged. False when
    /// shutdown came first (what is not acknowledged is replayed after the
    /// restart).
    async fn record_items(&self, batch: Vec<Delivery>, shutdown: &CancellationToken) -> bool {
        let mut decoded = Vec::with_capacity(batch.len());
        for d in batch {
            match Envelope::<AnalyzedItem>::from_bytes(&d.payload, "item.analyzed") {
                Ok(env) => decoded.push((d, Arc::new(env.payload))),
                Err(e) => {
                    warn!(key = %d.key, error = %e, "undecodable analyzed item skipped");
                    d.ack.ack();
                }
            }
        }
        if decoded.len() > 1 {
            let items: Vec<Arc<AnalyzedItem>> = decoded.iter().map(|(_, a)| a.clone()).collect();
            let me = self.clone();
            let all = tokio::task::spawn_blocking(move || {
                let refs: Vec<&AnalyzedItem> = items.iter().map(|a| a.as_ref()).collect();
                me.process_all(&refs)
            })
            .await;
            match all {
                Ok(Ok(_)) => {
                    for (d, _) in decoded {
                        d.ack.ack();
                    }
                    return true;
                }
                Ok(Err(e)) => {
                    self.metrics.store_errors.inc();
                    warn!(items = decoded.len(), error = %e, "cannot record a batch of items; recording them one at a time");
                }
                Err(e) => {
                    self.metrics.store_errors.inc();
                    warn!(error = %e, "alert task failed; recording the batch one item at a time");
                }
            }
        }
        for (d, item) in decoded {
            let me = self.clone();
            self.record_then_ack("analyzed item", d, shutdown, move || me.process(&item))
                .await;
            if shutdown.is_cancelled() {
                return false;
            }
        }
        true
    }

    /// Records a message with [`Alerter::until_recorded`] and acknowledges
    /// it. One the store still refuses after that is parked: left
    /// unacknowledged (so the bus keeps it, and Kafka commits no offset
    /// past it) and retried in the background, up to every five minutes,
    /// until the store takes it or shutdown comes (then it comes again
    /// after the restart). The messages after it go on meanwhile, so one
    /// that can never be recorded holds up nothing, and one refused for an
    /// hour by a full disk is recorded and alerted on once the disk has
    /// room, without a restart.
    async fn record_then_ack<T: Send + 'static>(
        &self,
        what: &'static str,
        d: Delivery,
        shutdown: &CancellationToken,
        record: impl Fn() -> Result<T, StoreError> + Send + Sync + 'static,
    ) {
        let record = Arc::new(record);
        let r = record.clone();
        if self
            .until_recorded(what, &d.key, shutdown, move || r())
            .await
        {
            d.ack.ack();
            return;
        }
        if shutdown.is_cancelled() {
            return;
        }
        let (metrics, shutdown) = (self.metrics.clone(), shutdown.clone());
        metrics.parked.inc();
        tokio::spawn(async move {
            let mut wait = PARKED_FIRST_WAIT;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                let r = record.clone();
                let tried = tokio::task::spawn_blocking(move || r()).await;
                wait = (wait * 2).min(PARKED_RETRY_MAX);
                match tried {
                    Ok(Ok(_)) => {
                        info!(key = %d.key, "{what} recorded after all");
                        metrics.parked.dec();
                        d.ack.ack();
                        return;
                    }
                    Ok(Err(e)) => {
                        metrics.store_errors.inc();
                        error!(key = %d.key, error = %e, retry_in = ?wait, "cannot record parked {what}; retrying");
                    }
                    Err(e) => {
                        metrics.store_errors.inc();
                        error!(key = %d.key, error = %e, "alert task failed on a parked {what}");
                    }
                }
            }
            // Shutdown: unacknowledged, it comes again after the restart.
            metrics.parked.dec();
        });
    }

    /// Runs `record` until it succeeds, waiting twice as long after each
    /// failure: a store that fails for a while (a full disk, a lock held
    /// too long) delays the alert and says so in the log and in
    /// `yuqing_alert_store_errors_total`, but needs no restart. False after
    /// `RECORD_ATTEMPTS` failures (half a minute), or when shutdown came
    /// first.
    async fn until_recorded<T: Send + 'static>(
        &self,
        what: &str,
        key: &str,
        shutdown: &CancellationToken,
        record: impl Fn() -> Result<T, StoreError> + Send + Sync + 'static,
    ) -> bool {
        let record = Arc::new(record);
        let mut wait = RECORD_FIRST_WAIT;
        for attempt in 1..=RECORD_ATTEMPTS {
            let r = record.clone();
            let error = match tokio::task::spawn_blocking(move || r()).await {
                Ok(Ok(_)) => return true,
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("alert task failed: {e}"),
            };
            self.metrics.store_errors.inc();
            if attempt == RECORD_ATTEMPTS {
                error!(%key, %error, attempt, "cannot record {what}; parked, retried in the background");
                break;
            }
            error!(%key, %error, attempt, retry_in = ?wait, "cannot record {what}; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
            wait *= 2;
        }
        false
    }

    async fn run_reports(self, catch_up: bool, shutdown: CancellationToken) {
        // Back after downtime: the items published meanwhile (by the roles
        // in other processes) are read first, so the reports missed are
        // written with them.
        if catch_up {
            info!(wait = ?CATCH_UP_GRACE, "reports missed while the alerter was down are written after the backlog is read");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CATCH_UP_GRACE) => {}
            }
        }
        loop {
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.write_due_report(Utc::now())).await {
                Ok(Err(e)) => error!(error = %e, "report failed"),
                Err(e) => error!(error = %e, "report task failed"),
                Ok(Ok(_)) => {}
            }
            let now = Utc::now();
            let wait = self
                .next_report_time(now)
                .and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::from_secs(60))
                // Wake at least hourly, so a clock jump cannot skip a report.
                .min(Duration::from_secs(3600))
                + Duration::from_millis(200);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
