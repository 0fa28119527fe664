//! `edgefleet play`: run playbooks against an inventory (or `--syntax-check`, `--list-hosts`, `--list-tasks`).
//!
//! Owns the run's ID ([`crate::runid::RunId`], shared by the journal and the device locks) and asks the transport
//! to lock every device for the run (not in `--check` mode).
//!
//! Every run is journaled (`report::journal`): `--resume last|ID` re-runs the devices an earlier run did not
//! finish ok, with that run's playbooks and inventory unless given again (different playbooks are refused; a
//! different inventory is used as given); every other flag is taken from this command line. `--limit @failed`
//! stands for the devices the last run did not finish ok. `--detailed-exitcode` and `--metrics` are kept by
//! `run.rs`.
//!
//! `--confirm` asks on the terminal before each wave after the first ([`TerminalConfirm`]); without a terminal on
//! stdin it is refused before anything is loaded (exit 5), never left waiting for an answer that cannot come.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::run::{
    apply_shard, load_with, parse_extra_vars, report_options, run_recorded, split_tags,
    ssh_options, JournalPlan, Mode, Record,
};
use crate::cli::PlayArgs;
use crate::error::{AppError, ExitCode};
use crate::executor::{ConfirmWave, RunOptions};
use crate::inventory::{split_host_pattern, Secrets};
use crate::report::{journal, ProgressMode, WaveResult};

