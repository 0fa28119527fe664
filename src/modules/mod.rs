//! Modules: what each task means. One file per module behind one trait, and the registry.
//!
//! Every module first answers "what would change" ([`Module::plan`], read-only: it may only read facts through
//! [`PlanCtx`]), and only the executor applies the [`Step`]s it returns; check mode is the same path stopped
//! early. Every argument struct is `#[serde(deny_unknown_fields)]`. Modules never write to a device themselves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::facts::{FactCache, FactReq, FileFact};
pub use crate::playbook::ArgError;
use crate::template::context::Context;
use crate::template::Templar;
use crate::transport::{Become, Cmd, Exec, Output, SharedTransport, TransportError};

pub mod assert;
pub mod command;
pub mod copy;
pub mod debug;
pub mod docker_daemon;
pub mod edge_ca;
pub mod file;
pub mod iotedge_apply;
pub mod iotedge_config;
pub mod iotedge_verify;
pub mod ping;
pub mod service;
pub mod set_fact;
pub mod stat;
pub mod util;
pub mod wait_for;

/// A module failed while planning or interpreting results.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModuleError {
    /// Bad arguments (after templating).
    #[error("{0}")]
    Args(#[from] ArgError),
    /// The device could not be talked to.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The module failed for a reason it explains.
    #[error("{0}")]
    Failed(String),
}

/// One file to write atomically on the device.
#[derive(Clone)]
pub struct FileWrite {
    /// Destination path.
    pub path: String,
    /// Full content.
    pub content: bytes::Bytes,
    /// Content is secret: never shown in diffs or logs; travels only over stdin.
    pub secret: bool,
    /// Final mode (applied before the content is written, so it holds from the first byte).
    pub mode: Option<u32>,
    /// Owner (name or uid).
    pub owner: Option<String>,
    /// Group (name or gid).
    pub group: Option<String>,
    /// Keep the previous version as `<path>.edgefleet.bak` (always true for files we own).
    pub backup: bool,
    /// Create the parent directory with this spec if missing.
    pub parent: Option<DirSpec>,
}

impl std::fmt::Debug for FileWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWrite")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .field("secret", &self.secret)
            .field("mode", &self.mode.map(|m| format!("{m:04o}")))
            .field("owner", &self.owner)
            .field("group", &self.group)
            .finish()
    }
}

/// A directory to ensure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// Path.
    pub path: String,
    /// Mode.
    pub mode: Option<u32>,
    /// Owner.
    pub owner: Option<String>,
    /// Group.
    pub group: Option<String>,
}

/// Something the executor does on the device to apply a plan.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command. Its output goes to [`Module::interpret`].
    Exec {
        /// The command.
        exec: Exec,
        /// What it does, for logs ("restart docker").
        what: String,
    },
    /// Write files atomically (one round trip for all of them).
    Write(Vec<FileWrite>),
    /// Ensure directories exist with a mode and owner (merged into the next `Write` when there is one, so
    /// it costs no extra round trip).
    EnsureDirs(Vec<DirSpec>),
}

/// A diff of one file (before/after text), for `--diff`.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Path shown in headers.
    pub path: String,
    /// Old content (None: file did not exist).
    pub before: Option<String>,
    /// New content (None: file removed).
    pub after: Option<String>,
    /// Secret content: show `<secret changed>` instead of lines.
    pub secret: bool,
    /// Attribute changes (mode/owner) as lines like "mode: 0644 -> 0600".
    pub attrs: Vec<String>,
}

