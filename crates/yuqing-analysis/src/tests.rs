use chrono::Utc;
use yuqing_config::{Config, Loader};
use yuqing_model::{Item, Level, SourceKind, SourceType};

use crate::Analyzer;

/// A deterministic generator for random test inputs: each call gives a
/// number below `n`.
pub(crate) fn xorshift() -> impl FnMut(usize) -> usize {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}

pub(crate) fn config_with_rules(rules: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("main.toml"), "").unwrap();
    std::fs::write(dir.path().join("rules/r.toml"), rules).unwrap();
    Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap()
}

pub(crate) fn item(title: &str, text: &str) -> Item {
    Item {
        id: "x".into(),
        source: "s".into(),
        source_kind: SourceKind::Feed,
        source_type: SourceType::News,
        site: "example.com".into(),
        url: "https://example.com/x".into(),
        title: title.into(),
        text: text.into(),
        author: None,
        published_at: None,
        fetched_at: Utc::now(),
        engagement: Default::default(),
        parent_id: None,
    }
}

const RULES: &str = r#"
[[rule]]
id = "collapse"
name = "坍塌"
topic = "安全"
query = "(坍塌 OR 垮塌) AND (伤亡 OR 被困)"
level = "red"
weight = 60

[[rule]]
id = "wage"
name = "欠薪"
query = "欠薪 NOT 招聘"
level = "yellow"
weight = 30

[[rule]]
id = "broken"
name = "坏规则"
query = "a AND (b"
level = "blue"
"#;

/// A rule's marks point into the item as published, past full-width and
/// traditional characters that normalization changed.
#[test]
fn rule_marks_point_into_the_published_text() {
    let cfg = config_with_rules(RULES);
    let (a, _) = Analyzer::new(&cfg);
    let out = a.analyze(item("ＡＢ樓房坍塌", "三人被困，救援中"));
    assert_eq!(out.hits.len(), 1);
    let marked: Vec<(yuqing_model::ItemField, &str)> = out.hits[0]
        .marks
        .iter()
        .map(|m| {
            let s = match m.field {
                yuqing_model::ItemField::Title => out.item.title.as_str(),
                yuqing_model::ItemField::Text => out.item.text.as_str(),
            };
            (m.field, &s[m.start as usize..m.end as usize])
        })
        .collect();
    assert_eq!(
        marked,
        vec![
            (yuqing_model::ItemField::Title, "坍塌"),
            (yuqing_model::ItemField::Text, "被困")
        ]
    );
}

#[test]
fn rules_fire_with_levels_scores_and_terms() {
    let cfg = config_with_rules(RULES);
    let (a, errors) = Analyzer::new(&cfg);
    assert_eq!(errors.len(), 1, "the broken rule is reported");
    let e = errors[0].to_string();
    assert!(e.contains("r.toml:20:16"), "{e}");
    assert!(e.contains("never closed"), "{e}");
    assert_eq!(a.rules().len(), 2);

    let out = a.analyze(item("青山区老楼垮塌", "三人被困，消防正在救援。"));
    assert_eq!(out.hits.len(), 1);
    assert_eq!(out.hits[0].rule_id, "collapse");
    assert_eq!(out.hits[0].terms, vec!["垮塌", "被困"]);
    assert_eq!(out.score, 60);
    assert_eq!(out.level, Some(Level::Red));

    let out = a.analyze(item("工地欠薪", "工人讨要工资"));
    assert_eq!(
        out.level,
        Some(Level::Yellow),
        "rule level is a floor over the score"
    );
    assert_eq!(out.score, 30);

    let out = a.analyze(item("招聘", "绝不欠薪"));
    assert!(out.hits.is_empty());
    assert_eq!(out.level, None);
}

#[test]
fn tokens_have_byte_offsets_into_the_text() {
    let cfg = config_with_rules(RULES);
    let (a, _) = Analyzer::new(&cfg);
    let text = "江州市青山区发生垮塌事故, 3人被困";
    let out = a.analyze(item("", text));
    assert!(!out.text_tokens.is_empty());
    for t in &out.text_tokens {
        assert_eq!(&text[t.start..t.end], t.text);
    }
    // The rule term is one token thanks to the user dictionary.
    assert!(out.text_tokens.iter().any(|t| t.text == "垮塌"));
    assert!(
        !out.text_tokens
            .iter()
            .any(|t| t.text == "," || t.text == " ")
    );
}

