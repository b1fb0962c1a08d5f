//! `yuqing`: the command line. Each subcommand is glue over the library
//! crates; see README.md for the contract.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