/// What a module says about a task, before anything is applied.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Would something change?
    pub changed: bool,
    /// The steps that make the change (empty when nothing changes).
    pub steps: Vec<Step>,
    /// Diffs for `--diff`.
    pub diffs: Vec<Diff>,
    /// A message for the result.
    pub msg: Option<String>,
    /// Values for `register` (merged with changed/failed/msg by the executor).
    pub result: Map<String, Value>,
    /// The steps only read: run them in check mode too (stat-like commands, verification).
    pub read_only: bool,
    /// The module decided to skip (e.g. `creates` exists): the reason.
    pub skip: Option<String>,
    /// The module decided the task fails (assert, fail): the message.
    pub failed: Option<String>,
    /// Warnings to show.
    pub warnings: Vec<String>,
    /// In check mode, this module cannot predict and is skipped (command/shell).
    pub skip_in_check: bool,
    /// Variables to set on the host (set_fact).
    pub set_facts: Option<Map<String, Value>>,
    /// Running the steps may change files the fact cache knows (arbitrary commands): forget them afterwards.
    pub invalidates_facts: bool,
    /// Module-private data for `interpret`.
    pub state: Value,
}

impl Plan {
    /// Nothing to do.
    pub fn ok() -> Self {
        Plan::default()
    }
}

/// The final outcome of a task after its steps ran.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Changed?
    pub changed: bool,
    /// Failure message, if failed.
    pub failed: Option<String>,
    /// Values for `register`.
    pub result: Map<String, Value>,
    /// Message.
    pub msg: Option<String>,
    /// Verification results (iotedge_verify): per-check results and the verdict.
    pub verify: Option<(Vec<crate::report::CheckResult>, bool)>,
    /// Warnings to show.
    pub warnings: Vec<String>,
}

/// What a module can see while planning: its host's facts and variables. Read-only.
pub struct PlanCtx<'a> {
    /// Inventory name.
    pub host: &'a str,
    /// Variables for this task (lazy, layered; also renders the template module's files).
    pub vars: &'a Context,
    /// Directories relative `src:` paths resolve from, in order (role files/templates, task dir, playbook dir).
    pub search: &'a [PathBuf],
    /// Check mode?
    pub check: bool,
    /// Diff mode?
    pub diff: bool,
    /// become for commands of this task.
    pub become_: Option<Become>,
    /// Command timeout for this task.
    pub timeout: Option<std::time::Duration>,
    /// The task's `environment` (rendered), for modules that start programs.
    pub environment: Vec<(String, String)>,
    /// The device's facts (cached; fetching a missing one costs a round trip).
    pub facts: &'a FactCache,
    /// The device.
    pub transport: &'a SharedTransport,
}

