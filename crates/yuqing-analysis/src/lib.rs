//! Analysis: the stateless stage between the crawler and the sinks. It
//! segments an item's text with jieba (once: the tokens travel with the item
//! to the indexer), evaluates every rule in one automaton pass, scores the
//! item's sensitivity (0-100) and level, and fingerprints it with SimHash so
//! the alerter can group reprints into events.
//!
//! Analysis is a pure function of the item and the config: replaying an item
//! gives the same result, and analyzers scale out as a consumer group.

mod analyzer;
mod automaton;
pub mod events;
pub mod keywords;
pub mod lexicon;
pub mod normalize;
pub mod query;
pub mod rules;
pub mod sentiment;
pub mod simhash;
pub mod spikes;
mod worker;

pub use analyzer::{Analyzer, Segmenter, StageTimes};
pub use rules::{Explanation, MatchDoc, RuleSet};
pub use worker::{AnalyzerMetrics, RAW_KIND, run_analyzer};

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;
