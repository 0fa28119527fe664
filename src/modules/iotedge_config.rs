//! `iotedge_config`: owns `/etc/aziot/config.toml`.
//!
//! Arguments describe the 1.5 super config as data (or a `src:` template that goes through the same
//! validation). Validated by the real 1.5 rules before contact; unknown keys are errors (the device would
//! ignore them silently). Rendered deterministically, compared semantically with the device's file, written
//! atomically as 0600 root:root only on a real change. Notify `iotedge_apply` from the playbook.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};

use super::util::Attrs;
use super::*;
use crate::facts::sha256_hex;
use crate::iotedge::config::{self as cfgmod, EdgeCaShape, SuperConfig};

/// The module.
pub struct IotedgeConfig;

const OPTIONS: &[&str] = &[
    "production",
    "allow_quickstart_ca",
    "src",
    "dest",
    "host_dirs",
];
const DEFAULT_DEST: &str = "/etc/aziot/config.toml";

struct Parsed {
    src: Option<String>,
    dest: String,
    production: bool,
    allow_quickstart_ca: bool,
    /// Host directories the configuration bind-mounts (module storage): ensured with their owner and mode.
    host_dirs: Vec<DirSpec>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HostDir {
    path: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    mode: Option<Value>,
}

fn split(args: &Value) -> Result<(Parsed, Value), ArgError> {
    let Value::Object(m) = args else {
        return Err(ArgError::new("iotedge_config: arguments must be a mapping"));
    };
    let mut cfg = serde_json::Map::new();
    let mut p = Parsed {
        src: None,
        dest: DEFAULT_DEST.into(),
        production: false,
        allow_quickstart_ca: false,
        host_dirs: vec![],
    };
    for (k, v) in m {
        match k.as_str() {
            "production" => p.production = as_bool(k, v)?,
            "allow_quickstart_ca" => p.allow_quickstart_ca = as_bool(k, v)?,
            "src" => p.src = Some(as_str(k, v)?),
            "dest" => p.dest = as_str(k, v)?,
            "host_dirs" => {
                let dirs: Vec<HostDir> = parse_args("iotedge_config host_dirs", v)?;
                for d in dirs {
                    if !d.path.starts_with('/') {
                        return Err(ArgError::key(
                            k,
                            format!(
                                "iotedge_config: host_dirs: `{}` must be an absolute path",
                                d.path
                            ),
                        ));
                    }
                    p.host_dirs.push(DirSpec {
                        path: d.path,
                        owner: d.owner,
                        group: d.group,
                        mode: d
                            .mode
                            .as_ref()
                            .map(parse_mode)
                            .transpose()
                            .map_err(|e| ArgError::key(k, e))?,
                    });
                }
            }
            _ => {
                cfg.insert(k.clone(), v.clone());
            }
        }
    }
    if p.src.is_some() && !cfg.is_empty() {
        return Err(ArgError::new(format!(
            "iotedge_config: give either `src:` (a template) or the configuration as data, not both (found {})",
            cfg.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok((p, Value::Object(cfg)))
}

fn as_bool(k: &str, v: &Value) -> Result<bool, ArgError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.as_str(), "yes" | "true" | "True") => Ok(true),
        Value::String(s) if matches!(s.as_str(), "no" | "false" | "False") => Ok(false),
        _ => Err(ArgError::key(
            k,
            format!("iotedge_config: `{k}` must be true or false"),
        )),
    }
}

fn as_str(k: &str, v: &Value) -> Result<String, ArgError> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| ArgError::key(k, format!("iotedge_config: `{k}` must be a string")))
}

fn problem(e: cfgmod::ConfigProblem) -> ArgError {
    let top = e.key.split('.').next().unwrap_or_default().to_string();
    ArgError::key(top, format!("iotedge_config: {e}"))
}