#[test]
fn reprints_get_close_fingerprints() {
    let cfg = config_with_rules(RULES);
    let (a, _) = Analyzer::new(&cfg);
    let body = "11月26日上午，江州市青山区一处老旧居民楼发生局部垮塌，事故造成三人被困。\
        接到报警后，消防、公安、医疗等部门迅速赶赴现场开展救援。截至发稿时，已有两名被困人员被成功救出，\
        送往医院治疗，另一名被困人员的搜救工作仍在进行中。据了解，该楼建于上世纪八十年代，\
        此前已被列入危房改造计划。事故原因正在进一步调查中。";
    let reprint = format!("（来源：江州日报）{body}责任编辑：李明");
    let other = "江州市第十届读书节开幕，全市图书馆推出系列阅读活动，市民可以免费借阅新书，\
        活动将持续一个月，涵盖讲座、展览和亲子阅读等内容。";
    let h1 = a.analyze(item("", body)).simhash;
    let h2 = a.analyze(item("", &reprint)).simhash;
    let h3 = a.analyze(item("", other)).simhash;
    let near = crate::simhash::hamming(h1, h2);
    let far = crate::simhash::hamming(h1, h3);
    assert!(near <= 6, "reprint distance {near}");
    assert!(far > 12, "distinct distance {far}");
}

#[test]
fn lexicon_words_add_to_the_score_and_traditional_text_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::create_dir_all(dir.path().join("lexicons")).unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        "[analysis]\nlexicons = [\"lexicons/risk.txt\"]\nallow_lists = [\"lexicons/allow.txt\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rules/r.toml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("lexicons/risk.txt"),
        "爆炸\t40\t安全\n上访\t30\t维稳\n坏行\tx\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("lexicons/allow.txt"), "信息爆炸\n").unwrap();
    let cfg = Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    assert!(
        cfg.rule_errors
            .iter()
            .any(|e| e.to_string().contains("risk.txt:3:4: weight `x`")),
        "{:?}",
        cfg.rule_errors
    );
    let (a, _) = Analyzer::new(&cfg);
    assert_eq!(a.lexicon().len(), 2);
    let out = a.analyze(item("化工廠爆炸", "附近村民上*访。信息爆炸的时代"));
    let words: Vec<(&str, u32)> = out
        .lexicon_hits
        .iter()
        .map(|h| (h.word.as_str(), h.count))
        .collect();
    assert_eq!(words, vec![("爆炸", 1), ("上访", 1)]);
    // Each word is marked where it stands in the item as published: in the
    // traditional title, and whole across the filler in the text.
    fn marked(a: &yuqing_model::AnalyzedItem, hit: usize) -> Vec<&str> {
        a.lexicon_hits[hit]
            .marks
            .iter()
            .map(|m| {
                let s = match m.field {
                    yuqing_model::ItemField::Title => a.item.title.as_str(),
                    yuqing_model::ItemField::Text => a.item.text.as_str(),
                };
                &s[m.start as usize..m.end as usize]
            })
            .collect()
    }
    assert_eq!(marked(&out, 0), vec!["爆炸"]);
    assert_eq!(
        out.lexicon_hits[0].marks[0].field,
        yuqing_model::ItemField::Title
    );
    assert_eq!(marked(&out, 1), vec!["上*访"]);
    // Full-width characters before a squeezed word shift every offset.
    let shifted = a.analyze(item("", "ＡＢ村民上*访，ＣＤ上 访了"));
    assert_eq!(marked(&shifted, 0), vec!["上*访", "上 访"]);
    assert_eq!(out.score, 70);
    assert_eq!(out.level, Some(Level::Orange), "by the default thresholds");
    let plain = a.analyze(item("信息爆炸", "读书节开幕"));
    assert!(plain.lexicon_hits.is_empty());
    assert_eq!(plain.score, 0);
    // A red rule (60) and both words (70) reach 130: the score stops at 100.
    let all = a.analyze(item("楼房坍塌", "三人被困，化工厂爆炸，村民上访"));
    assert_eq!(all.hits.len(), 1);
    assert_eq!(all.lexicon_hits.len(), 2);
    assert_eq!(all.score, 100);
    assert_eq!(all.level, Some(Level::Red));
}

#[test]
fn the_bundled_model_judges_sentiment_with_negation() {
    let cfg = config_with_rules(RULES);
    let (a, _) = Analyzer::new(&cfg);
    let bad = a
        .analyze(item("", "酒店服务很差，房间又脏又小，再也不会来了。"))
        .sentiment
        .unwrap();
    assert_eq!(bad.label, yuqing_model::SentimentLabel::Negative, "{bad:?}");
    let good = a
        .analyze(item("", "房间干净，服务热情周到，下次还会再来。"))
        .sentiment
        .unwrap();
    assert_eq!(
        good.label,
        yuqing_model::SentimentLabel::Positive,
        "{good:?}"
    );
    assert!(good.confidence >= 0.6 && good.confidence <= 1.0);
}