/// Run `edgefleet play`.
pub fn run(mut a: PlayArgs) -> Result<ExitCode, AppError> {
    let runs = !a.syntax_check && !a.list_hosts && !a.list_tasks;
    if a.confirm && runs {
        if !std::io::stdin().is_terminal() {
            return Err(AppError::Usage(
                "--confirm asks an operator on the terminal before each wave, but stdin is not a terminal: run it interactively, or leave --confirm out (a play's `rollout:` gates waves without anyone watching)"
                    .into(),
            ));
        }
        // Bars would draw over the question.
        a.out.progress = ProgressMode::Plain;
    }
    crate::vars::secrets::configure(&a.identity);
    let extra_vars = parse_extra_vars(&a.extra_vars)?;
    // Listing hosts or tasks shows structure, not values: it needs no secret (and no age identity).
    let listing = !a.syntax_check && (a.list_hosts || a.list_tasks);
    let secrets = if listing {
        Secrets::NotNeeded
    } else {
        Secrets::Required
    };
    let mode = if a.syntax_check {
        Mode::SyntaxCheck
    } else if a.list_hosts || a.list_tasks {
        Mode::List {
            hosts: a.list_hosts,
            tasks: a.list_tasks,
        }
    } else {
        Mode::Run
    };
    let wants_failed = a
        .inv
        .limit
        .as_deref()
        .is_some_and(|l| split_host_pattern(l).iter().any(|p| p == "@failed"));
    // The journal directory: required to resume; a plain run without one goes on with a warning.
    let runs_dir = match journal::runs_dir() {
        Ok(d) => Some(d),
        Err(e) if a.resume.is_some() || wants_failed => return Err(AppError::Usage(e)),
        Err(e) => {
            if mode == Mode::Run {
                super::print_warning(&format!("{e}; this run keeps no journal"));
            }
            None
        }
    };
    let resumed = match (&a.resume, &runs_dir) {
        (Some(which), Some(dir)) => Some(journal::open(dir, which).map_err(AppError::Usage)?),
        _ => None,
    };
    let playbooks = match &resumed {
        Some(j) if a.playbooks.is_empty() => j.header.playbooks.clone(),
        Some(j) => {
            let given: Vec<PathBuf> = a.playbooks.iter().map(|p| absolute(p)).collect();
            if given != j.header.playbooks {
                return Err(AppError::Usage(format!(
                    "--resume: run {} ran {}, not {}: give the same playbooks, or none to reuse them",
                    j.header.run_id,
                    show(&j.header.playbooks),
                    show(&given)
                )));
            }
            a.playbooks.clone()
        }
        None => a.playbooks.clone(),
    };
    let inventory = match &resumed {
        Some(j) if a.inv.inventory.is_empty() => j.header.inventory.clone(),
        _ => a.inv.inventory.clone(),
    };
    let limit = match (&a.inv.limit, wants_failed, &runs_dir) {
        (Some(l), true, Some(dir)) => match resolve_failed(l, dir)? {
            Some(l) => Some(l),
            None => return Ok(ExitCode::Ok),
        },
        (l, _, _) => l.clone(),
    };
    let mut loaded = load_with(&inventory, limit.as_deref(), &playbooks, None, secrets)?;
    apply_shard(&mut loaded, a.inv.shard);
    if let Some(j) = &resumed {
        let not_ok = j.not_ok();
        let names = loaded.inventory.host_names();
        let known: HashSet<&str> = names.iter().map(String::as_str).collect();
        let gone: Vec<&str> = not_ok
            .iter()
            .map(String::as_str)
            .filter(|h| !known.contains(h))
            .collect();
        if !gone.is_empty() {
            loaded.warnings.push(format!(
                "--resume: {} of run {} not in the inventory now: {}",
                if gone.len() == 1 {
                    "a device"
                } else {
                    "devices"
                },
                j.header.run_id,
                gone.join(", ")
            ));
        }
        let todo: HashSet<String> = not_ok
            .into_iter()
            .filter(|h| loaded.limit.as_ref().is_none_or(|l| l.contains(h)))
            .collect();
        if todo.is_empty() {
            println!(
                "nothing to resume: every device of run {} finished ok{}",
                j.header.run_id,
                if a.inv.limit.is_some() {
                    " (within --limit)"
                } else {
                    ""
                }
            );
            return Ok(ExitCode::Ok);
        }
        loaded.limit = Some(todo);
    }
    let opts = RunOptions {
        check: a.check,
        diff: a.diff,
        forks: a.conn.forks.max(1),
        extra_vars,
        tags: split_tags(&a.tags),
        skip_tags: split_tags(&a.skip_tags),
        limit: loaded.limit.clone(),
        device_timeout: (a.conn.device_timeout > 0)
            .then(|| std::time::Duration::from_secs(a.conn.device_timeout)),
        verbose: a.out.verbose,
        log_commands: a.out.log.is_some() || a.out.verbose >= 3,
        confirm: (a.confirm && runs).then(|| Arc::new(TerminalConfirm) as Arc<dyn ConfirmWave>),
    };
    let names: Vec<String> = playbooks.iter().map(|p| p.display().to_string()).collect();
    let sources = crate::inventory::Inventory::sources_from_env_or(&inventory).unwrap_or_default();
    // One ID per run: the journal's file name and the owner record of every device lock this run takes.
    // `--check` changes nothing, so it neither waits for nor takes a lock.
    let run_id = crate::runid::RunId::generate();
    let mut ssh = ssh_options(&a.conn);
    if !a.check {
        ssh.run_lock = Some(crate::transport::runlock::RunLock::new(
            run_id.as_str(),
            std::time::Duration::from_secs(a.lock_timeout),
        ));
    }
    let record = Record {
        run_id: run_id.to_string(),
        journal: runs_dir.map(|dir| JournalPlan {
            dir,
            playbooks: playbooks.iter().map(|p| absolute(p)).collect(),
            inventory: sources.iter().map(|p| absolute(p)).collect(),
            limit: a.inv.limit.clone(),
            check: a.check,
            argv: argv_without_secrets(std::env::args_os()),
        }),
        metrics: a.metrics.clone(),
        detailed_exitcode: a.detailed_exitcode,
    };
    run_recorded(
        &loaded,
        opts,
        &report_options(&a.out),
        ssh,
        mode,
        &names,
        None,
        &record,
    )
    .map(|(code, _)| code)
}

/// `--limit` with `@failed` replaced by the last run's retry file (the devices it did not finish ok). `None`
/// when that leaves nothing to run (the last run was all ok and no other pattern adds devices).
/// `--confirm`: the finished wave's summary and a yes/no question on stderr, the answer from stdin (a terminal:
/// checked before the run). Anything but yes stops the rollout; end of input too.
#[derive(Debug)]
struct TerminalConfirm;

