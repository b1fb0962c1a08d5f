//! Recognising a page that is not content but a refusal: a captcha, a
//! login wall, an anti-bot interstitial. Sites serve these with status 200,
//! so only the page itself tells.

/// Why a page looks like a wall, if it does.
pub fn detect_wall(html: &str) -> Option<&'static str> {
    let lower = html.to_lowercase();
    const CAPTCHA: &[&str] = &[
        "验证码",
        "安全验证",
        "人机验证",
        "访问验证",
        "滑动验证",
        "captcha",
        "cf-chl",
        "just a moment...",
        "are you a robot",
    ];
    const LOGIN: &[&str] = &[
        "请先登录",
        "登录后查看",
        "登录后才能",
        "您需要登录",
        "please log in",
        "sign in to continue",
    ];
    // A real article that mentions a captcha is long; a wall is short.
    let text_len = visible_len(&lower);
    if text_len < 3000 && CAPTCHA.iter().any(|k| lower.contains(k)) {
        return Some("captcha page");
    }
    let has_password = lower.contains("type=\"password\"")
        || lower.contains("type='password'")
        || lower.contains("type=password");
    if text_len < 3000 && (LOGIN.iter().any(|k| lower.contains(k)) || has_password) {
        return Some("login wall");
    }
    None
}

/// Rough length of the text outside tags and scripts.
fn visible_len(html: &str) -> usize {
    let mut n = 0;
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && !c.is_whitespace() => n += 1,
            _ => {}
        }
    }
    n
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
        assert_eq!(
            detect_wall("<rss version=\"2.0\"><channel></channel></rss>"),
            None
        );
    }
}
