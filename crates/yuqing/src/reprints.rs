//! `yuqing bench reprints`: how well reprint events form, on a test set of
//! base articles each published once and reprinted on other sites.
//!
//! Every base article (`articles/*.txt` of the set, see its README) is
//! published on one site and reprinted on two to four others. Each site
//! wraps it in its own page furniture (navigation, a sidebar of other
//! articles' headlines, footers), and each reprint is edited the way
//! reprinting outlets edit: a rewritten or prefixed lead, another headline,
//! added 来源/编辑/原标题 lines, trailers and disclaimers, a dropped last
//! paragraph, a photo caption. The pages then go the way crawled pages go:
//! extraction, analysis (SimHash over the text's tokens), and the event
//! assignment the alerter uses, in order of publication.
//!
//! Scores are pairwise: two pages grouped into one event are a true
//! positive when they carry the same base article. The set's articles come
//! in topic groups of three (the same place and incident type, written
//! separately), so distinct articles share much vocabulary and all sites'
//! furniture.

use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use yuqing_analysis::Analyzer;
use yuqing_analysis::events::{
    Assignment, EventClusterer, MIN_TOKENS_FOR_EVENT, ReprintThresholds,
};
use yuqing_model::{Engagement, Item, SourceKind, SourceType};

/// One base article of the set.
#[derive(Debug, Clone)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub title2: String,
    pub published: DateTime<Utc>,
    pub topic: String,
    pub paragraphs: Vec<String>,
    pub lead2: String,
}

/// Reads `dir/articles/*.txt`, in name order.
pub fn read_articles(dir: &Path) -> Result<Vec<Article>> {
    let dir = dir.join("articles");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("{}: no *.txt articles", dir.display());
    }
    paths.iter().map(|p| parse_article(p)).collect()
}

fn parse_article(path: &Path) -> Result<Article> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let at = |line: usize, msg: &str| anyhow::anyhow!("{}:{line}: {msg}", path.display());
    let (body, lead2) = text
        .split_once("== lead2 ==")
        .ok_or_else(|| at(1, "no `== lead2 ==` section"))?;
    let mut header = std::collections::HashMap::new();
    let mut paragraphs = Vec::new();
    let mut in_header = true;
    for (i, line) in body.lines().enumerate() {
        let line = line.trim();
        if in_header {
            if line.is_empty() {
                in_header = false;
                continue;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| at(i + 1, "expected `field: value` in the header"))?;
            header.insert(k.trim().to_string(), v.trim().to_string());
        } else if !line.is_empty() {
            paragraphs.push(line.to_string());
        }
    }
    let field = |k: &str| {
        header
            .get(k)
            .cloned()
            .ok_or_else(|| at(1, &format!("missing `{k}:`")))
    };
    let published = NaiveDateTime::parse_from_str(&field("published")?, "%Y-%m-%d %H:%M")
        .map_err(|e| at(3, &format!("published: {e}")))?;
    let published = chrono_tz::Asia::Shanghai
        .from_local_datetime(&published)
        .single()
        .ok_or_else(|| at(3, "published: not a valid local time"))?
        .with_timezone(&Utc);
    if paragraphs.len() < 2 {
        bail!("{}: fewer than two paragraphs", path.display());
    }
    Ok(Article {
        id: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        title: field("title")?,
        title2: field("title2")?,
        published,
        topic: field("topic")?,
        paragraphs,
        lead2: lead2.trim().to_string(),
    })
}

/// A deterministic generator (SplitMix64), so the set is the same on
/// every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A site of the test set: its name, host, type and page layout.
struct Site {
    name: &'static str,
    host: &'static str,
    source_type: SourceType,
    layout: Layout,
}

#[derive(Clone, Copy)]
enum Layout {
    /// A city news portal: nav, breadcrumb, info line, related links.
    Portal,
    /// A government site: table layout, 发布时间/来源/浏览次数, print links.
    Government,
    /// A national portal's article page: `#artibody`, app promotion.
    Syndicator,
    /// A Discuz!-style forum thread whose first post is the reprint.
    Forum,
    /// A self-media account page (百家号, 头条号 style).
    SelfMedia,
    /// An evening paper's old table-and-font layout.
    Paper,
    /// A WeChat article: `#js_content`, 阅读原文.
    Wechat,
}

