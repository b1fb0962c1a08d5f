use tantivy::tokenizer::{PreTokenizedStream, PreTokenizedString, Token, TokenStream, Tokenizer};
use yuqing_analysis::Segmenter;
use yuqing_model::Token as ItemToken;

/// Name the tokenizer is registered under in the index.
pub const TOKENIZER: &str = "yuqing_jieba";

/// A tantivy tokenizer over the analyzer's segmenter, for queries and
/// snippets. Documents arrive as the analyzer's words, through [`joined`].
#[derive(Clone, Debug)]
pub struct JiebaTokenizer {
    segmenter: Segmenter,
}

impl JiebaTokenizer {
    pub fn new(segmenter: Segmenter) -> Self {
        JiebaTokenizer { segmenter }
    }
}

impl Tokenizer for JiebaTokenizer {
    type TokenStream<'a> = PreTokenizedStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        PreTokenizedStream::from(pre_tokenized(text, &self.segmenter.tokens(text)))
    }
}

/// The index form of an analyzer segmentation: its terms (already
/// normalized: lower case, half-width, simplified) with positions and
/// offsets into the original text.
pub fn pre_tokenized(text: &str, tokens: &[ItemToken]) -> PreTokenizedString {
    PreTokenizedString {
        text: text.to_string(),
        tokens: tokens
            .iter()
            .enumerate()
            .map(|(position, t)| Token {
                offset_from: t.start,
                offset_to: t.end,
                position,
                text: t.text.to_string(),
                position_length: 1,
            })
            .collect(),
    }
}

/// Name of the tokenizer of the indexed title and text: it reads the
/// analyzer's words, joined by [`SEPARATOR`].
pub const JOINED: &str = "yuqing_joined";

/// Joins an item's words in the indexed value. The unit separator never
/// occurs inside a word: the analyzer's words are letters and digits.
pub const SEPARATOR: char = '\u{1f}';

/// The indexed value of a segmentation: its words joined by
/// [`SEPARATOR`]. This is how the analyzer's tokens reach the index
/// without segmenting again; tantivy's own pre-tokenized values go through
/// JSON on the way in, which costs more than segmenting.
pub fn joined(tokens: &[ItemToken]) -> String {
    let mut out = String::with_capacity(tokens.iter().map(|t| t.text.len() + 1).sum());
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.push_str(&t.text);
    }
    out
}

/// Splits a [`joined`] value back into its words, one position each.
#[derive(Clone, Debug, Default)]
pub struct JoinedTokenizer;

pub struct JoinedStream<'a> {
    rest: std::str::Split<'a, char>,
    offset: usize,
    token: Token,
}

impl Tokenizer for JoinedTokenizer {
    type TokenStream<'a> = JoinedStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> JoinedStream<'a> {
        JoinedStream {
            rest: text.split(SEPARATOR),
            offset: 0,
            token: Token {
                position: usize::MAX,
                ..Token::default()
            },
        }
    }
}

impl TokenStream for JoinedStream<'_> {
    fn advance(&mut self) -> bool {
        for word in self.rest.by_ref() {
            let start = self.offset;
            self.offset += word.len() + SEPARATOR.len_utf8();
            if word.is_empty() {
                continue;
            }
            self.token.text.clear();
            self.token.text.push_str(word);
            self.token.offset_from = start;
            self.token.offset_to = start + word.len();
            self.token.position = self.token.position.wrapping_add(1);
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_values_split_back_into_consecutive_positions() {
        let tokens: Vec<ItemToken> = ["临江", "暴雨", "2316"]
            .iter()
            .map(|w| ItemToken {
                text: (*w).into(),
                start: 0,
                end: 0,
            })
            .collect();
        let value = joined(&tokens);
        let mut t = JoinedTokenizer;
        let mut s = t.token_stream(&value);
        let mut got = Vec::new();
        while s.advance() {
            got.push((s.token().text.clone(), s.token().position));
        }
        assert_eq!(
            got,
            [("临江".into(), 0), ("暴雨".into(), 1), ("2316".into(), 2)]
        );
        assert_eq!(joined(&[]), "");
        let mut s = t.token_stream("");
        assert!(!s.advance());
    }
}
