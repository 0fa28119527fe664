//! Loading and running playbooks, shared by `play`, `ping` and `lab run`: load and validate everything (inventory,
//! playbooks, every task's arguments for every host) before any device is contacted, then run, report, and
//! return the exit code. Also the translation of the connection and output flags into the options of the
//! transport and the reporters. For `play`, what a run keeps besides its outputs ([`Record`]): the run journal
//! (first sink of the run, so what any output reports finished is already on disk), the `--metrics` file
//! (written after the report, with the final exit code) and `--detailed-exitcode`'s 12.
//!
//! Warnings found before a run (inventory load, `--limit`, secrets, pre-flight) are kept in order and, once
//! the run is sure to start, emitted as events, so they reach the text output, `--report`, jsonl and `--log`
//! like every warning of the run; when no run follows (`--syntax-check`, `--list-*`, pre-flight errors, load
//! errors) they are printed on stderr instead.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::cli::{ConnectOptions, OutputOptions};
use crate::diag::{Diagnostic, Diagnostics};
use crate::error::{AppError, ExitCode};
use crate::executor::{Executor, ExecutorParts, Refs, RunOptions};
use crate::inventory::{Inventory, Secrets};
use crate::modules::Registry;
use crate::playbook::{LoadCtx, Playbook};
use crate::report::journal::{Journal, JournalHeader, JournalSink};
use crate::report::metrics::{MetricsSink, RunFacts};
use crate::report::{ReportOptions, SharedSink};
use crate::template::Templar;
use crate::transport::ssh::SshOptions;
use crate::transport::Connector;
use crate::vars::Vars;

/// A tokio runtime for commands that talk to devices.
pub fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Other(format!("cannot start the async runtime: {e}")))
}

/// Parse `-e` values: `k=v ...`, a YAML/JSON mapping, or `@file`.
pub fn parse_extra_vars(items: &[String]) -> Result<Vars, AppError> {
    let mut out = Vars::new();
    for item in items {
        let item = item.trim();
        if let Some(file) = item.strip_prefix('@') {
            let path = Path::new(file);
            let v = if path.extension().map(|e| e == "age").unwrap_or(false) {
                crate::vars::secrets::load_vars_file(path)?
            } else {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| AppError::Usage(format!("-e @{file}: cannot read: {e}")))?;
                crate::yaml::parse_value(&text, path)?
            };
            match v {
                Value::Object(m) => out.extend(m),
                Value::Null => {}
                _ => {
                    return Err(AppError::Usage(format!(
                        "-e @{file}: the file must contain a mapping of variables"
                    )))
                }
            }
        } else if item.starts_with('{') {
            let v = crate::yaml::parse_value(item, Path::new("<-e>"))?;
            match v {
                Value::Object(m) => out.extend(m),
                _ => return Err(AppError::Usage(format!("-e {item}: expected a mapping"))),
            }
        } else {
            let kv = crate::playbook::parse_kv(item)
                .map_err(|e| AppError::Usage(format!("-e {item}: {e}")))?;
            out.extend(kv);
        }
    }
    Ok(out)
}