const SITES: &[Site] = &[
    Site {
        name: "临江新闻网",
        host: "news.linjiang.example",
        source_type: SourceType::News,
        layout: Layout::Portal,
    },
    Site {
        name: "江州市人民政府",
        host: "www.jiangzhou.gov.example",
        source_type: SourceType::Government,
        layout: Layout::Government,
    },
    Site {
        name: "东方视点",
        host: "news.dongfang.example",
        source_type: SourceType::News,
        layout: Layout::Syndicator,
    },
    Site {
        name: "白沙论坛",
        host: "bbs.baisha.example",
        source_type: SourceType::Forum,
        layout: Layout::Forum,
    },
    Site {
        name: "云溪头条",
        host: "m.yunxi.example",
        source_type: SourceType::App,
        layout: Layout::SelfMedia,
    },
    Site {
        name: "江城晚报",
        host: "www.jcwb.example",
        source_type: SourceType::News,
        layout: Layout::Paper,
    },
    Site {
        name: "青山发布",
        host: "mp.weixin.example",
        source_type: SourceType::App,
        layout: Layout::Wechat,
    },
];

const EDITORS: &[&str] = &["王晓", "刘洋", "陈静", "赵磊", "孙悦", "周文"];

/// One generated page of the set.
#[derive(Debug, Clone)]
pub struct Page {
    /// Index of its base article.
    pub article: usize,
    pub url: String,
    pub site: String,
    pub source_type: SourceType,
    pub published: DateTime<Utc>,
    pub html: String,
    /// Whether it is a reprint (not the article's first publication).
    pub reprint: bool,
}

/// What a page shows, before a layout turns it into HTML.
struct Content<'a> {
    site: &'a Site,
    title: String,
    /// Paragraphs of the article body as the site shows them, added
    /// lines included.
    body: Vec<String>,
    source: String,
    author: Option<String>,
    time: String,
    /// Headlines of other articles in the sidebar.
    sidebar: Vec<String>,
}

/// The pages of the set: each article on its home site, then reprinted.
pub fn generate(articles: &[Article]) -> Vec<Page> {
    let mut pages = Vec::new();
    for (i, a) in articles.iter().enumerate() {
        let mut rng = Rng(0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9));
        let home = i % SITES.len();
        let mut order: Vec<usize> = (0..SITES.len()).filter(|s| *s != home).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, rng.below(k + 1));
        }
        let reprints = 2 + rng.below(3);
        for (n, &s) in std::iter::once(&home)
            .chain(order.iter().take(reprints))
            .enumerate()
        {
            let site = &SITES[s];
            let published = if n == 0 {
                a.published
            } else {
                a.published + Duration::minutes(40 + rng.below(30 * 60) as i64)
            };
            let content = if n == 0 {
                original(a, site, published, articles, &mut rng)
            } else {
                reprint(a, site, &SITES[home], published, articles, &mut rng)
            };
            pages.push(Page {
                article: i,
                url: format!("https://{}/{}/{}-{n}.html", site.host, a.topic, a.id),
                site: site.host.to_string(),
                source_type: site.source_type,
                published,
                html: render(&content),
                reprint: n > 0,
            });
        }
    }
    pages
}

fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Headlines of other articles, siblings of the same topic first when
/// the dice say so (sidebars list related stories).
fn sidebar(articles: &[Article], me: usize, rng: &mut Rng) -> Vec<String> {
    let mut out = Vec::new();
    for (j, a) in articles.iter().enumerate() {
        if j != me && a.topic == articles[me].topic && rng.chance(70) {
            out.push(a.title.clone());
        }
    }
    while out.len() < 6 {
        let j = rng.below(articles.len());
        if j != me {
            out.push(articles[j].title.clone());
        }
    }
    out
}

