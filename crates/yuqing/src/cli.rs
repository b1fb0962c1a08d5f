use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDateTime, TimeZone, Utc};
use clap::{Parser, Subcommand};
use yuqing::demo_site::{DemoSite, Site};
use yuqing::{Pipeline, PipelineOptions, RoleSet, Roles, embedded};
use yuqing_config::{BusKind, Config, ConfigError, Loader};

#[derive(Parser)]
#[command(
    name = "yuqing",
    version,
    about = "Online public-opinion monitoring and alerting (舆情监测预警)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline against a bundled sample site, offline.
    Demo {
        /// Exit after this many seconds with a summary (for scripts).
        #[arg(long)]
        duration: Option<u64>,
        /// Console address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Port of the sample site on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8081)]
        site_port: u16,
        /// Keep state here instead of a new temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run the pipeline.
    Run {
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
        /// Roles to run in this process: `all`, or some of crawler, analyzer,
        /// indexer, alerter, server (needs `[bus] kind = "kafka"`).
        #[arg(long, default_value = "all")]
        roles: String,
    },
    /// Validate the config, rules and sources; exit 1 on any error.
    Check {
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print a `[[server.user]]` login for the config: reads the password
    /// (twice, unechoed, from a terminal; else one line of stdin) and
    /// writes only its argon2 hash.
    Passwd {
        /// The login name, recorded as who acknowledged or resolved.
        id: String,
        /// Shown in the console.
        #[arg(long)]
        name: Option<String>,
        /// observer (reads) or responder (also acknowledges, resolves,
        /// silences).
        #[arg(long, default_value = "responder")]
        role: yuqing_config::Role,
    },
    /// API tokens for scripts and dashboards.
    Token {
        #[command(subcommand)]
        what: TokenKind,
    },
    /// Who is on duty in each roster, now or at `--at`, with the latest
    /// handover note.
    Oncall {
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
        /// An RFC 3339 time (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Analyze JSON lines of items from stdin, write analyzed items to stdout.
    Analyze {
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Search the index.
    Search {
        /// In the rule language: `垮塌 AND 被困`, `title:暴雨 NEAR/10 转移`.
        query: String,
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
        /// RFC 3339 time, YYYY-MM-DD, or a span back from now (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        source_type: Option<String>,
        #[arg(long)]
        site: Option<String>,
        /// 正面, 中性, 负面 (or positive, neutral, negative).
        #[arg(long)]
        sentiment: Option<String>,
        #[arg(long)]
        level: Option<String>,
        /// Items this rule fired on.
        #[arg(long)]
        rule: Option<String>,
        /// The reprints of this event (its id, as the console and
        /// `/api/events` show it).
        #[arg(long)]
        event: Option<String>,
        /// time (default), score or heat.
        #[arg(long)]
        sort: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Hits to skip, for the next page.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// The histogram's buckets: hour or day (default: hour up to three
        /// days, else day).
        #[arg(long)]
        interval: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Fetch or read one page and print its title, author, time and text.
    Extract {
        /// An http(s) URL or a file path.
        target: String,
        #[arg(long)]
        json: bool,
        /// Allow a private or loopback address (refused by default).
        #[arg(long)]
        allow_private: bool,
    },
    /// Train or evaluate a sentiment model.
    Sentiment {
        #[command(subcommand)]
        what: SentimentKind,
    },
    /// Work with rules.
    Rules {
        #[command(subcommand)]
        what: RulesKind,
    },
    /// Measure against a baseline in the same run.
    Bench {
        #[command(subcommand)]
        what: BenchKind,
    },
    /// Build a report now.
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
}

/// `yuqing bench index`.
#[derive(clap::Args)]
struct IndexBench {
    /// One text a line (or `label<TAB>text`), or a reprint test set's
    /// folder (its articles); default: the sample site's items.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Items each side indexes in a round.
    #[arg(long, default_value_t = 20_000)]
    docs: usize,
    /// Items in the index the queries run on (0 skips the queries).
    #[arg(long, default_value_t = 1_000_000)]
    query_docs: usize,
    /// Runs of each query.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Writer memory, MB.
    #[arg(long, default_value_t = 64)]
    heap_mb: usize,
    /// Indexing threads of the writer (both sides).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Rounds of both sides, taking turns.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Join every N texts of the corpus into one item, to see how the
    /// ratio moves with item length.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    join: u16,
}

#[derive(Subcommand)]
enum BenchKind {
    /// The whole analysis (normalize, segment, 200 rules, a 10,000-word
    /// lexicon, SimHash, keywords) against plain jieba segmentation of the
    /// same texts.
    Analysis {
        /// One text a line (or `label<TAB>text`); default: the sample site's
        /// items.
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Seconds each side runs at least.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Indexing the analyzer's tokens against tantivy-jieba segmenting the
    /// same items again, then query latency on a large index.
    Index(IndexBench),
    /// Items through every stage of the embedded pipeline (analysis, index,
    /// alerts) against the analysis alone, then the latency from arrival to
    /// searchable and alerted.
    Pipeline {
        /// One text a line (or `label<TAB>text`), or a reprint test set's
        /// folder; default: the sample site's items.
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Items run through as fast as the pipeline takes them.
        #[arg(long, default_value_t = 20_000)]
        items: usize,
        /// Items then sent one at a time, for the latency.
        #[arg(long, default_value_t = 200)]
        paced: usize,
        /// Items a second while measuring the latency.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
    },
    /// Pairwise precision and recall of reprint events on a reprint test
    /// set: base articles reprinted with other page furniture, edited
    /// leads, added 来源/编辑 lines and trailers.
    Reprints {
        /// The set's folder (with `articles/*.txt`).
        #[arg(default_value = "tests/fixtures/reprints")]
        dir: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// SimHash distance to score at (default: the config's
        /// `alert.simhash_max_distance`).
        #[arg(long)]
        max_distance: Option<u32>,
    },
    /// Shingle F1 of article extraction on a benchmark folder
    /// (`ground-truth.json` + `html/*.html.gz`), beside the readability
    /// fallback alone.
    Extraction {
        /// The folder, e.g. ../shared/data/extraction-en.
        data: PathBuf,
        /// Shingles of characters (for Chinese) instead of words.
        #[arg(long)]
        chars: bool,
        /// Print each page's scores.
        #[arg(long)]
        pages: bool,
    },
}

#[derive(Subcommand)]
enum TokenKind {
    /// Make a token: prints it once, and the `[[server.token]]` block (its
    /// SHA-256) for the config.
    New {
        /// Names the client (`grafana`, `ops-script`).
        id: String,
        /// observer (reads) or responder (also acknowledges, resolves,
        /// silences).
        #[arg(long, default_value = "observer")]
        role: yuqing_config::Role,
    },
}

#[derive(Subcommand)]
enum SentimentKind {
    /// Train a model from labelled texts and write it to `--out`.
    Train {
        /// `label<TAB>text` lines, 1 positive, 0 negative (repeatable).
        #[arg(long)]
        data: Vec<PathBuf>,
        /// A file of positive texts, one a line (repeatable).
        #[arg(long)]
        positive: Vec<PathBuf>,
        /// A file of negative texts, one a line (repeatable).
        #[arg(long)]
        negative: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Settings for data from another domain than the items to judge
        /// (stronger regularization, repeated texts dropped).
        #[arg(long)]
        cross_domain: bool,
        /// Keep only this many of the heaviest weights (a smaller file).
        #[arg(long)]
        keep: Option<usize>,
    },
    /// Accuracy of a model (default: the bundled one) on labelled texts.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RulesKind {
    /// Show which terms of each rule match a text, where, and why the rule
    /// fires or not. With `--rule`, exits 0 when that rule fires, 1 when
    /// it does not.
    Test {
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
        /// The item's text.
        #[arg(long)]
        text: String,
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long)]
        author: Option<String>,
        /// The item's host, for `site:`.
        #[arg(long, default_value = "")]
        site: String,
        /// 新闻, 论坛, 微博, … or news, forum, microblog, …
        #[arg(long, default_value = "新闻")]
        source_type: String,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
    },
    /// Run a configured rule (`--rule`), a draft (`--query`) or, with
    /// neither, every configured rule over the indexed items of a time
    /// range: matches per day with examples, and each rule's count.
    Backtest {
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, conflicts_with = "query")]
        rule: Option<String>,
        #[arg(long)]
        query: Option<String>,
        /// RFC 3339 time, YYYY-MM-DD, or a span back from now.
        #[arg(long, default_value = "30d")]
        since: String,
        #[arg(long)]
        until: Option<String>,
        /// Examples shown per day.
        #[arg(long, default_value_t = 3)]
        examples: usize,
        #[arg(long)]
        json: bool,
    },
}

/// Where a report goes and in what format.
#[derive(clap::Args)]
struct ReportOutput {
    /// md, html, docx or pdf. Without `--out`, the report's Markdown and
    /// HTML go to the reports directory as always, and a DOCX or PDF beside
    /// them; with `--out`, the format defaults to the file's extension.
    #[arg(long)]
    format: Option<String>,
    /// Write the report in that one format to this file (`-`: standard
    /// output) instead of the reports directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The period of a daily or nil report, and what to do with it.
#[derive(clap::Args)]
struct PeriodReport {
    #[arg(long, short, env = "YUQING_CONFIG")]
    config: Option<PathBuf>,
    /// End of the period, `YYYY-MM-DD HH:MM` in the configured time zone.
    #[arg(long, conflicts_with = "date")]
    at: Option<String>,
    /// The report of this day, `YYYY-MM-DD`: the period ending when
    /// `report.schedule` writes it that day.
    #[arg(long)]
    date: Option<String>,
    #[command(flatten)]
    output: ReportOutput,
    /// Also deliver it to the `report.send_to` channels: queued in the
    /// outbox of the data directory's alert.db, which the running
    /// alerter (or the next to start) sends.
    #[arg(long)]
    send: bool,
}

#[derive(Subcommand)]
enum ReportKind {
    /// The daily report (a nil report when nothing reached the threshold)
    /// for the 24 hours ending at `--at` (local time, default now).
    Daily(PeriodReport),
    /// The nil report (零报告) of a period in which no incident reached
    /// `report.min_level`: as `daily`, but refused (exit 1) when the period
    /// has incidents to report.
    Nil(PeriodReport),
    /// The special report (专报) of one incident as it stands now: what it
    /// is, how it spread, what was done.
    Incident {
        /// The incident's number, as the console and the API show it.
        id: i64,
        #[arg(long, short, env = "YUQING_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        output: ReportOutput,
        /// Also deliver it to the `report.send_to` channels (see `daily`).
        #[arg(long)]
        send: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Analyze { .. }
            | Command::Search { .. }
            | Command::Bench {
                what: BenchKind::Pipeline { .. }
            }
    );
    // html5ever reports every quirk of real-world HTML as a warning.
    init_tracing(if quiet {
        "warn,html5ever=error"
    } else {
        "info,html5ever=error"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Demo {
            duration,
            listen,
            site_port,
            data_dir,
        } => demo(duration, listen, site_port, data_dir).await,
        Command::Run { config, roles } => run(config, &roles).await,
        Command::Check { config } => check(config),
        Command::Oncall { config, at } => oncall(config, at),
        Command::Passwd { id, name, role } => crate::logins::passwd(&id, name.as_deref(), role),
        Command::Token {
            what: TokenKind::New { id, role },
        } => crate::logins::new_token(&id, role),
        Command::Analyze { config } => analyze(config).await,
        Command::Search {
            query,
            config,
            since,
            until,
            source_type,
            site,
            sentiment,
            level,
            rule,
            event,
            sort,
            limit,
            offset,
            interval,
            json,
        } => {
            let params = yuqing_server::SearchParams {
                q: query,
                since,
                until,
                source_type,
                site,
                sentiment,
                level,
                rule,
                event,
                sort,
                interval,
                limit: Some(limit),
                offset: Some(offset),
            };
            search(config, params, json).await
        }
        Command::Rules {
            what:
                RulesKind::Backtest {
                    config,
                    rule,
                    query,
                    since,
                    until,
                    examples,
                    json,
                },
        } => rules_backtest(config, rule, query, since, until, examples, json).await,
        Command::Report {
            kind: ReportKind::Daily(r),
        } => report_daily(r, false).await,
        Command::Report {
            kind: ReportKind::Nil(r),
        } => report_daily(r, true).await,
        Command::Report {
            kind:
                ReportKind::Incident {
                    id,
                    config,
                    output,
                    send,
                },
        } => report_incident(config, id, output, send).await,
        Command::Extract {
            target,
            json,
            allow_private,
        } => extract(&target, json, allow_private).await,
        Command::Bench {
            what: BenchKind::Extraction { data, chars, pages },
        } => bench_extraction(&data, chars, pages),
        Command::Bench {
            what:
                BenchKind::Pipeline {
                    corpus,
                    items,
                    paced,
                    rate,
                },
        } => bench_pipeline(corpus, items, paced, rate).await,
        Command::Bench {
            what:
                BenchKind::Reprints {
                    dir,
                    config,
                    max_distance,
                },
        } => {
            let config = load_config(config.as_deref())?;
            tokio::task::spawn_blocking(move || bench_reprints(&dir, &config, max_distance)).await?
        }
        Command::Bench {
            what: BenchKind::Index(args),
        } => tokio::task::spawn_blocking(move || bench_index(args)).await?,
        Command::Bench {
            what: BenchKind::Analysis { corpus, seconds },
        } => tokio::task::spawn_blocking(move || bench_analysis(corpus, seconds)).await?,
        Command::Sentiment {
            what:
                SentimentKind::Train {
                    data,
                    positive,
                    negative,
                    out,
                    cross_domain,
                    keep,
                },
        } => {
            tokio::task::spawn_blocking(move || {
                sentiment_train(&data, &positive, &negative, &out, cross_domain, keep)
            })
            .await?
        }
        Command::Sentiment {
            what: SentimentKind::Eval { data, model },
        } => tokio::task::spawn_blocking(move || sentiment_eval(&data, model.as_deref())).await?,
        Command::Rules {
            what:
                RulesKind::Test {
                    config,
                    text,
                    title,
                    author,
                    site,
                    source_type,
                    rule,
                },
        } => {
            let source_type = yuqing_model::SourceType::parse(&source_type).ok_or_else(|| {
                anyhow::anyhow!("unknown source type `{source_type}`: use 新闻, 论坛, 微博, 贴吧, 客户端, 政务, 博客, 视频 or 外媒")
            })?;
            let item = yuqing_model::Item {
                id: "test".into(),
                source: "test".into(),
                source_kind: yuqing_model::SourceKind::Feed,
                source_type,
                site,
                url: String::new(),
                title,
                text,
                author,
                published_at: None,
                fetched_at: chrono::Utc::now(),
                engagement: Default::default(),
                parent_id: None,
            };
            rules_test(config, item, rule).await
        }
    }
}

/// Loads `--config`, else `config/default.toml` when present, else the
/// default compiled into the binary.
fn load_config(path: Option<&Path>) -> Result<Config> {
    let loader = Loader::from_env();
    let result = match path {
        Some(p) => loader.load(p),
        None if Path::new(embedded::DEFAULT).exists() => loader.load(Path::new(embedded::DEFAULT)),
        None => loader.load_embedded(embedded::FILES, embedded::DEFAULT),
    };
    let config = result.map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
    for e in &config.rule_errors {
        eprintln!("warning: left out: {e}");
    }
    Ok(config)
}

fn oncall(path: Option<PathBuf>, at: Option<String>) -> Result<ExitCode> {
    let config = load_config(path.as_deref())?;
    let at = match at {
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .with_context(|| format!("--at `{t}` is not an RFC 3339 time"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let tz = config.timezone();
    let duty = yuqing_alert::Duty::new(&config.settings.alert, tz, "", Vec::new());
    let on = duty.on_duty_all(at);
    if on.is_empty() {
        println!("no roster is configured ([[alert.roster]])");
        return Ok(ExitCode::SUCCESS);
    }
    // Handover notes, when the alerter has kept state here.
    let db = config.settings.data_dir.join("alert.db");
    let store = db
        .exists()
        .then(|| yuqing_alert::AlertStore::open(&db).ok())
        .flatten();
    for d in on {
        let local = |t: chrono::DateTime<Utc>| {
            t.with_timezone(&d.timezone.parse::<chrono_tz::Tz>().unwrap_or(tz))
                .format("%m-%d %H:%M")
                .to_string()
        };
        let why = match (d.by_override, &d.note) {
            (true, Some(note)) => format!("override {note}"),
            (true, None) => "override".to_string(),
            (false, _) => format!("shift {}", d.shift),
        };
        println!(
            "{}: {} {}({why}, {} to {} {})",
            d.roster_name,
            d.name,
            d.mobile
                .as_deref()
                .map(|m| format!("{m} "))
                .unwrap_or_default(),
            local(d.since),
            local(d.until),
            d.timezone
        );
        if let Some(h) = store
            .as_ref()
            .and_then(|s| s.handovers(&d.roster, 1).ok())
            .and_then(|v| v.into_iter().next())
        {
            // Notes come through the API: shown without terminal controls.
            println!(
                "  handover from {} at {}: {}",
                printable(&h.author),
                local(h.at),
                printable_lines(&h.note)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(path: Option<PathBuf>) -> Result<ExitCode> {
    let loader = Loader::from_env();
    let loaded = match &path {
        Some(p) => loader.load(p),
        None if Path::new(embedded::DEFAULT).exists() => loader.load(Path::new(embedded::DEFAULT)),
        None => loader.load_embedded(embedded::FILES, embedded::DEFAULT),
    };
    let config = match loaded {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s)", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut errors: Vec<ConfigError> = config.rule_errors.clone();
    let (rules, compile_errors) = yuqing_analysis::RuleSet::compile(&config.rules);
    errors.extend(compile_errors);
    if let Err(e) = yuqing_crawler::build_sources(&config) {
        errors.extend(e.0);
    }
    if errors.is_empty() {
        let a = &config.settings.alert;
        let server = &config.settings.server;
        // Only the process with the console refuses to start on it; others
        // answer just /metrics and /healthz there.
        if let Some(why) = server
            .listen
            .parse()
            .ok()
            .and_then(|addr| server.open_to_network(&addr))
        {
            eprintln!("warning: {why}");
        }
        println!(
            "{}: ok ({} sources, {} rules, {} lexicon words; {} routes, {} policies, {} rosters, {} people, {} channels; {} logins, {} tokens)",
            config.origin.display(),
            config.settings.sources.len(),
            rules.len(),
            config.lexicon.len(),
            a.route.len(),
            a.policy.len(),
            a.roster.len(),
            a.person.len(),
            a.channel.len(),
            server.user.len(),
            server.token.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for e in &errors {
            eprintln!("error: {e}");
        }
        eprintln!("{} error(s)", errors.len());
        Ok(ExitCode::FAILURE)
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(path: Option<PathBuf>, roles: &str) -> Result<ExitCode> {
    let roles = Roles::parse(roles)?;
    let config = load_config(path.as_deref())?;
    match config.settings.bus.kind {
        BusKind::InProcess => {
            if !roles.is_all() {
                bail!(
                    "running only some roles (`{roles}`) needs the Kafka bus between processes: set `[bus] kind = \"kafka\"` and `[bus.kafka] brokers` (see the `[bus]` section of config/default.toml), or run with --roles all"
                );
            }
            let pipeline = Pipeline::start(config, PipelineOptions::default()).await?;
            println!("yuqing running: console {}", pipeline.console_url());
            shutdown_signal().await;
            eprintln!("stopping: draining collected items into the index and alert state…");
            pipeline.shutdown(Duration::from_secs(30)).await;
        }
        BusKind::Kafka => {
            let brokers = config.settings.bus.kafka.brokers.clone();
            let set = RoleSet::start(config, roles, PipelineOptions::default()).await?;
            if roles.server {
                println!(
                    "yuqing running ({roles}) over Kafka at {brokers}: console http://{}",
                    set.addr
                );
            } else {
                println!(
                    "yuqing running ({roles}) over Kafka at {brokers}: metrics http://{}/metrics",
                    set.addr
                );
            }
            shutdown_signal().await;
            eprintln!("stopping: committing what each role made durable…");
            set.shutdown(Duration::from_secs(30)).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn demo(
    duration: Option<u64>,
    listen: String,
    site_port: u16,
    data_dir: Option<PathBuf>,
) -> Result<ExitCode> {
    let site = Site::bundled();
    let published = site.item_count();
    let demo_site = DemoSite::start(site, site_port).await.with_context(|| {
        format!("cannot serve the sample site on 127.0.0.1:{site_port} (try --site-port 0)")
    })?;
    let data_dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "yuqing-demo-{}-{}",
            std::process::id(),
            Utc::now().format("%Y%m%d%H%M%S")
        ))
    });
    let config = Loader::from_env()
        .var("DEMO_SITE", demo_site.addr.to_string())
        .var("DEMO_DATA", data_dir.display().to_string())
        .load_embedded(embedded::FILES, embedded::DEMO)
        .map_err(|e| anyhow::anyhow!("bundled demo config is invalid:\n{e}"))?;
    let pipeline = Pipeline::start(
        config,
        PipelineOptions {
            listen: Some(listen),
        },
    )
    .await?;
    println!("yuqing demo");
    println!("  console      {}", pipeline.console_url());
    println!(
        "  sample site  http://{} ({published} items: news feeds, a GBK forum, a microblog API)",
        demo_site.addr
    );
    println!("  data         {}", data_dir.display());
    match duration {
        Some(s) => println!("  running for {s} s"),
        None => println!("  press Ctrl-C to stop"),
    }
    let started = tokio::time::Instant::now();
    let deadline = duration.map(|s| started + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = until_deadline => break,
            _ = tick.tick() => {
                println!("[{:>4}s] {}", started.elapsed().as_secs(), pipeline.summary());
                let _ = std::io::stdout().flush();
            }
        }
    }
    // Let what was collected reach the sinks, then write the report of the
    // last 24 hours, as the 08:30 schedule would.
    pipeline.settle(1, Duration::from_secs(20)).await;
    let alerter = pipeline.alerter.clone();
    let report = tokio::task::spawn_blocking(move || alerter.write_report(Utc::now())).await?;
    match report {
        Ok(r) => println!(
            "  report       {} ({}, {} incidents, {} items)",
            r.html_path,
            r.kind.zh(),
            r.incidents,
            r.items
        ),
        Err(e) => eprintln!("error: report failed: {e}"),
    }
    let summary = pipeline.summary();
    let webhooks = demo_site.webhooks_received();
    pipeline.shutdown(Duration::from_secs(20)).await;
    let robot = demo_site.robot_messages();
    demo_site.stop().await;
    println!(
        "summary: {summary} · webhooks received by the sample robot {webhooks} · signed DingTalk messages {}",
        robot.len()
    );
    if let Some(m) = robot.first() {
        println!(
            "first DingTalk message:\n{}",
            m["markdown"]["text"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn analyze(path: Option<PathBuf>) -> Result<ExitCode> {
    let config = load_config(path.as_deref())?;
    let (analyzer, errors) =
        tokio::task::spawn_blocking(move || yuqing_analysis::Analyzer::new(&config)).await?;
    for e in errors {
        eprintln!("warning: rule left out: {e}");
    }
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut bad = 0usize;
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        match yuqing::pipeline::item_from_json(&line) {
            Ok(item) => {
                let a = analyzer.analyze(item);
                serde_json::to_writer(&mut out, &a)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                bad += 1;
                eprintln!("error: stdin line {}: {e}", n + 1);
            }
        }
    }
    out.flush()?;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The index of `config`, with the segmenter its rules give.
fn open_index(config: &Config) -> Result<yuqing_index::ItemIndex> {
    let dir = config.settings.data_dir.join("index");
    if !dir.join("meta.json").exists() {
        bail!(
            "no index at {} (run the pipeline first, or set data_dir)",
            dir.display()
        );
    }
    let (rules, _) = yuqing_analysis::RuleSet::compile(&config.rules);
    let seg =
        yuqing_analysis::Segmenter::for_config(config, rules.terms().iter().map(String::as_str));
    Ok(yuqing_index::ItemIndex::open_existing(&dir, seg)?)
}

/// A query error with a caret under where the query goes wrong.
fn query_error(query: &str, e: yuqing_index::IndexError) -> anyhow::Error {
    match e {
        yuqing_index::IndexError::Syntax { pos, message } => {
            let col = query.get(..pos).map_or(0, |p| {
                p.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
            });
            anyhow::anyhow!(
                "invalid query: {message}\n  {query}\n  {}^",
                " ".repeat(col)
            )
        }
        other => other.into(),
    }
}

async fn search(
    path: Option<PathBuf>,
    params: yuqing_server::SearchParams,
    json: bool,
) -> Result<ExitCode> {
    let config = load_config(path.as_deref())?;
    let tz = config.timezone();
    let mut req = params.to_request(tz).map_err(|e| anyhow::anyhow!(e))?;
    let query = req.query.clone();
    let event = params.event.clone().filter(|e| !e.is_empty());
    let results = tokio::task::spawn_blocking(move || {
        if let Some(event) = event {
            // Events live in the alerter's store, not in the index.
            let db = config.settings.data_dir.join("alert.db");
            if !db.exists() {
                bail!("no alert store at {}: events come from it", db.display());
            }
            let chain = yuqing_alert::AlertStore::open(&db)?.event_chain(&event)?;
            req.ids = Some(chain.into_iter().map(|l| l.item_id).collect());
        }
        let index = open_index(&config)?;
        index.search(&req).map_err(|e| query_error(&query, e))
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let facet = |name: &str, v: &[yuqing_index::FacetCount]| {
            let parts: Vec<String> = v
                .iter()
                .map(|f| format!("{} {}", printable(&f.value), f.count))
                .collect();
            format!("{name}: {}", parts.join(", "))
        };
        println!("{} matches", results.total);
        println!(
            "  {}; {}; {}; {}",
            facet("source types", &results.facets.source_type),
            facet("sentiment", &results.facets.sentiment),
            facet("levels", &results.facets.level),
            facet("sites", &results.facets.site)
        );
        let peak = results.histogram.iter().map(|b| b.count).max().unwrap_or(0);
        if peak > 0 {
            let format = match results.interval {
                yuqing_index::Interval::Hour => "%m-%d %H:00",
                yuqing_index::Interval::Day => "%Y-%m-%d",
            };
            println!(
                "  by {}:",
                match results.interval {
                    yuqing_index::Interval::Hour => "hour",
                    yuqing_index::Interval::Day => "day",
                }
            );
            for b in &results.histogram {
                println!(
                    "    {}  {:>6}  {}",
                    b.start.with_timezone(&tz).format(format),
                    b.count,
                    "█".repeat((b.count * 40).div_ceil(peak) as usize)
                );
            }
        }
        let from = params.offset.unwrap_or(0);
        if !results.hits.is_empty() {
            println!("  hits {}-{}:", from + 1, from + results.hits.len());
        }
        for h in results.hits {
            let when = h
                .published_at
                .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let title = if h.title.is_empty() {
                printable(&h.snippet.chars().take(40).collect::<String>())
            } else {
                marked(&h.title, &h.title_highlights)
            };
            println!(
                "{when}  [{}] {}  {}\n    {}",
                h.source_type,
                title,
                printable(&h.url),
                marked(&h.snippet, &h.highlights)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Crawled text for a terminal: control characters (escape sequences
/// among them) and line breaks become spaces.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect()
}

/// Crawled text for a terminal, line breaks kept.
fn printable_lines(s: &str) -> String {
    s.chars()
        .map(|c| if c != '\n' && is_unsafe(c) { ' ' } else { c })
        .collect()
}

/// Control characters, and the bidirectional overrides that make a
/// terminal show text other than what it is.
fn is_unsafe(c: char) -> bool {
    c.is_control() || yuqing_model::is_direction_control(c)
}

/// A snippet for a terminal, its matched terms between « and ».
fn marked(snippet: &str, highlights: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(snippet.len() + highlights.len() * 4);
    let mut at = 0;
    for &(a, b) in highlights {
        let (Some(before), Some(term)) = (snippet.get(at..a), snippet.get(a..b)) else {
            continue;
        };
        out.push_str(&printable(before));
        out.push('«');
        out.push_str(&printable(term));
        out.push('»');
        at = b;
    }
    out.push_str(&printable(snippet.get(at..).unwrap_or_default()));
    out
}

#[allow(clippy::too_many_arguments)]
async fn rules_backtest(
    path: Option<PathBuf>,
    rule: Option<String>,
    query: Option<String>,
    since: String,
    until: Option<String>,
    examples: usize,
    json: bool,
) -> Result<ExitCode> {
    let config = load_config(path.as_deref())?;
    let params = yuqing_server::BacktestParams {
        rule,
        q: query,
        since: Some(since),
        until,
        examples: Some(examples),
    };
    let now = Utc::now();
    let (since, until) = params
        .range(now, config.timezone())
        .map_err(|e| anyhow::anyhow!(e))?;
    let (rules, query) = match yuqing_server::backtest_rules(&params, &config.rules) {
        Ok(r) => r,
        Err(yuqing_server::SearchError::Query(_)) => {
            let q = params.q.clone().unwrap_or_default();
            let e = yuqing_analysis::query::Query::parse(&q).err().map(|e| {
                yuqing_index::IndexError::Syntax {
                    pos: e.pos,
                    message: e.message,
                }
            });
            return Err(e.map_or_else(|| anyhow::anyhow!("invalid query"), |e| query_error(&q, e)));
        }
        Err(yuqing_server::SearchError::Api(e)) => bail!("{}", e.message()),
    };
    let offset = yuqing_server::utc_offset(config.timezone(), now);
    let result = tokio::task::spawn_blocking(move || {
        let index = open_index(&config)?;
        Ok::<_, anyhow::Error>(index.backtest(&rules, since, until, offset, examples)?)
    })
    .await??;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "query": query, "backtest": result })
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if query.is_empty() {
        println!("every configured rule ({})", result.rules.len());
    } else {
        println!("query: {query}");
    }
    println!(
        "{} matches among {} items published {} to {}",
        result.matches,
        result.scanned,
        since.format("%Y-%m-%d %H:%M"),
        until.format("%Y-%m-%d %H:%M")
    );
    for d in &result.days {
        println!("{}  {:>5}", d.day, d.matches);
        for e in &d.examples {
            let title: String = e.title.chars().take(40).collect();
            println!("             {}  {}", printable(&title), printable(&e.url));
        }
    }
    if result.rules.len() > 1 {
        println!("by rule:");
        for r in &result.rules {
            println!("  {:>5}  {} ({})", r.matches, r.id, printable(&r.name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An alerter on the data directory's alert.db, for writing (and with
/// `send`, queueing) reports.
fn report_alerter(config: &Config, send: bool) -> Result<yuqing_alert::Alerter> {
    if send && config.settings.report.send_to.is_empty() {
        bail!("--send: report.send_to names no channel to deliver to");
    }
    let db = config.settings.data_dir.join("alert.db");
    if !db.exists() {
        bail!(
            "no alert store at {} (run the pipeline first, or set data_dir)",
            db.display()
        );
    }
    let console = config
        .settings
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.settings.server.listen));
    Ok(yuqing_alert::Alerter::new(
        config,
        yuqing_alert::AlertStore::open(&db)?,
        console,
        yuqing_alert::AlertMetrics::new(&prometheus::Registry::new()),
    ))
}

/// The format asked for, by name or by the `--out` file's extension.
fn report_format(output: &ReportOutput) -> Result<Option<yuqing_alert::export::ReportFormat>> {
    use yuqing_alert::export::ReportFormat;
    if let Some(f) = &output.format {
        return ReportFormat::parse(f)
            .map(Some)
            .with_context(|| format!("--format `{f}`: expected md, html, docx or pdf"));
    }
    Ok(match output.out.as_deref() {
        None => None,
        Some(p) if p == Path::new("-") => Some(ReportFormat::Markdown),
        Some(p) => Some(
            p.extension()
                .and_then(|e| e.to_str())
                .and_then(ReportFormat::parse)
                .with_context(|| {
                    format!(
                        "--out {}: cannot tell the format from its extension (md, html, docx, pdf); give --format",
                        p.display()
                    )
                })?,
        ),
    })
}

/// Checks what the report needs before anything is written or queued:
/// fonts for a PDF, a terminal not sent a binary file.
fn report_ready(
    config: &Config,
    output: &ReportOutput,
    format: Option<yuqing_alert::export::ReportFormat>,
) -> Result<()> {
    use std::io::IsTerminal;
    use yuqing_alert::export::{PdfFonts, ReportFormat};
    if format == Some(ReportFormat::Pdf) {
        let r = &config.settings.report;
        let fonts = PdfFonts::cached(&r.font_dirs, &r.fonts)?;
        for f in fonts.unknown() {
            eprintln!(
                "warning: report.fonts: no installed font `{f}` with Chinese characters; set in {} instead",
                fonts.families().join(", ")
            );
        }
    }
    if output.out.as_deref() == Some(Path::new("-"))
        && matches!(format, Some(ReportFormat::Docx | ReportFormat::Pdf))
        && std::io::stdout().is_terminal()
    {
        bail!("--out -: not writing a binary file to the terminal; redirect it, or name a file");
    }
    if let Some(out) = output.out.as_deref().filter(|p| p.is_dir()) {
        bail!("--out {}: is a directory; name a file", out.display());
    }
    Ok(())
}

/// The report in `format`, from its Markdown and HTML.
fn render_report(
    config: &Config,
    format: yuqing_alert::export::ReportFormat,
    markdown: &str,
    html: &str,
) -> Result<Vec<u8>> {
    use yuqing_alert::export::{self, PdfFonts, ReportFormat};
    Ok(match format {
        ReportFormat::Markdown => markdown.as_bytes().to_vec(),
        ReportFormat::Html => html.as_bytes().to_vec(),
        ReportFormat::Docx => export::docx(markdown)?,
        ReportFormat::Pdf => {
            let r = &config.settings.report;
            let fonts = PdfFonts::cached(&r.font_dirs, &r.fonts)?;
            let pdf = export::pdf(markdown, &fonts)?;
            if !pdf.missing.is_empty() {
                eprintln!(
                    "warning: no font has {}: they show as empty boxes (add a font that has them to report.fonts or report.font_dirs)",
                    pdf.missing
                        .iter()
                        .map(|c| format!("「{c}」 U+{:04X}", *c as u32))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            pdf.bytes
        }
    })
}

/// Writes `bytes` to `path` whole or not at all (`-`: standard output).
fn write_out(path: &Path, bytes: &[u8]) -> Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        // Text for a terminal goes without terminal controls, whatever
        // crawled text it holds.
        match std::str::from_utf8(bytes) {
            Ok(text) if std::io::IsTerminal::is_terminal(&out) => {
                out.write_all(printable_lines(text).as_bytes())?
            }
            _ => out.write_all(bytes)?,
        }
        return Ok(out.flush()?);
    }
    yuqing_alert::write_whole(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// After a report is written to the reports directory: its DOCX or PDF
/// beside it, when asked for. Returns the file written.
fn report_beside(
    config: &Config,
    format: Option<yuqing_alert::export::ReportFormat>,
    record: &yuqing_model::ReportRecord,
) -> Result<Option<PathBuf>> {
    use yuqing_alert::export::ReportFormat;
    let Some(format @ (ReportFormat::Docx | ReportFormat::Pdf)) = format else {
        return Ok(None);
    };
    let read = |p: &str| std::fs::read_to_string(p).with_context(|| format!("cannot read {p}"));
    let markdown = read(&record.markdown_path)?;
    let path = Path::new(&record.markdown_path).with_extension(format.extension());
    write_out(&path, &render_report(config, format, &markdown, "")?)?;
    Ok(Some(path))
}

async fn report_incident(
    path: Option<PathBuf>,
    id: i64,
    output: ReportOutput,
    send: bool,
) -> Result<ExitCode> {
    let config = load_config(path.as_deref())?;
    let format = report_format(&output)?;
    report_ready(&config, &output, format)?;
    let alerter = std::sync::Arc::new(report_alerter(&config, send)?);
    let now = Utc::now();
    let mut queued = None;
    if send || output.out.is_none() {
        let a = alerter.clone();
        let Some((r, q)) =
            tokio::task::spawn_blocking(move || a.special_report(id, now, send)).await??
        else {
            bail!("no incident {id}");
        };
        queued = send.then_some(q);
        if output.out.is_none() {
            println!(
                "special report (专报) of incident {id}, {} items\n{}\n{}",
                r.items, r.markdown_path, r.html_path
            );
            if let Some(p) = report_beside(&config, format, &r)? {
                println!("{}", p.display());
            }
        }
    }
    if let Some(out) = &output.out {
        let Some(r) =
            tokio::task::spawn_blocking(move || alerter.build_special_report(id, now)).await??
        else {
            bail!("no incident {id}");
        };
        let format = format.unwrap_or(yuqing_alert::export::ReportFormat::Markdown);
        write_out(out, &render_report(&config, format, &r.markdown, &r.html)?)?;
        report_note(
            &output,
            &format!(
                "special report (专报) of incident {id}, {} items\n{}",
                r.items,
                out.display()
            ),
        );
    }
    if let Some(q) = queued {
        report_note(
            &output,
            &format!("queued for {q} channel(s) in the outbox; the running alerter delivers it"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A line for the user: on standard output, unless the report itself goes
/// there.
fn report_note(output: &ReportOutput, line: &str) {
    if output.out.as_deref() == Some(Path::new("-")) {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// The end of the period asked for: `--at`, the scheduled time of
/// `--date`, or now.
fn report_period_end(
    config: &Config,
    alerter: &yuqing_alert::Alerter,
    (at, date): (Option<String>, Option<String>),
) -> Result<chrono::DateTime<Utc>> {
    let tz = config.timezone();
    let period_end = match (at, date) {
        (Some(s), _) => {
            let naive = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M")
                .with_context(|| format!("--at `{s}`: expected YYYY-MM-DD HH:MM"))?;
            tz.from_local_datetime(&naive)
                .earliest()
                .with_context(|| format!("--at `{s}` does not exist in {tz}"))?
                .with_timezone(&Utc)
        }
        (None, Some(d)) => {
            let date = chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .with_context(|| format!("--date `{d}`: expected YYYY-MM-DD"))?;
            alerter.report_time_on(date).with_context(|| {
                format!(
                    "--date {d}: report.schedule `{}` writes no report that day (give the period's end with --at)",
                    config.settings.report.schedule
                )
            })?
        }
        (None, None) => Utc::now(),
    };
    if period_end > Utc::now() {
        bail!(
            "the period ends in the future ({}): a report covers a period that has ended",
            period_end.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        );
    }
    Ok(period_end)
}

async fn report_daily(r: PeriodReport, nil_only: bool) -> Result<ExitCode> {
    let PeriodReport {
        config: path,
        at,
        date,
        output,
        send,
    } = r;
    let config = load_config(path.as_deref())?;
    let format = report_format(&output)?;
    report_ready(&config, &output, format)?;
    let alerter = std::sync::Arc::new(report_alerter(&config, send)?);
    let period_end = report_period_end(&config, &alerter, (at, date))?;
    // Built here when it is checked for nil or written to `--out`; the
    // reports directory's files are built by the alerter.
    let built = if nil_only || output.out.is_some() {
        let a = alerter.clone();
        Some(tokio::task::spawn_blocking(move || a.build_report(period_end)).await??)
    } else {
        None
    };
    if let Some(built) = built
        .as_ref()
        .filter(|b| nil_only && b.kind != yuqing_model::ReportKind::Nil)
    {
        eprintln!(
            "error: not a nil report: {} incident(s) at or above {} in the period ending {}; `yuqing report daily` writes their report",
            built.incidents,
            config.settings.report.min_level.zh(),
            period_end
                .with_timezone(&config.timezone())
                .format("%Y-%m-%d %H:%M")
        );
        return Ok(ExitCode::from(1));
    }
    let summary = |kind: yuqing_model::ReportKind, incidents: u64, items: u64| {
        format!(
            "{} report ({}), {incidents} incidents, {items} items",
            kind.as_str(),
            kind.zh()
        )
    };
    let mut queued = None;
    if send || output.out.is_none() {
        let a = alerter.clone();
        let (r, q) = tokio::task::spawn_blocking(move || {
            if send {
                a.send_report(period_end)
            } else {
                a.write_report(period_end).map(|r| (r, 0))
            }
        })
        .await??;
        if nil_only && r.kind != yuqing_model::ReportKind::Nil {
            // An incident opened between the check and the writing.
            bail!(
                "the period's report was written as a {} report: an incident reached {} meanwhile ({})",
                r.kind.as_str(),
                config.settings.report.min_level.zh(),
                r.markdown_path
            );
        }
        queued = send.then_some(q);
        if output.out.is_none() {
            println!(
                "{}\n{}\n{}",
                summary(r.kind, r.incidents, r.items),
                r.markdown_path,
                r.html_path
            );
            if let Some(p) = report_beside(&config, format, &r)? {
                println!("{}", p.display());
            }
        }
    }
    if let (Some(out), Some(built)) = (&output.out, &built) {
        let format = format.unwrap_or(yuqing_alert::export::ReportFormat::Markdown);
        write_out(
            out,
            &render_report(&config, format, &built.markdown, &built.html)?,
        )?;
        report_note(
            &output,
            &format!(
                "{}\n{}",
                summary(built.kind, built.incidents, built.items),
                out.display()
            ),
        );
    }
    match queued {
        Some(0) => report_note(
            &output,
            "this period's report was queued for these channels before: not queued again",
        ),
        Some(q) => report_note(
            &output,
            &format!("queued for {q} channel(s) in the outbox; the running alerter delivers it"),
        ),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn extract(target: &str, json: bool, allow_private: bool) -> Result<ExitCode> {
    use yuqing_crawler::decode::decode_html;
    let (bytes, content_type, url) =
        if target.starts_with("http://") || target.starts_with("https://") {
            let config = load_config(None)?;
            let fetcher = yuqing_crawler::fetch::Fetcher::new(&config.settings.crawler)
                .map_err(|e| anyhow::anyhow!(e))?;
            match fetcher
                .get(
                    target,
                    None,
                    yuqing_crawler::fetch::Policy { allow_private },
                )
                .await?
            {
                yuqing_crawler::fetch::FetchOutcome::Fresh(f) => {
                    (f.body, f.content_type, Some(f.url.to_string()))
                }
                yuqing_crawler::fetch::FetchOutcome::NotModified => {
                    bail!("{target}: 304 Not Modified without validators")
                }
            }
        } else {
            let bytes = std::fs::read(target).with_context(|| format!("cannot read {target}"))?;
            let bytes = if target.ends_with(".gz") {
                let mut out = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                    &mut out,
                )
                .with_context(|| format!("{target}: not gzip"))?;
                out
            } else {
                bytes
            };
            (bytes, None, None)
        };
    let (html, encoding) = decode_html(&bytes, content_type.as_deref(), None);
    let doc = yuqing_crawler::text::parse_document(&html)
        .map_err(|m| anyhow::anyhow!("{target}: {m}"))?;
    let e = yuqing_crawler::extract::extract_parsed(
        &html,
        &doc,
        url.as_deref(),
        chrono_tz::Asia::Shanghai,
        Utc::now(),
    );
    if json {
        let mut v = serde_json::to_value(&e)?;
        v["encoding"] = encoding.name().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("title:     {}", printable(&e.title));
        println!(
            "author:    {}",
            e.author.as_deref().map_or("-".into(), printable)
        );
        println!(
            "published: {}",
            e.published_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "-".into())
        );
        println!("encoding:  {}", encoding.name());
        println!("method:    {}", e.method);
        println!();
        println!("{}", printable_lines(&e.text));
    }
    Ok(ExitCode::SUCCESS)
}

fn sentiment_train(
    data: &[PathBuf],
    positive: &[PathBuf],
    negative: &[PathBuf],
    out: &Path,
    cross_domain: bool,
    keep: Option<usize>,
) -> Result<ExitCode> {
    use yuqing_analysis::sentiment::{SentimentModel, TrainOptions, accuracy, read_labelled};
    anyhow::ensure!(
        keep != Some(0),
        "--keep 0 would leave the model no weights: keep at least one"
    );
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let mut labelled = Vec::new();
    for p in data {
        labelled.extend(
            read_labelled(&read(p)?, &p.display().to_string()).map_err(|e| anyhow::anyhow!(e))?,
        );
    }
    for (files, label) in [(positive, 1u8), (negative, 0u8)] {
        for p in files {
            labelled.extend(
                read(p)?
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| (label, l.to_string())),
            );
        }
    }
    anyhow::ensure!(
        labelled.iter().any(|(y, _)| *y == 1) && labelled.iter().any(|(y, _)| *y == 0),
        "training needs positive and negative texts (--data, --positive, --negative)"
    );
    let opts = if cross_domain {
        TrainOptions::cross_domain()
    } else {
        TrainOptions::default()
    };
    let started = std::time::Instant::now();
    let mut model = SentimentModel::train(&labelled, &opts);
    if let Some(k) = keep {
        model.prune(k);
    }
    let mut file = Vec::new();
    model.write(&mut file)?;
    std::fs::write(out, &file).with_context(|| format!("writing {}", out.display()))?;
    // What was written is what is measured.
    let written = SentimentModel::read(&mut file.as_slice()).map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "trained on {} texts in {:.1} s; {} ({} KB); accuracy on the training data {:.4}",
        labelled.len(),
        started.elapsed().as_secs_f64(),
        out.display(),
        file.len() / 1024,
        accuracy(&written, &labelled)
    );
    Ok(ExitCode::SUCCESS)
}

fn sentiment_eval(data: &Path, model: Option<&Path>) -> Result<ExitCode> {
    use yuqing_analysis::sentiment::{SentimentModel, accuracy, read_labelled};
    let text =
        std::fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
    let labelled =
        read_labelled(&text, &data.display().to_string()).map_err(|e| anyhow::anyhow!(e))?;
    let (model, name) = match model {
        Some(p) => {
            let mut f =
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            (
                SentimentModel::read(&mut f)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                p.display().to_string(),
            )
        }
        None => (SentimentModel::bundled(), "the bundled model".to_string()),
    };
    let started = std::time::Instant::now();
    let acc = accuracy(&model, &labelled);
    let neutral = labelled
        .iter()
        .filter(|(_, t)| model.classify(t).label == yuqing_model::SentimentLabel::Neutral)
        .count();
    println!(
        "{name} on {}: accuracy {:.4} (positive against negative, {} texts, {:.0} texts/s); {:.1}% judged neutral",
        data.display(),
        acc,
        labelled.len(),
        labelled.len() as f64 / started.elapsed().as_secs_f64().max(1e-9) / 2.0,
        100.0 * neutral as f64 / labelled.len() as f64
    );
    Ok(ExitCode::SUCCESS)
}

async fn rules_test(
    path: Option<PathBuf>,
    item: yuqing_model::Item,
    rule: Option<String>,
) -> Result<ExitCode> {
    let config = load_config(path.as_deref())?;
    let (analyzer, errors) =
        tokio::task::spawn_blocking(move || yuqing_analysis::Analyzer::new(&config)).await?;
    for e in errors {
        eprintln!("warning: rule left out: {e}");
    }
    let explanations = analyzer.explain(&item, rule.as_deref());
    if let Some(id) = &rule
        && explanations.is_empty()
    {
        anyhow::bail!("no rule `{id}` (or it was left out because of an error above)");
    }
    let mut quiet = 0;
    for e in &explanations {
        // Without --rule, only the rules that fired or found a term.
        if rule.is_none() && !e.fired && !e.found {
            quiet += 1;
            continue;
        }
        println!(
            "{} {} ({}): {}",
            if e.fired { "✓" } else { "✗" },
            e.rule_id,
            e.rule_name,
            if e.fired { "fires" } else { "does not fire" }
        );
        for l in &e.lines {
            println!("  {l}");
        }
    }
    if quiet > 0 {
        println!("{quiet} other rules found none of their terms (--rule ID shows one)");
    }
    let analyzed = analyzer.analyze(item);
    println!(
        "score {} level {}",
        analyzed.score,
        analyzed
            .level
            .map_or("-".to_string(), |l| l.zh().to_string())
    );
    Ok(match rule {
        Some(_) if !explanations.iter().any(|e| e.fired) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

async fn bench_pipeline(
    corpus: Option<PathBuf>,
    items: usize,
    paced: usize,
    rate: f64,
) -> Result<ExitCode> {
    use yuqing::bench;
    anyhow::ensure!(
        items > 0 && rate > 0.0,
        "--items and --rate must be above 0"
    );
    let (docs, name) = match &corpus {
        Some(p) => (bench::corpus_file(p)?, p.display().to_string()),
        None => (
            bench::sample_corpus(),
            "the sample site's items".to_string(),
        ),
    };
    println!(
        "corpus: {name} ({} texts); {items} items, then {paced} at {rate}/s",
        docs.len()
    );
    println!(
        "analysis: {} rules, {} lexicon words; index and alerts in a fresh data directory",
        bench::RULES,
        bench::LEXICON_WORDS
    );
    let dir = tempfile::tempdir()?;
    let b = bench::pipeline::run(&docs, dir.path(), items, paced, rate).await?;
    println!("{:<44} {:>10} {:>8}", "", "docs/s", "MB/s");
    for (label, t) in [
        ("analysis alone, one thread (baseline)", &b.analysis),
        ("whole pipeline (analyze, index, alert)", &b.pipeline),
    ] {
        println!("{label:<44} {:>10.0} {:>8.2}", t.docs_per_s(), t.mb_per_s());
    }
    println!(
        "ratio: the whole pipeline runs at {:.2} of the analysis alone ({} incidents opened)",
        b.pipeline.docs_per_s() / b.analysis.docs_per_s().max(1e-9),
        b.incidents
    );
    if !b.latencies.is_empty() {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "latency, arrival to searchable and alerted ({} items at {}/s; the index commits every {} s): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            b.latencies.len(),
            b.rate,
            b.commit_every_secs,
            ms(bench::pipeline::quantile(&b.latencies, 0.5)),
            ms(bench::pipeline::quantile(&b.latencies, 0.99)),
            ms(*b.latencies.last().unwrap_or(&std::time::Duration::ZERO)),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_analysis(corpus: Option<PathBuf>, seconds: f64) -> Result<ExitCode> {
    use yuqing::bench;
    let (docs, name) = match &corpus {
        Some(p) => (bench::corpus_file(p)?, p.display().to_string()),
        None => (
            bench::sample_corpus(),
            "the sample site's items".to_string(),
        ),
    };
    let bytes: usize = docs.iter().map(|d| d.title.len() + d.text.len()).sum();
    println!(
        "corpus: {} ({} texts, {:.2} MB, {:.0} characters a text)",
        name,
        docs.len(),
        bytes as f64 / 1e6,
        docs.iter()
            .map(|d| d.title.chars().count() + d.text.chars().count())
            .sum::<usize>() as f64
            / docs.len() as f64
    );
    let dir = tempfile::tempdir()?;
    let analyzer = bench::analyzer_for(&docs, dir.path())?;
    println!(
        "analysis: normalize, segment, {} rules, {} lexicon words, SimHash, keywords",
        bench::RULES,
        bench::LEXICON_WORDS
    );
    let c = bench::compare(
        &analyzer,
        &docs,
        std::time::Duration::from_secs_f64(seconds),
    );
    println!("{:<24} {:>8} {:>10}", "", "MB/s", "docs/s");
    for (label, t) in [
        ("jieba-rs cut (baseline)", &c.segmentation),
        ("full analysis", &c.analysis),
    ] {
        println!("{label:<24} {:>8.2} {:>10.0}", t.mb_per_s(), t.docs_per_s());
    }
    let total: f64 = c
        .stages
        .0
        .iter()
        .map(|d| d.as_secs_f64())
        .sum::<f64>()
        .max(1e-9);
    let shares: Vec<String> = yuqing_analysis::StageTimes::NAMES
        .iter()
        .zip(c.stages.0.iter())
        .map(|(n, d)| format!("{n} {:.0}%", 100.0 * d.as_secs_f64() / total))
        .collect();
    println!("analysis time by stage: {}", shares.join(", "));
    println!(
        "ratio: full analysis runs at {:.2} of plain segmentation speed ({} rule hits, {} lexicon hits)",
        c.analysis.mb_per_s() / c.segmentation.mb_per_s().max(1e-9),
        c.rule_hits,
        c.lexicon_hits
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_index(args: IndexBench) -> Result<ExitCode> {
    let IndexBench {
        corpus,
        docs,
        query_docs,
        runs,
        heap_mb,
        threads,
        rounds,
        join,
    } = args;
    let rounds = usize::from(rounds);
    use yuqing::bench;
    use yuqing::bench::index as b;
    let (texts, mut name) = match &corpus {
        Some(p) => (bench::corpus_file(p)?, p.display().to_string()),
        None => (
            bench::sample_corpus(),
            "the sample site's items".to_string(),
        ),
    };
    let texts = bench::joined(texts, join.into());
    if join > 1 {
        name = format!("{name}, joined {join} at a time");
    }
    let chars: usize = texts
        .iter()
        .map(|d| d.title.chars().count() + d.text.chars().count())
        .sum();
    name = format!("{name}, {} characters an item", chars / texts.len().max(1));
    let config = Loader::default()
        .load_embedded(embedded::FILES, embedded::DEFAULT)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (analyzer, _) = yuqing_analysis::Analyzer::new(&config);
    let base = b::analyzed(&analyzer, &texts);
    let segmenter = analyzer.segmenter().clone();
    println!(
        "corpus: {name} ({} texts); {docs} items a side a round, writer heap {heap_mb} MB, {threads} indexing thread(s)",
        texts.len()
    );
    let heap = heap_mb * 1_000_000;
    const LABELS: [&str; 2] = [
        "pre-tokenized (analyzer's tokens)",
        "tantivy-jieba segmenting again",
    ];
    // The sides take turns, in the order AB BA AB ..., so a machine whose
    // speed drifts during the run slows both alike.
    let mut took = [std::time::Duration::ZERO; 2];
    let mut cpu = [Some(std::time::Duration::ZERO); 2];
    let mut round_ratios = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut round_took = [std::time::Duration::ZERO; 2];
        for side in order {
            let dir = tempfile::tempdir()?;
            let (_, t, c) = b::ingest(
                dir.path(),
                &segmenter,
                &base,
                docs,
                heap,
                threads,
                side == 1,
            )?;
            round_took[side] = t;
            took[side] += t;
            cpu[side] = cpu[side].zip(c).map(|(a, b)| a + b);
        }
        round_ratios.push(round_took[1].as_secs_f64() / round_took[0].as_secs_f64().max(1e-9));
    }
    let total = (docs * rounds) as f64;
    for side in 0..2 {
        let rate = total / took[side].as_secs_f64().max(1e-9);
        let label = LABELS[side];
        match cpu[side] {
            Some(cpu) => println!(
                "{label:<36} {rate:>9.0} docs/s   {:>9.0} docs per CPU second ({:.1} s CPU)",
                total / cpu.as_secs_f64().max(1e-9),
                cpu.as_secs_f64()
            ),
            None => println!("{label:<36} {rate:>9.0} docs/s"),
        }
    }
    let rounds_text = round_ratios
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "ratio: pre-tokenized indexing is {:.2}x segmenting again ({rounds} rounds: {rounds_text})",
        took[1].as_secs_f64() / took[0].as_secs_f64().max(1e-9)
    );
    if let [Some(pre), Some(again)] = cpu {
        println!(
            "ratio in CPU time (every thread, what the other roles on the machine feel): {:.2}x",
            again.as_secs_f64() / pre.as_secs_f64().max(1e-9)
        );
    }
    if query_docs == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let mut freq: std::collections::HashMap<&str, usize> = Default::default();
    for a in &base {
        for t in &a.text_tokens {
            if t.text.chars().count() >= 2 && t.text.chars().all(|c| !c.is_ascii()) {
                *freq.entry(t.text.as_str()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(&str, usize)> = freq.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let words: Vec<String> = words.into_iter().map(|(w, _)| w.to_string()).collect();
    let dir = tempfile::tempdir()?;
    let (index, took, _) = b::ingest(
        dir.path(),
        &segmenter,
        &base,
        query_docs,
        heap,
        threads,
        false,
    )?;
    println!(
        "built an index of {} items in {:.0} s ({:.0} docs/s, {:.0} MB on disk)",
        index.num_docs(),
        took.as_secs_f64(),
        query_docs as f64 / took.as_secs_f64().max(1e-9),
        index.size_bytes() as f64 / 1e6
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p99 ms", "matches"
    );
    for (label, req) in b::queries(&words) {
        let (p50, p99, total) = b::latency(&index, &req, runs)?;
        println!(
            "{label:<28} {:>9.1} {:>9.1} {total:>9}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        println!(
            "  {}",
            if req.query.is_empty() {
                "(all items)".to_string()
            } else {
                req.query.clone()
            }
        );
    }
    if let Some(mb) = b::peak_rss_mb() {
        println!("peak resident memory: {mb:.0} MB");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_reprints(dir: &Path, config: &Config, max_distance: Option<u32>) -> Result<ExitCode> {
    use yuqing::reprints;
    use yuqing_analysis::events::ReprintThresholds;
    let articles = reprints::read_articles(dir)?;
    let pages = reprints::generate(&articles);
    let (analyzer, _) = yuqing_analysis::Analyzer::new(config);
    let analyzed = reprints::analyze_pages(&pages, &analyzer);
    let reprinted = pages.iter().filter(|p| p.reprint).count();
    let topics: std::collections::HashSet<&str> =
        articles.iter().map(|a| a.topic.as_str()).collect();
    let sites: std::collections::HashSet<&str> = pages.iter().map(|p| p.site.as_str()).collect();
    println!(
        "{} articles in {} topics, {} pages ({} reprints) on {} sites",
        articles.len(),
        topics.len(),
        pages.len(),
        reprinted,
        sites.len()
    );
    let s = reprints::distance_spread(&analyzed);
    println!(
        "SimHash bits from a page to the nearest page of its article: at most {} in words, {} in words and word pairs",
        s.words_within, s.combined_within
    );
    println!(
        "SimHash bits between distinct articles: at least {} in words, {} in words and word pairs",
        s.words_across, s.combined_across
    );
    let mut chosen = ReprintThresholds::from_config(&config.settings.alert);
    if let Some(d) = max_distance {
        chosen.max_distance = d;
    }
    println!(
        "{:>10} {:>10} {:>9} {:>9} {:>7}",
        "words ≤", "combined ≤", "precision", "recall", "events"
    );
    let mut rows: Vec<(u32, u32)> = vec![(chosen.max_distance, u32::MAX)];
    rows.extend((20..=44).step_by(4).map(|c| (chosen.max_distance, c)));
    rows.push((chosen.max_distance, chosen.max_combined));
    rows.sort_unstable();
    rows.dedup();
    for (words, combined) in rows {
        let t = ReprintThresholds {
            max_distance: words,
            max_combined: combined,
        };
        let r = reprints::score(&analyzed, t);
        let shown = if combined == u32::MAX {
            "any".to_string()
        } else {
            combined.to_string()
        };
        let mark = if t == chosen { "  ← configured" } else { "" };
        println!(
            "{words:>10} {shown:>10} {:>9.3} {:>9.3} {:>7}{mark}",
            r.precision, r.recall, r.events
        );
    }
    let r = reprints::score(&analyzed, chosen);
    println!(
        "configured (words ≤ {}, combined ≤ {}): precision {:.3}, recall {:.3}, {} events for {} articles",
        chosen.max_distance,
        chosen.max_combined,
        r.precision,
        r.recall,
        r.events,
        articles.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_extraction(data: &Path, chars: bool, pages: bool) -> Result<ExitCode> {
    use yuqing_crawler::extract::{eval, score::Tokens};
    let (n, tokens, label) = if chars {
        (4, Tokens::Chars, "character 4-gram")
    } else {
        (4, Tokens::Words, "word 4-gram")
    };
    let started = std::time::Instant::now();
    let e = eval::evaluate(data, n, tokens).map_err(|m| anyhow::anyhow!(m))?;
    if pages {
        for p in &e.per_page {
            println!(
                "{:.3}  {:.3}  {:<11} {}",
                p.f1, p.baseline_f1, p.method, p.id
            );
        }
    }
    println!(
        "{} pages, {label} shingle F1 ({:.1} s)",
        e.pages,
        started.elapsed().as_secs_f64()
    );
    println!("{:<28} {:>9} {:>9} {:>9}", "", "precision", "recall", "F1");
    for (name, s) in [
        ("yuqing extract", &e.extractor),
        ("dom_smoothie alone (same run)", &e.baseline),
    ] {
        println!(
            "{name:<28} {:>9.3} {:>9.3} {:>9.3}",
            s.precision, s.recall, s.f1
        );
    }
    let m = &e.metadata;
    if m.title.1 + m.author.1 + m.published.1 > 0 {
        println!(
            "metadata exact: title {}/{}, author {}/{}, published {}/{}",
            m.title.0, m.title.1, m.author.0, m.author.1, m.published.0, m.published.1
        );
        if pages {
            for miss in &m.misses {
                println!("  {miss}");
            }
        }
    }
    let used_json_ld = e.per_page.iter().filter(|p| p.method == "json-ld").count();
    println!(
        "F1 ratio {:.3}; JSON-LD body used on {used_json_ld} pages",
        e.extractor.f1 / e.baseline.f1.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
