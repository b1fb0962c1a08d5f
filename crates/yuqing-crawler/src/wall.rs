//! Recognising a page that is not content but a refusal: a captcha, a
//! login wall, an anti-bot interstitial. Sites serve these with status 200,
//! so only the page itself tells.

/// Visible characters below which a page can be a wall: an anti-bot or
/// login page is little more than its form and its notice.
const WALL_TEXT: usize = 600;

/// Visible characters below which a page that names an anti-bot service or
/// a login requirement can be a wall.
const NOTICE_TEXT: usize = 3000;

/// Why a page looks like a wall, if it does. Words a news story can use
/// (验证码, a login form in the page's header) count only on a page with
/// almost no text: a short story about 验证码诈骗 is a story.
pub fn detect_wall(html: &str) -> Option<&'static str> {
    let lower = html.to_lowercase();
    const CAPTCHA: &[&str] = &[
        "验证码",
        "安全验证",
        "人机验证",
        "访问验证",
        "滑动验证",
        "captcha",
    ];
    const CHALLENGE: &[&str] = &["cf-chl", "just a moment...", "are you a robot"];
    const LOGIN: &[&str] = &[
        "请先登录",
        "登录后查看",
        "登录后才能",
        "您需要登录",
        "please log in",
        "sign in to continue",
    ];
    let text_len = visible_len(&lower);
    let said =
        |words: &[&str], under: usize| text_len < under && words.iter().any(|k| lower.contains(k));
    if said(CAPTCHA, WALL_TEXT) || said(CHALLENGE, NOTICE_TEXT) {
        return Some("captcha page");
    }
    let has_password = lower.contains("type=\"password\"")
        || lower.contains("type='password'")
        || lower.contains("type=password");
    if said(LOGIN, NOTICE_TEXT) || (text_len < WALL_TEXT && has_password) {
        return Some("login wall");
    }
    None
}

/// Rough length of the text outside tags, comments, scripts and styles
/// (an anti-bot page carries kilobytes of script and a line of text).
/// `html` is lower-cased already.
fn visible_len(html: &str) -> usize {
    let mut n = 0;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        n += rest[..lt].chars().filter(|c| !c.is_whitespace()).count();
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            match rest[4..].find("-->") {
                Some(at) => rest = &rest[4 + at + 3..],
                None => return n,
            }
            continue;
        }
        let skip_to = if rest.starts_with("<script") {
            Some("</script")
        } else if rest.starts_with("<style") {
            Some("</style")
        } else {
            None
        };
        if let Some(end) = skip_to
            && let Some(at) = rest[1..].find(end)
        {
            rest = &rest[1 + at + end.len()..];
        }
        match rest.find('>') {
            Some(gt) => rest = &rest[gt + 1..],
            None => return n,
        }
    }
    n + rest.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walls_and_articles() {
        assert_eq!(
            detect_wall(
                "<html><body><form><input name=u><input type=\"password\" name=p></form>请先登录</body></html>"
            ),
            Some("login wall")
        );
        assert_eq!(
            detect_wall("<title>安全验证</title><div>请完成下方验证码</div>"),
            Some("captcha page")
        );
        let article = format!(
            "<article>{}关于验证码的新闻报道。</article>",
            "正文内容很长。".repeat(600)
        );
        assert_eq!(detect_wall(&article), None);
        // A short story about verification-code fraud, on a portal with a
        // login box in its header, is a story.
        let short = format!(
            "<html><head><title>警惕“验证码”诈骗 - 江州新闻网</title></head><body>\
             <form class=\"top-login\"><input name=u><input type=\"password\" name=p></form>\
             <article><p>{}</p></article></body></html>",
            "近期多名市民接到冒充客服的电话，对方以退款为由索要手机验证码，警方提醒切勿泄露。"
                .repeat(20)
        );
        assert_eq!(detect_wall(&short), None);
        // The same words make a wall of a page with nothing else on it,
        // however much script and style it carries.
        assert_eq!(
            detect_wall("<body><p>请输入验证码</p><input name=code></body>"),
            Some("captcha page")
        );
        let slider = format!(
            "<html><head><style>{}</style><script>{}</script><!-- {} --></head>\
             <body><div id=nc>请拖动滑块完成验证码校验</div></body></html>",
            ".nc{width:300px}".repeat(200),
            "var a = '<b>' + 1;".repeat(300),
            "x".repeat(3000)
        );
        assert_eq!(detect_wall(&slider), Some("captcha page"));
        assert_eq!(visible_len("<p>ab c</p><script>x < y</script>d"), 4);
        assert_eq!(visible_len("a<!-- <b> -->bc<i>d</i>"), 4);
        assert_eq!(
            detect_wall(&format!(
                "<title>Just a moment...</title>{}",
                "x".repeat(2000)
            )),
            Some("captcha page")
        );
        assert_eq!(
            detect_wall("<rss version=\"2.0\"><channel></channel></rss>"),
            None
        );
    }
}