pub fn split_tags(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Everything loaded and validated for a play run.
pub struct Loaded {
    /// The inventory.
    pub inventory: Arc<Inventory>,
    /// The playbooks.
    pub playbooks: Vec<Playbook>,
    /// Modules.
    pub registry: Arc<Registry>,
    /// Templates.
    pub templar: Templar,
    /// Magic variables referenced.
    pub refs: Refs,
    /// Hosts allowed by --limit.
    pub limit: Option<HashSet<String>>,
    /// Warnings found while loading (inventory, `--limit`, secrets), in order, not yet reported.
    pub warnings: Vec<String>,
}

/// Load inventory and playbooks (decrypting the inventory's secrets); report every problem at once.
pub fn load(
    inventory: &[PathBuf],
    limit: Option<&str>,
    playbooks: &[PathBuf],
) -> Result<Loaded, AppError> {
    load_with(inventory, limit, playbooks, None, Secrets::Required)
}

/// Like [`load`], with an optional built-in playbook (text, and the path that names it), decrypting the
/// inventory's age-encrypted vars files only as far as `secrets` says.
pub fn load_with(
    inventory: &[PathBuf],
    limit: Option<&str>,
    playbooks: &[PathBuf],
    builtin: Option<(&str, &Path)>,
    secrets: Secrets,
) -> Result<Loaded, AppError> {
    let mut diags = Diagnostics::new();
    let pb_dirs: Vec<PathBuf> = playbooks
        .iter()
        .filter_map(|p| {
            std::fs::canonicalize(p)
                .ok()
                .and_then(|c| c.parent().map(PathBuf::from))
        })
        .collect();
    let sources =
        Inventory::sources_from_env_or(inventory).map_err(|d| AppError::Usage(d.message))?;
    let inv = match Inventory::load_with(&sources, &pb_dirs, secrets) {
        Ok(i) => Some(i),
        Err(d) => {
            diags.extend(d);
            None
        }
    };
    let registry = Arc::new(Registry::builtin());
    let templar = Templar::new();
    let mut ctx = LoadCtx::new(registry.as_ref(), &templar);
    let mut loaded = Vec::new();
    for p in playbooks {
        if !p.exists() {
            ctx.diags.push(Diagnostic::file(p, "playbook not found"));
            continue;
        }
        if let Some(pb) = crate::playbook::load_playbook(p, &mut ctx) {
            loaded.push(pb);
        }
    }
    if let Some((text, path)) = builtin {
        if let Some(pb) = crate::playbook::load_playbook_text(text, path, &mut ctx) {
            loaded.push(pb);
        }
    }
    diags.extend(std::mem::take(&mut ctx.diags));
    let refs = Refs::scan(ctx.texts.iter().map(String::as_str));
    let mut warnings: Vec<String> = inv
        .as_ref()
        .map(|i| i.warnings().to_vec())
        .unwrap_or_default();
    let Some(inv) = inv else {
        return Err(load_failed(diags, warnings));
    };
    let limit = match limit {
        Some(l) => match inv.select(l) {
            Ok(sel) => {
                warnings.extend(sel.warnings);
                Some(sel.hosts.into_iter().collect())
            }
            Err(d) => {
                diags.push(d);
                None
            }
        },
        None => None,
    };
    warnings.extend(secrets_warnings());
    if !diags.is_empty() {
        return Err(load_failed(diags, warnings));
    }
    Ok(Loaded {
        inventory: Arc::new(inv),
        playbooks: loaded,
        registry,
        templar,
        refs,
        limit,
        warnings,
    })
}

/// Keep only the hosts of `shard` in the run (after --limit): `loaded.limit` becomes the shard's hosts.
pub fn apply_shard(loaded: &mut Loaded, shard: Option<crate::inventory::shard::Shard>) {
    let Some(shard) = shard else {
        return;
    };
    let hosts: HashSet<String> = loaded
        .inventory
        .host_names()
        .into_iter()
        .filter(|h| loaded.limit.as_ref().is_none_or(|l| l.contains(h)))
        .filter(|h| shard.contains(h))
        .collect();
    if hosts.is_empty() {
        loaded.warnings.push(format!(
            "--shard {shard}: no host of this inventory (within --limit) falls in this shard; nothing to do"
        ));
    }
    loaded.limit = Some(hosts);
}

/// Loading failed: no run will report the warnings found so far, so they are printed before the error.
fn load_failed(diags: Diagnostics, warnings: Vec<String>) -> AppError {
    for w in warnings.iter().chain(secrets_warnings().iter()) {
        super::print_warning(w);
    }
    AppError::Load(diags)
}

/// The warnings the secrets loader collected since the last call (e.g. secret values too short to be masked),
/// for the caller to report.
pub(crate) fn secrets_warnings() -> Vec<String> {
    crate::vars::secrets::take_warnings()
}

/// The SSH options the connection flags ask for (everything else at the transport's defaults).
pub fn ssh_options(c: &ConnectOptions) -> SshOptions {
    SshOptions {
        known_hosts: c.known_hosts.clone(),
        host_key_policy: c.host_key_policy,
        ssh_config: c.ssh_config.clone(),
        connect_timeout: std::time::Duration::from_secs(c.connect_timeout.max(1)),
        ..Default::default()
    }
}

/// The reporters' options the output flags ask for.
pub fn report_options(o: &OutputOptions) -> ReportOptions {
    ReportOptions {
        output: o.output,
        report: o.report.clone(),
        log: o.log.clone(),
        progress: o.progress,
        color: o.color,
        verbose: o.verbose,
    }
}

/// The connector for SSH devices (one per run: bastions, agent and known_hosts writers are shared).
fn ssh_connector(opts: SshOptions) -> Arc<dyn Connector> {
    Arc::new(crate::transport::ssh::SshConnector::new(opts))
}

/// Resolves on the second Ctrl-C. The first one only sets `flag`: the run finishes the commands in flight
/// (atomic writes complete or roll back) and starts nothing new; the second one abandons the run.
async fn ctrl_c_twice(flag: Arc<AtomicBool>, sink: SharedSink) {
    if tokio::signal::ctrl_c().await.is_err() {
        return std::future::pending().await;
    }
    flag.store(true, Ordering::SeqCst);
    sink.emit(crate::report::Event::Warning {
        host: None,
        message: "interrupted: finishing the commands in flight (atomic writes complete or roll back), starting nothing new; press Ctrl-C again to abort at once".into(),
    });
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What to do with loaded playbooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Validate only.
    SyntaxCheck,
    /// Print hosts and/or tasks.
    List {
        /// Hosts.
        hosts: bool,
        /// Tasks.
        tasks: bool,
    },
    /// Run.
    Run,
}

/// What a run keeps besides its outputs (`play`'s journal, metrics file and detailed exit code).
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The run id (the journal's name, a label in the metrics file).
    pub run_id: String,
    /// Write the run journal into this directory (see `report::journal`).
    pub journal: Option<JournalPlan>,
    /// `--metrics FILE`.
    pub metrics: Option<PathBuf>,
    /// `--detailed-exitcode`: exit 12 when every device is ok and something changed.
    pub detailed_exitcode: bool,
}

/// What the journal's header says about the run (besides the hosts, which the run computes).
#[derive(Debug, Clone)]
pub struct JournalPlan {
    /// The journal directory.
    pub dir: PathBuf,
    /// The playbooks (absolute).
    pub playbooks: Vec<PathBuf>,
    /// The inventory sources (absolute).
    pub inventory: Vec<PathBuf>,
    /// `--limit` as given.
    pub limit: Option<String>,
    /// Check mode?
    pub check: bool,
    /// The command line, `-e` values left out.
    pub argv: Vec<String>,
}

/// Every device the run sets out to work on: each play's hosts within `--limit`, in play order.
fn run_hosts(loaded: &Loaded) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for play in loaded.playbooks.iter().flat_map(|pb| pb.plays.iter()) {
        let Ok(sel) = loaded.inventory.select(&play.hosts) else {
            continue;
        };
        for h in sel.hosts {
            let allowed = loaded.limit.as_ref().is_none_or(|l| l.contains(&h));
            if allowed && seen.insert(h.clone()) {
                out.push(h);
            }
        }
    }
    out
}

