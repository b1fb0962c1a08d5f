//! Weighted word lists matched in one automaton pass, with allow-lists
//! that cancel a hit inside an allowed phrase (`爆炸` inside `信息爆炸`).
//! Words and text are compared in their squeezed form, so `敏*感` and
//! `敏 感` count as `敏感`.

use std::collections::HashMap;

use yuqing_config::LexiconEntry;
use yuqing_model::{ItemField, LexiconHit, MAX_MARKS, Mark};

use crate::automaton::Automaton;
use crate::normalize::Normalized;

#[derive(Debug)]
struct Word {
    text: String,
    weight: u32,
    category: String,
}

/// The compiled lexicon.
#[derive(Debug, Default)]
pub struct Lexicon {
    /// Patterns `0..words.len()` are words, the rest allowed phrases.
    words: Vec<Word>,
    automaton: Option<Automaton>,
}

impl Lexicon {
    /// Compiles `entries` and `allow`. A word listed twice keeps its highest
    /// weight.
    pub fn new(entries: &[LexiconEntry], allow: &[String]) -> Lexicon {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut words: Vec<Word> = Vec::new();
        for e in entries {
            let text = Normalized::new(&e.word).squeezed_text().into_owned();
            if text.trim().is_empty() {
                continue;
            }
            match index.get(&text) {
                Some(&i) if words[i].weight >= e.weight => {}
                Some(&i) => {
                    words[i].weight = e.weight;
                    words[i].category = e.category.clone();
                }
                None => {
                    index.insert(text.clone(), words.len());
                    words.push(Word {
                        text,
                        weight: e.weight,
                        category: e.category.clone(),
                    });
                }
            }
        }
        let mut allowed: Vec<String> = allow
            .iter()
            .map(|a| Normalized::new(a).squeezed_text().into_owned())
            .filter(|a| !a.trim().is_empty())
            .collect();
        allowed.sort();
        allowed.dedup();
        // A word that is itself an allowed phrase never counts.
        words.retain(|w| allowed.binary_search(&w.text).is_err());
        let patterns: Vec<&str> = words
            .iter()
            .map(|w| w.text.as_str())
            .chain(allowed.iter().map(String::as_str))
            .collect();
        let automaton = if words.is_empty() {
            None
        } else {
            Automaton::new(&patterns)
        };
        Lexicon { words, automaton }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The words found in the squeezed title and text, heaviest first,
    /// marked where they were found in those squeezed texts.
    pub fn scan(&self, title: &str, text: &str) -> Vec<LexiconHit> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        // Words found, as pattern ids with their marks; few per text, so a
        // vector beats a map.
        let mut counted: Vec<(u32, Mark)> = Vec::new();
        let mut found: Vec<(u32, usize, usize)> = Vec::new();
        let mut allowed: Vec<(usize, usize)> = Vec::new();
        let words = self.words.len() as u32;
        for (field, text) in [(ItemField::Title, title), (ItemField::Text, text)] {
            found.clear();
            allowed.clear();
            for (p, start, end) in ac.find_overlapping(text) {
                if p < words {
                    found.push((p, start, end));
                } else {
                    allowed.push((start, end));
                }
            }
            counted.extend(
                found
                    .iter()
                    .filter(|&&(_, s, e)| !allowed.iter().any(|&(a, b)| a <= s && e <= b))
                    .map(|&(p, start, end)| {
                        let mark = Mark {
                            field,
                            start: start as u32,
                            end: end as u32,
                        };
                        (p, mark)
                    }),
            );
        }
        if counted.is_empty() {
            return Vec::new();
        }
        counted.sort_unstable();
        let mut hits: Vec<LexiconHit> = counted
            .chunk_by(|a, b| a.0 == b.0)
            .map(|run| {
                let w = &self.words[run[0].0 as usize];
                LexiconHit {
                    word: w.text.clone(),
                    category: w.category.clone(),
                    weight: w.weight,
                    count: run.len() as u32,
                    marks: run.iter().take(MAX_MARKS).map(|(_, m)| *m).collect(),
                }
            })
            .collect();
        hits.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.word.cmp(&b.word)));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(word: &str, weight: u32) -> LexiconEntry {
        LexiconEntry {
            word: word.into(),
            weight,
            category: "risk".into(),
        }
    }

    fn squeezed(s: &str) -> String {
        Normalized::new(s).squeezed_text().into_owned()
    }

    #[test]
    fn words_fillers_traditional_and_allow_lists() {
        let lex = Lexicon::new(
            &[
                entry("爆炸", 40),
                entry("上访", 30),
                entry("爆炸", 20),
                entry("維權", 25),
            ],
            &["信息爆炸".into()],
        );
        assert_eq!(lex.len(), 3, "a repeated word keeps its highest weight");
        let text = squeezed("工厂爆炸后，村民上 * 访；信息爆炸时代，网友维\u{200b}权");
        let hits = lex.scan("", &text);
        let got: Vec<(&str, u32, u32)> = hits
            .iter()
            .map(|h| (h.word.as_str(), h.weight, h.count))
            .collect();
        assert_eq!(got, vec![("爆炸", 40, 1), ("上访", 30, 1), ("维权", 25, 1)]);
    }

    #[test]
    fn ten_thousand_words_in_one_automaton() {
        let entries: Vec<LexiconEntry> = (0..10_000)
            .map(|i| entry(&format!("词{i:05}"), 1 + i % 100))
            .collect();
        let lex = Lexicon::new(&entries, &[]);
        assert_eq!(lex.len(), 10_000);
        let hits = lex.scan("这里有词00042", "和词09999");
        assert_eq!(hits.len(), 2);
    }
}
