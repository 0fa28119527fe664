//! Modules: what each task means. One file per module, one typed trait ([`TypedModule`]), one adapter that
//! erases it into the [`Module`] the executor and the playbook loader use, and the registry.
//!
//! Every module parses its arguments once per task attempt into its own `Args` type, then answers "what would
//! change" ([`TypedModule::plan`], read-only: it may only read facts through [`PlanCtx`]) with a [`Plan`] whose
//! [`Decision`] says whether the device is as wanted, what steps change it, or why the task is skipped or fails.
//! Only the executor applies the [`Step`]s; check mode is the same path stopped early
//! ([`Decision::in_check_mode`]). Every argument struct is `#[serde(deny_unknown_fields)]`. Modules never write
//! to a device themselves, and never name each other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::facts::{FactCache, FactReq, FileFact};
use crate::template::context::Context;
use crate::transport::{Become, Cmd, Exec, Output, SharedTransport, TransportError};

mod args;
mod plan;

pub use args::{
    arg_error, contains_template, parse_args, parse_mode, waits_for_templates, ArgError, Mode,
};
pub use plan::{
    rollback_name, CutOff, Decision, Diff, DirSpec, Effects, FileWrite, InCheckMode, Interpret,
    Judge, Outcome, Plan, Ran, Reapply, Step, Touched, ROLLBACK_DIRS_SH, ROLLBACK_KEEP,
    UNPREDICTABLE_IN_CHECK,
};

pub mod assert;
pub mod bundle_install;
pub mod bundle_push;
pub mod command;
pub mod copy;
pub mod debug;
pub mod docker_daemon;
pub mod edge_ca;
pub mod edge_ca_renew;
pub mod file;
pub mod include_vars;
pub mod iotedge_apply;
pub mod iotedge_config;
pub mod iotedge_maintenance;
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

/// What a module can see while checking rendered arguments before contact: the host, its variables, and where
/// `src:`-like files are found (the same search path the plan uses).
pub struct ArgCtx<'a> {
    /// Inventory name.
    pub host: &'a str,
    /// Variables for this task.
    pub vars: &'a Context,
    /// The task's search path (see `template::search`).
    pub search: &'a [PathBuf],
}

impl ArgCtx<'_> {
    /// Find a local file for a `src:`-like argument (`subdir`: `files` or `templates`).
    pub fn find_src(&self, name: &str, subdir: &str) -> Result<PathBuf, String> {
        crate::template::search::find(self.search, subdir, name).map_err(|e| e.to_string())
    }
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

    /// The same view for argument checks.
    pub fn args(&self) -> ArgCtx<'_> {
        ArgCtx {
            host: self.host,
            vars: self.vars,
            search: self.search,
        }
    }

    /// Find a local file for `src:` (see `template::search` for the order).
    pub fn find_src(&self, name: &str, subdir: &str) -> Result<PathBuf, ModuleError> {
        self.args()
            .find_src(name, subdir)
            .map_err(ModuleError::Failed)
    }
}

/// A module, as its file writes it: typed arguments, a plan, and the interpretation of what its steps printed.
/// Registered through [`Registry::builtin`], which erases it into a [`Module`].
#[async_trait]
pub trait TypedModule: Send + Sync + 'static {
    /// The arguments (`#[serde(deny_unknown_fields)]`), parsed once per task attempt.
    type Args: DeserializeOwned + Send + Sync + 'static;
    /// Module-private data from `plan` to `interpret`.
    type State: Send + Sync + 'static;

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

    /// Does this module run only on the controller (no device access at all)?
    fn local_only(&self) -> bool {
        false
    }

    /// Does a change by this module apply configuration by restarting services? (Counted as "applies" in the
    /// report.)
    fn applies_config(&self) -> bool {
        false
    }

    /// Rules serde cannot express (one of two keys, valid states). Runs on the arguments as written too (where
    /// an error about a key holding a template waits for run time), so key errors to their argument.
    fn check_args(&self, args: &Self::Args) -> Result<(), ArgError> {
        let _ = args;
        Ok(())
    }

    /// Problems with keys (names, not values) inside free-form arguments, which no template can fix: never
    /// left for run time. (Unknown arguments are already refused by `deny_unknown_fields`.)
    fn check_keys(&self, args: &Self::Args) -> Result<(), ArgError> {
        let _ = args;
        Ok(())
    }

    /// Full validation of the rendered arguments for one host, before any contact (may read local files).
    /// Returns warnings.
    fn preflight(&self, args: &Self::Args, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        let _ = (args, cx);
        Ok(Vec::new())
    }

    /// Facts this task will need (batched before the play runs).
    fn prefetch(&self, args: &Self::Args, vars: &Context) -> Vec<FactReq> {
        let _ = (args, vars);
        Vec::new()
    }

    /// Work out what would change. Read-only.
    async fn plan(
        &self,
        args: &Self::Args,
        cx: &PlanCtx<'_>,
    ) -> Result<Plan<Self::State>, ModuleError>;

    /// Turn the results of the executed steps into the outcome. The default: every command must exit 0.
    fn interpret(&self, state: Self::State, ran: Ran) -> Outcome {
        let _ = state;
        ran.outcome()
    }
}

