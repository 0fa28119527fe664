//! The differential suite: small real-world playbooks run with `ansible-playbook` and with edgefleet, compared
//! by exit code, which host ran what, every written file (bytes and mode) and the registered results they dump.
//!
//! Owns the harness of the contract in `tests/fixtures/differential/README.md`: it finds every case
//! (`tests/fixtures/differential/<area>/<case>.yml`), runs each with both tools on two local hosts (`h1`, `h2`,
//! each with its own fresh `root` directory per tool), and compares
//! - the exit code;
//! - per host, in order, every task result: its name, its status (ok, changed, skipped, failed, ignored,
//!   unreachable) and, for loops, each item's status. Ansible's come from our callback plugin
//!   (`callback_plugins/edgefleet_status.py`), edgefleet's from its `--output jsonl` task events;
//! - every file under each host's root: relative path, bytes and mode (directories by mode, symlinks by
//!   target). Each tool's own root path inside a file's bytes is read as `ROOT` first (the two tools write
//!   under different directories), so a dumped `dest` compares equal.
//!
//! Cases run in parallel (threads; `EDGEFLEET_DIFF_JOBS`, default 4: ansible-playbook is slow but mostly
//! waits). `EDGEFLEET_DIFF_CASES=loops/,filters/zip` runs only the cases whose `area/case` contains one of the
//! comma-separated strings. Every difference of every case is reported at once, per case.
//!
//! A case's leading comment lines may say `# args: --check --diff` (extra arguments for both tools, split at
//! whitespace) and `# differs: <aspect>: <reason>`, a deliberate difference listed in
//! docs/ansible-differences.md; only that aspect is then exempt (`exit`, `status`, `status <task>`, `files`,
//! `file <path>`; a task name or path containing `:` is written in backquotes). A declared difference that no
//! longer differs is reported too, so the list stays true. It must not know any case's content.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::support::{edgefleet, fixture, repo};

/// The two hosts every case runs on.
const HOSTS: [&str; 2] = ["h1", "h2"];
/// How long one tool may take on one case before it is killed (seconds).
const TIMEOUT_SECS: &str = "300";

// ---------------------------------------------------------------------------------------------------------------
// Cases and their declarations.

/// What a declared difference exempts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Aspect {
    Exit,
    /// All statuses (`None`) or one task's (by name, on every host).
    Status(Option<String>),
    /// All files (`None`) or one relative path (on every host).
    File(Option<String>),
}

#[derive(Debug, Clone)]
struct Declared {
    aspect: Aspect,
    reason: String,
}

#[derive(Debug, Clone)]
struct Case {
    /// `area/case` (without `.yml`).
    id: String,
    path: PathBuf,
    args: Vec<String>,
    differs: Vec<Declared>,
}

/// Parse the leading comment lines of a case.
fn parse_header(id: &str, text: &str) -> Result<(Vec<String>, Vec<Declared>), String> {
    let mut args = Vec::new();
    let mut differs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(c) = line.trim_start().strip_prefix('#') else {
            break;
        };
        let c = c.trim();
        if let Some(a) = c.strip_prefix("args:") {
            args.extend(a.split_whitespace().map(str::to_string));
        } else if let Some(d) = c.strip_prefix("differs:") {
            differs.push(
                parse_differs(d.trim())
                    .map_err(|e| format!("{id}.yml:{}: bad `# differs:` line: {e}", n + 1))?,
            );
        }
    }
    Ok((args, differs))
}