/// Validate a config with the module's options; returns warnings.
fn check(c: &SuperConfig, p: &Parsed) -> Result<Vec<String>, ArgError> {
    if let Some(first) = cfgmod::validate(c).into_iter().next() {
        return Err(problem(first));
    }
    if cfgmod::edge_ca_shape(c.edge_ca.as_ref()) == Some(EdgeCaShape::Quickstart)
        && !p.allow_quickstart_ca
    {
        return Err(ArgError::key(
            "edge_ca",
            "iotedge_config: no Edge CA certificate is configured, so IoT Edge would generate a quickstart CA (development only, per the production checklist). Configure `edge_ca: {cert, pk}` (see the edge_ca module) or set `allow_quickstart_ca: true` for development devices",
        ));
    }
    let findings = cfgmod::production_findings(c);
    if p.production {
        let blocking: Vec<&String> = findings
            .iter()
            .filter(|f| !(p.allow_quickstart_ca && f.contains("quickstart")))
            .collect();
        if let Some(f) = blocking.first() {
            return Err(ArgError::new(format!(
                "iotedge_config: production: {f} (set `production: false` to accept this on development devices)"
            )));
        }
    }
    Ok(findings
        .into_iter()
        .map(|f| format!("iotedge_config: {f}"))
        .collect())
}