/// A module as the executor and the loader see it (every [`TypedModule`] through one adapter).
pub trait Module: Send + Sync {
    /// Canonical name.
    fn name(&self) -> &'static str;
    /// Other names it answers to.
    fn aliases(&self) -> &'static [&'static str];
    /// The key free-form arguments go to, if any.
    fn free_form_key(&self) -> Option<&'static str>;
    /// Runs only on the controller?
    fn local_only(&self) -> bool;
    /// Does a change by it apply configuration by restarting services?
    fn applies_config(&self) -> bool;
    /// Static validation of the arguments as written (may contain templates): unknown keys, wrong shapes.
    fn validate(&self, args: &Value) -> Result<(), ArgError>;
    /// Parse rendered arguments, once per task attempt.
    fn prepare(&self, args: &Value) -> Result<Prepared, ArgError>;

    /// Full validation of rendered arguments for one host, before any contact. Returns warnings.
    fn preflight(&self, args: &Value, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        self.prepare(args)?.preflight(cx)
    }

    /// Facts a task with these rendered arguments will need (none when they do not parse: the attempt says
    /// why).
    fn prefetch(&self, args: &Value, vars: &Context) -> Vec<FactReq> {
        match self.prepare(args) {
            Ok(p) => p.prefetch(vars),
            Err(_) => Vec::new(),
        }
    }
}

/// A task's parsed arguments with their module: what one attempt checks, prefetches and plans.
pub struct Prepared(Box<dyn PreparedTask>);

impl Prepared {
    /// Full validation before contact; returns warnings.
    pub fn preflight(&self, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        self.0.preflight(cx)
    }

    /// Facts the task will need.
    pub fn prefetch(&self, vars: &Context) -> Vec<FactReq> {
        self.0.prefetch(vars)
    }

    /// Work out what would change. Read-only. The plan's state is the module's interpretation, waiting.
    pub async fn plan(&self, cx: &PlanCtx<'_>) -> Result<Plan<Interpret>, ModuleError> {
        self.0.plan(cx).await
    }
}

#[async_trait]
trait PreparedTask: Send + Sync {
    fn preflight(&self, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError>;
    fn prefetch(&self, vars: &Context) -> Vec<FactReq>;
    async fn plan(&self, cx: &PlanCtx<'_>) -> Result<Plan<Interpret>, ModuleError>;
}

/// The one adapter: a typed module behind the [`Module`] interface.
struct Erased<M>(Arc<M>);

struct Task<M: TypedModule> {
    module: Arc<M>,
    args: M::Args,
}

#[async_trait]
impl<M: TypedModule> PreparedTask for Task<M> {
    fn preflight(&self, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        self.module.preflight(&self.args, cx)
    }

    fn prefetch(&self, vars: &Context) -> Vec<FactReq> {
        self.module.prefetch(&self.args, vars)
    }

    async fn plan(&self, cx: &PlanCtx<'_>) -> Result<Plan<Interpret>, ModuleError> {
        let plan = self.module.plan(&self.args, cx).await?;
        let m = self.module.clone();
        Ok(plan.map_state(move |s| Interpret::new(move |ran| m.interpret(s, ran))))
    }
}

impl<M: TypedModule> Module for Erased<M> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn aliases(&self) -> &'static [&'static str] {
        self.0.aliases()
    }

    fn free_form_key(&self) -> Option<&'static str> {
        self.0.free_form_key()
    }

    fn local_only(&self) -> bool {
        self.0.local_only()
    }

    fn applies_config(&self) -> bool {
        self.0.applies_config()
    }

    fn validate(&self, raw: &Value) -> Result<(), ArgError> {
        let args = match args::parse_detailed::<M::Args>(self.0.name(), raw) {
            Ok(a) => a,
            Err(f) if !f.shape && waits_for_templates(&f.error, raw) => return Ok(()),
            Err(f) => return Err(f.error),
        };
        self.0.check_keys(&args)?;
        match self.0.check_args(&args) {
            Err(e) if waits_for_templates(&e, raw) => Ok(()),
            r => r,
        }
    }

    fn prepare(&self, raw: &Value) -> Result<Prepared, ArgError> {
        let args = parse_args::<M::Args>(self.0.name(), raw)?;
        self.0.check_keys(&args)?;
        self.0.check_args(&args)?;
        Ok(Prepared(Box::new(Task {
            module: self.0.clone(),
            args,
        })))
    }
}

/// Erase a typed module (the registry's one way in).
fn erase<M: TypedModule>(m: M) -> Arc<dyn Module> {
    Arc::new(Erased(Arc::new(m)))
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
            erase(command::Command { shell: false }),
            erase(command::Command { shell: true }),
            erase(copy::Copy { template: false }),
            erase(copy::Copy { template: true }),
            erase(file::File),
            erase(stat::Stat),
            erase(assert::Assert),
            erase(assert::Fail),
            erase(debug::Debug),
            erase(set_fact::SetFact),
            erase(include_vars::IncludeVars),
            erase(wait_for::WaitFor),
            erase(service::Service),
            erase(ping::Ping),
            erase(iotedge_config::IotedgeConfig),
            erase(iotedge_apply::IotedgeApply),
            erase(docker_daemon::DockerDaemon),
            erase(edge_ca::EdgeCa),
            erase(edge_ca_renew::EdgeCaRenew),
            erase(iotedge_verify::IotedgeVerify),
            erase(iotedge_maintenance::IotedgeMaintenance),
            erase(bundle_push::BundlePush::default()),
            erase(bundle_install::BundleInstall::default()),
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
