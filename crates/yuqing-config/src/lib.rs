//! Configuration of a yuqing deployment: the main TOML file (sources,
//! stages, alerting, reports) and the rule files beside it.
//!
//! Loading is parse, then validate. Every error names the file, the line and
//! column, and the field, and one load reports every error it finds, so
//! `yuqing check` shows them all at once. Values may refer to variables as
//! `${NAME}` or `${NAME:-default}`, and any setting can be overridden from
//! the environment as `YUQING__SECTION__KEY=value` (double underscores
//! separate levels: `YUQING__SERVER__LISTEN=0.0.0.0:8080`).

mod access;
mod error;
mod expand;
mod lexicon;
mod routing;
mod rules;
mod settings;
mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use access::{
    Anonymous, MAX_HASH_MEMORY_KIB, Role, TokenConfig, UserConfig, check_password_hash, valid_id,
};
pub use error::{ConfigError, ConfigErrors, PathSeg, display_path, line_col, value_span};
pub use lexicon::{LexiconEntry, UserWord};
pub use routing::{
    ChannelConfig, ChannelKind, CoverageProblem, Dur, IncidentKind, LocalStamp, OverrideConfig,
    PersonConfig, PolicyConfig, RosterConfig, RouteConfig, ShiftConfig, SmtpTls, StepConfig,
    Target, WEEK_MINUTES, Window, coverage_problems, format_minute,
};
pub use rules::{QueryOrigin, RuleConfig};
pub use settings::{
    AlertConfig, AnalysisConfig, BusConfig, BusKind, CrawlerConfig, IndexConfig, KafkaConfig,
    ReportConfig, ServerConfig, Settings, SpikeConfig, Thresholds, WebhookConfig,
};
pub use source::{
    FeedSource, ForumSource, ForumSpec, JsonSource, MastodonSource, PageSource, SourceConfig,
};

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub rules: Vec<RuleConfig>,
    /// Every word of every lexicon file, in file order.
    pub lexicon: Vec<LexiconEntry>,
    /// Every phrase of every allow-list.
    pub allow: Vec<String>,
    /// Every word of every user dictionary, for the segmenter.
    pub user_words: Vec<UserWord>,
    /// The main file's name, for messages.
    pub origin: PathBuf,
    /// Problems in rule and lexicon files. The rules, lines (or whole
    /// files) they name are left out, and the rest run: one broken rule file
    /// never stops monitoring. `yuqing check` treats them as errors.
    pub rule_errors: Vec<ConfigError>,
}

impl Config {
    /// The report time zone, validated at load.
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.settings
            .alert
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }

    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.settings.sources.iter().find(|s| s.id() == id)
    }
}

/// Where config files come from: a directory on disk, or a set of files
/// compiled into the binary (the bundled demo).
#[derive(Debug, Clone)]
enum Files {
    Disk,
    Embedded(&'static [(&'static str, &'static str)]),
}

impl Files {
    fn read(&self, path: &Path) -> Result<String, String> {
        match self {
            Files::Disk => std::fs::read_to_string(path).map_err(|e| e.to_string()),
            Files::Embedded(files) => files
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map(|(_, text)| (*text).to_string())
                .ok_or_else(|| "not among the bundled files".to_string()),
        }
    }

    fn list_toml(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        let mut out: Vec<PathBuf> = match self {
            Files::Disk => std::fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Files::Embedded(files) => files
                .iter()
                .map(|(name, _)| PathBuf::from(name))
                .filter(|p| p.parent() == Some(dir) && p.extension().is_some_and(|x| x == "toml"))
                .collect(),
        };
        out.sort();
        Ok(out)
    }
}

/// Loads a config with variables and environment overrides.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    vars: HashMap<String, String>,
    overrides: Vec<(String, String)>,
}

