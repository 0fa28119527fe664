//! Commands: turn parsed command-line arguments into actions and an exit code.
//!
//! Owns the top-level flow of each subcommand and the single place where errors become exit codes. It must not
//! contain domain logic: it calls the loaders, the executor, the lab and the vault.

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{AppError, ExitCode};

/// Parse `args` (including argv\[0\]) and run the command; returns the exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::Ok
                }
                _ => ExitCode::BadOptions,
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::vars::redact::redact(&e.to_string()));
            e.exit_code()
        }
    }
}

/// Run one parsed command.
pub fn run(cli: Cli) -> Result<ExitCode, AppError> {
    match cli.command {
        Command::Inventory(a) => crate::inventory::cli::run(a),
        Command::Lab(a) => crate::lab::cli::run(a),
        Command::Play(_) | Command::Ping(_) | Command::Vault(_) => {
            Err(AppError::Other("not implemented yet".into()))
        }
    }
}