fn original<'a>(
    a: &Article,
    site: &'a Site,
    published: DateTime<Utc>,
    articles: &[Article],
    rng: &mut Rng,
) -> Content<'a> {
    let me = articles.iter().position(|x| x.id == a.id).unwrap_or(0);
    let mut body = a.paragraphs.clone();
    if rng.chance(50) {
        body.push(format!("（编辑：{}）", EDITORS[rng.below(EDITORS.len())]));
    }
    Content {
        site,
        title: a.title.clone(),
        body,
        source: site.name.to_string(),
        author: rng
            .chance(60)
            .then(|| format!("记者 {}", EDITORS[rng.below(EDITORS.len())])),
        time: local_time(published),
        sidebar: sidebar(articles, me, rng),
    }
}

fn reprint<'a>(
    a: &Article,
    site: &'a Site,
    home: &Site,
    published: DateTime<Utc>,
    articles: &[Article],
    rng: &mut Rng,
) -> Content<'a> {
    let me = articles.iter().position(|x| x.id == a.id).unwrap_or(0);
    let mut body = a.paragraphs.clone();
    // The lead: kept, rewritten, prefixed, or both.
    match rng.below(4) {
        0 => {}
        1 => body[0] = a.lead2.clone(),
        2 => body[0] = format!("【{}讯】据{}消息，{}", site.name, home.name, body[0]),
        _ => body[0] = format!("据{}报道，{}", home.name, a.lead2),
    }
    // A later paragraph cut, as editors shorten long pieces.
    if body.len() >= 4 && rng.chance(35) {
        body.pop();
    }
    // Two paragraphs run together.
    if body.len() >= 3 && rng.chance(30) {
        let second = body.remove(2);
        body[1].push_str(&second);
    }
    if rng.chance(30) {
        let at = 1 + rng.below(body.len() - 1);
        body.insert(at, "（图片来源：网络，图文无关）".to_string());
    }
    let title = match rng.below(3) {
        0 => a.title.clone(),
        1 => a.title2.clone(),
        _ => format!("{}｜{}", a.title2, site.name),
    };
    if title != a.title && rng.chance(60) {
        body.insert(0, format!("原标题：{}", a.title));
    }
    match rng.below(3) {
        0 => body.insert(0, format!("来源：{}", home.name)),
        1 => body.push(format!("（来源：{}）", home.name)),
        _ => {}
    }
    if rng.chance(60) {
        body.push(format!("责任编辑：{}", EDITORS[rng.below(EDITORS.len())]));
    }
    match rng.below(4) {
        0 => body.push(format!(
            "声明：本文转自{}，版权归原作者所有，如有侵权请联系删除。",
            home.name
        )),
        1 => body.push(format!("更多精彩内容，请下载{}客户端。", site.name)),
        2 => {
            body.push("相关阅读：".to_string());
            for t in sidebar(articles, me, rng).into_iter().take(3) {
                body.push(t);
            }
        }
        _ => body.push("（完）".to_string()),
    }
    Content {
        site,
        title,
        body,
        source: home.name.to_string(),
        author: None,
        time: local_time(published),
        sidebar: sidebar(articles, me, rng),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn paragraphs(body: &[String]) -> String {
    body.iter()
        .map(|p| format!("<p>{}</p>\n", esc(p)))
        .collect()
}

fn list(titles: &[String]) -> String {
    titles
        .iter()
        .enumerate()
        .map(|(i, t)| format!("<li><a href=\"/a/{i}.html\">{}</a></li>", esc(t)))
        .collect()
}

fn render(c: &Content<'_>) -> String {
    let (title, name) = (esc(&c.title), esc(c.site.name));
    let author = c
        .author
        .as_deref()
        .map(|a| format!(" 作者：{}", esc(a)))
        .unwrap_or_default();
    let source = esc(&c.source);
    let time = &c.time;
    let body = paragraphs(&c.body);
    let side = list(&c.sidebar);
    match c.site.layout {
        Layout::Portal => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}_{name}</title></head><body>
<div class=\"nav\"><a href=\"/\">首页</a> <a href=\"/news\">要闻</a> <a href=\"/city\">城事</a> <a href=\"/video\">视频</a></div>
<div class=\"crumb\">当前位置：<a href=\"/\">首页</a> &gt; <a href=\"/city\">城事</a> &gt; 正文</div>
<div class=\"main\"><h1>{title}</h1>
<div class=\"info\"><span>{time}</span> <span>来源：{source}</span>{author}</div>
<div class=\"article\">{body}</div>
<div class=\"share\">分享到：微信 微博 QQ空间</div></div>
<div class=\"side\"><h3>热点新闻</h3><ul>{side}</ul></div>
<div class=\"footer\">{name} 版权所有 未经授权禁止转载 备案号：临ICP备12345678号</div>
</body></html>"
        ),
        Layout::Government => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}-{name}</title></head><body>
