//! Lexicon files: weighted word lists (sensitive words, risk words) and
//! allow-lists whose entries cancel a hit inside them.
//!
//! One entry a line: `word<TAB>weight<TAB>category`, where weight (0-100,
//! default 10) and category (default: the file's name) may be left out and
//! spaces may stand for tabs. Blank lines and lines starting with `#` are
//! skipped. An allow-list has one phrase a line.

use std::path::Path;

use crate::error::ConfigError;

/// One word of a lexicon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexiconEntry {
    pub word: String,
    pub weight: u32,
    pub category: String,
}

const DEFAULT_WEIGHT: u32 = 10;

/// The lines of a word list that hold an entry, each with the byte offset
/// where it starts: blank lines, `#` comments and a byte-order mark left
/// out, line ends trimmed.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').filter_map(move |line| {
        let start = offset;
        offset += line.len();
        let content = line
            .trim_end_matches(['\n', '\r'])
            .trim_start_matches('\u{feff}');
        let start = start + (line.len() - line.trim_start_matches('\u{feff}').len());
        let trimmed = content.trim();
        (!trimmed.is_empty() && !trimmed.starts_with('#')).then_some((start, content))
    })
}

/// Parses a lexicon file; a bad line is reported and left out.
pub(crate) fn parse_lexicon(file: &Path, text: &str) -> (Vec<LexiconEntry>, Vec<ConfigError>) {
    let category = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (start, content) in lines(text) {
        // Where tabs separate fields, only tabs do, so an entry may hold
        // spaces (`falun gong`); otherwise spaces do (a stray tab at the
        // end of `爆炸 40` separates nothing).
        let tab_fields = content.split('\t').filter(|f| !f.trim().is_empty()).count();
        let separators: &[char] = if tab_fields >= 2 {
            &['\t']
        } else {
            &['\t', ' ', '\u{3000}']
        };
        let mut fields = content
            .split(separators)
            .map(str::trim)
            .filter(|f| !f.is_empty());
        let word = fields.next().unwrap_or_default().to_string();
        let weight = match fields.next() {
            None => DEFAULT_WEIGHT,
            Some(w) => match w.parse::<u32>() {
                Ok(n) if n <= 100 => n,
                _ => {
                    let at = start + content.find(w).unwrap_or(0);
                    errors.push(
                        ConfigError::new(
                            file,
                            format!("weight `{w}` of `{word}` is not a number from 0 to 100; the line is left out"),
                        )
                        .at_offset(text, at),
                    );
                    continue;
                }
            },
        };
        let category = fields
            .next()
            .map_or_else(|| category.clone(), str::to_string);
        entries.push(LexiconEntry {
            word,
            weight,
            category,
        });
    }
    (entries, errors)
}

/// One word of a user dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWord {
    pub word: String,
    /// jieba's frequency; without one, the segmenter picks a frequency
    /// that keeps the word whole.
    pub freq: Option<usize>,
}

/// Parses a user dictionary in jieba's format: `word [frequency] [tag]` a
/// line, separated by spaces or tabs. A bad frequency is reported and its
/// line left out.
pub(crate) fn parse_user_dict(file: &Path, text: &str) -> (Vec<UserWord>, Vec<ConfigError>) {
    let mut words = Vec::new();
    let mut errors = Vec::new();
    for (start, content) in lines(text) {
        let mut fields = content.trim().split([' ', '\t']).filter(|f| !f.is_empty());
        let word = fields.next().unwrap_or_default().to_string();
        let freq = match fields.next() {
            None => None,
            // `word tag`, as jieba takes it: the frequency left out.
            Some(f) if f.chars().all(|c| c.is_ascii_alphabetic()) => None,
            // jieba sums frequencies; u32 keeps the sum far from overflow.
            Some(f) => match f.parse::<u32>() {
                Ok(n) => Some(n as usize),
                Err(_) => {
                    let at = start + content.find(f).unwrap_or(0);
                    errors.push(
                        ConfigError::new(
                            file,
                            format!("frequency `{f}` of `{word}` is not a whole number below 2^32; the line is left out"),
                        )
                        .at_offset(text, at),
                    );
                    continue;
                }
            },
        };
        words.push(UserWord { word, freq });
    }
    (words, errors)
}

/// Parses an allow-list: one phrase a line.
pub(crate) fn parse_allow(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_defaults_comments_and_bad_weights() {
        let text = "# 示例\n爆炸\t40\t安全\n上访 30\n维权\n\n坍塌\tmany\n";
        let (entries, errors) = parse_lexicon(Path::new("risk.txt"), text);
        assert_eq!(
            entries,
            vec![
                LexiconEntry {
                    word: "爆炸".into(),
                    weight: 40,
                    category: "安全".into()
                },
                LexiconEntry {
                    word: "上访".into(),
                    weight: 30,
                    category: "risk".into()
                },
                LexiconEntry {
                    word: "维权".into(),
                    weight: 10,
                    category: "risk".into()
                },
            ]
        );
        assert_eq!(errors.len(), 1);
        let e = errors[0].to_string();
        assert!(e.starts_with("risk.txt:6:4: weight `many`"), "{e}");
        assert_eq!(parse_allow("# x\n爆炸新闻\n\n"), vec!["爆炸新闻"]);
    }

    #[test]
    fn tab_separated_entries_may_hold_spaces() {
        let (entries, errors) =
            parse_lexicon(Path::new("x.txt"), "falun gong\t50\tqigong\n爆炸 40\t\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(entries[0].word, "falun gong");
        assert_eq!(
            (entries[0].weight, entries[0].category.as_str()),
            (50, "qigong")
        );
        assert_eq!((entries[1].word.as_str(), entries[1].weight), ("爆炸", 40));
    }

    #[test]
    fn user_dictionaries_read_jieba_lines_and_name_bad_frequencies() {
        let text = "\u{feff}# 游戏\n和平精英 2000 nz\n王者荣耀\n\n青山区\t9x\n\u{3000}凯特琳 nz\n临江 99999999999\n";
        let (words, errors) = parse_user_dict(Path::new("dict.txt"), text);
        assert_eq!(
            words,
            vec![
                UserWord {
                    word: "和平精英".into(),
                    freq: Some(2000)
                },
                UserWord {
                    word: "王者荣耀".into(),
                    freq: None
                },
                UserWord {
                    word: "凯特琳".into(),
                    freq: None
                },
            ]
        );
        assert_eq!(errors.len(), 2);
        let e = errors[0].to_string();
        assert!(e.starts_with("dict.txt:5:5: frequency `9x`"), "{e}");
        let e = errors[1].to_string();
        assert!(
            e.starts_with("dict.txt:7:4: frequency `99999999999`"),
            "{e}"
        );
    }
}
