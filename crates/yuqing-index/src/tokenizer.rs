use tantivy::tokenizer::{PreTokenizedStream, PreTokenizedString, Token, Tokenizer};
use yuqing_analysis::Segmenter;
use yuqing_model::Token as ItemToken;

/// Name the tokenizer is registered under in the index.
pub const TOKENIZER: &str = "yuqing_jieba";

/// A tantivy tokenizer over the analyzer's segmenter, for queries and
/// snippets. Documents arrive pre-tokenized through [`pre_tokenized`].
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

/// The index form of an analyzer segmentation: lower-cased terms with
/// positions, offsets into the original text.
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
                text: t.text.to_lowercase(),
                position_length: 1,
            })
            .collect(),
    }
}