#[async_trait]
impl Module for IotedgeConfig {
    fn name(&self) -> &'static str {
        "iotedge_config"
    }

    fn validate(&self, args: &Value) -> Result<(), ArgError> {
        let (p, cfg) = split(args)?;
        if p.src.is_none() && !contains_template(&cfg) {
            let c = cfgmod::from_value(&cfg).map_err(problem)?;
            check(&c, &p)?;
        } else if p.src.is_none() {
            // Keys can be checked even when values are templates.
            if let Err(e) = cfgmod::from_value(&cfg) {
                if e.message.starts_with("unknown key") {
                    return Err(problem(e));
                }
            }
        }
        let _ = OPTIONS;
        Ok(())
    }

    fn preflight(
        &self,
        args: &Value,
        _host: &str,
        vars: &Context,
    ) -> Result<Vec<String>, ArgError> {
        let (p, cfg) = split(args)?;
        let c = match &p.src {
            Some(src) => {
                let text = render_src(src, vars, &[]).map_err(ArgError::new)?;
                parse_rendered(&text)?
            }
            None => cfgmod::from_value(&cfg).map_err(problem)?,
        };
        check(&c, &p)
    }

    fn prefetch(&self, args: &Value, _vars: &Context) -> Vec<FactReq> {
        let Ok((p, _)) = split(args) else {
            return vec![FactReq::File {
                path: DEFAULT_DEST.into(),
                content: true,
            }];
        };
        let mut r = vec![FactReq::File {
            path: p.dest,
            content: true,
        }];
        r.extend(p.host_dirs.into_iter().map(|d| FactReq::File {
            path: d.path,
            content: false,
        }));
        r
    }

    async fn plan(&self, args: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let (p, cfg) = split(args)?;
        let c = match &p.src {
            Some(src) => {
                let text = render_src(src, cx.vars, cx.search).map_err(ModuleError::Failed)?;
                parse_rendered(&text)?
            }
            None => cfgmod::from_value(&cfg).map_err(problem)?,
        };
        let warnings = check(&c, &p)?;
        let text = cfgmod::render(&c).map_err(ModuleError::Failed)?;
        let secret = crate::redact::contains_secret(&text);
        let cur = cx.file(&p.dest, true).await?;
        let current_text = cur.text();
        let attrs = Attrs {
            mode: Some(0o600),
            owner: Some("root".into()),
            group: Some("root".into()),
        };
        let same = current_text
            .as_deref()
            .map(|t| cfgmod::same_meaning(t, &text))
            .unwrap_or(false);
        let mut result = Map::new();
        result.insert("dest".into(), json!(p.dest));
        let deployed_sha = if same {
            cur.sha256.clone().unwrap_or_default()
        } else {
            sha256_hex(text.as_bytes())
        };
        result.insert("checksum".into(), json!(deployed_sha));
        result.insert(
            "edge_ca".into(),
            json!(match cfgmod::edge_ca_shape(c.edge_ca.as_ref()) {
                Some(EdgeCaShape::Preloaded) => "preloaded",
                Some(EdgeCaShape::Issued) => "issued",
                _ => "quickstart",
            }),
        );
        let mut facts = Map::new();
        facts.insert("iotedge_config_sha256".into(), json!(deployed_sha));
        // Host directories (module storage) that are missing or have the wrong mode/owner.
        let mut dirs = Vec::new();
        let mut dir_diffs = Vec::new();
        for d in &p.host_dirs {
            let f = cx.file(&d.path, false).await?;
            let want = Attrs {
                mode: d.mode,
                owner: d.owner.clone(),
                group: d.group.clone(),
            };
            let changes = if f.is_dir() {
                want.diff(&f)
            } else {
                vec![format!(
                    "state: {} -> directory",
                    if f.exists { "file" } else { "absent" }
                )]
            };
            if !changes.is_empty() {
                dirs.push(d.clone());
                dir_diffs.push(Diff {
                    path: d.path.clone(),
                    attrs: changes,
                    ..Diff::default()
                });
            }
        }
        let dir_steps: Vec<Step> = if dirs.is_empty() {
            vec![]
        } else {
            vec![Step::EnsureDirs(dirs)]
        };
        if same {
            let changes = attrs.diff(&cur);
            if changes.is_empty() {
                return Ok(Plan {
                    changed: !dir_steps.is_empty(),
                    steps: dir_steps,
                    diffs: dir_diffs,
                    result,
                    warnings,
                    set_facts: Some(facts),
                    ..Plan::default()
                });
            }
            let cmd = attrs
                .fix_cmd(&p.dest)
                .ok_or_else(|| ModuleError::Failed("nothing to fix".into()))?;
            let mut steps = dir_steps;
            steps.push(Step::Exec {
                exec: cx.exec(cmd),
                what: format!("set 0600 root:root on {}", p.dest),
            });
            return Ok(Plan {
                changed: true,
                steps,
                diffs: vec![Diff {
                    path: p.dest.clone(),
                    attrs: changes,
                    ..Diff::default()
                }],
                result,
                warnings,
                set_facts: Some(facts),
                ..Plan::default()
            });
        }
        if let Some(t) = &current_text {
            if cfgmod::parse_toml(t).is_err() {
                result.insert("previous_unparseable".into(), json!(true));
            }
        }
        let mut steps = dir_steps;
        steps.push(Step::Write(vec![FileWrite {
            path: p.dest.clone(),
            content: Bytes::from(text.clone()),
            secret: false,
            mode: Some(0o600),
            owner: Some("root".into()),
            group: Some("root".into()),
            backup: true,
            parent: None,
        }]));
        let mut diffs = dir_diffs;
        diffs.push(Diff {
            path: p.dest.clone(),
            before: if cur.exists {
                Some(current_text.unwrap_or_default())
            } else {
                None
            },
            after: Some(text),
            secret: false,
            attrs: vec![],
        });
        Ok(Plan {
            changed: true,
            steps,
            diffs,
            msg: Some(if secret {
                "config.toml updated (contains secrets: shown masked)".into()
            } else {
                "config.toml updated".into()
            }),
            result,
            warnings,
            set_facts: Some(facts),
            ..Plan::default()
        })
    }
}

fn render_src(src: &str, vars: &Context, search: &[std::path::PathBuf]) -> Result<String, String> {
    let path = search
        .iter()
        .flat_map(|d| [d.join("templates").join(src), d.join(src)])
        .find(|p| p.exists())
        .unwrap_or_else(|| std::path::PathBuf::from(src));
    vars.render_file(&path)
        .map_err(|e| format!("iotedge_config: src template: {}", e.message))
}

fn parse_rendered(text: &str) -> Result<SuperConfig, ArgError> {
    let v = cfgmod::parse_toml(text).map_err(|e| {
        ArgError::new(format!(
            "iotedge_config: the rendered template is not valid TOML: {e}"
        ))
    })?;
    cfgmod::from_value(&v).map_err(problem)
}
