//! Text normalization before matching and segmentation: full-width forms to
//! half-width, case folding, traditional characters to simplified, and
//! zero-width characters dropped. A second, squeezed view for lexicons also
//! drops filler characters put inside words to dodge filters (`敏*感`,
//! `敏 感`). Both views map every byte back to the original text, so a
//! match can be highlighted where the reader sees it.

use std::ops::Range;

/// A normalized text and, for each of its bytes, where it came from.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    pub text: String,
    /// `origin[i]`: the byte offset in the original text of the character
    /// that byte `i` of `text` came from. Empty when every character kept
    /// its place and byte length (the common case), so offsets are equal.
    origin: Vec<u32>,
    /// Byte length of the original text.
    original_len: usize,
}

/// Characters that carry nothing and are used to break up words.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{ad}' | '\u{180e}'
    )
}

/// Characters put between the characters of a word to dodge a word list.
fn is_filler(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '*' | '.'
                | '·'
                | '・'
                | '•'
                | '_'
                | '-'
                | '~'
                | '#'
                | '@'
                | '/'
                | '\\'
                | '|'
                | '+'
                | '^'
                | '='
                | '\''
                | '"'
                | '`'
                | '×'
                | '、'
        )
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{2ffff}')
}

/// CJK characters that simplified conversion changes on their own, as a
/// bit set over U+3400..U+FAFF. A text without any of them is left alone,
/// which spares the phrase converter on the great majority of texts.
fn traditional(c: char) -> bool {
    static SET: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    const BASE: u32 = 0x3400;
    const END: u32 = 0xfb00;
    let set = SET.get_or_init(|| {
        let mut bits = vec![0u64; ((END - BASE) as usize).div_ceil(64)];
        let mut buf = String::with_capacity(4);
        for cp in BASE..END {
            let Some(ch) = char::from_u32(cp) else {
                continue;
            };
            if !is_han(ch) {
                continue;
            }
            buf.clear();
            buf.push(ch);
            if zhconv::zhconv(&buf, zhconv::Variant::ZhHans) != buf {
                let i = (cp - BASE) as usize;
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        bits
    });
    let cp = c as u32;
    if !(BASE..END).contains(&cp) {
        // Beyond the BMP's common blocks: rare, let the converter decide.
        return cp >= 0x20000;
    }
    let i = (cp - BASE) as usize;
    set[i / 64] >> (i % 64) & 1 == 1
}

/// Full-width ASCII forms and the ideographic space as their half-width
/// equivalents.
fn half_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

impl Normalized {
    /// Normalizes `original`.
    pub fn new(original: &str) -> Normalized {
        let mut text = String::with_capacity(original.len());
        let mut origin: Vec<u32> = Vec::new();
        // Whether every character so far kept its byte length.
        let mut identity = true;
        let mut has_traditional = false;
        for (i, c) in original.char_indices() {
            if c.is_ascii() {
                if identity {
                    text.push(c.to_ascii_lowercase());
                } else {
                    text.push(c.to_ascii_lowercase());
                    origin.push(i as u32);
                }
                continue;
            }
            // Han characters have no case and no width variant: the bulk of
            // a Chinese text takes this path.
            if is_han(c) {
                has_traditional |= traditional(c);
                text.push(c);
                if !identity {
                    origin.extend(std::iter::repeat_n(i as u32, c.len_utf8()));
                }
                continue;
            }
            if is_invisible(c) {
                if identity {
                    identity = false;
                    origin.extend(0..text.len() as u32);
                }
                continue;
            }
            let h = half_width(c);
            has_traditional |= is_han(h) && traditional(h);
            let mut lower = h.to_lowercase();
            let single = lower.len() == 1;
            if identity && single {
                let l = lower.next().expect("one character");
                if l.len_utf8() == c.len_utf8() {
                    text.push(l);
                    continue;
                }
                identity = false;
                origin.extend(0..text.len() as u32);
                text.push(l);
                origin.extend(std::iter::repeat_n(i as u32, l.len_utf8()));
                continue;
            }
            if identity {
                identity = false;
                origin.extend(0..text.len() as u32);
            }
            for l in lower {
                text.push(l);
                origin.extend(std::iter::repeat_n(i as u32, l.len_utf8()));
            }
        }
        let mut n = Normalized {
            text,
            origin,
            original_len: original.len(),
        };
        // Only a text with a traditional character is converted; the
        // converter then works by phrase over the whole text.
        if has_traditional {
            n.simplify();
        }
        n
    }

    fn is_identity(&self) -> bool {
        self.origin.is_empty() && self.text.len() == self.original_len
    }

    /// The full origin map, built when a change of layout needs it.
    fn origin_map(&self) -> Vec<u32> {
        if self.origin.is_empty() {
            (0..self.text.len() as u32).collect()
        } else {
            self.origin.clone()
        }
    }

    /// Converts traditional characters to simplified. Conversion is by
    /// phrase, so a few phrases change length; those clauses map each of
    /// their characters to the start of the clause.
    fn simplify(&mut self) {
        let converted = zhconv::zhconv(&self.text, zhconv::Variant::ZhHans);
        if converted == self.text {
            return;
        }
        let same_layout = converted.len() == self.text.len()
            && converted
                .chars()
                .zip(self.text.chars())
                .all(|(a, b)| a.len_utf8() == b.len_utf8());
        if same_layout {
            self.text = converted;
            return;
        }
        let old_origin = self.origin_map();
        let before = self.text.chars().count();
        let after = converted.chars().count();
        if before == after {
            let mut origin = Vec::with_capacity(converted.len());
            let mut old = self.text.char_indices();
            for c in converted.chars() {
                let (i, _) = old.next().expect("same number of characters");
                origin.extend(std::iter::repeat_n(old_origin[i], c.len_utf8()));
            }
            self.text = converted;
            self.origin = origin;
            return;
        }
        // Clause by clause: most keep their length.
        let mut text = String::with_capacity(converted.len());
        let mut origin = Vec::with_capacity(converted.len());
        let mut start = 0;
        let bytes = self.text.as_str();
        let clause = |range: Range<usize>, text: &mut String, origin: &mut Vec<u32>| {
            let part = &bytes[range.clone()];
            let conv = zhconv::zhconv(part, zhconv::Variant::ZhHans);
            if conv.chars().count() == part.chars().count() {
                let mut old = part.char_indices();
                for c in conv.chars() {
                    let (i, _) = old.next().expect("same number of characters");
                    origin.extend(std::iter::repeat_n(
                        old_origin[range.start + i],
                        c.len_utf8(),
                    ));
                    text.push(c);
                }
            } else {
                let at = old_origin[range.start];
                for c in conv.chars() {
                    origin.extend(std::iter::repeat_n(at, c.len_utf8()));
                    text.push(c);
                }
            }
        };
        for (i, c) in bytes.char_indices() {
            if !is_han(c) && !c.is_alphanumeric() {
                clause(start..i + c.len_utf8(), &mut text, &mut origin);
                start = i + c.len_utf8();
            }
        }
        if start < bytes.len() {
            clause(start..bytes.len(), &mut text, &mut origin);
        }
        self.text = text;
        self.origin = origin;
    }

    /// The original byte offset of normalized byte `i`.
    pub fn original_offset(&self, i: usize) -> usize {
        if i >= self.text.len() {
            self.original_len
        } else if self.origin.is_empty() {
            i
        } else {
            self.origin[i] as usize
        }
    }

    /// The original byte range of the normalized byte range `range`.
    pub fn original_range(&self, range: Range<usize>) -> Range<usize> {
        if self.is_identity() {
            return range.start.min(self.original_len)..range.end.min(self.original_len);
        }
        let start = self.original_offset(range.start);
        let end = if range.end >= self.text.len() {
            self.original_len
        } else {
            // The end is where the next kept character starts, so
            // characters dropped right after the range fall inside it
            // ([`Normalized::original_span`] leaves them out).
            let last = self.text[..range.end]
                .char_indices()
                .next_back()
                .map_or(range.end, |(i, _)| i);
            self.original_offset(range.end)
                .max(self.original_offset(last))
        };
        start..end.max(start)
    }

    /// The published characters that normalized bytes `range` came from,
    /// exactly: from the first one's start to the last one's end, so
    /// characters dropped right after the range are not in it. `original`
    /// is the text this was normalized from.
    pub fn original_span(&self, original: &str, range: Range<usize>) -> Range<usize> {
        let start = self.original_offset(range.start).min(original.len());
        let last = self
            .text
            .get(..range.end)
            .and_then(|t| t.char_indices().next_back())
            .map_or(range.start, |(i, _)| i.max(range.start));
        let last = self.original_offset(last).min(original.len());
        let end = last
            + original
                .get(last..)
                .and_then(|t| t.chars().next())
                .map_or(0, char::len_utf8);
        start..end.max(start)
    }

    /// This text without filler characters between two Han characters
    /// (`敏*感`, `敏 感`, `敏.感` become `敏感`), for lexicon matching, or
    /// `None` when there are none. Its map still points into the original
    /// text.
    pub fn squeezed(&self) -> Option<Normalized> {
        // Most texts have nothing to squeeze: check before building.
        let mut prev_han = false;
        let mut in_run = false;
        let mut needed = false;
        for c in self.text.chars() {
            if is_han(c) {
                if in_run {
                    needed = true;
                    break;
                }
                prev_han = true;
            } else if prev_han && is_filler(c) {
                in_run = true;
            } else {
                prev_han = false;
                in_run = false;
            }
        }
        if !needed {
            return None;
        }
        let mut text = String::with_capacity(self.text.len());
        let mut origin = Vec::with_capacity(self.text.len());
        let chars: Vec<(usize, char)> = self.text.char_indices().collect();
        let mut k = 0;
        let mut prev_han = false;
        while k < chars.len() {
            let (i, c) = chars[k];
            if prev_han && is_filler(c) {
                // Skip a run of fillers only if a Han character follows.
                let mut j = k;
                while j < chars.len() && is_filler(chars[j].1) {
                    j += 1;
                }
                if j < chars.len() && is_han(chars[j].1) {
                    k = j;
                    continue;
                }
            }
            text.push(c);
            for b in i..i + c.len_utf8() {
                origin.push(self.original_offset(b) as u32);
            }
            prev_han = is_han(c);
            k += 1;
        }
        Some(Normalized {
            text,
            origin,
            original_len: self.original_len,
        })
    }

    /// [`Normalized::squeezed`], or this text when nothing is squeezed.
    pub fn squeezed_text(&self) -> std::borrow::Cow<'_, str> {
        match self.squeezed() {
            Some(s) => std::borrow::Cow::Owned(s.text),
            None => std::borrow::Cow::Borrowed(&self.text),
        }
    }
}

/// The normalized form of a rule term or lexicon word.
pub fn normalize(s: &str) -> String {
    Normalized::new(s).text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_case_and_traditional() {
        let n = Normalized::new("ＡＢＣ　Covid－１９ 這間酒店環境");
        assert_eq!(n.text, "abc covid-19 这间酒店环境");
        let i = n.text.find("酒店").unwrap();
        let r = n.original_range(i..i + "酒店".len());
        assert_eq!(&"ＡＢＣ　Covid－１９ 這間酒店環境"[r], "酒店");
        let i = n.text.find("环境").unwrap();
        let r = n.original_range(i..i + "环境".len());
        assert_eq!(&"ＡＢＣ　Covid－１９ 這間酒店環境"[r], "環境");
    }

    #[test]
    fn zero_width_characters_vanish_and_offsets_skip_them() {
        let original = "敏\u{200b}感词";
        let n = Normalized::new(original);
        assert_eq!(n.text, "敏感词");
        let r = n.original_range(0.."敏感".len());
        assert_eq!(&original[r], "敏\u{200b}感");
    }

    #[test]
    fn squeezed_view_drops_fillers_inside_han_words_only() {
        for (input, want) in [
            ("敏*感", "敏感"),
            ("敏 感", "敏感"),
            ("敏  . 感词", "敏感词"),
            ("敏·感", "敏感"),
            ("a b", "a b"),
            ("敏 a", "敏 a"),
            ("结尾 ", "结尾 "),
        ] {
            assert_eq!(Normalized::new(input).squeezed_text(), want, "{input}");
        }
        let original = "这是敏 * 感内容";
        let s = Normalized::new(original).squeezed().unwrap();
        let i = s.text.find("敏感").unwrap();
        assert_eq!(&original[s.original_range(i..i + "敏感".len())], "敏 * 感");
    }

    #[test]
    fn a_phrase_that_changes_length_still_maps_into_its_clause() {
        // Whatever zhconv does with a phrase, every normalized byte maps to
        // a character boundary of the original.
        let original = "測試文字，乾隆皇帝。後來的事情";
        let n = Normalized::new(original);
        for (i, _) in n.text.char_indices() {
            assert!(original.is_char_boundary(n.original_offset(i)));
        }
        assert!(n.text.contains("测试文字"));
    }
}
