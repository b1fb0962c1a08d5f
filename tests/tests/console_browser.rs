//! The console in a real browser (headless Chromium): it renders incidents
//! and search results, and hostile crawled text stays text.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `YUQING_CHROMIUM`), and for the
//! login test chromedriver (`/usr/bin/chromedriver`, or
//! `YUQING_CHROMEDRIVER`). `.ci/run` installs both; elsewhere a test
//! without them says it is skipping and passes, except under `CI`, where a
//! missing browser is a failure.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use yuqing::Pipeline;
use yuqing::demo_site::{DemoSite, Site};
use yuqing_tests::{WebhookSink, demo_config_with_rules, serve_fixture};

/// The DOM after the page loaded and ran whatever scripts it had.
fn dump_dom(browser: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_renders_and_hostile_text_stays_text() {
    let Some(browser) = yuqing_tests::webdriver::chromium() else {
        yuqing_tests::webdriver::skipping("Chromium (or YUQING_CHROMIUM)");
        return;
    };
    let demo = DemoSite::start(Site::bundled(), 0).await.unwrap();
    let sink = WebhookSink::start().await;
    let hostile = serve_fixture("hostile-feed.xml").await;
    let safety = yuqing::embedded::FILES
        .iter()
        .find(|(n, _)| n.ends_with("safety.toml"))
        .unwrap()
        .1;
    let extra = format!(
        "\n[[source]]\nid = \"hostile\"\nkind = \"feed\"\nallow_private = true\nurl = \"http://{hostile}/feed.xml\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config_with_rules(
        dir.path(),
        demo.addr,
        &sink.url(),
        &[("safety.toml", safety)],
        &extra,
    );
    let pipeline = Pipeline::start(config, yuqing_tests::on_free_port())
        .await
        .unwrap();
    assert!(pipeline.settle(1, Duration::from_secs(60)).await);
    let url = format!("{}/?q=%E5%9E%AE%E5%A1%8C", pipeline.console_url()); // 垮塌
    let b = browser.clone();
    let dom = tokio::task::spawn_blocking(move || dump_dom(&b, &url))
        .await
        .unwrap();

    assert!(
        dom.contains("<title>yuqing 舆情监测</title>"),
        "a script from crawled text ran:\n{dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;青山区老楼垮塌"),
        "hostile title shown as text:\n{dom}"
    );
    assert!(
        !dom.contains("<img src=\"x\""),
        "hostile img became an element:\n{dom}"
    );
    assert!(dom.contains("id=\"incidents\""), "{dom}");
    assert!(dom.contains("建筑坍塌伤亡"), "{dom}");
    assert!(dom.contains("<mark>垮塌</mark>"), "{dom}");

    // The hostile item's incident page, and the acknowledgement page its
    // DingTalk message links to: the title stays text, the officer gets a
    // form and a button.
    let api = pipeline.console_url();
    let incidents = yuqing_tests::get_json(&format!("{api}/api/incidents")).await;
    let id = incidents
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap_or("").contains("pwned"))
        .expect("the hostile item opened an incident")["id"]
        .as_i64()
        .unwrap();
    let marker = format!("/ack/{id}?");
    let mut link = None;
    for _ in 0..150 {
        link = demo.robot_messages().iter().find_map(|m| {
            let text = m["markdown"]["text"].as_str()?;
            let start = text.find(&marker)?;
            let rest = &text[start..];
            Some(rest[..rest.find(')')?].to_string())
        });
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = format!(
        "{api}{}",
        link.expect("the incident reached the DingTalk robot")
    );
    let pages = [format!("{api}/incidents/{id}"), link];
    let b = browser.clone();
    let doms = tokio::task::spawn_blocking(move || {
        pages.iter().map(|u| dump_dom(&b, u)).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let (page, ack) = (&doms[0], &doms[1]);
    assert!(
        page.contains(&format!("<title>预警事件 #{id}</title>")),
        "{page}"
    );
    assert!(
        page.contains("id=\"handle\"") && page.contains("id=\"ack\""),
        "{page}"
    );
    assert!(page.contains("id=\"timeline\""), "{page}");
    assert!(
        ack.contains("<title>确认处理预警</title>"),
        "a script ran:\n{ack}"
    );
    assert!(ack.contains("&lt;script&gt;"), "{ack}");
    assert!(ack.contains("id=\"ack\""), "{ack}");

    pipeline.shutdown(Duration::from_secs(20)).await;
    demo.stop().await;
}

/// A login in a real browser (driven through chromedriver): the console
/// sends an officer to the login page, the form logs them in and back, and
/// their acknowledgement is recorded under their login. A page of another
/// origin that posts to the console, with the officer's cookie in the
/// browser, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_logs_in_and_acknowledges_in_a_browser() {
    let Some((chromium, driver)) = yuqing_tests::webdriver::browser_paths() else {
        yuqing_tests::webdriver::skipping("Chromium and chromedriver (or YUQING_CHROMEDRIVER)");
        return;
    };
    let demo = DemoSite::start(Site::bundled(), 0).await.unwrap();
    let sink = WebhookSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = yuqing_tests::demo_config(demo.addr, dir.path(), &sink.url());
    config.settings.server.user.push(yuqing_config::UserConfig {
        id: "zhang".into(),
        name: "张伟".into(),
        role: yuqing_config::Role::Responder,
        password_hash: yuqing_server::hash_password("correct horse battery").unwrap(),
    });
    let pipeline = Pipeline::start(config, yuqing_tests::on_free_port())
        .await
        .unwrap();
    assert!(pipeline.settle(1, Duration::from_secs(60)).await);
    let console = pipeline.console_url();

    let b = yuqing_tests::webdriver::Browser::start(&chromium, &driver).await;
    b.goto(&format!("{console}/")).await;
    let login = b.url().await;
    assert!(login.contains("/login?next="), "{login}");
    b.type_into("#user", "zhang").await;
    b.type_into("#password", "wrong password").await;
    b.click("#submit").await;
    let page = b.source_when(|p| p.contains("用户名或密码错误")).await;
    assert!(page.contains("用户名或密码错误"), "{page}");
    b.type_into("#password", "correct horse battery").await;
    b.click("#submit").await;
    let home_url = format!("{console}/");
    assert_eq!(b.url_when(|u| u == home_url).await, home_url);
    // Incidents open as the sample site's items are analyzed.
    let mut home = b.source().await;
    for _ in 0..100 {
        if home.contains("id=\"incidents\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.goto(&format!("{console}/")).await;
        home = b.source().await;
    }
    assert!(home.contains("张伟（处置）"), "{home}");
    b.click("#incidents a").await;
    let incident = b.url_when(|u| u.contains("/incidents/")).await;
    assert!(incident.contains("/incidents/"), "{incident}");
    let page = b.source_when(|p| p.contains("id=\"ack\"")).await;
    assert!(page.contains("处置人：张伟"), "{page}");
    b.click("#ack").await;
    let acked = "<td>zhang</td><td>已确认</td><td>via console</td>";
    let page = b.source_when(|p| p.contains(acked)).await;
    assert!(page.contains(acked), "{page}");

    // Another origin's page submits a form to resolve the incident.
    let target = format!("{incident}/resolve");
    let forger = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let target = target.clone();
            async move {
                axum::response::Html(format!(
                    "<form id=f method=post action=\"{target}\"><input name=who value=x></form><script>document.getElementById('f').submit()</script>"
                ))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forger_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, forger).await });
    b.goto(&format!("http://{forger_addr}/")).await;
    let refused = b.source_when(|p| p.contains("refused")).await;
    assert!(refused.contains("another site's page"), "{refused}");
    b.goto(&incident).await;
    let page = b.source().await;
    assert!(
        page.contains("id=\"resolve\"") && !page.contains("已解除"),
        "the forged form resolved the incident:\n{page}"
    );
    drop(b);

    pipeline.shutdown(Duration::from_secs(20)).await;
    demo.stop().await;
}
