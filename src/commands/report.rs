//! `edgefleet report merge`: read the JSON reports of a sharded run, merge them (`report::merge`), write one
//! fleet report, and exit with the merged run's exit code (so a CI job or a Kubernetes Job's final step fails
//! when any shard's device did). With `-i INV`, devices of the inventory that no report covers count as failed.

use std::io::Write as _;
use std::path::Path;

use serde_json::Value;

use super::run::{apply_shard, load_with};
use crate::cli::{ReportArgs, ReportCommand, ReportMergeArgs};
use crate::error::{AppError, ExitCode};
use crate::inventory::Secrets;

/// Run `edgefleet report`.
pub fn run(a: ReportArgs) -> Result<ExitCode, AppError> {
    match a.command {
        ReportCommand::Merge(m) => merge(m),
    }
}

fn read(path: &Path) -> Result<(String, Value), AppError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Usage(format!("{name}: cannot read the report: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        AppError::Usage(format!(
            "{name}:{}:{}: not JSON ({e}): give the files written by `--report FILE`",
            e.line(),
            e.column()
        ))
    })?;
    Ok((name, v))
}

fn merge(a: ReportMergeArgs) -> Result<ExitCode, AppError> {
    let reports = a
        .reports
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = if a.inv.inventory.is_empty() {
        None
    } else {
        let mut loaded = load_with(
            &a.inv.inventory,
            a.inv.limit.as_deref(),
            &[],
            None,
            Secrets::NotNeeded,
        )?;
        apply_shard(&mut loaded, a.inv.shard);
        for w in &loaded.warnings {
            super::print_warning(w);
        }
        Some(
            loaded
                .inventory
                .host_names()
                .into_iter()
                .filter(|h| loaded.limit.as_ref().is_none_or(|l| l.contains(h)))
                .collect::<Vec<_>>(),
        )
    };
    let merged = crate::report::merge::merge(&reports, expected.as_deref())
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let mut text = serde_json::to_string_pretty(&merged)
        .map_err(|e| AppError::Other(format!("cannot write the merged report: {e}")))?;
    text.push('\n');
    match &a.output {
        Some(path) => crate::report::journal::write_atomic(path, text.as_bytes()).map_err(|e| {
            AppError::Other(format!(
                "{}: cannot write the merged report: {e}",
                path.display()
            ))
        })?,
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
    Ok(code_of(merged["exit_code"].as_i64().unwrap_or(1)))
}

/// The process exit code for a merged report's `exit_code`.
fn code_of(code: i64) -> ExitCode {
    match code {
        0 => ExitCode::Ok,
        2 => ExitCode::HostFailed,
        3 => ExitCode::Unreachable,
        12 => ExitCode::Changed,
        99 => ExitCode::Interrupted,
        _ => ExitCode::Error,
    }
}
