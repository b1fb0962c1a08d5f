//! The `yuqing` binary's library half: the pipeline wiring that runs every
//! role in one process, the roles over Kafka, the bundled demo site, and the
//! config files compiled into the binary. `main.rs` is the command line over
//! it.

pub mod bench;
pub mod demo_site;
pub mod embedded;
pub mod pipeline;
pub mod reprints;
pub mod roles;

pub use pipeline::{Pipeline, PipelineOptions, Summary};
pub use roles::{RoleSet, Roles};