/// Pre-flight every task for every host, then (in `Mode::Run`) run. `extra_sink` also receives the events.
pub fn run_loaded(
    loaded: &Loaded,
    opts: RunOptions,
    out: &ReportOptions,
    ssh: SshOptions,
    mode: Mode,
    names: &[String],
    extra_sink: Option<SharedSink>,
) -> Result<(ExitCode, Option<crate::report::RunSummary>), AppError> {
    run_recorded(
        loaded,
        opts,
        out,
        ssh,
        mode,
        names,
        extra_sink,
        &Record::default(),
    )
}

/// [`run_loaded`], also keeping what `record` asks for. The journal is the first sink of the run, so a device
/// any output reports finished is already fsynced in the journal.
#[allow(clippy::too_many_arguments)]
pub fn run_recorded(
    loaded: &Loaded,
    opts: RunOptions,
    out: &ReportOptions,
    ssh: SshOptions,
    mode: Mode,
    names: &[String],
    extra_sink: Option<SharedSink>,
    record: &Record,
) -> Result<(ExitCode, Option<crate::report::RunSummary>), AppError> {
    let check = opts.check;
    // Extra vars that look like secrets are masked in every output.
    crate::redact::register_value(&Value::Object(
        opts.extra_vars
            .iter()
            .filter(|(k, _)| k.contains("password") || k.contains("secret") || k.contains("key"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ));
    let rt = runtime()?;
    let reporting =
        crate::report::Reporting::new(out).map_err(|e| AppError::Usage(e.to_string()))?;
    let journal = match (&record.journal, mode) {
        (Some(plan), Mode::Run) => Some(Arc::new(
            JournalSink::create(
                &plan.dir,
                &JournalHeader {
                    edgefleet_journal: crate::report::journal::JOURNAL_FORMAT,
                    run_id: record.run_id.clone(),
                    started: String::new(),
                    playbooks: plan.playbooks.clone(),
                    inventory: plan.inventory.clone(),
                    limit: plan.limit.clone(),
                    check: plan.check,
                    hosts: run_hosts(loaded),
                    argv: plan.argv.clone(),
                },
            )
            .map_err(AppError::Other)?,
        )),
        _ => None,
    };
    // A journal of a run that never starts (pre-flight errors) would only mislead `--resume last`.
    let drop_journal = |j: &Option<Arc<JournalSink>>| {
        if let Some(j) = j {
            let _ = std::fs::remove_file(j.path());
        }
    };
    let metrics = record
        .metrics
        .as_ref()
        .map(|_| Arc::new(MetricsSink::new()));
    let mut sinks: Vec<SharedSink> = Vec::new();
    if let Some(j) = &journal {
        sinks.push(j.clone());
    }
    if let Some(m) = &metrics {
        sinks.push(m.clone());
    }
    sinks.push(reporting.sink.clone());
    sinks.extend(extra_sink);
    let sink: SharedSink = if sinks.len() == 1 {
        reporting.sink.clone()
    } else {
        Arc::new(crate::report::Tee(sinks))
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let connector = {
        let _guard = rt.enter();
        ssh_connector(ssh)
    };
    let ex = Executor::new(ExecutorParts {
        inventory: loaded.inventory.clone(),
        registry: loaded.registry.clone(),
        templar: loaded.templar.clone(),
        sink: sink.clone(),
        connector,
        opts,
        interrupted: interrupted.clone(),
        refs: loaded.refs.clone(),
    });
    // Warnings found before the run, in order: the loaders' (and `-e @file`'s secrets), then pre-flight's.
    let mut pending: Vec<String> = loaded.warnings.clone();
    pending.extend(secrets_warnings());
    let print_pending = |pending: &[String]| {
        for w in pending {
            super::print_warning(w);
        }
    };
    if let Mode::List { hosts, tasks } = mode {
        print_pending(&pending);
        print_lists(&ex, loaded, hosts, tasks);
        return Ok((ExitCode::Ok, None));
    }
    let pre = ex.preflight(&loaded.playbooks);
    pending.extend(pre.warnings);
    pending.extend(secrets_warnings());
    if !pre.errors.is_empty() {
        print_pending(&pending);
        drop_journal(&journal);
        return Err(AppError::Load(pre.errors));
    }
    if mode == Mode::SyntaxCheck {
        print_pending(&pending);
        println!(
            "syntax check passed: {} ({} plays)",
            names.join(", "),
            loaded
                .playbooks
                .iter()
                .map(|p| p.plays.len())
                .sum::<usize>()
        );
        return Ok((ExitCode::Ok, None));
    }
    // The run will start: from here on every warning is an event, and reaches every output.
    for message in pending {
        sink.emit(crate::report::Event::Warning {
            host: None,
            message,
        });
    }
    let summary = rt.block_on(async {
        tokio::select! {
            s = ex.run(&loaded.playbooks) => Some(s),
            () = ctrl_c_twice(interrupted.clone(), sink.clone()) => None,
        }
    });
    let Some(summary) = summary else {
        // Abandoned at the second Ctrl-C: whatever is in flight is dropped with the runtime.
        rt.shutdown_background();
        return Err(AppError::Interrupted);
    };
    // Secrets loaded during the run (vars_files) may have left warnings too.
    for message in secrets_warnings() {
        sink.emit(crate::report::Event::Warning {
            host: None,
            message,
        });
    }
    if let Some(j) = &journal {
        if let Err(message) = j.finish() {
            sink.emit(crate::report::Event::Warning {
                host: None,
                message,
            });
        } else if let Err(message) = retry_file(j.path()) {
            sink.emit(crate::report::Event::Warning {
                host: None,
                message,
            });
        }
    }
    let mut code = summary.exit_code();
    if record.detailed_exitcode
        && code == ExitCode::Ok
        && summary.hosts.iter().any(|h| h.changed > 0)
    {
        code = ExitCode::Changed;
    }
    if let Err(e) = reporting.finish(&summary) {
        // The run's own outcome stands; a report that could not be written turns success into an error.
        eprintln!("error: {}", crate::redact::redact(&e.to_string()));
        if matches!(code, ExitCode::Ok | ExitCode::Changed) {
            code = ExitCode::Error;
        }
    }
    if let (Some(m), Some(path)) = (&metrics, &record.metrics) {
        let facts = RunFacts {
            run_id: record.run_id.clone(),
            check,
            duration: summary.duration,
            ended: std::time::SystemTime::now(),
            exit_code: code.code(),
        };
        if let Err(e) = m.write(path, &facts) {
            eprintln!("error: {}", crate::redact::redact(&e));
            if matches!(code, ExitCode::Ok | ExitCode::Changed) {
                code = ExitCode::Error;
            }
        }
    }
    Ok((code, Some(summary)))
}

/// After a run, an Ansible-style retry file beside its journal (`<RUN-ID>.retry`, one device per line) when
/// some device did not finish ok, for `--limit @FILE`.
fn retry_file(journal: &Path) -> Result<(), String> {
    let j = Journal::read(journal)?;
    if !j.not_ok().is_empty() {
        crate::report::journal::write_retry(&j)?;
    }
    Ok(())
}

fn print_lists(ex: &Arc<Executor>, loaded: &Loaded, hosts: bool, tasks: bool) {
    let mut out = std::io::stdout().lock();
    for pb in &loaded.playbooks {
        let _ = writeln!(out, "\nplaybook: {}", crate::diag::display_path(&pb.path));
        for play in &pb.plays {
            let (h, _) = ex.play_hosts(play);
            let _ = writeln!(out, "\n  play: {} (hosts: {})", play.name, play.hosts);
            if hosts {
                let _ = writeln!(out, "    hosts ({}):", h.len());
                for x in &h {
                    let _ = writeln!(out, "      {x}");
                }
            }
            if tasks {
                let _ = writeln!(out, "    tasks:");
                for (_, ts) in play.sections() {
                    list_tasks(&mut out, &ts, 6);
                }
            }
        }
    }
}

fn list_tasks(out: &mut impl Write, ts: &[crate::playbook::Task], indent: usize) {
    for t in ts {
        let tags = if t.tags.is_empty() {
            String::new()
        } else {
            format!("\tTAGS: [{}]", t.tags.join(", "))
        };
        let _ = writeln!(
            out,
            "{:indent$}{}{tags}",
            "",
            t.display_name(),
            indent = indent
        );
        if let crate::playbook::TaskKind::Block {
            block,
            rescue,
            always,
        } = &t.kind
        {
            list_tasks(out, block, indent + 2);
            list_tasks(out, rescue, indent + 2);
            list_tasks(out, always, indent + 2);
        }
    }
}