/// `<aspect>: <reason>` where aspect is `exit`, `status`, `status <task>`, `files` or `file <path>`.
fn parse_differs(d: &str) -> Result<Declared, String> {
    const FORM: &str = "write `# differs: exit|status|status <task>|files|file <path>: <reason>` \
                        (a name containing `:` in backquotes)";
    let (kind, rest) = d.split_once([' ', ':']).ok_or(FORM)?;
    let rest = if d.as_bytes().get(kind.len()) == Some(&b':') {
        format!(":{rest}")
    } else {
        rest.trim_start().to_string()
    };
    // The optional name, then `: reason`.
    let (name, after) = if let Some(q) = rest.strip_prefix('`') {
        let (name, after) = q.split_once('`').ok_or("unclosed backquote")?;
        (Some(name.to_string()), after.to_string())
    } else if let Some(after) = rest.strip_prefix(':') {
        (None, format!(":{after}"))
    } else {
        let (name, after) = rest.split_once(':').ok_or(FORM)?;
        (Some(name.trim().to_string()), format!(":{after}"))
    };
    let reason = after
        .trim_start()
        .strip_prefix(':')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or("the reason is missing")?
        .to_string();
    let aspect = match (kind, name) {
        ("exit", None) => Aspect::Exit,
        ("status", n) => Aspect::Status(n),
        ("files", None) => Aspect::File(None),
        ("file", Some(p)) => Aspect::File(Some(p)),
        _ => return Err(FORM.into()),
    };
    Ok(Declared { aspect, reason })
}

fn cases_dir() -> PathBuf {
    fixture("differential")
}