<table class=\"top\"><tr><td>{name}</td><td><a href=\"/\">首页</a> | <a href=\"/zwgk\">政务公开</a> | <a href=\"/bsfw\">办事服务</a> | <a href=\"/hdjl\">互动交流</a></td></tr></table>
<table class=\"content\"><tr><td>
<h2 class=\"title\">{title}</h2>
<div class=\"property\">发布时间：{time}　来源：{source}　浏览次数：1024</div>
<div id=\"zoom\" class=\"TRS_Editor\">{body}</div>
<div class=\"tools\">【<a href=\"#\">打印本页</a>】【<a href=\"#\">关闭窗口</a>】</div>
</td><td class=\"right\"><div class=\"rel\">相关信息<ul>{side}</ul></div></td></tr></table>
<div class=\"foot\">主办单位：{name}办公室　网站标识码：3301000001　政府网站找错</div>
</body></html>"
        ),
        Layout::Syndicator => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}|{name}</title>
<meta property=\"og:title\" content=\"{title}\"></head><body>
<div class=\"top-nav\">{name} 首页 新闻 财经 科技 体育 娱乐</div>
<div class=\"main-content\"><h1 class=\"main-title\">{title}</h1>
<div class=\"date-source\"><span class=\"date\">{time}</span> <a class=\"source\">{source}</a></div>
<div class=\"article\" id=\"artibody\">{body}</div>
<div class=\"app-promo\">打开{name}APP，阅读体验更佳</div>
<div class=\"comment\">我要评论 已有0条评论</div></div>
<div class=\"side\"><h3>24小时排行</h3><ul>{side}</ul></div>
<div class=\"footer\">客户服务热线：4000000000 违法和不良信息举报电话 Copyright © {name} All Rights Reserved</div>
</body></html>"
        ),
        Layout::Forum => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title} - 本地新闻 - {name}</title></head><body>
<div id=\"hd\">{name} 门户 论坛 群组 家园</div>
<div id=\"pt\">{name} › 论坛 › 本地新闻 › 查看内容</div>
<div id=\"postlist\"><h1 class=\"ts\"><span id=\"thread_subject\">{title}</span></h1>
<div class=\"pi\"><a class=\"xw1\">江边散步的人</a> 楼主 发表于 {time}</div>
<div class=\"pct\"><td class=\"t_f\" id=\"postmessage_1\">转自：{source}<br>{body}</td></div>
<div class=\"sign\">生活不止眼前的苟且，还有诗和远方</div></div>
<div class=\"side\"><h3>今日热帖</h3><ul>{side}</ul></div>
<div id=\"ft\">Powered by Discuz! X3.4 © 2001-2026 {name} 手机版 小黑屋</div>
</body></html>"
        ),
        Layout::SelfMedia => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>