impl Loader {
    /// A loader that reads `${NAME}` variables and `YUQING__*` overrides from
    /// the process environment.
    pub fn from_env() -> Self {
        let mut l = Loader::default();
        for (k, v) in std::env::vars() {
            if k.starts_with(expand::OVERRIDE_PREFIX) {
                l.overrides.push((k.clone(), v.clone()));
            }
            l.vars.insert(k, v);
        }
        l.overrides.sort();
        l
    }

    /// Sets a `${NAME}` variable (taking precedence over the environment).
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_string(), value.into());
        self
    }

    /// Adds an override as if `YUQING__...` were set in the environment.
    pub fn override_value(mut self, key: &str, value: impl Into<String>) -> Self {
        self.overrides.push((key.to_string(), value.into()));
        self
    }

    /// Loads the main file at `path` and the rule files it points to.
    pub fn load(&self, path: &Path) -> Result<Config, ConfigErrors> {
        self.load_from(&Files::Disk, path)
    }

    /// Loads from files compiled into the binary, given as
    /// `(relative path, text)`; `main` is one of them.
    pub fn load_embedded(
        &self,
        files: &'static [(&'static str, &'static str)],
        main: &str,
    ) -> Result<Config, ConfigErrors> {
        self.load_from(&Files::Embedded(files), Path::new(main))
    }

    fn load_from(&self, files: &Files, path: &Path) -> Result<Config, ConfigErrors> {
        let shown = display_path(path);
        let raw = files
            .read(path)
            .map_err(|e| ConfigError::new(&shown, format!("cannot read config: {e}")))?;
        let text = expand::expand_vars(&raw, &self.vars)
            .map_err(|(offset, msg)| ConfigError::new(&shown, msg).at_offset(&raw, offset))?;
        let settings: Settings = if self.overrides.is_empty() {
            toml::from_str(&text).map_err(|e| toml_error(&shown, &text, &e))?
        } else {
            let mut table: toml::Table =
                toml::from_str(&text).map_err(|e| toml_error(&shown, &text, &e))?;
            expand::apply_overrides(&mut table, &self.overrides)
                .map_err(|m| ConfigError::new(&shown, m))?;
            // Parse once without overrides first so a mistake in the file
            // still gets its line number.
            let _: Settings = toml::from_str(&text).map_err(|e| toml_error(&shown, &text, &e))?;
            toml::Value::Table(table)
                .try_into::<Settings>()
                .map_err(|e| {
                    ConfigError::new(
                        &shown,
                        format!(
                            "after applying YUQING__* environment overrides: {}",
                            e.message()
                        ),
                    )
                })?
        };

        let mut errors = validate_settings(&settings, &shown, &text);

        let base = path.parent().unwrap_or(Path::new(""));
        let rules_dir = base.join(&settings.analysis.rules_dir);
        let mut rules = Vec::new();
        let mut rule_errors = Vec::new();
        match files.list_toml(&rules_dir) {
            Ok(list) => {
                for file in list {
                    let shown_rule = display_path(&file);
                    match files.read(&file) {
                        Ok(t) => {
                            let (mut r, mut e) = rules::parse_rule_file(shown_rule, &t);
                            rules.append(&mut r);
                            rule_errors.append(&mut e);
                        }
                        Err(e) => rule_errors
                            .push(ConfigError::new(shown_rule, format!("cannot read: {e}"))),
                    }
                }
            }
            Err(e) => errors.push(
                ConfigError::new(
                    &shown,
                    format!("cannot read rules directory {}: {e}", rules_dir.display()),
                )
                .field("analysis.rules_dir"),
            ),
        }
        let (rules, mut invalid) = rules::validate_rules(rules);
        rule_errors.append(&mut invalid);

        let mut lexicon = Vec::new();
        let mut allow = Vec::new();
        let mut user_words = Vec::new();
        let a = &settings.analysis;
        let lists = (a.lexicons.iter().map(|p| (p, "analysis.lexicons")))
            .chain(a.allow_lists.iter().map(|p| (p, "analysis.allow_lists")))
            .chain(a.user_dicts.iter().map(|p| (p, "analysis.user_dicts")));
        for (path, field) in lists {
            let file = base.join(path);
            let shown_file = display_path(&file);
            let t = match files.read(&file) {
                Ok(t) => t,
                Err(e) => {
                    rule_errors.push(
                        ConfigError::new(&shown, format!("cannot read {}: {e}", file.display()))
                            .field(field),
                    );
                    continue;
                }
            };
            let mut e = match field {
                "analysis.lexicons" => {
                    let (mut entries, e) = lexicon::parse_lexicon(&shown_file, &t);
                    lexicon.append(&mut entries);
                    e
                }
                "analysis.allow_lists" => {
                    allow.append(&mut lexicon::parse_allow(&t));
                    Vec::new()
                }
                _ => {
                    let (mut words, e) = lexicon::parse_user_dict(&shown_file, &t);
                    user_words.append(&mut words);
                    e
                }
            };
            rule_errors.append(&mut e);
        }

        if errors.is_empty() {
            Ok(Config {
                settings,
                rules,
                lexicon,
                allow,
                user_words,
                origin: shown,
                rule_errors,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

pub(crate) fn toml_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let err = ConfigError::new(file, e.message().trim().to_string());
    match e.span() {
        Some(span) => err.at_offset(text, span.start),
        None => err,
    }
}

fn validate_settings(s: &Settings, file: &Path, text: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let at = |path: &[PathSeg<'_>], field: String, msg: String| {
        let e = ConfigError::new(file, msg).field(field);
        match value_span(text, path) {
            Some(span) => e.at_offset(text, span.start),
            None => e,
        }
    };

    // What the alerter reads back: a week of events to join, the spike
    // baseline's days, and a fortnight at least.
    let shortest = (s.alert.spike.history_days + 1).max(14);
    if s.alert.retention_days != 0 && s.alert.retention_days < shortest {
        errors.push(at(
            &[PathSeg::Key("alert"), PathSeg::Key("retention_days")],
            "alert.retention_days".into(),
            format!(
                "{} days would delete what the alerter still reads (events, the spike baseline of {} days): at least {shortest}, or 0 to keep everything",
                s.alert.retention_days, s.alert.spike.history_days
            ),
        ));
    }
    if s.alert.timezone.parse::<chrono_tz::Tz>().is_err() {
        errors.push(at(
            &[PathSeg::Key("alert"), PathSeg::Key("timezone")],
            "alert.timezone".into(),
            format!(
                "unknown time zone `{}` (use an IANA name such as Asia/Shanghai)",
                s.alert.timezone
            ),
        ));
    }
    let kafka = &s.bus.kafka;
    let kafka_key = |k: &'static str| [PathSeg::Key("bus"), PathSeg::Key("kafka"), PathSeg::Key(k)];
    if s.bus.kind == BusKind::Kafka && kafka.brokers.split(',').any(|b| !is_host_port(b.trim())) {
        errors.push(at(
            &kafka_key("brokers"),
            "bus.kafka.brokers".into(),
            format!(
                "`{}` is not a list of host:port (e.g. \"kafka1:9092,kafka2:9092\")",
                kafka.brokers
            ),
        ));
    }
    for (key, value) in [
        ("partitions", kafka.partitions),
        ("replication", kafka.replication),
    ] {
        if value < 1 {
            errors.push(at(
                &kafka_key(key),
                format!("bus.kafka.{key}"),
                format!("must be at least 1, not {value}"),
            ));
        }
    }
    if let Err(e) = s.report.schedule.parse::<croner::Cron>() {
        errors.push(at(
            &[PathSeg::Key("report"), PathSeg::Key("schedule")],
            "report.schedule".into(),
            format!("invalid cron expression `{}`: {e}", s.report.schedule),
        ));
    }
    if s.alert.simhash_max_distance > 23 {
        errors.push(at(
            &[PathSeg::Key("alert"), PathSeg::Key("simhash_max_distance")],
            "alert.simhash_max_distance".into(),
            format!(
                "{} is too far: at most 23 bits (past that, distinct articles match and the event index probes tens of thousands of buckets per item)",
                s.alert.simhash_max_distance
            ),
        ));
    }
    if s.alert.simhash_max_combined > 128 {
        errors.push(at(
            &[PathSeg::Key("alert"), PathSeg::Key("simhash_max_combined")],
            "alert.simhash_max_combined".into(),
            "at most 128 (two 64-bit SimHashes)".into(),
        ));
    }
    if s.crawler.quiet_after_mins > 0 && s.crawler.seen_ttl_days < 8 {
        errors.push(at(
            &[PathSeg::Key("crawler"), PathSeg::Key("seen_ttl_days")],
            "crawler.seen_ttl_days".into(),
            format!(
                "{} days is too short for quiet sources, which compare with the same hours a week earlier: at least 8, or quiet_after_mins = 0 to turn the check off",
                s.crawler.seen_ttl_days
            ),
        ));
    }
    if s.crawler.quiet_expected == 0 {
        errors.push(at(
            &[PathSeg::Key("crawler"), PathSeg::Key("quiet_expected")],
            "crawler.quiet_expected".into(),
            "must be at least 1 (quiet_after_mins = 0 turns the check off)".into(),
        ));
    }
    if s.bus.capacity == 0 {
        errors.push(at(
            &[PathSeg::Key("bus"), PathSeg::Key("capacity")],
            "bus.capacity".into(),
            "must be at least 1".into(),
        ));
    }
    if s.index.commit_every_docs == 0 || s.index.commit_every_secs == 0 {
        errors.push(at(
            &[PathSeg::Key("index")],
            "index".into(),
            "commit_every_docs and commit_every_secs must be at least 1".into(),
        ));
    }
    for (i, w) in s.alert.webhook.iter().enumerate() {
        if let Err(msg) = check_http_url(&w.url) {
            errors.push(at(
                &[
                    PathSeg::Key("alert"),
                    PathSeg::Key("webhook"),
                    PathSeg::Index(i),
                    PathSeg::Key("url"),
                ],
                format!("alert.webhook[{i}].url"),
                msg,
            ));
        }
    }

    if let Some(public) = &s.server.public_url {
        let problem = check_http_url(public).err().or_else(|| {
            let u = url::Url::parse(public).ok()?;
            (u.query().is_some()
                || u.fragment().is_some()
                || u.host_str().is_none()
                || u.path() != "/")
                .then(|| {
                    format!("`{public}`: the scheme, host and port the console is reached at, without a path, query or fragment (the console's pages and links are at the root of that host)")
                })
        });
        if let Some(message) = problem {
            errors.push(at(
                &[PathSeg::Key("server"), PathSeg::Key("public_url")],
                "server.public_url".into(),
                message,
            ));
        }
    }
    let listen = &s.server.listen;
    if !is_host_port(listen) {
        errors.push(at(
            &[PathSeg::Key("server"), PathSeg::Key("listen")],
            "server.listen".into(),
            format!("`{listen}` is not host:port (e.g. \"127.0.0.1:8080\")"),
        ));
    }
    errors.extend(routing::validate(&s.alert, &at));
    errors.extend(access::validate(
        &s.server.user,
        &s.server.token,
        s.server.session_ttl,
        &at,
    ));
    for (i, c) in s.report.send_to.iter().enumerate() {
        let problem = match s.alert.channel.iter().find(|ch| &ch.id == c) {
            None => format!("unknown channel `{c}`: reports go to [[alert.channel]] ids"),
            // A report names nobody: the channel must have its own
            // recipients.
            Some(ch)
                if matches!(ch.kind, ChannelKind::Email | ChannelKind::Sms) && ch.to.is_empty() =>
            {
                format!("channel `{c}` has no `to`, so a report has no one to go to")
            }
            Some(_) => continue,
        };
        errors.push(at(
            &[
                PathSeg::Key("report"),
                PathSeg::Key("send_to"),
                PathSeg::Index(i),
            ],
            format!("report.send_to[{i}]"),
            problem,
        ));
    }

    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, src) in s.sources.iter().enumerate() {
        let here =
            |key: &'static str| [PathSeg::Key("source"), PathSeg::Index(i), PathSeg::Key(key)];
        if src.id().trim().is_empty()
            || !src
                .id()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(at(
                &here("id"),
                format!("source[{i}].id"),
                format!(
                    "source id `{}` must be non-empty ASCII letters, digits, `-`, `_` or `.`",
                    src.id()
                ),
            ));
        }
        if let Some(first) = ids.insert(src.id(), i) {
            errors.push(at(
                &here("id"),
                format!("source[{i}].id"),
                format!("duplicate source id `{}` (also source[{first}])", src.id()),
            ));
        }
        if let SourceConfig::Page(p) = src {
            if p.list_urls.is_empty() && p.sitemap.is_none() && p.feed.is_none() {
                errors.push(at(
                    &here("id"),
                    format!("source[{i}]"),
                    "a page source needs at least one of list_urls, sitemap or feed".into(),
                ));
            }
            for (j, u) in p.list_urls.iter().enumerate() {
                if let Err(msg) = check_http_url(u) {
                    errors.push(at(
                        &here("list_urls"),
                        format!("source[{i}].list_urls[{j}]"),
                        msg,
                    ));
                }
            }
            for (key, u) in [("sitemap", &p.sitemap), ("feed", &p.feed)] {
                if let Some(u) = u
                    && let Err(msg) = check_http_url(u)
                {
                    errors.push(at(&here(key), format!("source[{i}].{key}"), msg));
                }
            }
        } else if let Err(msg) = check_http_url(src.start_url()) {
            let field = src.start_url_field();
            errors.push(at(&here(field), format!("source[{i}].{field}"), msg));
        }
        if src.interval_secs() == Some(0) {
            errors.push(at(
                &here("interval_secs"),
                format!("source[{i}].interval_secs"),
                "must be at least 1".into(),
            ));
        }
        if let SourceConfig::Forum(f) = src
            && let Err((field, msg)) = f.spec()
        {
            errors.push(at(&here(field), format!("source[{i}].{field}"), msg));
        }
        if let SourceConfig::Microblog(m) = src
            && !(m.timeline == "public"
                || m.timeline == "local"
                || m.timeline
                    .strip_prefix("tag:")
                    .is_some_and(|t| !t.is_empty())
                || m.timeline
                    .strip_prefix("account:")
                    .is_some_and(|t| !t.is_empty()))
        {
            errors.push(at(
                &here("timeline"),
                format!("source[{i}].timeline"),
                format!(
                    "`{}`: use public, local, tag:<hashtag> or account:<id>",
                    m.timeline
                ),
            ));
        }
        if let SourceConfig::Json(m) = src {
            if !m.url_template.contains("{id}") {
                errors.push(at(
                    &here("url_template"),
                    format!("source[{i}].url_template"),
                    "must contain `{id}`".into(),
                ));
            }
            for (key, ptr) in [
                ("items", &m.items),
                ("id_field", &m.id_field),
                ("text_field", &m.text_field),
                ("author_field", &m.author_field),
                ("time_field", &m.time_field),
            ] {
                if !ptr.is_empty() && !ptr.starts_with('/') {
                    errors.push(at(
                        &here(key),
                        format!("source[{i}].{key}"),
                        format!("`{ptr}` is not a JSON pointer (it must start with `/`)"),
                    ));
                }
            }
        }
    }
    errors
}

/// Whether `s` is `host:port` with a host and a port number.
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

pub(crate) fn check_http_url(raw: &str) -> Result<(), String> {
    match url::Url::parse(raw) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err(format!(
            "`{raw}`: scheme `{}` is not http or https",
            u.scheme()
        )),
        Err(e) => Err(format!("`{raw}` is not a valid URL: {e}")),
    }
}

#[cfg(test)]
mod tests;