/// Every case, sorted, filtered by `EDGEFLEET_DIFF_CASES`.
fn find_cases() -> Vec<Result<Case, String>> {
    let filter: Vec<String> = std::env::var("EDGEFLEET_DIFF_CASES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    let mut areas: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/fixtures/differential")
        .map(|e| e.expect("readable fixture dir").path())
        .filter(|p| p.is_dir() && !p.ends_with("callback_plugins"))
        .collect();
    areas.sort();
    for area in areas {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&area)
            .expect("readable area dir")
            .map(|e| e.expect("readable area dir").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            let id = format!(
                "{}/{}",
                area.file_name().unwrap_or_default().to_string_lossy(),
                path.file_stem().unwrap_or_default().to_string_lossy()
            );
            if !filter.is_empty() && !filter.iter().any(|f| id.contains(f.as_str())) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable case");
            out.push(parse_header(&id, &text).map(|(args, differs)| Case {
                id,
                path,
                args,
                differs,
            }));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// What a run produced.

/// One task result on one host.
#[derive(Debug, Clone)]
struct Entry {
    task: String,
    status: String,
    /// Item statuses, for loops.
    items: Option<Vec<String>>,
    /// The message (not compared; shown to explain a difference).
    msg: Option<String>,
}

impl Entry {
    fn key(&self) -> String {
        match &self.items {
            Some(i) => format!("{}: {} [items: {}]", self.task, self.status, i.join(", ")),
            None => format!("{}: {}", self.task, self.status),
        }
    }
}

/// A file under a host's root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileEntry {
    Dir { mode: u32 },
    File { mode: u32, bytes: Vec<u8> },
    Link { target: String },
}

#[derive(Debug, Default)]
struct Outcome {
    exit: Option<i32>,
    /// Per host, in order.
    statuses: BTreeMap<String, Vec<Entry>>,
    /// Per host: relative path -> entry.
    files: BTreeMap<String, BTreeMap<String, FileEntry>>,
    /// The end of what the tool printed (shown when the exit codes differ).
    output_tail: String,
}

/// Item-level statuses: an item failing under `ignore_errors` is a failed item in both tools' eyes.
fn item_status(s: &str) -> String {
    if s == "ignored" {
        "failed".into()
    } else {
        s.into()
    }
}

/// A loop's status from its items, as Ansible derives it.
fn fold_items(items: &[String], raw: &[String]) -> String {
    if raw.iter().any(|s| s == "ignored") {
        "ignored".into()
    } else if items.iter().any(|s| s == "failed") {
        "failed".into()
    } else if items.iter().any(|s| s == "unreachable") {
        "unreachable".into()
    } else if items.iter().any(|s| s == "changed") {
        "changed".into()
    } else if !items.is_empty() && items.iter().all(|s| s == "skipped") {
        "skipped".into()
    } else {
        "ok".into()
    }
}

/// The implicit fact-gathering task is not one a case writes.
fn counted(task: &str) -> bool {
    task != "Gathering Facts"
}

/// Ansible's record, as our callback plugin wrote it.
fn parse_ansible_statuses(text: &str) -> Result<BTreeMap<String, Vec<Entry>>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("status file: {e}"))?;
    let mut out = BTreeMap::new();
    for (host, entries) in v.as_object().ok_or("status file: not an object")? {
        let list = entries.as_array().ok_or("status file: not a list")?;
        let mut es = Vec::new();
        for e in list {
            let task = e["task"].as_str().unwrap_or_default().to_string();
            if !counted(&task) {
                continue;
            }
            let items = e.get("items").and_then(Value::as_array).map(|a| {
                a.iter()
                    .map(|s| item_status(s.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
            });
            es.push(Entry {
                task,
                status: e["status"].as_str().unwrap_or_default().to_string(),
                items,
                msg: None,
            });
        }
        out.insert(host.clone(), es);
    }
    Ok(out)
}

/// edgefleet's record, from its jsonl events: a `task_started` opens an entry, item results fold into it.
fn parse_edgefleet_events(text: &str) -> BTreeMap<String, Vec<Entry>> {
    // Per host: the entries, and the raw item statuses of the open loop entry.
    let mut out: BTreeMap<String, Vec<(Entry, Vec<String>, bool)>> = BTreeMap::new();
    for line in text.lines() {
        let Ok(ev) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let host = ev["host"].as_str().unwrap_or_default().to_string();
        let task = ev["task"].as_str().unwrap_or_default().to_string();
        match ev["event"].as_str() {
            Some("task_started") => {
                out.entry(host).or_default().push((
                    Entry {
                        task,
                        status: String::new(),
                        items: None,
                        msg: None,
                    },
                    vec![],
                    true,
                ));
            }
            Some("task_result") => {
                let status = ev["status"].as_str().unwrap_or_default().to_string();
                let msg = ev["msg"].as_str().map(str::to_string);
                let list = out.entry(host).or_default();
                // Reuse the open entry of this task if it has no final status yet.
                let open = list
                    .last_mut()
                    .filter(|(e, _, open)| *open && e.task == task && e.status.is_empty());
                let (entry, raw, _) = match open {
                    Some(x) => x,
                    None => {
                        list.push((
                            Entry {
                                task: task.clone(),
                                status: String::new(),
                                items: None,
                                msg: None,
                            },
                            vec![],
                            true,
                        ));
                        let last = list.len() - 1;
                        &mut list[last]
                    }
                };
                if ev.get("item").is_some_and(|i| !i.is_null()) {
                    raw.push(status.clone());
                    entry
                        .items
                        .get_or_insert_with(Vec::new)
                        .push(item_status(&status));
                    if status == "failed" || status == "ignored" {
                        entry.msg = entry.msg.take().or(msg);
                    }
                } else {
                    entry.status = status;
                    entry.msg = msg;
                }
            }
            Some("host_unreachable") => {
                if let Some((e, _, _)) = out.entry(host).or_default().last_mut() {
                    e.status = "unreachable".into();
                }
            }
            _ => {}
        }
    }
    out.into_iter()
        .map(|(h, es)| {
            let es = es
                .into_iter()
                .filter(|(e, _, _)| counted(&e.task))
                .filter(|(e, raw, _)| !(e.status.is_empty() && raw.is_empty()))
                .map(|(mut e, raw, _)| {
                    if e.status.is_empty() {
                        e.status = fold_items(e.items.as_deref().unwrap_or(&[]), &raw);
                    }
                    e
                })
                .collect();
            (h, es)
        })
        .collect()
}

/// Every file under `dir`, with each tool's root path read as `ROOT` and its tool directory as `TOOL`.
fn files_under(
    dir: &Path,
    replace: &[(String, &str)],
) -> Result<BTreeMap<String, FileEntry>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in rd {
            let p = e.map_err(|e| format!("{}: {e}", d.display()))?.path();
            let rel = p
                .strip_prefix(dir)
                .map_err(|e| e.to_string())?
                .display()
                .to_string();
            let meta =
                std::fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let target = String::from_utf8_lossy(&normalize(
                    t.display().to_string().as_bytes(),
                    replace,
                ))
                .into_owned();
                out.insert(rel, FileEntry::Link { target });
            } else if meta.is_dir() {
                out.insert(format!("{rel}/"), FileEntry::Dir { mode });
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                out.insert(
                    rel,
                    FileEntry::File {
                        mode,
                        bytes: normalize(&bytes, replace),
                    },
                );
            }
        }
    }
    Ok(out)
}

