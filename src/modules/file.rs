//! `file`: directories, absent paths, touch, symlinks and attributes.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::util::{ancestors, file_result, join_and, Attrs};
use super::*;

/// The `file` module.
pub struct File;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    recurse: bool,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    follow: Option<bool>,
}

const STATES: &[&str] = &["file", "directory", "absent", "touch", "link"];

impl Args {
    fn state(&self) -> &str {
        self.state.as_deref().unwrap_or("file")
    }

    /// The wanted attributes for the path as it is (`cur`), or as it will be created (`dir`: a directory).
    fn attrs(&self, cur: &FileFact, dir: bool) -> Attrs {
        Attrs {
            mode: self
                .mode
                .as_ref()
                .map(|m| m.resolve(cur.exists.then_some(cur.mode), cur.is_dir() || dir)),
            owner: self.owner.clone(),
            group: self.group.clone(),
        }
    }
}

#[async_trait]
impl TypedModule for File {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "file"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        let state = a.state();
        if !STATES.contains(&state) {
            return Err(ArgError::key(
                "state",
                format!("file: state `{state}` is not one of {}", STATES.join(", ")),
            ));
        }
        if state == "link" && a.src.is_none() {
            return Err(ArgError::key(
                "src",
                "file: state=link needs `src` (the link target)",
            ));
        }
        Ok(())
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        let mut reqs = vec![FactReq::file(a.path.clone())];
        // A directory's missing parents get its mode and owner too: know which are missing in the same gather.
        if a.state() == "directory" {
            reqs.extend(ancestors(&a.path).into_iter().map(FactReq::file));
        }
        reqs
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let state = a.state().to_string();
        let p = a.path.clone();
        let cur = cx.file(&p, false).await?;
        let attrs = a.attrs(&cur, state == "directory");
        let mut result = file_result(&cur);
        let mut steps = Vec::new();
        let mut diffs = Vec::new();
        let mut touched_extra: Vec<Touched> = Vec::new();
        let run = |cmd: Cmd, what: String| Step::Exec {
            exec: cx.exec(cmd),
            what,
        };
        match state.as_str() {
            "absent" => {
                if cur.exists || cur.link.is_some() {
                    steps.push(run(
                        Cmd::new("rm").raw("-rf").raw("--").arg(p.clone()),
                        format!("remove {p}"),
                    ));
                    diffs.push(Diff {
                        path: p.clone(),
                        attrs: vec![format!(
                            "state: {} -> absent",
                            if cur.is_dir() { "directory" } else { "file" }
                        )],
                        ..Diff::default()
                    });
                }
                result.insert("state".into(), json!("absent"));
            }
            "directory" => {
                if cur.exists && !cur.is_dir() {
                    return Err(ModuleError::Failed(format!(
                        "{p} exists and is not a directory"
                    )));
                }
                let mut cmds = Vec::new();
                let mut changes = attrs.diff(&cur);
                if !cur.exists {
                    // Like Ansible, every directory this creates gets the mode and owner asked for.
                    let mut created = Vec::new();
                    for d in ancestors(&p) {
                        if !cx.file(&d, false).await?.exists {
                            created.push(d);
                        }
                    }
                    cmds.push(Cmd::new("mkdir").raw("-p").raw("--").arg(p.clone()));
                    for d in &created {
                        cmds.extend(a.attrs(&FileFact::missing(d), true).fix_cmd(d));
                    }
                    touched_extra.extend(created.into_iter().map(Touched::Path));
                    changes = vec!["state: absent -> directory".into()];
                }
                if (!cur.exists || !attrs.diff(&cur).is_empty() || a.recurse)
                    && attrs != Attrs::default()
                {
                    if a.recurse {
                        let r = |c: Cmd| c;
                        if let Some(o) = match (&attrs.owner, &attrs.group) {
                            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
                            (Some(o), None) => Some(o.clone()),
                            (None, Some(g)) => Some(format!(":{g}")),
                            _ => None,
                        } {
                            cmds.push(r(Cmd::new("chown")
                                .raw("-R")
                                .raw("--")
                                .arg(o)
                                .arg(p.clone())));
                        }
                        if let Some(m) = attrs.mode {
                            cmds.push(
                                Cmd::new("chmod")
                                    .raw("--")
                                    .arg(format!("{m:04o}"))
                                    .arg(p.clone()),
                            );
                        }
                    } else if let Some(c) = attrs.fix_cmd(&p) {
                        cmds.push(c);
                    }
                }
                if a.recurse && cur.exists && attrs.diff(&cur).is_empty() {
                    // Recursive ownership cannot be compared cheaply; only report a change when the top differs.
                    cmds.clear();
                }
                if let Some(c) = join_and(cmds) {
                    steps.push(run(c, format!("ensure directory {p}")));
                    diffs.push(Diff {
                        path: p.clone(),
                        attrs: changes,
                        ..Diff::default()
                    });
                }
                result.insert("state".into(), json!("directory"));
            }
            "touch" => {
                let mut cmds = vec![Cmd::new("touch").raw("--").arg(p.clone())];
                cmds.extend(attrs.fix_cmd(&p));
                steps.push(run(
                    join_and(cmds).unwrap_or_else(|| Cmd::new("true")),
                    format!("touch {p}"),
                ));
                result.insert("state".into(), json!("file"));
            }
            "file" => {
                if !cur.exists {
                    return Err(ModuleError::Failed(format!(
                        "{p} does not exist (state=file only changes attributes; use state=touch to create it)"
                    )));
                }
                let changes = attrs.diff(&cur);
                if !changes.is_empty() {
                    if let Some(c) = attrs.fix_cmd(&p) {
                        steps.push(run(c, format!("set attributes of {p}")));
                    }
                    diffs.push(Diff {
                        path: p.clone(),
                        attrs: changes,
                        ..Diff::default()
                    });
                }
            }
            "link" => {
                let src = a.src.clone().unwrap_or_default();
                let target = cur.link.clone().unwrap_or_default();
                if target != src {
                    if cur.exists && target.is_empty() && !a.force {
                        return Err(ModuleError::Failed(format!(
                            "{p} exists and is not a symlink (use force: true to replace it)"
                        )));
                    }
                    steps.push(run(
                        Cmd::new("ln")
                            .raw("-sfn")
                            .raw("--")
                            .arg(src.clone())
                            .arg(p.clone()),
                        format!("link {p} -> {src}"),
                    ));
                    diffs.push(Diff {
                        path: p.clone(),
                        attrs: vec![format!(
                            "link: {} -> {src}",
                            if target.is_empty() { "(none)" } else { &target }
                        )],
                        ..Diff::default()
                    });
                }
                result.insert("state".into(), json!("link"));
                result.insert("src".into(), json!(src));
            }
            _ => unreachable_state(&state)?,
        }
        result.insert("path".into(), json!(p));
        for (k, v) in [
            ("mode", attrs.mode.map(|m| json!(format!("{m:04o}")))),
            ("owner", attrs.owner.clone().map(|o| json!(o))),
            ("group", attrs.group.clone().map(|g| json!(g))),
        ] {
            if let Some(v) = v {
                result.insert(k.into(), v);
            }
        }
        let plan = if steps.is_empty() {
            Plan::unchanged()
        } else {
            // Removing or changing recursively touches everything under the path.
            let touched = if state == "absent" || a.recurse {
                Touched::Tree(p.clone())
            } else {
                Touched::Path(p.clone())
            };
            touched_extra.push(touched);
            Plan::change(steps, ()).touching(touched_extra)
        };
        Ok(plan.with_diffs(diffs).with_result(result))
    }
}

fn unreachable_state(state: &str) -> Result<(), ModuleError> {
    Err(ModuleError::Failed(format!(
        "file: unsupported state {state}"
    )))
}
