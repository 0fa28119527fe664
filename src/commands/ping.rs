//! `edgefleet ping`: connect, authenticate and run `true` on every device (the floor of every run), then print
//! the connect+auth latency distribution.

use std::sync::Arc;

use super::run::{load_with, report_options, run_loaded, ssh_options, Mode};
use crate::cli::PingArgs;
use crate::error::{AppError, ExitCode};
use crate::executor::RunOptions;
use crate::inventory::Secrets;

const PING_PLAYBOOK: &str =
    "- name: ping\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: ping\n      ping:\n";

/// Run `edgefleet ping`.
pub fn run(a: PingArgs) -> Result<ExitCode, AppError> {
    crate::vars::secrets::configure(&a.identity);
    let here = std::env::current_dir().unwrap_or_default().join("<ping>");
    let mut loaded = load_with(
        &a.inv.inventory,
        a.inv.limit.as_deref(),
        &[],
        Some((PING_PLAYBOOK, &here)),
        // A connection needs no secret, unless the inventory keeps connection variables in encrypted files:
        // decrypt when an identity can, else go on without them (with a warning naming the files).
        Secrets::IfAvailable,
    )?;
    super::run::apply_shard(&mut loaded, a.inv.shard);
    let opts = RunOptions {
        forks: a.conn.forks.max(1),
        limit: loaded.limit.clone(),
        device_timeout: (a.conn.device_timeout > 0)
            .then(|| std::time::Duration::from_secs(a.conn.device_timeout)),
        verbose: a.out.verbose,
        log_commands: a.out.log.is_some() || a.out.verbose >= 3,
        ..RunOptions::default()
    };
    let rec = Arc::new(crate::report::Recorder::default());
    let (code, _) = run_loaded(
        &loaded,
        opts,
        &report_options(&a.out),
        ssh_options(&a.conn),
        Mode::Run,
        &["ping".into()],
        Some(rec.clone()),
    )?;
    let mut times: Vec<u128> = rec
        .events()
        .iter()
        .filter_map(|e| match e {
            crate::report::Event::HostConnected { elapsed, .. } => Some(elapsed.as_millis()),
            _ => None,
        })
        .collect();
    times.sort_unstable();
    if !times.is_empty() && a.out.output == crate::report::OutputFormat::Text {
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "connect+auth: n={} min={}ms p50={}ms p90={}ms p99={}ms max={}ms",
            times.len(),
            times[0],
            pct(0.5),
            pct(0.9),
            pct(0.99),
            times[times.len() - 1]
        );
    }
    Ok(code)
}