fn normalize(bytes: &[u8], replace: &[(String, &str)]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for (from, to) in replace {
        b = replace_bytes(&b, from.as_bytes(), to.as_bytes());
    }
    b
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Running a case.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ansible,
    Edgefleet,
}

impl Tool {
    fn dir(self) -> &'static str {
        match self {
            Tool::Ansible => "ansible",
            Tool::Edgefleet => "edgefleet",
        }
    }
}

fn python() -> String {
    crate::tools::require("python3");
    let o = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output();
    match o {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!("python3 does not run: run `tests/run` (it installs what the tests need)"),
    }
}

fn tail(o: &Output, lines: usize) -> String {
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("{\"event\""))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn run_tool(tool: Tool, case: &Case, work: &Path, python: &str) -> Result<Outcome, String> {
    let base = work.join(tool.dir());
    let mut inv = String::new();
    for h in HOSTS {
        let root = base.join(h);
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        inv.push_str(&format!(
            "{h} ansible_connection=local ansible_python_interpreter={python} root={}\n",
            root.display()
        ));
    }
    let inv_path = base.join("inventory.ini");
    std::fs::write(&inv_path, inv).map_err(|e| e.to_string())?;
    let status_file = work.join(format!("{}-status.json", tool.dir()));
    let mut cmd = match tool {
        Tool::Ansible => {
            let mut c = Command::new("timeout");
            c.args(["-k", "10", TIMEOUT_SECS, "ansible-playbook", "-i"])
                .arg(&inv_path)
                .arg(&case.path)
                .env("ANSIBLE_NOCOLOR", "1")
                .env("ANSIBLE_FORCE_COLOR", "0")
                .env("ANSIBLE_LOCAL_TEMP", work.join("ansible-tmp"))
                .env("ANSIBLE_HOME", work.join("ansible-home"))
                .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
                .env(
                    "ANSIBLE_CALLBACK_PLUGINS",
                    cases_dir().join("callback_plugins"),
                )
                .env("ANSIBLE_CALLBACKS_ENABLED", "edgefleet_status")
                .env("EDGEFLEET_STATUS_FILE", &status_file);
            c
        }
        Tool::Edgefleet => {
            let mut c = edgefleet();
            let bin = c.get_program().to_owned();
            let mut t = Command::new("timeout");
            t.args(["-k", "10", TIMEOUT_SECS])
                .arg(bin)
                .args(["play", "--output", "jsonl", "-i"])
                .arg(&inv_path)
                .arg(&case.path);
            for (k, v) in c.get_envs() {
                match v {
                    Some(v) => t.env(k, v),
                    None => t.env_remove(k),
                };
            }
            c = t;
            c
        }
    };
    cmd.args(&case.args).current_dir(work);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.dir()))?;
    let exit = out.status.code();
    if exit == Some(124) || exit == Some(137) {
        return Err(format!(
            "{} did not finish within {TIMEOUT_SECS}s:\n{}",
            tool.dir(),
            tail(&out, 20)
        ));
    }
    let statuses = match tool {
        Tool::Ansible => match std::fs::read_to_string(&status_file) {
            Ok(t) => parse_ansible_statuses(&t)?,
            // No stats at all: the playbook did not start (a parse error), or the callback did not load.
            Err(_) if exit != Some(0) => BTreeMap::new(),
            Err(e) => {
                return Err(format!(
                    "ansible-playbook succeeded but the status callback wrote nothing ({e}): is \
                     callback_plugins/edgefleet_status.py loadable?"
                ))
            }
        },
        Tool::Edgefleet => parse_edgefleet_events(&String::from_utf8_lossy(&out.stdout)),
    };
    let mut files = BTreeMap::new();
    for h in HOSTS {
        let root = base.join(h);
        let replace = [
            (root.display().to_string(), "ROOT"),
            (base.display().to_string(), "TOOL"),
        ];
        files.insert(h.to_string(), files_under(&root, &replace)?);
    }
    Ok(Outcome {
        exit,
        statuses,
        files,
        output_tail: tail(&out, 25),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Comparing.

fn exempt_status(declared: &[Declared], task: &str) -> bool {
    declared.iter().any(|d| match &d.aspect {
        Aspect::Status(None) => true,
        Aspect::Status(Some(t)) => t == task,
        _ => false,
    })
}

fn exempt_file(declared: &[Declared], path: &str) -> bool {
    declared.iter().any(|d| match &d.aspect {
        Aspect::File(None) => true,
        Aspect::File(Some(p)) => p == path || p.trim_end_matches('/') == path.trim_end_matches('/'),
        _ => false,
    })
}

/// Lines present in one list and not the other, by a longest common subsequence (lists are short).
fn list_diff(a: &[String], b: &[String]) -> Vec<String> {
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(format!("      {}", a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
            out.push(format!("    + {}", b[j]));
            j += 1;
        } else {
            out.push(format!("    - {}", a[i]));
            i += 1;
        }
    }
    out
}

fn describe(f: Option<&FileEntry>) -> String {
    match f {
        None => "absent".into(),
        Some(FileEntry::Dir { mode }) => format!("directory, mode {mode:04o}"),
        Some(FileEntry::Link { target }) => format!("symlink to {target}"),
        Some(FileEntry::File { mode, bytes }) => {
            format!("file, mode {mode:04o}, {} bytes", bytes.len())
        }
    }
}

/// The first differing line of two texts, shown both ways (escaped).
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (ta, tb) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let (la, lb): (Vec<&str>, Vec<&str>) = (ta.split('\n').collect(), tb.split('\n').collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            let show = |s: Option<&&str>| s.map_or("(no line)".to_string(), |s| format!("{s:?}"));
            return format!(
                "line {}: ansible {} / edgefleet {}",
                i + 1,
                show(x),
                show(y)
            );
        }
    }
    "same text".into()
}

