use chrono::{TimeZone, Utc};

use super::*;

const SH: Tz = chrono_tz::Asia::Shanghai;

#[test]
fn visible_chinese_dates() {
    let now = Utc.with_ymd_and_hms(2024, 3, 6, 4, 0, 0).unwrap(); // 12:00 in Shanghai
    let t = |s: &str| parse_visible_time(s, SH, now);
    let want = Utc.with_ymd_and_hms(2024, 3, 5, 6, 30, 0).unwrap();
    assert_eq!(
        t("来源：江州日报 发布时间：2024年3月5日 14:30 浏览"),
        Some(want)
    );
    assert_eq!(t("2024-03-05 14:30 来源：新华社"), Some(want));
    assert_eq!(t("编辑 张三 2024年03月05日14:30"), Some(want));
    assert_eq!(
        t("发表于 昨天 08:12"),
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 0, 12, 0).unwrap())
    );
    assert_eq!(
        t("3小时前 来自 iPhone"),
        Some(now - chrono::Duration::hours(3))
    );
    assert_eq!(t("阅读 1234 次"), None);
    assert_eq!(t("电话 2024-5"), None);
}

/// Numbers no date can hold, and runs of digits as long as a page, are
/// read as no date, at once.
#[test]
fn hostile_dates_are_no_dates() {
    let now = Utc.with_ymd_and_hms(2024, 3, 6, 4, 0, 0).unwrap();
    let t = |s: &str| parse_visible_time(s, SH, now);
    for s in [
        "发布时间：100000000天前",
        "发布时间：200000000000天前",
        "99999999999999999小时前",
        "发表于 9223372036854775807秒前",
        "100000天前",
    ] {
        assert_eq!(t(s), None, "{s}");
    }
    // Each digit starts a candidate; each candidate is read only as far
    // as a date goes.
    let ones = format!("正文 {} 结束", "1 ".repeat(50_000));
    assert_eq!(t(&ones), None);
    let page = format!(
        "<html><body><p>{}</p><p>发布时间：2024-03-05 14:30</p></body></html>",
        "2024 ".repeat(20_000)
    );
    assert_eq!(
        extract(&page, None, SH, now).published_at,
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 6, 30, 0).unwrap())
    );
}

#[test]
fn metadata_from_meta_tags_and_json_ld() {
    let html = r#"<html><head><title>标题 - 江州日报</title>
<meta property="og:title" content="江州举办读书节">
<meta name="author" content="记者 王晓">
<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle","headline":"x","datePublished":"2024-03-05T14:30:00+08:00","articleBody":"短"}</script>
</head><body><nav>首页 | 新闻 | 登录</nav><article><h1>江州举办读书节</h1>
<p>江州市第十届读书节今天开幕，全市图书馆推出系列阅读活动，市民可以免费借阅新书，活动将持续一个月。</p>
<p>读书节期间，各区还将举办讲座、展览和亲子阅读等活动，组织者希望更多市民走进图书馆。</p>
<p>市图书馆馆长表示，今年新增了数字阅读专区，市民用手机扫码即可借阅电子书，方便上班族利用碎片时间阅读。</p>
</article><div class="comments">评论区：沙发！</div><footer>版权所有</footer></body></html>"#;
    let e = extract(
        html,
        Some("https://news.example.com/a.html"),
        SH,
        Utc::now(),
    );
    assert_eq!(e.title, "江州举办读书节");
    assert_eq!(e.author.as_deref(), Some("王晓"));
    assert_eq!(
        e.published_at,
        Some(Utc.with_ymd_and_hms(2024, 3, 5, 6, 30, 0).unwrap())
    );
    assert_eq!(
        e.method, "readability",
        "a teaser articleBody is not the text"
    );
    assert!(e.text.contains("数字阅读专区"), "{}", e.text);
    assert!(
        !e.text.contains("版权所有") && !e.text.contains("登录"),
        "{}",
        e.text
    );
}

#[test]
fn declared_body_wins_when_complete() {
    let body = "正文第一段。".repeat(50);
    let html = format!(
        r#"<html><head><script type="application/ld+json">{{"@graph":[{{"@type":"WebPage"}},{{"@type":"NewsArticle","articleBody":"{body}","author":[{{"@type":"Person","name":"李明"}}]}}]}}</script></head>
<body><div><p>{body}</p><p>相关阅读：其他新闻</p></div></body></html>"#
    );
    let e = extract(&html, None, SH, Utc::now());
    assert_eq!(e.method, "json-ld");
    assert_eq!(e.text, body);
    assert_eq!(e.author.as_deref(), Some("李明"));
}

#[test]
fn garbage_never_panics() {
    for html in [
        "",
        "<",
        "<html><body></body></html>",
        "<script type=\"application/ld+json\">{</script>",
        "\u{0}\u{FFFD}",
    ] {
        let e = extract(html, Some("not a url"), SH, Utc::now());
        assert!(e.text.len() < 100);
    }
}

