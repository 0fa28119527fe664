//! The loader's context: what loading needs (module catalog, templar, role path) and what it collects
//! (diagnostics, file texts, loaded roles, import stacks).
//!
//! Owns `LoadCtx`, recording a problem at a node (`file:line:col` with the source line), reading a YAML file,
//! and the small path/location helpers every loader file shares. It must not parse keywords, tasks, plays or
//! roles (it sits below every other loader file and imports none of them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{Loc, ModuleCatalog, Role, RoleUse, Task};
use crate::diag::{Diagnostic, Diagnostics};
use crate::template::Templar;
use crate::yaml::Node;

/// Everything the loader needs, plus what it collects.
pub struct LoadCtx<'a> {
    /// Modules, for names and argument validation.
    pub registry: &'a dyn ModuleCatalog,
    /// For template and expression syntax checks.
    pub templar: &'a Templar,
    /// Extra role directories (`EDGEFLEET_ROLES_PATH`).
    pub roles_path: Vec<PathBuf>,
    /// Problems found so far.
    pub diags: Diagnostics,
    /// Roles loaded so far (by directory).
    pub role_cache: HashMap<PathBuf, Arc<Role>>,
    /// The text of every file loaded (to find which magic variables are referenced at all).
    pub texts: Vec<String>,
    /// Handlers brought in by `import_role` while loading the current play.
    pub(crate) extra_handlers: Vec<Task>,
    /// Roles brought in by `import_role` (their defaults and vars apply to the play).
    pub(crate) extra_roles: Vec<RoleUse>,
    /// Playbooks and task files being loaded (to report import cycles).
    pub(super) import_stack: Vec<PathBuf>,
    /// Roles being loaded (to report dependency cycles).
    pub(crate) role_stack: Vec<String>,
}

impl<'a> LoadCtx<'a> {
    /// A loader using `registry` and `templar`; roles are also searched in `EDGEFLEET_ROLES_PATH`.
    pub fn new(registry: &'a dyn ModuleCatalog, templar: &'a Templar) -> Self {
        let roles_path = std::env::var("EDGEFLEET_ROLES_PATH")
            .map(|s| {
                s.split(':')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        LoadCtx {
            registry,
            templar,
            roles_path,
            diags: Diagnostics::new(),
            role_cache: HashMap::new(),
            texts: Vec::new(),
            extra_handlers: Vec::new(),
            extra_roles: Vec::new(),
            import_stack: Vec::new(),
            role_stack: Vec::new(),
        }
    }

    /// Record a problem at a node.
    pub(crate) fn err(&mut self, file: &Path, node: &Node, msg: impl Into<String>) {
        let text = self.source_of(file);
        let mut d = Diagnostic::at(file, node.line, node.col, msg);
        if let Some(t) = text {
            d = d.with_source(&t);
        }
        self.diags.push(d);
    }

    fn source_of(&self, file: &Path) -> Option<String> {
        std::fs::read_to_string(file).ok()
    }

    /// Does any loaded file mention `name`?
    pub fn references(&self, name: &str) -> bool {
        self.texts.iter().any(|t| t.contains(name))
    }

    /// Read and parse a YAML file, recording its text.
    pub(crate) fn read_yaml(&mut self, path: &Path) -> Option<Node> {
        match crate::yaml::parse_file(path) {
            Ok((n, text)) => {
                self.texts.push(text);
                Some(n)
            }
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }
}

/// `p` made absolute against the current directory (unchanged if that is unknown).
pub(super) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Where `n` is written in `file`.
pub(super) fn loc(file: &Arc<PathBuf>, n: &Node) -> Loc {
    Loc {
        file: file.clone(),
        line: n.line,
        col: n.col,
    }
}