<div class=\"header\">{name} 推荐 关注 热榜</div>
<div class=\"article-box\"><h1 class=\"article-title\">{title}</h1>
<div class=\"author-info\"><span class=\"author-name\">{name}官方号</span> <span class=\"time\">{time}</span> 关注</div>
<div class=\"article-content\">{body}</div>
<div class=\"notice\">本文仅代表作者观点，不代表平台立场。举报/反馈</div></div>
<div class=\"recommend\"><h3>为你推荐</h3><ul>{side}</ul></div>
</body></html>"
        ),
        Layout::Paper => format!(
            "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"><title>{name}--{title}</title></head>
<body><table width=\"960\"><tr><td colspan=\"2\"><font size=\"2\">{name}数字报 | 第A05版：城事 | 往期回顾</font></td></tr>
<tr><td width=\"700\" valign=\"top\"><font size=\"5\"><b>{title}</b></font><br>
<font size=\"2\" color=\"#666\">{time} 来源：{source}{author}</font>
<div class=\"text\"><font size=\"3\">{body}</font></div></td>
<td valign=\"top\"><font size=\"2\">本版其他文章<ul>{side}</ul></font></td></tr>
<tr><td colspan=\"2\"><font size=\"2\">{name}社版权所有 联系电话：0571-00000000</font></td></tr></table></body></html>"
        ),
        Layout::Wechat => format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>
<meta property=\"og:title\" content=\"{title}\"></head><body>
<div id=\"page-content\"><h1 class=\"rich_media_title\" id=\"activity-name\">{title}</h1>
<div id=\"meta_content\"><span class=\"rich_media_meta\">{source}</span> <a id=\"js_name\">{name}</a> <em id=\"publish_time\">{time}</em></div>
<div class=\"rich_media_content\" id=\"js_content\" style=\"visibility: hidden;\">{body}</div>
<div class=\"read-more\">阅读原文 分享 点赞 在看</div>
<div class=\"recommend\">往期推荐<ul>{side}</ul></div></div>
</body></html>"
        ),
    }
}

/// Precision and recall of one grouping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub events: usize,
}

/// A page after extraction and analysis.
#[derive(Debug, Clone)]
pub struct Analyzed {
    pub article: usize,
    pub published: DateTime<Utc>,
    pub simhash: u64,
    pub simhash_pairs: u64,
    pub fingerprinted: bool,
}

/// The item a crawler would make of a page: its extracted title, text and
/// author, published when the page says.
pub fn page_item(p: &Page) -> Item {
    let e = yuqing_crawler::extract::extract(
        &p.html,
        Some(&p.url),
        chrono_tz::Asia::Shanghai,
        p.published,
    );
    Item {
        id: yuqing_model::item_id_for_url(&p.url),
        source: p.site.clone(),
        source_kind: SourceKind::Page,
        source_type: p.source_type,
        site: p.site.clone(),
        url: p.url.clone(),
        title: e.title,
        text: e.text,
        author: e.author,
        published_at: Some(p.published),
        fetched_at: p.published,
        engagement: Engagement::default(),
        parent_id: None,
    }
}

/// Extracts and analyzes every page.
pub fn analyze_pages(pages: &[Page], analyzer: &Analyzer) -> Vec<Analyzed> {
    pages
        .iter()
        .map(|p| {
            let a = analyzer.analyze(page_item(p));
            Analyzed {
                article: p.article,
                published: p.published,
                simhash: a.simhash,
                simhash_pairs: a.simhash_pairs,
                fingerprinted: a.text_tokens.len() + a.title_tokens.len() >= MIN_TOKENS_FOR_EVENT
                    && a.simhash != 0,
            }
        })
        .collect()
}

/// Groups the pages in publication order as the alerter does, and scores
/// the grouping pairwise against the base articles.
pub fn score(pages: &[Analyzed], thresholds: ReprintThresholds) -> Scores {
    let mut order: Vec<usize> = (0..pages.len()).collect();
    order.sort_by_key(|&i| (pages[i].published, i));
    let mut clusterer = EventClusterer::new(thresholds);
    let mut event = vec![0usize; pages.len()];
    for &i in &order {
        let p = &pages[i];
        event[i] = match p.fingerprinted {
            true => match clusterer.assign(p.simhash, p.simhash_pairs, |_| true) {
                Assignment::Joins { event, .. } => event,
                Assignment::Starts => i,
            },
            false => i,
        };
        if p.fingerprinted {
            clusterer.add(p.simhash, p.simhash_pairs, event[i], i);
        }
    }
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for i in 0..pages.len() {
        for j in i + 1..pages.len() {
            match (event[i] == event[j], pages[i].article == pages[j].article) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
    }
    let mut events: Vec<usize> = event.clone();
    events.sort_unstable();
    events.dedup();
    Scores {
        precision: tp as f64 / (tp + fp).max(1) as f64,
        recall: tp as f64 / (tp + fn_).max(1) as f64,
        events: events.len(),
    }
}

/// How far apart pages are, in word SimHash bits and in word plus
/// word-pair bits: the largest distance from a page to the nearest other
/// page of its article, and the smallest between different articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub words_within: u32,
    pub words_across: u32,
    pub combined_within: u32,
    pub combined_across: u32,
}

