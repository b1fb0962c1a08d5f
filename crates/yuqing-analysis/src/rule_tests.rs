//! The rule matcher against hand-written cases and, on random rules and
//! texts, against a naive evaluator written separately from it.

use std::sync::Arc;

use yuqing_config::{QueryOrigin, RuleConfig};
use yuqing_model::{Level, SourceType};

use crate::normalize::Normalized;
use crate::query::{Expr, Meta, Query, Scope};
use crate::rules::{MatchDoc, RuleSet};

fn rule(id: &str, query: &str) -> RuleConfig {
    RuleConfig {
        id: id.into(),
        name: id.into(),
        topic: String::new(),
        query: query.into(),
        level: Level::Blue,
        weight: 10,
        exclude: Vec::new(),
        origin: QueryOrigin {
            file: "rules.toml".into(),
            file_text: Arc::from(""),
            query_span: None,
            index: 0,
        },
    }
}

/// A document whose words are the given pieces of title and text.
fn doc(title: &[&str], text: &[&str]) -> MatchDoc {
    let bounds = |parts: &[&str]| {
        let mut b = vec![0u32];
        let mut at = 0;
        for p in parts {
            at += Normalized::new(p).text.len() as u32;
            b.push(at);
        }
        b
    };
    let join = |parts: &[&str]| Normalized::new(&parts.concat()).text;
    MatchDoc::new(&join(title), &join(text), bounds(title), bounds(text))
}

fn fires(query: &str, d: &MatchDoc) -> bool {
    let (set, errors) = RuleSet::compile(&[rule("r", query)]);
    assert!(errors.is_empty(), "{query}: {errors:?}");
    !set.matches(d).is_empty()
}

#[test]
fn boolean_operators_and_precedence() {
    let d = doc(&["楼房"], &["楼房", "垮塌", "，", "三人", "被困"]);
    assert!(fires("(坍塌 OR 垮塌) AND (伤亡 OR 被困)", &d));
    assert!(!fires("(坍塌 OR 垮塌) AND 伤亡", &d));
    assert!(fires("垮塌 被困", &d), "adjacent terms are ANDed");
    assert!(!fires("垮塌 NOT 被困", &d));
    assert!(!fires("垮塌 -被困", &d));
    assert!(fires("坍塌 OR 垮塌 AND 被困", &d), "AND binds tighter");
    assert!(fires("（坍塌｜垮塌）＋被困", &d), "full-width forms");
    assert!(!fires("垮塌－被困", &d), "full-width minus");
    assert!(!fires("垮塌-被困", &d), "a minus glued to a Chinese word");
    assert!(fires("垮塌-伤亡", &d));
}

#[test]
fn terms_match_normalized_text() {
    let d = doc(&[], &["這間", "酒店", "ＣＯＶＩＤ－１９", "病例"]);
    assert!(fires("这间酒店", &d), "traditional text, simplified rule");
    assert!(fires("這間酒店", &d), "traditional rule");
    assert!(fires("covid-19", &d), "full-width, upper-case text");
    assert!(fires(
        "\"COVID-19 病例\" OR x",
        &doc(&[], &["covid-19", " ", "病例"])
    ));
}

#[test]
fn near_counts_characters_in_either_order_and_onear_keeps_order() {
    // 坍塌, then 13 characters (后消防救援人员赶到现场发现), then 被困.
    let d = doc(
        &[],
        &[
            "楼房", "坍塌", "后", "消防", "救援", "人员", "赶到", "现场", "发", "现", "被困",
        ],
    );
    assert!(fires("坍塌 NEAR/13 被困", &d));
    assert!(!fires("坍塌 NEAR/12 被困", &d));
    assert!(fires("被困 NEAR/13 坍塌", &d), "either order");
    assert!(fires("坍塌 ONEAR/13 被困", &d));
    assert!(!fires("被困 ONEAR/13 坍塌", &d), "ONEAR keeps order");
    assert!(fires("(垮塌 OR 坍塌) NEAR/13 (伤亡 OR 被困)", &d));
    assert!(
        fires("楼房 NEAR/0 坍塌 NEAR/13 被困", &d),
        "chained NEAR spans"
    );
    assert!(!fires("坍塌 NEAR/5 被困 OR 不存在", &d));
    // The end of the title is not near the start of the text, and no
    // phrase runs from one into the other.
    let d = doc(&["楼房", "坍塌"], &["三人", "被困"]);
    assert!(fires("坍塌 被困", &d));
    assert!(!fires("坍塌 NEAR/5 被困", &d));
    let d = doc(&["楼房", "坍塌"], &["被困"]);
    assert!(!fires("\"坍塌\n被困\"", &d));
}

