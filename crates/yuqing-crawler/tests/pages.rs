//! `kind = "page"`: articles found on a GBK list page and through a gzipped
//! sitemap index, extracted, and never fetched twice.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

fn article(n: u32) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"gbk\"><title>第{n}条通报 - 江州市政府网</title></head><body>\
         <nav>首页 | 政务公开 | 办事服务 | 互动交流</nav>\
         <div class=\"article\"><h1>第{n}条通报</h1><div class=\"info\">发布时间：2026-11-2{n} 09:30 来源：江州市应急管理局</div>\
         <p>江州市应急管理局发布第{n}条通报，全市各区已完成汛后安全隐患排查，共排查重点部位一千二百余处，整改问题三百余项。</p>\
         <p>通报要求各区继续做好值班值守，对排查中发现的问题建立台账，逐项销号，确保群众生命财产安全。</p>\
         <p>市民如发现安全隐患，可拨打十二三四五热线反映，相关部门将及时核实处理。</p></div>\
         <footer>江州市人民政府 主办 版权所有</footer></body></html>"
    )
}

/// Serves `app` on `listener` with a sitemap of `/content/<page>.html`
/// for each of `pages`, and a crawler of one page source reading it.
fn sitemap_source(
    dir: &std::path::Path,
    listener: tokio::net::TcpListener,
    app: Router,
    pages: &[&str],
) -> (yuqing_crawler::Crawler, yuqing_crawler::state::CrawlState) {
    let addr = listener.local_addr().unwrap();
    let urls: String = pages
        .iter()
        .map(|p| format!("<url><loc>http://{addr}/content/{p}.html</loc></url>"))
        .collect();
    let xml = format!("<urlset>{urls}</urlset>");
    let app = app.route("/sitemap.xml", get(move || async move { xml }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    common::crawler(
        dir,
        &format!(
            "[crawler]\nper_host_delay_ms = 0\nrespect_robots = false\n\n[[source]]\nid = \"gov\"\nkind = \"page\"\nallow_private = true\n\
             sitemap = \"http://{addr}/sitemap.xml\"\nlink = \"a\"\n"
        ),
    )
}

fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

#[tokio::test]
async fn list_pages_and_sitemaps_lead_to_extracted_articles_once() {
    let article_hits = Arc::new(AtomicUsize::new(0));
    let hits = article_hits.clone();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(
            b"<?xml version=\"1.0\"?><urlset><url><loc>http://HOST/content/3.html</loc><lastmod>2026-11-23</lastmod></url>\
              <url><loc>http://HOST/content/4.html</loc><lastmod>2026-11-24</lastmod></url></urlset>",
        )
        .unwrap();
        e.finish().unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gz = Arc::new(
        // The sitemap names its own host.
        {
            let mut d = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut d)
                .unwrap();
            let text = String::from_utf8(d)
                .unwrap()
                .replace("HOST", &addr.to_string());
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap()
        },
    );
    let app = Router::new()
        .route(
            "/list.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    gbk("<html><head><meta charset=\"gbk\"></head><body><a href=\"/about.html\">关于我们</a>\
                         <ul class=\"list\"><li><a href=\"/content/1.html?utm_source=list\">第1条通报</a></li>\
                         <li><a href=\"content/2.html\">第2条通报</a></li></ul></body></html>"),
                )
            }),
        )
        .route(
            "/sitemap_index.xml",
            get(move || async move { format!("<sitemapindex><sitemap><loc>http://{addr}/sitemap1.xml.gz</loc></sitemap></sitemapindex>") }),
        )
        .route("/sitemap1.xml.gz", get(move || {
            let gz = gz.clone();
            async move { ([(header::CONTENT_TYPE, "application/gzip")], (*gz).clone()) }
        }))
        .route(
            "/content/{page}",
            get(move |Path(page): Path<String>| {
                hits.fetch_add(1, Ordering::SeqCst);
                async move {
                    let n: u32 = page.trim_end_matches(".html").parse().unwrap_or(0);
                    ([(header::CONTENT_TYPE, "text/html; charset=gbk")], gbk(&article(n))).into_response()
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (c, state) = common::crawler(
        dir.path(),
        &format!(
            "[crawler]\nper_host_delay_ms = 0\n\n[[source]]\nid = \"gov\"\nkind = \"page\"\nsource_type = \"政务\"\nallow_private = true\n\
             list_urls = [\"http://{addr}/list.html\"]\nlink = \"ul.list\"\nsitemap = \"http://{addr}/sitemap_index.xml\"\nlink_contains = \"/content/\"\n"
        ),
    );
    assert_eq!(c.run_source(0).await.unwrap(), 4);
    assert_eq!(
        article_hits.load(Ordering::SeqCst),
        4,
        "about.html is not an article"
    );
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(
        article_hits.load(Ordering::SeqCst),
        4,
        "seen articles are not fetched again"
    );
    assert!(
        c.health()[0].last_warnings.is_empty(),
        "{:?}",
        c.health()[0].last_warnings
    );

    let mut items: Vec<yuqing_model::Item> = common::emitted(&state);
    items.sort_by(|a, b| a.title.cmp(&b.title));
    assert_eq!(items.len(), 4);
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        assert_eq!(item.title, format!("第{n}条通报"));
        assert!(
            item.text
                .starts_with(&format!("江州市应急管理局发布第{n}条通报")),
            "{}",
            item.text
        );
        assert!(
            !item.text.contains("版权所有") && !item.text.contains("政务公开"),
            "{}",
            item.text
        );
        assert_eq!(item.source_type, yuqing_model::SourceType::Government);
        assert_eq!(
            item.url,
            format!("http://{addr}/content/{n}.html"),
            "canonical, tracking removed"
        );
        let local = item
            .published_at
            .unwrap()
            .with_timezone(&chrono_tz::Asia::Shanghai);
        assert_eq!(
            local.format("%Y-%m-%d %H:%M").to_string(),
            format!("2026-11-2{n} 09:30")
        );
    }
}

#[tokio::test]
async fn a_sitemap_is_fetched_conditionally_once_all_its_articles_were_read() {
    let article_two_calls = Arc::new(AtomicUsize::new(0));
    let sitemap_fresh = Arc::new(AtomicUsize::new(0));
    let (two, fresh) = (article_two_calls.clone(), sitemap_fresh.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route(
            "/sitemap.xml",
            get(move |headers: axum::http::HeaderMap| {
                let fresh = fresh.clone();
                async move {
                    if headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
                        return axum::http::StatusCode::NOT_MODIFIED.into_response();
                    }
                    fresh.fetch_add(1, Ordering::SeqCst);
                    (
                        [(header::ETAG, "\"v1\"")],
                        format!(
                            "<urlset><url><loc>http://{addr}/content/1.html</loc></url>\
                             <url><loc>http://{addr}/content/2.html</loc></url></urlset>"
                        ),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/content/{page}",
            get(move |Path(page): Path<String>| {
                let first_try_of_two = page == "2.html" && two.fetch_add(1, Ordering::SeqCst) == 0;
                async move {
                    if first_try_of_two {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    let n: u32 = page.trim_end_matches(".html").parse().unwrap_or(0);
                    (
                        [(header::CONTENT_TYPE, "text/html; charset=gbk")],
                        gbk(&article(n)),
                    )
                        .into_response()
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (c, _state) = common::crawler(
        dir.path(),
        &format!(
            "[crawler]\nper_host_delay_ms = 0\nretries = 0\nrespect_robots = false\n\n[[source]]\nid = \"gov\"\nkind = \"page\"\nallow_private = true\n\
             sitemap = \"http://{addr}/sitemap.xml\"\nlink = \"a\"\n"
        ),
    );
    // Article 2 fails: the sitemap must be read again next time.
    assert_eq!(c.run_source(0).await.unwrap(), 1);
    let h = &c.health()[0];
    assert_eq!(h.last_warnings.len(), 1, "{:?}", h.last_warnings);
    let classes = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(classes(&h.last_run_responses), "2xx=2 5xx=1");
    assert_eq!(
        c.run_source(0).await.unwrap(),
        1,
        "article 2 on the second run"
    );
    assert_eq!(
        sitemap_fresh.load(Ordering::SeqCst),
        2,
        "no 304 while an article was missing"
    );
    // Everything read: now the unchanged sitemap answers 304.
    assert_eq!(c.run_source(0).await.unwrap(), 0);
    assert_eq!(sitemap_fresh.load(Ordering::SeqCst), 2);
    let h = &c.health()[0];
    assert_eq!(classes(&h.last_run_responses), "304=1");
    assert_eq!(classes(&h.http_responses), "2xx=4 304=1 5xx=1");
    assert_eq!(article_two_calls.load(Ordering::SeqCst), 2);
}

/// Hostile articles: one nested fifty thousand elements deep is refused
/// with a warning that says why, one whose dates overflow any clock and
/// one that is a page of digits are read as undated; the run goes on and
/// collects the rest.
#[tokio::test]
async fn hostile_articles_are_refused_or_read_and_the_run_goes_on() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Router::new().route(
        "/content/{page}",
        get(|Path(page): Path<String>| async move {
            let body = match page.as_str() {
                "deep.html" => format!("<html><body>{}深</body></html>", "<div>".repeat(50_000)),
                "dates.html" => article(1).replace(
                    "发布时间：2026-11-21 09:30",
                    "发布时间：100000000天前 200000000000天前",
                ),
                "digits.html" => {
                    article(2).replace("发布时间：2026-11-22 09:30", &"1 ".repeat(50_000))
                }
                _ => article(3),
            };
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = sitemap_source(dir.path(), listener, app, &["deep", "dates", "digits", "3"]);
    assert_eq!(c.run_source(0).await.unwrap(), 3);
    let warnings = &c.health()[0].last_warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("/content/deep.html: elements nested more than 1000 deep"),
        "{warnings:?}"
    );
    let mut items = common::emitted(&state);
    items.sort_by(|a, b| a.title.cmp(&b.title));
    let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["第1条通报", "第2条通报", "第3条通报"]);
    assert_eq!(items[0].published_at, None, "no clock holds those dates");
    assert_eq!(items[1].published_at, None);
    assert!(items[2].published_at.is_some());
}

/// An article whose comment box asks readers to log in is read; a page
/// with nothing but that request is a wall, noted and passed over. A GBK
/// wall is recognised in its own encoding.
#[tokio::test]
async fn an_article_with_a_login_box_for_comments_is_not_a_wall() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Router::new().route(
        "/content/{page}",
        get(|Path(page): Path<String>| async move {
            match page.as_str() {
                "wall.html" => (
                    [(header::CONTENT_TYPE, "text/html; charset=gbk")],
                    gbk("<html><head><meta charset=\"gbk\"></head><body><p>请先登录</p><form><input name=u></form></body></html>"),
                ),
                _ => (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    article(1)
                        .replace(
                            "<footer>",
                            "<div class=\"comments\">请先登录后发表评论 <form><input type=\"password\"></form></div><footer>",
                        )
                        .into_bytes(),
                ),
            }
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let (c, state) = sitemap_source(dir.path(), listener, app, &["wall", "1"]);
    assert_eq!(c.run_source(0).await.unwrap(), 1);
    let items = common::emitted(&state);
    assert_eq!(items[0].title, "第1条通报");
    let warnings = &c.health()[0].last_warnings;
    assert!(
        warnings.len() == 1
            && warnings[0].contains("wall.html")
            && warnings[0].contains("login wall"),
        "{warnings:?}"
    );
}
