//! Commands: turn parsed command-line arguments into actions and an exit code.
//!
//! Owns the top-level flow of each subcommand (load and validate everything, then contact devices) and the
//! single place where errors become exit codes. It must not contain domain logic: it calls the loaders, the
//! executor, the lab and the vault.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use serde_json::Value;

use crate::cli::{Cli, Command, ConnectOptions, PlayArgs};
use crate::diag::{Diagnostic, Diagnostics};
use crate::error::{AppError, ExitCode};
use crate::executor::{Executor, ExecutorParts, Refs, RunOptions};
use crate::inventory::Inventory;
use crate::modules::Registry;
use crate::playbook::{LoadCtx, Playbook};
use crate::report::SharedSink;
use crate::template::Templar;
use crate::transport::Connector;
use crate::vars::Vars;

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
            eprintln!("{}", crate::vars::redact::redact(&format_error(&e)));
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
        Command::Inventory(a) => crate::inventory::cli::run(a),
        Command::Play(a) => play(a),
        Command::Ping(a) => ping(a),
        Command::Vault(a) => crate::vars::vault::run(a),
        Command::Lab(a) => crate::lab::cli::run(a),
    }
}

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
            let kv = crate::playbook::load::parse_kv(item)
                .map_err(|e| AppError::Usage(format!("-e {item}: {e}")))?;
            out.extend(kv);
        }
    }
    Ok(out)
}

fn split_tags(items: &[String]) -> Vec<String> {
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
}

/// Load inventory and playbooks; report every problem at once.
pub fn load(
    inventory: &[PathBuf],
    limit: Option<&str>,
    playbooks: &[PathBuf],
) -> Result<Loaded, AppError> {
    load_with(inventory, limit, playbooks, None)
}

/// Like [`load`], with an optional built-in playbook (text, and the path that names it).
pub fn load_with(
    inventory: &[PathBuf],
    limit: Option<&str>,
    playbooks: &[PathBuf],
    builtin: Option<(&str, &Path)>,
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
    let inv = match Inventory::load(&sources, &pb_dirs) {
        Ok(i) => Some(i),
        Err(d) => {
            diags.extend(d);
            None
        }
    };
    let registry = Arc::new(Registry::builtin());
    let templar = Templar::new();
    let mut ctx = LoadCtx::new(&registry, &templar);
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
    let Some(inv) = inv else {
        return Err(AppError::Load(diags));
    };
    let limit = match limit {
        Some(l) => match inv.select(l) {
            Ok(sel) => {
                for w in &sel.warnings {
                    eprintln!("[WARNING] {w}");
                }
                Some(sel.hosts.into_iter().collect())
            }
            Err(d) => {
                diags.push(d);
                None
            }
        },
        None => None,
    };
    if !diags.is_empty() {
        return Err(AppError::Load(diags));
    }
    Ok(Loaded {
        inventory: Arc::new(inv),
        playbooks: loaded,
        registry,
        templar,
        refs,
        limit,
    })
}

/// The connector for SSH devices (one per run: bastions, agent and known_hosts writers are shared).
pub fn ssh_connector(
    conn: &ConnectOptions,
    sink: SharedSink,
) -> Result<Arc<dyn Connector>, AppError> {
    let opts = crate::transport::ssh::SshOptions::from_cli(conn);
    Ok(Arc::new(SshAdapter {
        inner: crate::transport::ssh::SshConnector::new(opts),
        sink,
    }))
}

/// Adapts the SSH connector to the executor's `Connector`, forwarding its once-per-run warnings as events.
struct SshAdapter {
    inner: crate::transport::ssh::SshConnector,
    sink: SharedSink,
}

#[async_trait::async_trait]
impl Connector for SshAdapter {
    async fn connect(
        &self,
        spec: &crate::transport::ConnSpec,
    ) -> Result<crate::transport::SharedTransport, crate::transport::TransportError> {
        let r = self.inner.connect(spec).await;
        for (host, message) in self.inner.take_warnings() {
            self.sink
                .emit(crate::report::Event::Warning { host, message });
        }
        r
    }
}

fn install_ctrl_c(flag: Arc<AtomicBool>, sink: SharedSink) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            sink.emit(crate::report::Event::Warning {
                host: None,
                message: "interrupted: finishing the commands in flight (atomic writes complete or roll back), starting nothing new; press Ctrl-C again to abort at once".into(),
            });
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(ExitCode::Interrupted.code());
            }
        }
    });
}

fn play(a: PlayArgs) -> Result<ExitCode, AppError> {
    crate::vars::secrets::configure(&a.identity);
    let extra_vars = parse_extra_vars(&a.extra_vars)?;
    let loaded = load(&a.inv.inventory, a.inv.limit.as_deref(), &a.playbooks)?;
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
    run_loaded(&loaded, opts, &a.out, &a.conn, mode, &names, None).map(|(code, _)| code)
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

/// Pre-flight every task for every host, then (in `Mode::Run`) run. `extra_sink` also receives the events.
pub fn run_loaded(
    loaded: &Loaded,
    opts: RunOptions,
    out: &crate::cli::OutputOptions,
    conn: &ConnectOptions,
    mode: Mode,
    names: &[String],
    extra_sink: Option<SharedSink>,
) -> Result<(ExitCode, Option<crate::executor::RunSummary>), AppError> {
    // Extra vars that look like secrets are masked in every output.
    crate::vars::redact::register_value(&Value::Object(
        opts.extra_vars
            .iter()
            .filter(|(k, _)| k.contains("password") || k.contains("secret") || k.contains("key"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ));
    let rt = runtime()?;
    let reporting =
        crate::report::Reporting::new(out).map_err(|e| AppError::Usage(e.to_string()))?;
    let sink: SharedSink = match extra_sink {
        Some(x) => Arc::new(crate::report::Tee(vec![reporting.sink.clone(), x])),
        None => reporting.sink.clone(),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let connector = {
        let _guard = rt.enter();
        ssh_connector(conn, sink.clone())?
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
    if let Mode::List { hosts, tasks } = mode {
        print_lists(&ex, loaded, hosts, tasks);
        return Ok((ExitCode::Ok, None));
    }
    let pre = ex.preflight(&loaded.playbooks);
    for w in &pre.warnings {
        eprintln!("[WARNING] {}", crate::vars::redact::redact(w));
    }
    if !pre.errors.is_empty() {
        return Err(AppError::Load(pre.errors));
    }
    if mode == Mode::SyntaxCheck {
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
    let summary = rt.block_on(async {
        install_ctrl_c(interrupted.clone(), sink.clone());
        ex.run(&loaded.playbooks).await
    });
    let code = summary.exit_code();
    if let Err(e) = reporting.finish(&summary) {
        // The run's own outcome stands; a report that could not be written turns success into an error.
        eprintln!("error: {}", crate::vars::redact::redact(&e.to_string()));
        if code == ExitCode::Ok {
            return Ok((ExitCode::Error, Some(summary)));
        }
    }
    Ok((code, Some(summary)))
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

const PING_PLAYBOOK: &str =
    "- name: ping\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: ping\n      ping:\n";

fn ping(a: crate::cli::PingArgs) -> Result<ExitCode, AppError> {
    crate::vars::secrets::configure(&a.identity);
    let here = std::env::current_dir().unwrap_or_default().join("<ping>");
    let loaded = load_with(
        &a.inv.inventory,
        a.inv.limit.as_deref(),
        &[],
        Some((PING_PLAYBOOK, &here)),
    )?;
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
        &a.out,
        &a.conn,
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
    if !times.is_empty() && a.out.output == crate::cli::OutputFormat::Text {
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
