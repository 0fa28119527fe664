//! `include_vars`: load variables from a YAML/JSON file or a directory of them on the controller, for the rest
//! of the run (as host variables), optionally under one `name`. Runs on the controller only.
//!
//! Files are found like Ansible finds them: relative names in the role's `vars/` directory, then the task's
//! and the playbook's directory (see `template::search`). A directory is read recursively in sorted order (the
//! files of a directory, then its subdirectories), files ending in `extensions` only (`yaml`, `yml`, `json`);
//! a later file's variables win.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The `include_vars` module.
pub struct IncludeVars;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The free form: a file (or a directory).
    #[serde(default, rename = "_raw_params")]
    raw_params: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// How deep to read a directory (0: all the way).
    #[serde(default)]
    depth: usize,
    #[serde(default = "default_extensions")]
    extensions: Vec<String>,
    #[serde(default)]
    ignore_files: Vec<String>,
    #[serde(default)]
    ignore_unknown_extensions: bool,
}

fn default_extensions() -> Vec<String> {
    vec!["yaml".into(), "yml".into(), "json".into()]
}

impl Args {
    fn source(&self) -> Option<(&str, bool)> {
        match (&self.raw_params, &self.file, &self.dir) {
            (Some(r), None, None) => Some((r.trim(), false)),
            (None, Some(f), None) => Some((f, false)),
            (None, None, Some(d)) => Some((d, true)),
            _ => None,
        }
    }
}

/// Every file under `dir` to read, in Ansible's order, down to `depth` levels (0: all).
fn dir_files(dir: &Path, depth: usize, a: &Args) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut level: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), 1)];
    while let Some((d, n)) = level.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(|e| format!("include_vars: cannot read {}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        let mut subdirs = Vec::new();
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if p.is_dir() {
                if depth == 0 || n < depth {
                    subdirs.push((p, n + 1));
                }
                continue;
            }
            if a.ignore_files.iter().any(|i| i == &name) {
                continue;
            }
            let ext = p
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !a.extensions.iter().any(|e| e == &ext) {
                if a.ignore_unknown_extensions {
                    continue;
                }
                return Err(format!(
                    "include_vars: {} does not end in one of {} (set ignore_unknown_extensions: true to skip it)",
                    p.display(),
                    a.extensions.join(", ")
                ));
            }
            out.push(p);
        }
        subdirs.reverse();
        level.extend(subdirs);
    }
    Ok(out)
}

fn load(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("include_vars: cannot read {}: {e}", path.display()))?;
    match crate::yaml::parse_value(&text, path).map_err(|d| d.to_string())? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(format!(
            "include_vars: {} must contain a mapping of variables",
            path.display()
        )),
    }
}

#[async_trait]
impl TypedModule for IncludeVars {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "include_vars"
    }

    fn free_form_key(&self) -> Option<&'static str> {
        Some("_raw_params")
    }

    fn local_only(&self) -> bool {
        true
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if a.source().is_none() {
            return Err(ArgError::new(
                "include_vars: give one of a file (free form or `file`) or `dir`",
            ));
        }
        if let Some(n) = &a.name {
            let ok = n
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(ArgError::key(
                    "name",
                    format!("include_vars: `{n}` is not a valid variable name"),
                ));
            }
        }
        Ok(())
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let Some((src, is_dir)) = a.source() else {
            return Err(ArgError::new("include_vars: nothing to include").into());
        };
        let name = src.trim_end_matches('/');
        let dir = crate::template::search::candidates(cx.search, "vars", name)
            .into_iter()
            .find(|c| c.is_dir());
        let files = match (is_dir, dir) {
            (true, Some(d)) | (false, Some(d)) if cx.find_src(name, "vars").is_err() || is_dir => {
                dir_files(&d, a.depth, a).map_err(ModuleError::Failed)?
            }
            (true, None) => {
                return Err(ModuleError::Failed(format!(
                    "include_vars: directory `{src}` not found (looked in the role's vars/, the task's and the playbook's directory)"
                )))
            }
            _ => vec![cx.find_src(name, "vars")?],
        };
        let mut vars = Map::new();
        for f in &files {
            vars.extend(load(f).map_err(ModuleError::Failed)?);
        }
        let facts = match &a.name {
            Some(n) => {
                let mut m = Map::new();
                m.insert(n.clone(), Value::Object(vars));
                m
            }
            None => vars,
        };
        let mut result = Map::new();
        result.insert("ansible_facts".into(), Value::Object(facts.clone()));
        result.insert(
            "ansible_included_var_files".into(),
            json!(files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()),
        );
        Ok(Plan::unchanged().with_facts(facts).with_result(result))
    }
}
