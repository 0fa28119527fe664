//! Commands: one file per subcommand, each turning parsed command-line arguments into actions and an exit code.
//!
//! Owns the top-level flow of each subcommand (load and validate everything, then contact devices), the
//! translation from flags to the options of the layers below (`run.rs` holds the load-and-run of playbooks that
//! `play`, `ping` and `lab run` share), and the one place where errors become text and exit codes ([`main`]).
//! It must not contain domain logic: it calls the loaders, the executor, the lab and the vault. Adding a
//! subcommand is one file here plus its clap definition in `cli.rs`.
//!
//! **Warnings.** Loaders and templates return (or collect) warnings; they never print. A command that runs
//! playbooks hands every warning to its reporters as an [`Event::Warning`](crate::report::Event::Warning)
//! (text, `--report`, jsonl and `--log` alike; see `run.rs`). Where there is no run to report (the `inventory`
//! and `vault` commands, `--syntax-check`, `--list-*`, or a run stopped by pre-flight), they go to stderr
//! through `print_warning`, the only place that prints one.

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::diag::Diagnostics;
use crate::error::{AppError, ExitCode};

mod bundle;
mod certs;
mod completions;
mod inventory;
mod lab;
mod lint;
mod man;
mod ping;
mod play;
mod report;
pub mod run;
mod vault;

/// Parse `args` (including argv\[0\]), run the command, print its error if it failed; returns the exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    if args.get(1).is_some_and(|a| a == crate::cli::COMPLETE_HOSTS) {
        return match crate::cli::CompleteHostsArgs::try_parse_from(&args[1..]) {
            Ok(a) => finish(completions::complete_hosts(a)),
            Err(e) => {
                let _ = e.print();
                ExitCode::BadOptions
            }
        };
    }
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
    finish(run(cli))
}

/// The exit code of a command's result, its error printed.
fn finish(result: Result<ExitCode, AppError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", crate::redact::redact(&format_error(&e)));
            e.exit_code()
        }
    }
}

fn format_error(e: &AppError) -> String {
    match e {
        AppError::Load(d) => {
            let n = d.len();
            format!(
                "{}\n\n{n} problem{} found; nothing was contacted.",
                collapse_repeats(d),
                if n == 1 { "" } else { "s" }
            )
        }
        other => format!("error: {other}"),
    }
}

/// The same problem in many files (e.g. 500 host_vars files that cannot be decrypted) is shown three times,
/// then counted.
fn collapse_repeats(d: &Diagnostics) -> String {
    let key = |x: &crate::diag::Diagnostic| x.message.replace(&x.file.display().to_string(), "{}");
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for x in &d.0 {
        *counts.entry(key(x)).or_default() += 1;
    }
    let mut shown: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut kept = Diagnostics::new();
    let mut notes = Vec::new();
    for x in &d.0 {
        let k = key(x);
        let total = counts[&k];
        let seen = shown.entry(k).or_default();
        *seen += 1;
        if total <= 5 || *seen <= 3 {
            kept.push(x.clone());
        } else if *seen == 4 {
            notes.push(format!("... and {} more like the one above", total - 3));
        }
    }
    let mut out = kept.to_string();
    for n in notes {
        out.push_str(&format!("\n{n}"));
    }
    out
}

/// Print a warning on stderr (redacted), for commands that have no reporters.
pub(crate) fn print_warning(message: &str) {
    eprintln!("[WARNING]: {}", crate::redact::redact(message));
}

/// For benchmarks: write this process's peak RSS (VmHWM, kB) to `$EDGEFLEET_PEAK_RSS_FILE`. Measured by the
/// process itself because a parent's `wait4` reports max(parent's RSS at fork, child's): a fork inherits the
/// parent's high-water mark, which hides small children.
pub fn report_peak_rss() {
    let Some(path) = std::env::var_os("EDGEFLEET_PEAK_RSS_FILE") else {
        return;
    };
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            let _ = std::fs::write(path, kb.to_string());
        }
    }
}

/// Run one parsed command.
pub fn run(cli: Cli) -> Result<ExitCode, AppError> {
    match cli.command {
        Command::Inventory(a) => inventory::run(a),
        Command::Play(a) => play::run(a),
        Command::Ping(a) => ping::run(a),
        Command::Vault(a) => vault::run(a),
        Command::Lab(a) => lab::run(a),
        Command::Certs(a) => certs::run(a),
        Command::Bundle(a) => bundle::run(a),
        Command::Lint(a) => lint::run(a),
        Command::Report(a) => report::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    }
}
