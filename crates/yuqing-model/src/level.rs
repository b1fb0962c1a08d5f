use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Alert level, ordered from the least to the most severe, as in the national
/// emergency classification: 蓝 IV < 黄 III < 橙 II < 红 I.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Blue,
    Yellow,
    Orange,
    Red,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Blue, Level::Yellow, Level::Orange, Level::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Blue => "blue",
            Level::Yellow => "yellow",
            Level::Orange => "orange",
            Level::Red => "red",
        }
    }

    /// The Chinese name shown to officers and in reports.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Blue => "蓝色",
            Level::Yellow => "黄色",
            Level::Orange => "橙色",
            Level::Red => "红色",
        }
    }

    /// Roman numeral grade: red is I (特别重大), blue is IV (一般).
    pub fn grade(self) -> &'static str {
        match self {
            Level::Blue => "IV",
            Level::Yellow => "III",
            Level::Orange => "II",
            Level::Red => "I",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level `{0}`: must be one of blue, yellow, orange, red")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blue" | "蓝" | "蓝色" | "iv" => Ok(Level::Blue),
            "yellow" | "黄" | "黄色" | "iii" => Ok(Level::Yellow),
            "orange" | "橙" | "橙色" | "ii" => Ok(Level::Orange),
            "red" | "红" | "红色" | "i" => Ok(Level::Red),
            _ => Err(ParseLevelError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_blue_to_red() {
        assert!(Level::Blue < Level::Yellow);
        assert!(Level::Yellow < Level::Orange);
        assert!(Level::Orange < Level::Red);
    }

    #[test]
    fn parses_english_chinese_and_grades() {
        assert_eq!("Red".parse::<Level>(), Ok(Level::Red));
        assert_eq!("橙色".parse::<Level>(), Ok(Level::Orange));
        assert_eq!("iii".parse::<Level>(), Ok(Level::Yellow));
        assert!("purple".parse::<Level>().is_err());
    }
}