impl PlanCtx<'_> {
    /// Facts about a file (from the cache, or fetched now).
    pub async fn file(&self, path: &str, content: bool) -> Result<FileFact, ModuleError> {
        Ok(self
            .facts
            .file(self.transport, path, content, self.become_.clone())
            .await?)
    }

    /// Output of a read-only fact command (cached by key; batched with the play's other facts when the module
    /// asked for it in `prefetch`).
    pub async fn fact_command(&self, key: &str, cmd: Cmd) -> Result<Output, ModuleError> {
        Ok(self
            .facts
            .command(self.transport, key, cmd, self.become_.clone())
            .await?)
    }

    /// Run a read-only command now (one round trip, not cached). For probes that depend on earlier results.
    pub async fn probe(&self, cmd: Cmd) -> Result<Output, ModuleError> {
        Ok(self.transport.exec(self.exec(cmd)).await?)
    }

    /// An `Exec` for this task's become and timeout.
    pub fn exec(&self, cmd: Cmd) -> Exec {
        Exec::new(cmd)
            .become_(self.become_.clone())
            .timeout(self.timeout)
    }

    /// Find a local file for `src:` (role files/templates dirs first, then the task's and playbook's dirs).
    pub fn find_src(&self, name: &str, subdir: &str) -> Result<PathBuf, ModuleError> {
        let p = std::path::Path::new(name);
        if p.is_absolute() {
            return if p.exists() {
                Ok(p.to_path_buf())
            } else {
                Err(ModuleError::Failed(format!("src file not found: {name}")))
            };
        }
        for d in self.search {
            for c in [d.join(subdir).join(name), d.join(name)] {
                if c.exists() {
                    return Ok(c);
                }
            }
        }
        Err(ModuleError::Failed(format!(
            "could not find `{name}` in {}",
            self.search
                .iter()
                .map(|d| d.join(subdir).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// A module.
#[async_trait]
pub trait Module: Send + Sync {
    /// Canonical name (`copy`, `iotedge_config`).
    fn name(&self) -> &'static str;

    /// Other names it answers to (`ansible.builtin.copy` is derived automatically).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// For free-form arguments (`command: ls -l`, `copy: src=a dest=b`): the key the raw string goes to, or
    /// None when the string is parsed as `k=v` pairs.
    fn free_form_key(&self) -> Option<&'static str> {
        None
    }

    /// Static validation of the arguments as written (may contain templates): unknown keys, wrong shapes.
    fn validate(&self, args: &Value) -> Result<(), ArgError>;

    /// Full validation of the rendered arguments for one host, before any contact. Returns warnings.
    fn preflight(&self, args: &Value, host: &str, vars: &Context) -> Result<Vec<String>, ArgError> {
        let _ = (host, vars);
        self.validate(args)?;
        Ok(Vec::new())
    }

    /// Facts this task will need (batched before the play runs). Arguments are rendered.
    fn prefetch(&self, args: &Value, vars: &Context) -> Vec<FactReq> {
        let _ = (args, vars);
        Vec::new()
    }

    /// Does this module run only on the controller (no device access at all)?
    fn local_only(&self) -> bool {
        false
    }

    /// Work out what would change. Read-only.
    async fn plan(&self, args: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError>;

    /// Turn the outputs of the executed steps into the outcome (one output per `Step::Exec`, in order).
    /// The default: every command must exit 0.
    fn interpret(&self, plan: &Plan, outputs: &[Output]) -> Outcome {
        default_interpret(plan, outputs)
    }
}

/// The default interpretation: changed as planned; the first non-zero exit fails the task.
pub fn default_interpret(plan: &Plan, outputs: &[Output]) -> Outcome {
    let mut out = Outcome {
        changed: plan.changed,
        result: plan.result.clone(),
        msg: plan.msg.clone(),
        ..Outcome::default()
    };
    let execs = plan.steps.iter().filter_map(|s| match s {
        Step::Exec { what, .. } => Some(what.as_str()),
        Step::Write(_) | Step::EnsureDirs(_) => None,
    });
    for (what, o) in execs.zip(outputs) {
        if !o.status.success() {
            let err = o.stderr_str();
            let first = err.trim();
            out.failed = Some(format!(
                "{what} failed ({}){}",
                o.status,
                if first.is_empty() {
                    String::new()
                } else {
                    format!(": {first}")
                }
            ));
            break;
        }
    }
    out
}

/// The module registry.
pub struct Registry {
    by_name: BTreeMap<String, Arc<dyn Module>>,
    canonical: Vec<&'static str>,
}

impl Registry {
    /// Every module edgefleet ships.
    pub fn builtin() -> Self {
        let mods: Vec<Arc<dyn Module>> = vec![
            Arc::new(command::Command { shell: false }),
            Arc::new(command::Command { shell: true }),
            Arc::new(copy::Copy { template: false }),
            Arc::new(copy::Copy { template: true }),
            Arc::new(file::File),
            Arc::new(stat::Stat),
            Arc::new(assert::Assert),
            Arc::new(assert::Fail),
            Arc::new(debug::Debug),
            Arc::new(set_fact::SetFact),
            Arc::new(wait_for::WaitFor),
            Arc::new(service::Service),
            Arc::new(ping::Ping),
            Arc::new(iotedge_config::IotedgeConfig),
            Arc::new(iotedge_apply::IotedgeApply),
            Arc::new(docker_daemon::DockerDaemon),
            Arc::new(edge_ca::EdgeCa),
            Arc::new(iotedge_verify::IotedgeVerify),
        ];
        let mut r = Registry {
            by_name: BTreeMap::new(),
            canonical: Vec::new(),
        };
        for m in mods {
            r.add(m);
        }
        r
    }

    fn add(&mut self, m: Arc<dyn Module>) {
        let name = m.name();
        self.canonical.push(name);
        for n in std::iter::once(name).chain(m.aliases().iter().copied()) {
            self.by_name.insert(n.to_string(), m.clone());
            self.by_name
                .insert(format!("ansible.builtin.{n}"), m.clone());
            self.by_name
                .insert(format!("ansible.legacy.{n}"), m.clone());
            self.by_name.insert(format!("edgefleet.{n}"), m.clone());
        }
    }

    /// Look a module up by any of its names.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Module>> {
        self.by_name.get(name)
    }

    /// Every name a module answers to (for "did you mean").
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Canonical names.
    pub fn canonical(&self) -> &[&'static str] {
        &self.canonical
    }
}

impl crate::playbook::ModuleCatalog for Registry {
    fn canonical_name(&self, name: &str) -> Option<&'static str> {
        self.get(name).map(|m| m.name())
    }

    fn canonical_names(&self) -> &[&'static str] {
        self.canonical()
    }

    fn free_form_key(&self, name: &str) -> Option<&'static str> {
        self.get(name).and_then(|m| m.free_form_key())
    }

    fn validate(&self, name: &str, args: &Value) -> Result<(), ArgError> {
        match self.get(name) {
            Some(m) => m.validate(args),
            None => Err(ArgError::new(format!("unknown module `{name}`"))),
        }
    }
}

/// Deserialize typed arguments, turning serde's messages into [`ArgError`]s with the key and a suggestion.
///
/// Like Ansible, a string where a number or a boolean is expected is converted when it spells one (`-e
/// timeout=30` gives the string "30"; `"{{ x }}"` renders to text inside larger strings).
pub fn parse_args<T: DeserializeOwned>(module: &str, args: &Value) -> Result<T, ArgError> {
    let mut v = if args.is_null() {
        Value::Object(Map::new())
    } else {
        args.clone()
    };
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            Ok(t) => return Ok(t),
            Err(e) => {
                let msg = e.inner().to_string();
                let path: Vec<String> = e
                    .path()
                    .iter()
                    .map(|seg| match seg {
                        serde_path_to_error::Segment::Map { key } => key.clone(),
                        serde_path_to_error::Segment::Seq { index } => index.to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                if let Some(converted) = coerce(&v, &path, &msg) {
                    v = converted;
                    continue;
                }
                return Err(arg_error(module, &msg, &path));
            }
        }
    }
    Err(ArgError::new(format!(
        "{module}: arguments could not be read"
    )))
}

/// Convert the string at `path` to the type the error says was expected, if it spells one.
fn coerce(root: &Value, path: &[String], msg: &str) -> Option<Value> {
    if !msg.starts_with("invalid type: string") {
        return None;
    }
    let mut v = root.clone();
    let mut cur = &mut v;
    for seg in path {
        cur = match cur {
            Value::Object(o) => o.get_mut(seg)?,
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    let Value::String(s) = cur else { return None };
    let t = s.trim();
    let new = if msg.contains("expected a boolean") || msg.contains("expected bool") {
        match t.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Value::Bool(true),
            "no" | "false" | "off" | "0" | "n" | "f" => Value::Bool(false),
            _ => return None,
        }
    } else if msg.contains("expected u") || msg.contains("expected i") || msg.contains("integer") {
        Value::from(t.parse::<i64>().ok()?)
    } else if msg.contains("expected f") {
        Value::from(t.parse::<f64>().ok()?)
    } else {
        return None;
    };
    *cur = new;
    Some(v)
}

/// Static validation: like [`parse_args`], but type errors caused by template strings are deferred to run time.
pub fn validate_args<T: DeserializeOwned>(module: &str, args: &Value) -> Result<(), ArgError> {
    match parse_args::<T>(module, args) {
        Ok(_) => Ok(()),
        Err(e) if e.message.contains("invalid type") || e.message.contains("invalid value") => {
            if contains_template(args) {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// Does any string inside `v` contain template syntax?
pub fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => Templar::is_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(o) => o.values().any(contains_template),
        _ => false,
    }
}

/// Rewrite a serde error ("unknown field `x`, expected one of `a`, `b`") into a helpful message; `path` is where
/// in the arguments it happened.
pub fn arg_error(module: &str, msg: &str, path: &[String]) -> ArgError {
    let at = |m: String| -> String {
        let p: Vec<&String> = path.iter().collect();
        if p.is_empty() {
            m
        } else {
            format!(
                "{m} (at `{}`)",
                p.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(".")
            )
        }
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            let expected: Vec<&str> = rest[end + 1..]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            let hint = crate::diag::did_you_mean(field, expected.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return ArgError::key(
                field,
                format!(
                    "{module}: unknown argument `{field}`{hint}; valid arguments: {}",
                    expected.join(", ")
                ),
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return ArgError::new(format!("{module}: missing required argument `{field}`"));
    }
    match path.first() {
        Some(k) => ArgError::key(k.clone(), at(format!("{module}: {msg}"))),
        None => ArgError::new(format!("{module}: {msg}")),
    }
}

/// Parse a file mode: an integer (YAML `0644` is already 420), or an octal string ("0644", "644"), or
/// symbolic (`u=rw,g=r,o=r`).
pub fn parse_mode(v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => {
            let m = n.as_u64().ok_or_else(|| format!("invalid mode {n}"))?;
            // Ansible: an integer that looks like octal digits written without a leading 0 (e.g. 644) is
            // interpreted as decimal, which is almost always a mistake; refuse it with a hint.
            if m > 0o7777 {
                return Err(format!(
                    "mode {m} is not a valid mode; quote it as a string, e.g. '0644' (an unquoted 644 is the decimal number 644)"
                ));
            }
            Ok(m as u32)
        }
        Value::String(s) => {
            let t = s.trim();
            if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
                u32::from_str_radix(t, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("invalid octal mode '{s}'"))
            } else {
                parse_symbolic_mode(t).ok_or_else(|| format!("invalid mode '{s}'"))
            }
        }
        _ => Err("mode must be an octal string like '0644'".into()),
    }
}

fn parse_symbolic_mode(s: &str) -> Option<u32> {
    let mut mode = 0u32;
    for clause in s.split(',') {
        let (who, perms) = clause.split_once('=')?;
        let mut bits = 0;
        for c in perms.chars() {
            bits |= match c {
                'r' => 4,
                'w' => 2,
                'x' => 1,
                _ => return None,
            };
        }
        for w in who.chars() {
            match w {
                'u' => mode |= bits << 6,
                'g' => mode |= bits << 3,
                'o' => mode |= bits,
                'a' => mode |= bits << 6 | bits << 3 | bits,
                _ => return None,
            }
        }
    }
    Some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&json!(420)), Ok(0o644));
        assert_eq!(parse_mode(&json!("0600")), Ok(0o600));
        assert_eq!(parse_mode(&json!("u=rw,g=r,o=r")), Ok(0o644));
        assert!(parse_mode(&json!(644)).is_ok()); // 644 decimal = 0o1204: a valid (if odd) mode
        assert!(parse_mode(&json!(99999)).is_err());
    }

    #[test]
    fn strings_are_coerced_like_ansible() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct A {
            n: u64,
            b: bool,
            l: Vec<i32>,
            s: String,
        }
        let a: A = parse_args(
            "m",
            &serde_json::json!({"n": "30", "b": "yes", "l": ["1", 2], "s": "7"}),
        )
        .unwrap();
        assert_eq!((a.n, a.b, a.l, a.s.as_str()), (30, true, vec![1, 2], "7"));
        let e = parse_args::<A>(
            "m",
            &serde_json::json!({"n": "thirty", "b": true, "l": [], "s": ""}),
        )
        .unwrap_err();
        assert!(e.message.contains("(at `n`)"), "{}", e.message);
    }

    #[test]
    fn unknown_field_message() {
        let e = arg_error(
            "copy",
            "unknown field `dst`, expected one of `src`, `dest`, `mode`",
            &["dst".to_string()],
        );
        assert_eq!(e.key.as_deref(), Some("dst"));
        assert!(e.message.contains("did you mean `dest`"), "{}", e.message);
    }
}