/// A planted page repeating both words tens of thousands of times, far
/// apart but for where the runs meet: checked in one sweep, not every pair.
#[test]
fn near_over_long_runs_of_both_words_finds_only_where_they_meet() {
    let n = 30_000;
    let mut words = vec!["被困"; n];
    words.extend(vec!["坍塌"; n]);
    let d = doc(&[], &words);
    assert!(fires("被困 ONEAR/0 坍塌", &d));
    assert!(!fires("坍塌 ONEAR/20 被困", &d));
    assert!(fires("坍塌 NEAR/0 被困", &d));
    let far = doc(
        &[],
        &[&vec!["被困"; n][..], &["。"; 30], &vec!["坍塌"; n][..]].concat(),
    );
    assert!(!fires("坍塌 NEAR/20 被困", &far));
    assert!(fires("坍塌 NEAR/30 被困", &far));
}

#[test]
fn field_scopes_and_metadata() {
    let mut d = doc(&["市场", "通报"], &["摊主", "多收", "顾客", "钱"]);
    d.author = "江州日报 李静".into();
    d.site = "news.jzrb.cn".into();
    d.source_type = SourceType::Forum;
    assert!(fires("title:通报", &d));
    assert!(!fires("title:摊主", &d));
    assert!(fires("text:摊主 title:(通报 OR 公告)", &d));
    assert!(!fires("text:通报", &d));
    assert!(fires("摊主 author:李静", &d));
    assert!(!fires("摊主 author:王五", &d));
    assert!(fires("摊主 site:jzrb.cn", &d), "a parent domain");
    assert!(fires("摊主 site:news.jzrb.cn", &d));
    assert!(!fires("摊主 site:rb.cn", &d), "not a suffix of a label");
    assert!(fires("摊主 source_type:论坛", &d));
    assert!(fires("摊主 source_type:(新闻 OR forum)", &d));
    assert!(!fires("摊主 -source_type:论坛", &d));
}

#[test]
fn a_bracketed_word_matches_only_on_word_boundaries() {
    let game = doc(&[], &["和平精英", "新", "赛季"]);
    let peace = doc(&[], &["维护", "和平", "的", "决心"]);
    assert!(fires("和平", &game), "a plain term matches inside words");
    assert!(!fires("[和平]", &game));
    assert!(fires("[和平]", &peace));
    assert!(
        fires("[维护和平]", &peace),
        "several words, boundaries at both ends"
    );
}

#[test]
fn hits_name_the_positive_terms_found() {
    let d = doc(&[], &["楼房", "垮塌", "被困"]);
    let (set, _) = RuleSet::compile(&[rule("r", "(坍塌 OR 垮塌) 被困 -演习")]);
    let hits = set.matches(&d);
    assert_eq!(hits[0].terms, vec!["垮塌", "被困"]);
}

#[test]
fn explanations_say_why() {
    let d = doc(&["演习"], &["楼房", "垮塌", "被困"]);
    let (set, _) = RuleSet::compile(&[rule("r", "(坍塌 OR 垮塌) NEAR/3 被困 NOT title:演习")]);
    let e = &set.explain(&d, Some("r"))[0];
    assert!(!e.fired);
    let text = e.lines.join("\n");
    assert!(text.contains("✓ NEAR/3"), "{text}");
    assert!(text.contains("✗ \"坍塌\": not found"), "{text}");
    assert!(text.contains("✓ \"垮塌\": at character"), "{text}");
    assert!(text.contains("✗ NOT"), "{text}");
    assert!(text.contains("✓ \"演习\" in title"), "{text}");
}

// ---- random rules against a naive evaluator ------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const WORDS: &[&str] = &["甲", "乙", "甲乙", "丙", "ab", "b", "乙丙甲"];

