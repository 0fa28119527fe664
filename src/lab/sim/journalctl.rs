//! The simulated `journalctl`: prints `journal/<unit>.log` (already in journalctl's short format).
//!
//! Supports `-u/--unit UNIT` (repeatable; units are merged in time order), `--no-pager`, `-n/--lines N`, `-e`,
//! and accepts-and-ignores `--since`, `--until`, `-b`, `-x`, `-o short`, `-f`. It never writes state and must
//! not import another program (unit names come from `units`, the journal from `state`).

use super::program::Io;
use super::state::{journal_lines, State, StateError};
use super::units::canonical;

/// `journalctl ...`.
pub fn run(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let mut units = Vec::new();
    let mut lines: Option<usize> = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let take = |i: &mut usize| -> Option<String> {
            *i += 1;
            args.get(*i).cloned()
        };
        if a == "-u" || a == "--unit" {
            if let Some(u) = take(&mut i) {
                units.push(u);
            }
        } else if let Some(u) = a.strip_prefix("--unit=") {
            units.push(u.to_string());
        } else if let Some(u) = a.strip_prefix("-u").filter(|u| !u.is_empty()) {
            units.push(u.to_string());
        } else if a == "-n" || a == "--lines" {
            lines = take(&mut i).and_then(|n| n.parse().ok());
        } else if let Some(n) = a.strip_prefix("--lines=") {
            lines = n.parse().ok();
        } else if let Some(n) = a.strip_prefix("-n").filter(|n| !n.is_empty()) {
            lines = n.parse().ok();
        } else if a == "--since"
            || a == "--until"
            || a == "-o"
            || a == "--output"
            || a == "-S"
            || a == "-U"
        {
            let _ = take(&mut i);
        } else if a == "-e" || a == "--pager-end" {
            lines.get_or_insert(1000);
        }
        i += 1;
    }
    let canon: Vec<String> = units
        .iter()
        .map(|u| {
            canonical(u).unwrap_or_else(|| u.strip_suffix(".service").unwrap_or(u).to_string())
        })
        .collect();
    let all = journal_lines(&st.env, &canon);
    let shown: Vec<&String> = match lines {
        Some(n) => all.iter().skip(all.len().saturating_sub(n)).collect(),
        None => all.iter().collect(),
    };
    if shown.is_empty() {
        io.outln("-- No entries --");
        return Ok(0);
    }
    for l in shown {
        io.outln(l);
    }
    Ok(0)
}
