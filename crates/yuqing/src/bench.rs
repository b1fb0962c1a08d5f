//! `yuqing bench analysis`: the whole analysis of an item against plain
//! jieba segmentation of the same text, in one run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use yuqing_analysis::Analyzer;
use yuqing_model::{Item, SourceKind, SourceType};

use crate::demo_site::Site;

/// Rules and lexicon words the benchmark analyzer carries.
pub const RULES: usize = 200;
pub const LEXICON_WORDS: usize = 10_000;

/// One text of the corpus: a title (maybe empty) and a body.
#[derive(Debug, Clone)]
pub struct Doc {
    pub title: String,
    pub text: String,
}

/// The bundled sample site's items: news articles, forum threads and
/// replies, microblog posts.
pub fn sample_corpus() -> Vec<Doc> {
    let site = Site::bundled();
    let mut docs: Vec<Doc> = site
        .news
        .iter()
        .map(|n| Doc {
            title: n.title.clone(),
            text: n.body.clone(),
        })
        .collect();
    for t in &site.thread {
        docs.push(Doc {
            title: t.title.clone(),
            text: t.body.clone(),
        });
        docs.extend(t.reply.iter().map(|r| Doc {
            title: String::new(),
            text: r.body.clone(),
        }));
    }
    docs.extend(site.post.iter().map(|p| Doc {
        title: String::new(),
        text: p.text.clone(),
    }));
    docs
}

