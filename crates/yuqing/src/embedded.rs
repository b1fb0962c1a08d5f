//! Config files compiled into the binary, so `yuqing demo` works from any
//! directory and `yuqing run` has its default without a checkout.

/// `(relative path, contents)` of every bundled config file.
pub static FILES: &[(&str, &str)] = &[
    (
        "config/default.toml",
        include_str!("../../../config/default.toml"),
    ),
    (
        "config/demo.toml",
        include_str!("../../../config/demo.toml"),
    ),
    (
        "config/rules/safety.toml",
        include_str!("../../../config/rules/safety.toml"),
    ),
    (
        "config/rules/livelihood.toml",
        include_str!("../../../config/rules/livelihood.toml"),
    ),
    (
        "config/rules/environment.toml",
        include_str!("../../../config/rules/environment.toml"),
    ),
];

pub const DEMO: &str = "config/demo.toml";
pub const DEFAULT: &str = "config/default.toml";