#[test]
fn chinese_dateline_and_site_suffix_are_left_out() {
    let html = r#"<html><head><title>青山区老楼局部坍塌 - 江州日报</title></head><body>
<nav>首页 | 本地 | 民生</nav><article><h1>青山区老楼局部坍塌</h1>
<div class="info">发布时间：2026-11-26 17:49 来源：江州日报 记者 孙佳</div>
<p>青山区建设路一栋建于上世纪八十年代的居民楼发生局部坍塌，消防、公安、医疗等部门迅速赶赴现场开展救援。</p>
<p>截至发稿时，已有两名被困人员被成功救出，送往医院治疗，另一名被困人员的搜救工作仍在进行中。</p>
<p>据了解，该楼此前已被列入危房改造计划，事故原因正在进一步调查中。</p>
</article><footer>江州日报 版权所有</footer></body></html>"#;
    let e = extract(html, Some("http://news.example.cn/a.html"), SH, Utc::now());
    assert_eq!(e.title, "青山区老楼局部坍塌");
    assert!(!e.text.contains("发布时间"), "{}", e.text);
    assert!(e.text.starts_with("青山区建设路"), "{}", e.text);
    assert_eq!(
        e.published_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 9, 49, 0).unwrap())
    );
}

#[test]
fn chinese_boilerplate_is_dropped_around_the_article() {
    let text = "时间:2024-03-21 10:32:15来源:禾川新闻网 作者:张涛 点击:1286次\n\
[导读]记者从自来水公司了解到，城东片区将改造管网。\n\
记者从自来水公司了解到，城东片区将改造管网，部分小区周末停水。\n\
停水期间，自来水公司将设置临时供水点，方便居民取水。\n\
扫码下载新浪新闻客户端\n\
居民如有疑问，可拨打服务热线咨询，相关部门将及时答复。\n\
责任编辑：刘思源\n\
相关推荐\n\
另一条新闻的标题";
    assert_eq!(
        drop_boilerplate(text),
        "记者从自来水公司了解到，城东片区将改造管网，部分小区周末停水。\n\
停水期间，自来水公司将设置临时供水点，方便居民取水。\n\
居民如有疑问，可拨打服务热线咨询，相关部门将及时答复。"
    );
    // A marker in the first third of the text is a link list above the
    // article, not its end.
    let early = "相关新闻\n第一段正文，讲述了事情的经过和各方的说法。\n第二段正文，介绍了有关部门的处理意见。";
    assert_eq!(drop_boilerplate(early), early);
}

#[test]
fn chinese_bylines() {
    assert_eq!(
        chinese_byline("来源：禾川新闻网 作者:张涛 点击:1286次").as_deref(),
        Some("张涛")
    );
    assert_eq!(
        chinese_byline("本报记者\u{3000}陈思远").as_deref(),
        Some("陈思远")
    );
    assert_eq!(
        chinese_byline("新华社澄湖5月28日电（记者孙浩然）记者从澄湖市获悉").as_deref(),
        Some("孙浩然")
    );
    assert_eq!(chinese_byline("文/钱晓燕").as_deref(), Some("钱晓燕"));
    assert_eq!(chinese_byline("记者从禾川市自来水公司了解到"), None);
    assert_eq!(chinese_byline("作者：禾川市自来水公司办公室"), None);
}

#[test]
fn titles_lose_the_site_name() {
    let now = Utc::now();
    let page = |title: &str, body: &str| {
        extract(
            &format!(
                "<html><head><title>{title}</title></head><body>{body}<p>正文。</p></body></html>"
            ),
            None,
            SH,
            now,
        )
        .title
    };
    assert_eq!(
        page("新学期校车线路调整_岚城晚报数字报", ""),
        "新学期校车线路调整"
    );
    assert_eq!(
        page(
            "北溪市人民政府 部门动态 北溪市启动燃气管道更新改造工作",
            "<h1>北溪市人民政府</h1><div class=\"article-title\">北溪市启动燃气管道更新改造工作</div>"
        ),
        "北溪市启动燃气管道更新改造工作"
    );
}

#[test]
fn hidden_chinese_article_text_is_shown_but_hidden_menus_are_not() {
    let para = "市人民医院自六月十五日起全面实行预约挂号，患者可以通过公众号、电话和自助机预约，现场也保留少量号源。";
    let html = format!(
        "<html><body><div id=\"menu\" style=\"display:none\"><a href=\"/a\">{para}</a></div>\
         <div id=\"js_content\" style=\"visibility: hidden;\"><p>{para}</p><p>{para}</p><p>{para}</p></div></body></html>"
    );
    let e = extract(&html, None, SH, Utc::now());
    assert_eq!(e.text.matches("预约挂号").count(), 3, "{}", e.text);
}

#[test]
fn a_header_date_gives_way_to_the_article_time_of_that_day() {
    let now = Utc.with_ymd_and_hms(2024, 3, 13, 4, 0, 0).unwrap();
    let want = Utc.with_ymd_and_hms(2024, 3, 12, 8, 5, 0).unwrap();
    assert_eq!(
        parse_visible_time(
            "2024年3月12日 星期二 首页 新闻 2024年03月12日 16:05 本地新闻",
            SH,
            now
        ),
        Some(want)
    );
    // Labels count in the order they appear: the dateline, not a comment.
    assert_eq!(
        parse_visible_time(
            "时间:2024-03-12 16:05:00 来源:禾川新闻网 网友评论 发表于 2024-03-12 18:30",
            SH,
            now
        ),
        Some(want)
    );
}