/// A corpus file: one item a line; a TSV line counts by its last column
/// (so `label<TAB>text` files work); a header line `label<TAB>text_a` is
/// skipped. A folder is read as a reprint test set: its articles, each a
/// title and its paragraphs.
pub fn corpus_file(path: &Path) -> Result<Vec<Doc>> {
    if path.is_dir() {
        return Ok(crate::reprints::read_articles(path)?
            .into_iter()
            .map(|a| Doc {
                title: a.title,
                text: a.paragraphs.join("\n"),
            })
            .collect());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<Doc> = text
        .lines()
        .filter(|l| !l.starts_with("label\t"))
        .map(|l| l.rsplit('\t').next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty())
        .map(|l| Doc {
            title: String::new(),
            text: l.to_string(),
        })
        .collect();
    anyhow::ensure!(!docs.is_empty(), "{}: no texts", path.display());
    Ok(docs)
}

/// Every `n` docs as one: the first one's title, and the texts (the
/// others' titles first) a line each.
pub fn joined(docs: Vec<Doc>, n: usize) -> Vec<Doc> {
    if n <= 1 {
        return docs;
    }
    docs.chunks(n)
        .map(|group| {
            let mut lines: Vec<&str> = Vec::new();
            for (i, d) in group.iter().enumerate() {
                if i > 0 && !d.title.is_empty() {
                    lines.push(&d.title);
                }
                lines.push(&d.text);
            }
            Doc {
                title: group[0].title.clone(),
                text: lines.join("\n"),
            }
        })
        .collect()
}

/// A small deterministic generator, so every run builds the same rules.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Writes a config with `RULES` rules over the corpus's own words and a
/// lexicon of `LEXICON_WORDS` words into `dir`, and builds its analyzer.
pub fn analyzer_for(docs: &[Doc], dir: &Path) -> Result<Analyzer> {
    // Rule terms: words of the corpus, drawn across its vocabulary (the 100
    // most frequent left out), as real rules name topical words.
    let segmenter = yuqing_analysis::Segmenter::new(std::iter::empty());
    let mut freq: std::collections::HashMap<String, usize> = Default::default();
    for d in docs.iter().take(2000) {
        for t in segmenter.tokens(&d.text) {
            if t.text.chars().count() >= 2 && t.text.chars().all(|c| !c.is_ascii()) {
                *freq.entry(t.text.into()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, usize)> = freq.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let words: Vec<String> = words.into_iter().skip(100).map(|(w, _)| w).collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut pick = || words[rng.below(words.len())].clone();
    let mut rules = String::new();
    for i in 0..RULES {
        let (a, b, c, d, e) = (pick(), pick(), pick(), pick(), pick());
        let query = match i % 5 {
            0 => format!("({a} OR {b} OR {c}) AND ({d} OR {e})"),
            1 => format!("{a} NEAR/10 {b} NOT {c}"),
            2 => format!("title:{a} OR [{b}] {c}"),
            3 => format!("\\\"{a}{b}\\\" OR ({c} -{d})"),
            _ => format!("({a} | {b}) + {c} - ({d} | {e})"),
        };
        rules.push_str(&format!(
            "[[rule]]\nid = \"r{i}\"\nquery = \"{query}\"\nlevel = \"blue\"\nweight = {}\n\n",
            1 + i % 20
        ));
    }
    std::fs::create_dir_all(dir.join("rules"))?;
    std::fs::write(dir.join("rules/bench.toml"), rules)?;
    let mut lexicon = String::new();
    let extractor = yuqing_analysis::keywords::KeywordExtractor::new();
    // The lexicon: words of middling frequency (jieba IDF 9 to 11), like the
    // names, places and phrases of a real sensitive-word list, which most
    // texts do not contain.
    let vocabulary = extractor.vocabulary_with_idf(9.0, 11.0);
    let step = (vocabulary.len() / (LEXICON_WORDS + LEXICON_WORDS / 10)).max(1);
    // Distinct after normalization (traditional and simplified forms of a
    // word are one word).
    let mut distinct = std::collections::HashSet::new();
    for w in vocabulary.iter().step_by(step) {
        if distinct.len() == LEXICON_WORDS {
            break;
        }
        if distinct.insert(yuqing_analysis::normalize::normalize(w)) {
            lexicon.push_str(&format!("{w}\t{}\n", 1 + distinct.len() % 30));
        }
    }
    std::fs::write(dir.join("lexicon.txt"), lexicon)?;
    std::fs::write(
        dir.join("main.toml"),
        "[analysis]\nlexicons = [\"lexicon.txt\"]\n",
    )?;
    let config = yuqing_config::Loader::default()
        .load(&dir.join("main.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(config.rule_errors.is_empty(), "{:?}", config.rule_errors);
    let (analyzer, errors) = Analyzer::new(&config);
    anyhow::ensure!(errors.is_empty(), "{errors:?}");
    anyhow::ensure!(analyzer.rules().len() == RULES);
    anyhow::ensure!(analyzer.lexicon().len() == LEXICON_WORDS);
    Ok(analyzer)
}

/// What one side of the benchmark did.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub docs: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn docs_per_s(&self) -> f64 {
        self.docs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The benchmark's result: plain segmentation and the whole analysis over
/// the same texts, passes alternating.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    pub segmentation: Throughput,
    pub analysis: Throughput,
    /// Rules that fired, over all analysed docs, so the work is not
    /// optimised away and is visibly real.
    pub rule_hits: usize,
    pub lexicon_hits: usize,
    /// Where the analysis spends its time, from one extra timed pass.
    pub stages: yuqing_analysis::StageTimes,
}

fn item(d: &Doc) -> Item {
    Item {
        id: String::new(),
        source: "bench".into(),
        source_kind: SourceKind::Feed,
        source_type: SourceType::News,
        site: "bench.example".into(),
        url: String::new(),
        title: d.title.clone(),
        text: d.text.clone(),
        author: None,
        published_at: None,
        fetched_at: chrono::Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    }
}

/// Runs passes over `docs` until each side has run for `min_time`.
pub fn compare(analyzer: &Analyzer, docs: &[Doc], min_time: Duration) -> Comparison {
    let jieba = jieba_rs::Jieba::new();
    let bytes: usize = docs.iter().map(|d| d.title.len() + d.text.len()).sum();
    let items: Vec<Item> = docs.iter().map(item).collect();
    let mut seg = Throughput {
        docs: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    let mut all = seg;
    let (mut rule_hits, mut lexicon_hits) = (0, 0);
    let mut sink = 0usize;
    // The side that has run for less time runs next, so the two stay
    // interleaved over the whole run and see the same machine conditions
    // (a shared machine's speed drifts by a tenth or more in seconds).
    while seg.elapsed < min_time || all.elapsed < min_time {
        if seg.elapsed <= all.elapsed {
            let t = Instant::now();
            for d in docs {
                sink += jieba.cut(&d.title, true).len();
                sink += jieba.cut(&d.text, true).len();
            }
            seg.elapsed += t.elapsed();
            seg.docs += docs.len();
            seg.bytes += bytes;
            continue;
        }
        let batch = items.clone();
        let t = Instant::now();
        for it in batch {
            let a = analyzer.analyze(it);
            rule_hits += a.hits.len();
            lexicon_hits += a.lexicon_hits.len();
        }
        all.elapsed += t.elapsed();
        all.docs += docs.len();
        all.bytes += bytes;
    }
    std::hint::black_box(sink);
    let mut stages = yuqing_analysis::StageTimes::default();
    for it in items {
        analyzer.analyze_timed(it, Some(&mut stages));
    }
    Comparison {
        segmentation: seg,
        analysis: all,
        rule_hits,
        lexicon_hits,
        stages,
    }
}

/// `yuqing bench index`: indexing the analyzer's tokens against
/// tantivy-jieba segmenting the same items again, then query latency on a
/// large index.
pub mod index {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use anyhow::Result;
    use chrono::Utc;
    use yuqing_analysis::{Analyzer, Segmenter};
    use yuqing_index::{Interval, ItemIndex, SearchRequest};
    use yuqing_model::{AnalyzedItem, SourceType};

    use super::{Doc, item};

    /// The corpus analyzed once: what the indexer receives.
    pub fn analyzed(analyzer: &Analyzer, docs: &[Doc]) -> Vec<AnalyzedItem> {
        docs.iter().map(|d| analyzer.analyze(item(d))).collect()
    }

    /// The `n`-th copy of a corpus item: its own id, a time spread over the
    /// last 30 days, and a source type and site that vary.
    pub fn nth(base: &[AnalyzedItem], n: usize) -> AnalyzedItem {
        let mut a = base[n % base.len()].clone();
        a.item.id = format!("bench-{n}");
        a.item.url = format!("https://bench{}.example/{n}", n % 50);
        a.item.site = format!("bench{}.example", n % 50);
        a.item.source_type = SourceType::ALL[n % SourceType::ALL.len()];
        // A deterministic spread: n * golden ratio, modulo 30 days.
        let secs = (n as u64).wrapping_mul(0x9e37_79b9) % (30 * 86_400);
        a.item.published_at = Some(Utc::now() - chrono::Duration::seconds(secs as i64));
        a.item.engagement.reposts = Some((n % 97) as u64);
        a
    }

    /// CPU time of this process so far, all threads together (Linux;
    /// `None` elsewhere). Ticks of 10 ms.
    pub fn process_cpu() -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// Indexes `count` items into a new index in `dir`, committing every
    /// 50,000; returns the time taken and the CPU time spent meanwhile.
    pub fn ingest(
        dir: &Path,
        segmenter: &Segmenter,
        base: &[AnalyzedItem],
        count: usize,
        heap: usize,
        threads: usize,
        resegment: bool,
    ) -> Result<(ItemIndex, Duration, Option<Duration>)> {
        let index = if resegment {
            ItemIndex::open_resegmenting(dir, segmenter.clone())?
        } else {
            ItemIndex::open(dir, segmenter.clone())?
        };
        let mut w = index.writer_with_threads(heap, threads)?;
        let mut elapsed = Duration::ZERO;
        let mut cpu = Some(Duration::ZERO);
        let mut n = 0;
        while n < count {
            // The items are made outside the clock.
            let batch: Vec<AnalyzedItem> =
                (n..(n + 50_000).min(count)).map(|k| nth(base, k)).collect();
            let started = Instant::now();
            let cpu_before = process_cpu();
            // As the indexer hands them over: a commit's worth at a time.
            for chunk in batch.chunks(1_000) {
                w.upsert_all(chunk)?;
            }
            w.commit()?;
            elapsed += started.elapsed();
            cpu = cpu
                .zip(process_cpu().zip(cpu_before))
                .map(|(sum, (after, before))| sum + after.saturating_sub(before));
            n += batch.len();
        }
        index.reload()?;
        Ok((index, elapsed, cpu))
    }

    /// p50 and p99 of `runs` runs of `req`.
    pub fn latency(
        index: &ItemIndex,
        req: &SearchRequest,
        runs: usize,
    ) -> Result<(Duration, Duration, usize)> {
        let mut times = Vec::with_capacity(runs);
        let mut total = 0;
        for _ in 0..runs {
            let t = Instant::now();
            total = index.search(req)?.total;
            times.push(t.elapsed());
        }
        times.sort();
        let at =
            |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        Ok((at(0.50), at(0.99), total))
    }

    /// The three measured queries over a corpus whose frequent words are
    /// `words` (most frequent first).
    pub fn queries(words: &[String]) -> Vec<(&'static str, SearchRequest)> {
        let w = |i: usize| words.get(i).cloned().unwrap_or_else(|| "的".into());
        vec![
            (
                "term query",
                SearchRequest {
                    query: w(20),
                    limit: 20,
                    ..Default::default()
                },
            ),
            (
                "boolean query with filters",
                SearchRequest {
                    query: format!("({} OR {}) AND {} -{}", w(10), w(30), w(5), w(60)),
                    source_type: Some("forum".into()),
                    since: Some(Utc::now() - chrono::Duration::days(7)),
                    limit: 20,
                    ..Default::default()
                },
            ),
            (
                "date histogram, 30 days",
                SearchRequest {
                    since: Some(Utc::now() - chrono::Duration::days(30)),
                    interval: Some(Interval::Day),
                    limit: 20,
                    ..Default::default()
                },
            ),
        ]
    }

    /// Peak resident memory of this process, from /proc (Linux).
    pub fn peak_rss_mb() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }
}

/// `yuqing bench pipeline`: items through every stage of the embedded
/// pipeline (analysis, index, alerts, on the in-process bus) against the
/// analysis alone of the same items, in one run; then the latency from an
/// item's arrival to its being searchable and alerted on.
pub mod pipeline {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result};
    use chrono::Utc;
    use tokio_util::sync::CancellationToken;
    use yuqing_bus::{Bus, InProcessBus, Topics};
    use yuqing_model::{Envelope, Item};

    use super::{Doc, Throughput, item};
    use crate::pipeline;

    /// What the benchmark measured.
    #[derive(Debug, Clone)]
    pub struct PipelineBench {
        /// The analysis alone, one thread: the baseline.
        pub analysis: Throughput,
        /// Published on `items.raw` to analyzed, committed to the index and
        /// recorded by the alerter.
        pub pipeline: Throughput,
        /// Arrival to searchable and alerted, for items arriving one at a
        /// time at `rate` a second.
        pub latencies: Vec<Duration>,
        pub rate: f64,
        /// The index's commit interval, which bounds the latency.
        pub commit_every_secs: u64,
        pub incidents: usize,
    }

    /// The `n`-th item: the corpus's texts in turn, each with an id and
    /// URL of its own, published now.
    fn nth(docs: &[Doc], n: usize) -> Item {
        let mut it = item(&docs[n % docs.len()]);
        it.id = format!("bench-{n}");
        it.url = format!("https://bench.example/{n}");
        it.published_at = Some(Utc::now());
        it
    }

    /// Runs `n` items through the pipeline as fast as it takes them, then
    /// `paced` more at `rate` a second, in a fresh data directory under
    /// `dir` with the benchmark's rules and lexicon.
    pub async fn run(
        docs: &[Doc],
        dir: &std::path::Path,
        n: usize,
        paced: usize,
        rate: f64,
    ) -> Result<PipelineBench> {
        super::analyzer_for(docs, dir)?;
        std::fs::write(
            dir.join("main.toml"),
            format!(
                "data_dir = {:?}\n[analysis]\nlexicons = [\"lexicon.txt\"]\n[alert]\nmin_level = \"blue\"\n",
                dir.join("data").display().to_string()
            ),
        )?;
        let config = yuqing_config::Loader::default()
            .load(&dir.join("main.toml"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let registry = prometheus::Registry::new();
        let (analyzer, _) = pipeline::load_analyzer(&config).await?;

        // The baseline: the same items analyzed one after another.
        let bytes: usize = (0..n)
            .map(|i| {
                let d = &docs[i % docs.len()];
                d.title.len() + d.text.len()
            })
            .sum();
        let items: Vec<Item> = (0..n).map(|i| nth(docs, i)).collect();
        let a = analyzer.clone();
        let analysis = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut hits = 0;
            for it in items {
                hits += a.analyze(it).hits.len();
            }
            std::hint::black_box(hits);
            started.elapsed()
        })
        .await?;

        let (index, writer) = pipeline::open_index(&config, &analyzer)?;
        let (alerter, store) =
            pipeline::open_alerter(&config, "http://127.0.0.1".into(), &registry)?;
        let s = &config.settings;
        let bus = InProcessBus::new(s.bus.capacity);
        let topics = Topics::with_prefix(&s.bus.topic_prefix);
        bus.declare(&topics.items_raw, &["analyzer"]);
        bus.declare(&topics.items_analyzed, &["indexer", "alerter"]);
        bus.declare(&topics.items_dead, &["alerter"]);
        bus.declare(&topics.sources_status, &["alerter"]);
        let dyn_bus: Arc<dyn Bus> = Arc::new(bus.clone());
        let stop = CancellationToken::new();
        let tasks = vec![
            pipeline::spawn_analyzer(&dyn_bus, &topics, &analyzer, &registry, &stop),
            pipeline::spawn_indexer(&dyn_bus, &topics, &index, writer, &config, &registry, &stop),
            pipeline::spawn_alerter(&dyn_bus, &topics, &alerter, &stop),
        ];

        // As fast as the stages take them: the bus's capacity holds the
        // publisher back.
        let started = Instant::now();
        let mut receipts = Vec::with_capacity(n);
        for i in 0..n {
            let it = nth(docs, i);
            let key = it.id.clone();
            let payload = Envelope::new(yuqing_analysis::RAW_KIND, it).to_bytes();
            receipts.push(bus.publish(&topics.items_raw, &key, payload).await?);
        }
        for r in receipts {
            r.durable().await.context("an item was not processed")?;
        }
        let whole = started.elapsed();

        // One at a time: how long until an item is searchable and alerted.
        let mut waiting = Vec::with_capacity(paced);
        let paced_start = Instant::now();
        for j in 0..paced {
            let due = paced_start + Duration::from_secs_f64(j as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let it = nth(docs, n + j);
            let key = it.id.clone();
            let payload = Envelope::new(yuqing_analysis::RAW_KIND, it).to_bytes();
            let at = Instant::now();
            let receipt = bus.publish(&topics.items_raw, &key, payload).await?;
            waiting.push(tokio::spawn(async move {
                receipt.durable().await.map(|_| at.elapsed())
            }));
        }
        let mut latencies = Vec::with_capacity(paced);
        for w in waiting {
            latencies.push(w.await?.context("an item was not processed")?);
        }
        latencies.sort();
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        anyhow::ensure!(
            index.num_docs() as usize == n + paced,
            "the index holds {} of {} items",
            index.num_docs(),
            n + paced
        );
        Ok(PipelineBench {
            analysis: Throughput {
                docs: n,
                bytes,
                elapsed: analysis,
            },
            pipeline: Throughput {
                docs: n,
                bytes,
                elapsed: whole,
            },
            latencies,
            rate,
            commit_every_secs: s.index.commit_every_secs,
            incidents: store.incidents(1_000_000)?.len(),
        })
    }

    /// The `q` quantile of sorted `v`.
    pub fn quantile(v: &[Duration], q: f64) -> Duration {
        if v.is_empty() {
            return Duration::ZERO;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_items_keep_every_title_and_text_in_order() {
        let doc = |title: &str, text: &str| Doc {
            title: title.into(),
            text: text.into(),
        };
        let docs = vec![
            doc("甲", "一"),
            doc("", "二"),
            doc("丙", "三"),
            doc("丁", "四"),
            doc("戊", "五"),
        ];
        let got: Vec<(String, String)> = joined(docs, 2)
            .into_iter()
            .map(|d| (d.title, d.text))
            .collect();
        let want = [("甲", "一\n二"), ("丙", "三\n丁\n四"), ("戊", "五")];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        assert_eq!(joined(vec![doc("a", "b")], 1).len(), 1);
    }
}