impl ConfirmWave for TerminalConfirm {
    fn confirm(&self, done: &WaveResult, next_hosts: usize) -> bool {
        let mut text = format!(
            "\n{}\n  {} of {} devices changed, {} failed or unhealthy\n",
            crate::report::plain::wave_gate_line(done),
            done.changed,
            done.hosts.len(),
            done.unhealthy.len()
        );
        for u in &done.unhealthy {
            text.push_str(&format!("  {}: {}\n", u.host, u.reasons.join("; ")));
        }
        let question = format!(
            "Start wave {}/{} ({next_hosts} devices)? [y/N] ",
            done.index + 1,
            done.waves
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(crate::redact::redact(&text).as_bytes());
        let stdin = std::io::stdin();
        loop {
            let _ = err.write_all(question.as_bytes());
            let _ = err.flush();
            let mut line = String::new();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            match line.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => return true,
                "" | "n" | "no" => return false,
                _ => {
                    let _ = err.write_all(b"Please answer yes or no.\n");
                }
            }
        }
    }
}

fn resolve_failed(limit: &str, dir: &Path) -> Result<Option<String>, AppError> {
    let j =
        journal::open(dir, "last").map_err(|e| AppError::Usage(format!("--limit @failed: {e}")))?;
    let failed = j.not_ok();
    let retry = if failed.is_empty() {
        None
    } else {
        Some(journal::write_retry(&j).map_err(AppError::Other)?)
    };
    let mut parts = Vec::new();
    for p in split_host_pattern(limit) {
        if p != "@failed" {
            parts.push(p);
        } else if let Some(r) = &retry {
            parts.push(format!("@{}", r.display()));
        }
    }
    // An empty set only counts in a union; with nothing else to add, nothing is selected.
    if retry.is_none() && !parts.iter().any(|p| !p.starts_with(['&', '!'])) {
        println!(
            "nothing to do: every device of the last run ({}) finished ok",
            j.header.run_id
        );
        return Ok(None);
    }
    // Commas separate patterns whatever the file path holds (colons, spaces).
    Ok(Some(parts.join(",")))
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

fn show(ps: &[PathBuf]) -> String {
    ps.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command line for the journal: the values of `-e`/`--extra-vars` (which may hold secrets) are replaced by
/// a placeholder unless they name a file (`@file`); everything passes the secret masker.
fn argv_without_secrets(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<String> {
    const HIDDEN: &str = "<extra vars not recorded>";
    let mut out = Vec::new();
    let mut hide_next = false;
    for a in args {
        let a = a.to_string_lossy().into_owned();
        if hide_next {
            hide_next = false;
            out.push(if a.starts_with('@') { a } else { HIDDEN.into() });
            continue;
        }
        if a == "-e" || a == "--extra-vars" {
            hide_next = true;
            out.push(a);
        } else if let Some(v) = a.strip_prefix("--extra-vars=") {
            out.push(if v.starts_with('@') {
                a.clone()
            } else {
                format!("--extra-vars={HIDDEN}")
            });
        } else if let Some(v) = a.strip_prefix("-e").filter(|_| !a.starts_with("--")) {
            let v = v.strip_prefix('=').unwrap_or(v);
            out.push(if v.starts_with('@') {
                a.clone()
            } else {
                format!("-e{HIDDEN}")
            });
        } else {
            out.push(crate::redact::redact(&a).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_never_reach_the_journal() {
        let args = [
            "edgefleet",
            "play",
            "site.yml",
            "-e",
            "password=hunter2",
            "--extra-vars=token=abc",
            "-ekey=v",
            "-e",
            "@vars.yml",
            "--limit",
            "edge-*",
        ]
        .map(std::ffi::OsString::from);
        let out = argv_without_secrets(args.into_iter());
        let joined = out.join(" ");
        for secret in ["hunter2", "abc", "key=v"] {
            assert!(!joined.contains(secret), "{joined}");
        }
        assert!(joined.contains("-e @vars.yml"), "{joined}");
        assert!(joined.contains("--limit edge-*"), "{joined}");
        assert_eq!(out.len(), 11);
    }
}
