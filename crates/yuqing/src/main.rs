//! `yuqing`: the command line. Each subcommand is glue over the library
//! crates; see README.md for the contract.

mod cli;
mod logins;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
