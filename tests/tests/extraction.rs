//! Article extraction scored by shingle F1: on the scrapinghub benchmark
//! pages (English, word 4-grams) from `../shared/data/extraction-en` or
//! `YUQING_EXTRACTION_DATA`, on the Chinese pages in
//! `tests/fixtures/extraction-zh` and on the sample site's article pages
//! (character 4-grams).

use std::path::PathBuf;

use yuqing::demo_site::{DemoSite, Site};
use yuqing_crawler::extract::eval::evaluate;
use yuqing_crawler::extract::score::Tokens;

fn benchmark_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("YUQING_EXTRACTION_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/extraction-en")
        });
    dir.join("ground-truth.json").exists().then_some(dir)
}

#[test]
fn english_benchmark_f1_is_at_least_095_and_beats_the_fallback() {
    let Some(dir) = benchmark_dir() else {
        eprintln!(
            "skipping: no extraction benchmark at ../shared/data/extraction-en (set YUQING_EXTRACTION_DATA to its folder)"
        );
        return;
    };
    let e = evaluate(&dir, 4, Tokens::Words).unwrap();
    eprintln!(
        "{} pages: F1 {:.3} (P {:.3} R {:.3}); dom_smoothie alone {:.3}",
        e.pages, e.extractor.f1, e.extractor.precision, e.extractor.recall, e.baseline.f1
    );
    assert!(e.pages >= 100, "{} pages", e.pages);
    assert!(e.extractor.f1 >= 0.95, "F1 {:.3}", e.extractor.f1);
    assert!(e.extractor.f1 > e.baseline.f1, "adds to its fallback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_article_pages_by_character_shingles() {
    let site = Site::bundled();
    let demo = DemoSite::start(site.clone(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("html")).unwrap();
    let mut truth = serde_json::Map::new();
    for n in &site.news {
        let url = format!("http://{}/news/{}.html", demo.addr, n.slug);
        let html = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        std::fs::write(
            dir.path().join("html").join(format!("{}.html", n.slug)),
            &html,
        )
        .unwrap();
        truth.insert(
            n.slug.clone(),
            serde_json::json!({ "articleBody": n.body, "url": url }),
        );
    }
    std::fs::write(
        dir.path().join("ground-truth.json"),
        serde_json::Value::Object(truth).to_string(),
    )
    .unwrap();
    demo.stop().await;
    let e = tokio::task::spawn_blocking(move || evaluate(dir.path(), 4, Tokens::Chars).unwrap())
        .await
        .unwrap();
    assert_eq!(e.pages, site.news.len());
    assert!(e.extractor.f1 >= 0.95, "F1 {:.3}", e.extractor.f1);
    assert!(
        e.extractor.precision >= 0.9,
        "navigation and footer left out: P {:.3}",
        e.extractor.precision
    );
}

#[test]
fn chinese_site_layouts_by_character_shingles_with_metadata() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/extraction-zh");
    let e = evaluate(&dir, 4, Tokens::Chars).unwrap();
    eprintln!(
        "{} pages: F1 {:.3} (P {:.3} R {:.3}); dom_smoothie alone {:.3}; misses {:?}",
        e.pages,
        e.extractor.f1,
        e.extractor.precision,
        e.extractor.recall,
        e.baseline.f1,
        e.metadata.misses
    );
    assert_eq!(e.pages, 16);
    assert!(e.extractor.f1 >= 0.95, "F1 {:.3}", e.extractor.f1);
    assert!(
        e.extractor.f1 > e.baseline.f1 + 0.05,
        "adds to its fallback"
    );
    // Every page but one: a forum author (the Discuz! preset's job) and a
    // page that shows only `昨天 08:12`, which is read relative to now.
    let m = &e.metadata;
    assert_eq!(m.title, (16, 16), "{:?}", m.misses);
    assert!(m.author.0 >= 15, "{:?}", m.misses);
    assert!(m.published.0 >= 15, "{:?}", m.misses);
}