/// `[和平]` must not fire inside 和平精英. jieba's own dictionary does not
/// know the game, so it cuts 和平/精英 and the boundary holds; a user
/// dictionary that names it keeps it whole, through the real segmenter.
#[test]
fn a_user_dictionary_keeps_a_compound_whole_for_word_boundary_terms() {
    let rules = "[[rule]]\nid = \"peace\"\nname = \"和平\"\nquery = \"[和平] AND 集会\"\nlevel = \"blue\"\n";
    let text = "和平精英玩家线下集会";
    let fires = |cfg: &Config| {
        let (a, errors) = Analyzer::new(cfg);
        assert!(errors.is_empty(), "{errors:?}");
        !a.analyze(item("", text)).hits.is_empty()
    };
    let plain = config_with_rules(rules);
    assert!(plain.user_words.is_empty());
    assert!(
        fires(&plain),
        "without the dictionary jieba cuts 和平/精英, so the term is on a boundary"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/r.toml"), rules).unwrap();
    std::fs::write(dir.path().join("games.txt"), "# 游戏名\n和平精英\n").unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        "[analysis]\nuser_dicts = [\"games.txt\"]\n",
    )
    .unwrap();
    let cfg = Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    assert!(cfg.rule_errors.is_empty(), "{:?}", cfg.rule_errors);
    assert!(
        !fires(&cfg),
        "和平精英 is one word now: [和平] is inside it"
    );
    // The term still fires where 和平 is a word of its own.
    let (a, _) = Analyzer::new(&cfg);
    assert!(
        !a.analyze(item("", "市民为和平集会")).hits.is_empty(),
        "和平 on its own still fires"
    );
    // Search and the index cut the same way.
    let words: Vec<String> = a
        .segmenter()
        .tokens(text)
        .into_iter()
        .map(|t| t.text.into())
        .collect();
    assert_eq!(words[0], "和平精英", "{words:?}");
}

/// On random texts of full-width, traditional and filler characters around
/// lexicon words and rule terms, every mark slices the published text at
/// character boundaries, and what it marks normalizes (and squeezes) to the
/// word or term found.
#[test]
fn marks_always_slice_the_published_text_to_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        "[analysis]\nlexicons = [\"risk.txt\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rules/r.toml"), RULES).unwrap();
    std::fs::write(dir.path().join("risk.txt"), "爆炸\t40\n上访\t30\nab\t5\n").unwrap();
    let cfg = Loader::default()
        .load(&dir.path().join("main.toml"))
        .unwrap();
    let (a, _) = Analyzer::new(&cfg);
    let pieces = [
        "爆", "炸", "上", "访", "*", " ", "\u{200b}", "Ａ", "ｂ", "a", "B", "廠", "坍塌", "被困",
        "，", "。", "樓", "\u{3000}", "·",
    ];
    let mut next = xorshift();
    let mut marks = 0;
    for _ in 0..2_000 {
        let mut part = || -> String { (0..next(14)).map(|_| pieces[next(pieces.len())]).collect() };
        let (title, text) = (part(), part());
        let out = a.analyze(item(&title, &text));
        let field = |m: &yuqing_model::Mark| match m.field {
            yuqing_model::ItemField::Title => &title,
            yuqing_model::ItemField::Text => &text,
        };
        for h in &out.lexicon_hits {
            for m in &h.marks {
                let s = field(m).get(m.start as usize..m.end as usize);
                let s = s.unwrap_or_else(|| panic!("{m:?} in {title:?} / {text:?}"));
                let found = crate::normalize::Normalized::new(s)
                    .squeezed_text()
                    .into_owned();
                assert_eq!(found, h.word, "{m:?} in {title:?} / {text:?}");
                marks += 1;
            }
        }
        for h in &out.hits {
            for m in &h.marks {
                let s = field(m).get(m.start as usize..m.end as usize);
                let s = s.unwrap_or_else(|| panic!("{m:?} in {title:?} / {text:?}"));
                let found = crate::normalize::normalize(s);
                assert!(h.terms.contains(&found), "{found} {h:?}");
                marks += 1;
            }
        }
    }
    assert!(marks > 500, "{marks} marks checked");
}
