//! `edgefleet play`: run playbooks against an inventory (or `--syntax-check`, `--list-hosts`, `--list-tasks`).
//! Owns the run's ID ([`crate::runid::RunId`]) and asks the transport to lock every device for the run (not in
//! `--check` mode).

use super::run::{
    load_with, parse_extra_vars, report_options, run_loaded, split_tags, ssh_options, Mode,
};
use crate::cli::PlayArgs;
use crate::error::{AppError, ExitCode};
use crate::executor::RunOptions;
use crate::inventory::Secrets;

/// Run `edgefleet play`.
pub fn run(a: PlayArgs) -> Result<ExitCode, AppError> {
    crate::vars::secrets::configure(&a.identity);
    let extra_vars = parse_extra_vars(&a.extra_vars)?;
    // Listing hosts or tasks shows structure, not values: it needs no secret (and no age identity).
    let listing = !a.syntax_check && (a.list_hosts || a.list_tasks);
    let secrets = if listing {
        Secrets::NotNeeded
    } else {
        Secrets::Required
    };
    let loaded = load_with(
        &a.inv.inventory,
        a.inv.limit.as_deref(),
        &a.playbooks,
        None,
        secrets,
    )?;
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
    };
    let names: Vec<String> = a
        .playbooks
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // One ID per run: the owner record of every device lock this run takes (and the name other records of the
    // run can share). `--check` changes nothing, so it neither waits for nor takes a lock.
    let run_id = crate::runid::RunId::generate();
    let mut ssh = ssh_options(&a.conn);
    if !a.check {
        ssh.run_lock = Some(crate::transport::runlock::RunLock::new(
            run_id.as_str(),
            std::time::Duration::from_secs(a.lock_timeout),
        ));
    }
    run_loaded(
        &loaded,
        opts,
        &report_options(&a.out),
        ssh,
        mode,
        &names,
        None,
    )
    .map(|(code, _)| code)
}
