//! `iotedge_config`: owns `/etc/aziot/config.toml`.
//!
//! Arguments describe the 1.5 super config as data (or a `src:` template that goes through the same
//! validation). Validated by the real 1.5 rules before contact; unknown keys are errors (the device would
//! ignore them silently). Rendered deterministically, compared semantically with the device's file, written
//! atomically as 0600 root:root only on a real change. Notify `iotedge_apply` from the playbook. A new
//! config.toml may cut the device off (provisioning, proxy, hostname): it is declared so ([`CutOff`]), and the
//! executor arms the dead-man revert with it, whose revert runs `iotedge config apply` on the restored file.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};

use super::util::Attrs;
use super::*;
use crate::facts::sha256_hex;
use crate::iotedge::config::{self as cfgmod, EdgeCaShape, SuperConfig};

/// The module.
pub struct IotedgeConfig;

const DEFAULT_DEST: &str = "/etc/aziot/config.toml";

/// The arguments: the module's options, and the configuration itself as data (every other key), unless it
/// comes from a `src:` template.
#[derive(Debug, serde::Deserialize)]
pub struct Args {
    /// A template rendering config.toml (instead of the configuration as data).
    #[serde(default)]
    src: Option<String>,
    #[serde(default = "default_dest")]
    dest: String,
    #[serde(default)]
    production: bool,
    #[serde(default)]
    allow_quickstart_ca: bool,
    /// Host directories the configuration bind-mounts (module storage): ensured with their owner and mode.
    #[serde(default)]
    host_dirs: Vec<HostDir>,
    /// The configuration as data (validated by the 1.5 rules, so unknown keys are errors there).
    #[serde(flatten)]
    config: serde_json::Map<String, Value>,
}

fn default_dest() -> String {
    DEFAULT_DEST.into()
}

/// One host directory.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDir {
    path: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
}

impl HostDir {
    fn spec(&self) -> DirSpec {
        DirSpec {
            path: self.path.clone(),
            mode: self.mode.as_ref().map(|m| m.resolve(None, true)),
            owner: self.owner.clone(),
            group: self.group.clone(),
        }
    }
}

impl Args {
    /// The configuration: rendered from `src` (found on the task's search path), or the data given.
    fn load(&self, vars: &Context, search: &[std::path::PathBuf]) -> Result<SuperConfig, ArgError> {
        match &self.src {
            Some(src) => {
                let text = render_src(src, vars, search).map_err(ArgError::new)?;
                parse_rendered(&text)
            }
            None => cfgmod::from_value(&Value::Object(self.config.clone())).map_err(problem),
        }
    }
}

fn problem(e: cfgmod::ConfigProblem) -> ArgError {
    let top = e.key.split('.').next().unwrap_or_default().to_string();
    ArgError::key(top, format!("iotedge_config: {e}"))
}

/// Validate a config with the module's options; returns warnings.
fn check(c: &SuperConfig, p: &Args) -> Result<Vec<String>, ArgError> {
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
impl TypedModule for IotedgeConfig {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "iotedge_config"
    }

    fn check_args(&self, p: &Args) -> Result<(), ArgError> {
        for d in &p.host_dirs {
            if !d.path.starts_with('/') {
                return Err(ArgError::key(
                    "host_dirs",
                    format!(
                        "iotedge_config: host_dirs: `{}` must be an absolute path",
                        d.path
                    ),
                ));
            }
        }
        if p.src.is_some() {
            if !p.config.is_empty() {
                return Err(ArgError::new(format!(
                    "iotedge_config: give either `src:` (a template) or the configuration as data, not both (found {})",
                    p.config.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            // The template is rendered (and validated) in pre-flight.
            return Ok(());
        }
        // Values are checked once rendered (pre-flight) when any of them is a template.
        let cfg = Value::Object(p.config.clone());
        if !contains_template(&cfg) {
            let c = cfgmod::from_value(&cfg).map_err(problem)?;
            check(&c, p)?;
        }
        Ok(())
    }

    fn check_keys(&self, p: &Args) -> Result<(), ArgError> {
        // Keys the device would silently ignore, even when values are templates.
        if p.src.is_none() {
            if let Err(e) = cfgmod::from_value(&Value::Object(p.config.clone())) {
                if e.message.starts_with("unknown key") {
                    return Err(problem(e));
                }
            }
        }
        Ok(())
    }

    fn preflight(&self, p: &Args, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        let c = p.load(cx.vars, cx.search)?;
        check(&c, p)
    }

    fn prefetch(&self, p: &Args, _vars: &Context) -> Vec<FactReq> {
        let mut r = vec![FactReq::File {
            path: p.dest.clone(),
            content: true,
        }];
        r.extend(p.host_dirs.iter().map(|d| FactReq::File {
            path: d.path.clone(),
            content: false,
        }));
        r
    }

    async fn plan(&self, p: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let c = p.load(cx.vars, cx.search)?;
        let warnings = check(&c, p)?;
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
        for hd in &p.host_dirs {
            let d = hd.spec();
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
                let plan = if dir_steps.is_empty() {
                    Plan::unchanged()
                } else {
                    Plan::change(dir_steps, ())
                };
                return Ok(plan
                    .with_diffs(dir_diffs)
                    .with_result(result)
                    .with_warnings(warnings)
                    .with_facts(facts));
            }
            let cmd = attrs
                .fix_cmd(&p.dest)
                .ok_or_else(|| ModuleError::Failed("nothing to fix".into()))?;
            let mut steps = dir_steps;
            steps.push(Step::Exec {
                exec: cx.exec(cmd),
                what: format!("set 0600 root:root on {}", p.dest),
            });
            let mut diffs = dir_diffs;
            diffs.push(Diff {
                path: p.dest.clone(),
                attrs: changes,
                ..Diff::default()
            });
            return Ok(Plan::change(steps, ())
                .with_diffs(diffs)
                .with_result(result)
                .with_warnings(warnings)
                .with_facts(facts));
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
            backup_beside: false,
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
        Ok(Plan::change(steps, ())
            .may_cut_off(CutOff {
                why: format!("{} changes", p.dest),
                reapply: vec![Reapply::IotedgeConfigApply],
                previous: cur.exists,
            })
            .with_diffs(diffs)
            .with_msg(if secret {
                "config.toml updated (contains secrets: shown masked)"
            } else {
                "config.toml updated"
            })
            .with_result(result)
            .with_warnings(warnings)
            .with_facts(facts))
    }
}

fn render_src(src: &str, vars: &Context, search: &[std::path::PathBuf]) -> Result<String, String> {
    let path = crate::template::search::find(search, "templates", src)
        .map_err(|e| format!("iotedge_config: src template: {e}"))?;
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
