//! `file`: directories, absent paths, touch, symlinks and attributes.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::util::{file_result, join_and, Attrs};
use super::*;

/// The `file` module.
pub struct File;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    mode: Option<Value>,
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

fn args(v: &Value) -> Result<(Args, Attrs, String), ArgError> {
    let a: Args = parse_args("file", v)?;
    let state = a.state.clone().unwrap_or_else(|| "file".into());
    if !STATES.contains(&state.as_str()) {
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
    let attrs = Attrs {
        mode: a
            .mode
            .as_ref()
            .map(parse_mode)
            .transpose()
            .map_err(|e| ArgError::key("mode", format!("file: {e}")))?,
        owner: a.owner.clone(),
        group: a.group.clone(),
    };
    Ok((a, attrs, state))
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        validate_args::<Args>("file", v)?;
        if !contains_template(v) {
            args(v)?;
        }
        Ok(())
    }

    fn preflight(&self, v: &Value, _h: &str, _c: &Context) -> Result<Vec<String>, ArgError> {
        args(v).map(|_| vec![])
    }

    fn prefetch(&self, v: &Value, _c: &Context) -> Vec<FactReq> {
        match args(v) {
            Ok((a, _, _)) => vec![FactReq::File {
                path: a.path,
                content: false,
            }],
            Err(_) => vec![],
        }
    }

    async fn plan(&self, v: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let (a, attrs, state) = args(v)?;
        let p = a.path.clone();
        let cur = cx.file(&p, false).await?;
        let mut result = file_result(&cur);
        let mut steps = Vec::new();
        let mut diffs = Vec::new();
        let run = |cmd: Cmd, what: String| Step::Exec {
            exec: cx.exec(cmd),
            what,
        };
        match state.as_str() {
            "absent" => {
                if cur.exists {
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
                    cmds.push(Cmd::new("mkdir").raw("-p").raw("--").arg(p.clone()));
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
                let out = cx
                    .probe(Cmd::new("readlink").raw("--").arg(p.clone()).raw("|| true"))
                    .await?;
                let target = out.stdout_str().trim_end_matches('\n').to_string();
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
        Ok(Plan {
            changed: !steps.is_empty(),
            steps,
            diffs,
            result,
            ..Plan::default()
        })
    }
}

fn unreachable_state(state: &str) -> Result<(), ModuleError> {
    Err(ModuleError::Failed(format!(
        "file: unsupported state {state}"
    )))
}