pub fn distance_spread(pages: &[Analyzed]) -> Spread {
    let d = |p: &Analyzed, q: &Analyzed| {
        let w = (p.simhash ^ q.simhash).count_ones();
        (w, w + (p.simhash_pairs ^ q.simhash_pairs).count_ones())
    };
    let mut s = Spread {
        words_within: 0,
        words_across: 64,
        combined_within: 0,
        combined_across: 128,
    };
    for (i, p) in pages.iter().enumerate() {
        let same = || {
            pages
                .iter()
                .enumerate()
                .filter(|(j, q)| *j != i && q.article == p.article)
                .map(|(_, q)| d(p, q))
        };
        if let Some(w) = same().map(|x| x.0).min() {
            s.words_within = s.words_within.max(w);
        }
        if let Some(c) = same().map(|x| x.1).min() {
            s.combined_within = s.combined_within.max(c);
        }
        for q in &pages[i + 1..] {
            if q.article != p.article {
                let (w, c) = d(p, q);
                s.words_across = s.words_across.min(w);
                s.combined_across = s.combined_across.min(c);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, topic: &str) -> Article {
        Article {
            id: id.into(),
            title: format!("标题{id}"),
            title2: format!("另一个标题{id}"),
            published: Utc.with_ymd_and_hms(2026, 5, 1, 1, 0, 0).unwrap(),
            topic: topic.into(),
            paragraphs: vec![
                "第一段<b>".into(),
                "第二段".into(),
                "第三段".into(),
                "第四段".into(),
            ],
            lead2: "改写的导语".into(),
        }
    }

    #[test]
    fn generation_is_deterministic_and_escapes_text() {
        let arts = vec![
            article("001", "t"),
            article("002", "t"),
            article("003", "u"),
        ];
        let a = generate(&arts);
        let b = generate(&arts);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.html == y.html));
        assert!(a.iter().all(|p| !p.html.contains("第一段<b>")));
        // Each article once on its home site and 2-4 times elsewhere.
        for i in 0..3 {
            let n = a.iter().filter(|p| p.article == i).count();
            assert!((3..=5).contains(&n), "{n}");
            let originals = a.iter().filter(|p| p.article == i && !p.reprint).count();
            assert_eq!(originals, 1);
        }
    }

    #[test]
    fn scoring_counts_pairs() {
        let page = |article, simhash, minute| Analyzed {
            article,
            published: Utc.with_ymd_and_hms(2026, 5, 1, 1, minute, 0).unwrap(),
            simhash,
            simhash_pairs: simhash,
            fingerprinted: true,
        };
        // Article 0: two pages 1 bit apart; article 1: one page 1 bit from
        // article 0's first, and one far away.
        let pages = [
            page(0, 0b0, 0),
            page(0, 0b1, 1),
            page(1, 0b10, 2),
            page(1, u64::MAX, 3),
        ];
        let s = score(
            &pages,
            ReprintThresholds {
                max_distance: 1,
                max_combined: 2,
            },
        );
        // Grouped: {0,1,2} and {3}: pairs (0,1) true, (0,2) and (1,2) false.
        assert_eq!(s.events, 2);
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.recall - 0.5).abs() < 1e-9);
        assert_eq!(
            distance_spread(&pages),
            Spread {
                words_within: 63,
                words_across: 1,
                combined_within: 126,
                combined_across: 2,
            }
        );
    }
}