/// Everything that differs, as lines; the declared aspects that were exempt but differed are marked used.
fn compare(case: &Case, a: &Outcome, b: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut used = vec![false; case.differs.len()];

    if a.exit != b.exit {
        if let Some(i) = case.differs.iter().position(|d| d.aspect == Aspect::Exit) {
            used[i] = true;
        } else {
            diffs.push(format!(
                "exit code: ansible {:?}, edgefleet {:?}\n  ansible said:\n{}\n  edgefleet said:\n{}",
                a.exit,
                b.exit,
                indent(&a.output_tail, 4),
                indent(&b.output_tail, 4)
            ));
        }
    }

    let hosts: BTreeSet<&String> = a.statuses.keys().chain(b.statuses.keys()).collect();
    for h in hosts {
        let empty = Vec::new();
        let (ea, eb) = (
            a.statuses.get(h).unwrap_or(&empty),
            b.statuses.get(h).unwrap_or(&empty),
        );
        // Declared tasks: compared apart, so their use can be recorded.
        let all_a: Vec<String> = ea.iter().map(Entry::key).collect();
        let all_b: Vec<String> = eb.iter().map(Entry::key).collect();
        let ka: Vec<String> = ea
            .iter()
            .filter(|e| !exempt_status(&case.differs, &e.task))
            .map(Entry::key)
            .collect();
        let kb: Vec<String> = eb
            .iter()
            .filter(|e| !exempt_status(&case.differs, &e.task))
            .map(Entry::key)
            .collect();
        if all_a != all_b {
            for (i, d) in case.differs.iter().enumerate() {
                if let Aspect::Status(t) = &d.aspect {
                    let pick = |es: &[Entry]| -> Vec<String> {
                        es.iter()
                            .filter(|e| t.as_ref().is_none_or(|t| *t == e.task))
                            .map(Entry::key)
                            .collect()
                    };
                    if pick(ea) != pick(eb) {
                        used[i] = true;
                    }
                }
            }
        }
        if ka != kb {
            let mut text = format!("task results on {h} (- ansible only, + edgefleet only):\n");
            text.push_str(&list_diff(&ka, &kb).join("\n"));
            let msgs: Vec<String> = eb
                .iter()
                .filter(|e| e.msg.is_some() && (e.status == "failed" || e.status == "ignored"))
                .map(|e| {
                    format!(
                        "    edgefleet {}: {}",
                        e.task,
                        e.msg.as_deref().unwrap_or("")
                    )
                })
                .collect();
            if !msgs.is_empty() {
                text.push('\n');
                text.push_str(&msgs.join("\n"));
            }
            diffs.push(text);
        }
    }

    for h in HOSTS {
        let empty = BTreeMap::new();
        let (fa, fb) = (
            a.files.get(h).unwrap_or(&empty),
            b.files.get(h).unwrap_or(&empty),
        );
        let paths: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
        for p in paths {
            let (x, y) = (fa.get(p), fb.get(p));
            if x == y {
                continue;
            }
            if exempt_file(&case.differs, p) {
                for (i, d) in case.differs.iter().enumerate() {
                    if let Aspect::File(f) = &d.aspect {
                        if f.as_ref()
                            .is_none_or(|f| f.trim_end_matches('/') == p.trim_end_matches('/'))
                        {
                            used[i] = true;
                        }
                    }
                }
                continue;
            }
            let what = match (x, y) {
                (
                    Some(FileEntry::File {
                        mode: m1,
                        bytes: b1,
                    }),
                    Some(FileEntry::File {
                        mode: m2,
                        bytes: b2,
                    }),
                ) => {
                    let mut w = Vec::new();
                    if m1 != m2 {
                        w.push(format!("mode ansible {m1:04o}, edgefleet {m2:04o}"));
                    }
                    if b1 != b2 {
                        w.push(format!("content differs, {}", first_difference(b1, b2)));
                    }
                    w.join("; ")
                }
                _ => format!("ansible: {}; edgefleet: {}", describe(x), describe(y)),
            };
            diffs.push(format!("file {h}:{p}: {what}"));
        }
    }

    for (i, d) in case.differs.iter().enumerate() {
        if !used[i] {
            diffs.push(format!(
                "declared difference {:?} ({}) no longer differs: remove the `# differs:` line and its entry in \
                 docs/ansible-differences.md",
                d.aspect, d.reason
            ));
        }
    }
    diffs
}

fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A case's id and its differences (or why it could not run).
type CaseResult = (String, Result<Vec<String>, String>);

/// Run one case with both tools and compare; `Err` for a harness problem (the case could not be run).
fn run_case(case: &Case, python: &str) -> Result<Vec<String>, String> {
    let work = tempfile::Builder::new()
        .prefix("ef-diff-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let a = run_tool(Tool::Ansible, case, work.path(), python)?;
    let b = run_tool(Tool::Edgefleet, case, work.path(), python)?;
    let mut diffs = compare(case, &a, &b);
    if !case.differs.is_empty() {
        let docs =
            std::fs::read_to_string(repo().join("docs/ansible-differences.md")).unwrap_or_default();
        if !docs.contains(&format!("{}.yml", case.id)) {
            diffs.push(format!(
                "the case declares a difference but docs/ansible-differences.md does not list `{}.yml`",
                case.id
            ));
        }
    }
    Ok(diffs)
}

#[test]
fn playbooks_behave_as_under_ansible_playbook() {
    crate::tools::require("ansible-playbook");
    crate::tools::require("timeout");
    let python = python();
    let cases = find_cases();
    assert!(
        !cases.is_empty(),
        "no differential case matched (EDGEFLEET_DIFF_CASES={:?})",
        std::env::var("EDGEFLEET_DIFF_CASES").unwrap_or_default()
    );
    let jobs: usize = std::env::var("EDGEFLEET_DIFF_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .filter(|j| *j > 0)
        .unwrap_or(4);
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, CaseResult>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(cases.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(c) = cases.get(i) else { break };
                let (id, r) = match c {
                    Ok(case) => (case.id.clone(), run_case(case, &python)),
                    Err(e) => (format!("#{i}"), Err(e.clone())),
                };
                let line = match &r {
                    Ok(d) if d.is_empty() => format!("same      {id}"),
                    Ok(d) => format!("DIFFERENT {id} ({} differences)", d.len()),
                    Err(_) => format!("ERROR     {id}"),
                };
                println!("{line}");
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(i, (id, r));
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut report = Vec::new();
    let mut same = 0;
    for (id, r) in results.values() {
        match r {
            Ok(d) if d.is_empty() => same += 1,
            Ok(d) => report.push(format!(
                "== {id}.yml\n{}",
                d.iter()
                    .map(|x| format!("  {x}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
            Err(e) => report.push(format!("== {id}: cannot run the case: {e}")),
        }
    }
    assert!(
        report.is_empty(),
        "{} of {} differential cases differ from ansible-playbook (cases under tests/fixtures/differential; \
         EDGEFLEET_DIFF_CASES=area/case runs one):\n\n{}\n",
        report.len(),
        same + report.len(),
        report.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The harness itself: it must see every kind of difference, and honour only what is declared.

fn entry(task: &str, status: &str, items: Option<&[&str]>) -> Entry {
    Entry {
        task: task.into(),
        status: status.into(),
        items: items.map(|i| i.iter().map(|s| s.to_string()).collect()),
        msg: None,
    }
}

fn outcome(exit: i32, tasks: Vec<Entry>, files: Vec<(&str, FileEntry)>) -> Outcome {
    let mut o = Outcome {
        exit: Some(exit),
        ..Default::default()
    };
    o.statuses.insert("h1".into(), tasks);
    o.files.insert(
        "h1".into(),
        files.into_iter().map(|(p, f)| (p.to_string(), f)).collect(),
    );
    o
}

fn case_with(header: &str) -> Case {
    let (args, differs) = parse_header("t/case", header).unwrap();
    Case {
        id: "t/case".into(),
        path: PathBuf::from("/nonexistent"),
        args,
        differs,
    }
}

#[test]
fn the_harness_sees_every_kind_of_difference_and_honours_only_declared_ones() {
    let file = |m: u32, b: &str| FileEntry::File {
        mode: m,
        bytes: b.as_bytes().to_vec(),
    };
    let a = outcome(
        0,
        vec![
            entry("write", "changed", None),
            entry("loop", "changed", Some(&["ok", "changed"])),
        ],
        vec![
            ("a.txt", file(0o644, "one\ntwo\n")),
            ("d/", FileEntry::Dir { mode: 0o755 }),
        ],
    );
    let b = outcome(
        2,
        vec![
            entry("write", "ok", None),
            entry("loop", "changed", Some(&["changed", "changed"])),
        ],
        vec![
            ("a.txt", file(0o600, "one\nTWO\n")),
            ("d/", FileEntry::Dir { mode: 0o755 }),
            (
                "extra",
                FileEntry::Link {
                    target: "ROOT/a.txt".into(),
                },
            ),
        ],
    );
    let d = compare(&case_with("- hosts: all\n"), &a, &b);
    let all = d.join("\n");
    assert!(
        all.contains("exit code: ansible Some(0), edgefleet Some(2)"),
        "{all}"
    );
    assert!(
        all.contains("- write: changed") && all.contains("+ write: ok"),
        "{all}"
    );
    assert!(
        all.contains("+ loop: changed [items: changed, changed]"),
        "{all}"
    );
    assert!(all.contains("mode ansible 0644, edgefleet 0600"), "{all}");
    assert!(
        all.contains("line 2: ansible \"two\" / edgefleet \"TWO\""),
        "{all}"
    );
    assert!(
        all.contains("file h1:extra: ansible: absent; edgefleet: symlink to ROOT/a.txt"),
        "{all}"
    );
    assert_eq!(d.len(), 4, "{all}");
    assert!(compare(&case_with(""), &a, &a).is_empty());

    // Declared aspects are exempt; everything else is still compared; a stale declaration is reported.
    let c = case_with(
        "# args: --check --diff\n# differs: exit: reason one\n# differs: status write: reason two\n\
         # differs: file `extra`: reason three\n# differs: file a.txt: reason four\n- hosts: all\n",
    );
    assert_eq!(c.args, ["--check", "--diff"]);
    let d = compare(&c, &a, &b);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].contains("+ loop: changed [items: changed, changed]"),
        "{d:?}"
    );
    let d = compare(&c, &a, &a);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(d.iter().all(|x| x.contains("no longer differs")), "{d:?}");

    // Malformed declarations are refused with the line.
    let e = parse_header("t/case", "# differs: something odd\n").unwrap_err();
    assert!(
        e.contains("t/case.yml:1") && e.contains("# differs: exit|status"),
        "{e}"
    );
    assert!(parse_header("t/case", "# differs: exit:\n").is_err());
    let d = parse_differs("status `role : task`: a reason: with colons").unwrap();
    assert_eq!(d.aspect, Aspect::Status(Some("role : task".into())));
    assert_eq!(d.reason, "a reason: with colons");
    assert_eq!(
        parse_differs("status: all of them").unwrap().aspect,
        Aspect::Status(None)
    );
    assert_eq!(
        parse_differs("files: x").unwrap().aspect,
        Aspect::File(None)
    );
}

#[test]
fn both_records_fold_loops_and_failures_alike() {
    let ansible = r#"{"h1": [{"task": "Gathering Facts", "status": "ok"},
        {"task": "l", "status": "ignored", "items": ["ok", "failed"]},
        {"task": "s", "status": "skipped"}]}"#;
    let a = parse_ansible_statuses(ansible).unwrap();
    let ev = [
        r#"{"event":"task_started","host":"h1","task":"l"}"#,
        r#"{"event":"task_result","host":"h1","task":"l","status":"ok","item":"a"}"#,
        r#"{"event":"task_result","host":"h1","task":"l","status":"ignored","item":"b","msg":"boom"}"#,
        r#"{"event":"task_result","host":"h1","task":"s","status":"skipped"}"#,
    ]
    .join("\n");
    let b = parse_edgefleet_events(&ev);
    let keys =
        |m: &BTreeMap<String, Vec<Entry>>| m["h1"].iter().map(Entry::key).collect::<Vec<_>>();
    assert_eq!(keys(&a), ["l: ignored [items: ok, failed]", "s: skipped"]);
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(b["h1"][0].msg.as_deref(), Some("boom"));
    let norm = normalize(
        b"/w/ansible/h1/x and /w/ansible/inv",
        &[
            ("/w/ansible/h1".into(), "ROOT"),
            ("/w/ansible".into(), "TOOL"),
        ],
    );
    assert_eq!(norm, b"ROOT/x and TOOL/inv");
}