fn random_query(rng: &mut Rng, depth: usize) -> String {
    let leaf = |rng: &mut Rng| {
        let w = rng.pick(WORDS).to_string();
        match rng.below(11) {
            0 => format!("[{w}]"),
            1 => format!("title:{w}"),
            2 => format!("text:{w}"),
            3 => format!("\"{w}\""),
            4 => format!("author:{}", rng.pick(&["甲", "乙丙"])),
            5 => format!("site:{}", rng.pick(&["a.cn", "x.a.cn", "b.cn"])),
            6 => format!("source_type:{}", rng.pick(&["论坛", "news"])),
            _ => w,
        }
    };
    if depth == 0 {
        return leaf(rng);
    }
    // Each operator in its words, its shorthand and its full-width form.
    let mut op = |words: [&'static str; 3]| words[rng.below(3)];
    let (and, or, not) = (
        op([" AND ", " + ", "＋"]),
        op([" OR ", " | ", "｜"]),
        op([" NOT ", " -", " －"]),
    );
    match rng.below(8) {
        0 => format!(
            "({}{and}{})",
            random_query(rng, depth - 1),
            random_query(rng, depth - 1)
        ),
        1 => format!(
            "（{}{or}{}）",
            random_query(rng, depth - 1),
            random_query(rng, depth - 1)
        ),
        2 => format!(
            "({}{not}{})",
            random_query(rng, depth - 1),
            random_query(rng, depth - 1)
        ),
        3 | 4 => {
            let op = if rng.below(2) == 0 { "NEAR" } else { "ONEAR" };
            let near_leaf = |rng: &mut Rng| {
                let w = rng.pick(WORDS);
                if rng.below(3) == 0 {
                    format!("[{w}]")
                } else {
                    w.to_string()
                }
            };
            format!(
                "({} {op}/{} {})",
                near_leaf(rng),
                rng.below(4),
                near_leaf(rng)
            )
        }
        5 => format!(
            "({} OR {}) NEAR/{} {}",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.below(5),
            rng.pick(WORDS)
        ),
        6 => format!(
            "({} NEAR/{} {} ONEAR/{} {})",
            rng.pick(WORDS),
            rng.below(6),
            rng.pick(WORDS),
            rng.below(3),
            rng.pick(WORDS)
        ),
        _ => leaf(rng),
    }
}

fn random_doc(rng: &mut Rng) -> MatchDoc {
    let pieces = ["甲", "乙", "丙", "ab", "b", "，", "x", "甲乙"];
    // Mostly short; now and then long enough that most pairs of spans are
    // too far apart to be near.
    let part = |rng: &mut Rng| -> Vec<&str> {
        let n = if rng.below(8) == 0 { 40 } else { 9 };
        (0..rng.below(n)).map(|_| rng.pick(&pieces)).collect()
    };
    let title = part(rng);
    let text = part(rng);
    let mut d = doc(&title, &text);
    d.author = rng.pick(&["", "甲", "乙丙丁"]).into();
    d.site = rng.pick(&["a.cn", "x.a.cn", "b.cn", "ba.cn"]).into();
    d.source_type = [SourceType::News, SourceType::Forum][rng.below(2)];
    d
}

/// Every occurrence of `needle`, overlapping ones too.
fn occurrences(hay: &str, needle: &str) -> Vec<(usize, usize)> {
    hay.char_indices()
        .filter(|(i, _)| hay[*i..].starts_with(needle))
        .map(|(i, _)| (i, i + needle.len()))
        .collect()
}

fn naive_positions(q: &Query, e: &Expr, d: &MatchDoc) -> Vec<(usize, usize)> {
    match e {
        Expr::Term(i) => {
            let t = &q.terms[*i];
            occurrences(&d.combined, &t.text)
                .into_iter()
                .filter(|&(a, b)| match t.scope {
                    Scope::Any => b <= d.title_end || a > d.title_end,
                    Scope::Title => b <= d.title_end,
                    Scope::Text => a > d.title_end,
                })
                .filter(|&(a, b)| {
                    !t.boundary
                        || (d.bounds.contains(&(a as u32)) && d.bounds.contains(&(b as u32)))
                })
                .collect()
        }
        Expr::Or(v) => v.iter().flat_map(|e| naive_positions(q, e, d)).collect(),
        Expr::Near {
            left,
            right,
            within,
            ordered,
        } => {
            let chars = |a: usize, b: usize| d.combined[a..b].chars().count();
            let mut out = Vec::new();
            for &(a0, a1) in &naive_positions(q, left, d) {
                for &(b0, b1) in &naive_positions(q, right, d) {
                    let ok = if (a0 < d.title_end) != (b0 < d.title_end) {
                        false
                    } else if b0 >= a1 {
                        chars(a1, b0) <= *within as usize
                    } else if *ordered {
                        false
                    } else if a0 >= b1 {
                        chars(b1, a0) <= *within as usize
                    } else {
                        true
                    };
                    if ok {
                        out.push((a0.min(b0), a1.max(b1)));
                    }
                }
            }
            out
        }
        _ => unreachable!("not positional"),
    }
}

fn naive(q: &Query, e: &Expr, d: &MatchDoc) -> bool {
    match e {
        Expr::Term(_) | Expr::Near { .. } => !naive_positions(q, e, d).is_empty(),
        Expr::Meta(i) => match &q.metas[*i] {
            Meta::SourceType(t) => d.source_type == *t,
            Meta::Author(a) => d.author.contains(a.as_str()),
            Meta::Site(s) => d.site == *s || d.site.ends_with(&format!(".{s}")),
        },
        Expr::And(v) => v.iter().all(|e| naive(q, e, d)),
        Expr::Or(v) => v.iter().any(|e| naive(q, e, d)),
        Expr::Not(e) => !naive(q, e, d),
    }
}

#[test]
fn compiled_rules_agree_with_a_naive_evaluator() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    let mut fired = 0;
    for round in 0..300 {
        // Rules the linter accepts (a query of field tests alone, or of
        // NOT alone, is refused); every third has an exclusion.
        let mut queries = Vec::new();
        let mut configs: Vec<RuleConfig> = Vec::new();
        while queries.len() < 12 {
            let depth = 1 + rng.below(3);
            let q = random_query(&mut rng, depth);
            let mut r = rule(&format!("r{}", queries.len()), &q);
            if queries.len() % 3 == 0 {
                r.exclude = vec![random_query(&mut rng, 0)];
            }
            if RuleSet::compile(std::slice::from_ref(&r)).1.is_empty() {
                queries.push(q);
                configs.push(r);
            }
        }
        let (set, errors) = RuleSet::compile(&configs);
        assert!(errors.is_empty());
        for _ in 0..10 {
            let d = random_doc(&mut rng);
            let got: Vec<String> = set.matches(&d).into_iter().map(|h| h.rule_id).collect();
            for (i, (q, r)) in queries.iter().zip(&configs).enumerate() {
                let parsed = Query::parse(q).unwrap();
                let excluded = r.exclude.iter().any(|x| {
                    let x = Query::parse(x).unwrap();
                    naive(&x, &x.expr, &d)
                });
                let want = naive(&parsed, &parsed.expr, &d) && !excluded;
                let id = format!("r{i}");
                assert_eq!(
                    got.contains(&id),
                    want,
                    "round {round}: `{q}` on {:?} (title ends at {}, bounds {:?})",
                    d.combined,
                    d.title_end,
                    d.bounds
                );
                checked += 1;
                fired += usize::from(want);
            }
        }
    }
    // The cases exercise both outcomes.
    assert!(
        fired > checked / 10 && fired < checked * 9 / 10,
        "{fired} of {checked}"
    );
}

#[test]
fn exclusions_cancel_a_rule() {
    let mut r = rule("r", "欠薪");
    r.exclude = vec!["招聘".into(), "\"电影 剧情\"".into()];
    let (set, errors) = RuleSet::compile(&[r]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(set.matches(&doc(&[], &["工地", "欠薪"])).len(), 1);
    assert!(set.matches(&doc(&[], &["欠薪", "招聘"])).is_empty());
    let mut bad = rule("b", "欠薪");
    bad.exclude = vec!["(招聘".into()];
    let (set, errors) = RuleSet::compile(&[bad]);
    assert!(set.is_empty());
    assert!(
        errors[0].to_string().contains("exclude[0]"),
        "{}",
        errors[0]
    );
}
