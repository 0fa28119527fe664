//! `service` / `systemd_service` / `systemd`: start, stop, restart, reload and enable units.
//!
//! The unit's state is a fact (batched with the play's other facts); only what differs is changed.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::facts::systemd;

/// The service module.
pub struct Service;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "unit")]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    daemon_reload: bool,
    #[serde(default)]
    masked: Option<bool>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    scope: Option<String>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    no_block: Option<bool>,
}

#[async_trait]
impl TypedModule for Service {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "systemd_service"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["service", "systemd"]
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if let Some(s) = &a.state {
            if !["started", "stopped", "restarted", "reloaded"].contains(&s.as_str()) {
                return Err(ArgError::key(
                    "state",
                    format!(
                        "service: state `{s}` is not one of started, stopped, restarted, reloaded"
                    ),
                ));
            }
        }
        if a.name.is_none() && !a.daemon_reload {
            return Err(ArgError::new("service: missing required argument `name`"));
        }
        if a.masked.is_some() {
            return Err(ArgError::key(
                "masked",
                "service: `masked` is not supported",
            ));
        }
        Ok(())
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        match &a.name {
            Some(n) => vec![FactReq::Command {
                key: systemd::key(n),
                cmd: systemd::state_cmd(n),
            }],
            None => vec![],
        }
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let mut cmds = Vec::new();
        let mut what = Vec::new();
        if a.daemon_reload {
            cmds.push(Cmd::new("systemctl").raw("daemon-reload"));
        }
        let mut result = Map::new();
        let mut changed = false;
        if let Some(name) = &a.name {
            let out = cx
                .fact_command(&systemd::key(name), systemd::state_cmd(name))
                .await?;
            let unit_state = systemd::parse(&out.stdout_str());
            let is_active = unit_state.is_active();
            let unit = Cmd::new("systemctl");
            match a.state.as_deref() {
                Some("started") if !is_active => {
                    cmds.push(unit.clone().raw("start").raw("--").arg(name.clone()));
                    what.push("start");
                }
                Some("stopped") if is_active => {
                    cmds.push(unit.clone().raw("stop").raw("--").arg(name.clone()));
                    what.push("stop");
                }
                Some("restarted") => {
                    cmds.push(unit.clone().raw("restart").raw("--").arg(name.clone()));
                    what.push("restart");
                }
                Some("reloaded") => {
                    let verb = if is_active {
                        "reload-or-restart"
                    } else {
                        "start"
                    };
                    cmds.push(unit.clone().raw(verb).raw("--").arg(name.clone()));
                    what.push("reload");
                }
                _ => {}
            }
            if let Some(en) = a.enabled {
                if en != unit_state.is_enabled() {
                    let verb = if en { "enable" } else { "disable" };
                    cmds.push(unit.raw(verb).raw("--").arg(name.clone()));
                    what.push(verb);
                }
            }
            changed = !what.is_empty();
            result.insert("name".into(), json!(name));
            result.insert(
                "state".into(),
                json!(match a.state.as_deref() {
                    Some("stopped") => "stopped",
                    Some(_) => "started",
                    None =>
                        if is_active {
                            "started"
                        } else {
                            "stopped"
                        },
                }),
            );
            result.insert(
                "status".into(),
                json!({"ActiveState": unit_state.active, "UnitFileState": unit_state.enabled}),
            );
        }
        let steps = match super::util::join_and(cmds) {
            Some(c) if changed || a.daemon_reload => vec![Step::Exec {
                exec: cx.exec(c),
                what: match (&a.name, what.is_empty()) {
                    (Some(n), false) => format!("{} {n}", what.join("+")),
                    _ => "daemon-reload".into(),
                },
            }],
            _ => vec![],
        };
        // A bare daemon-reload runs (not in check mode) but changes nothing the module reports.
        let plan = match (changed, steps.is_empty()) {
            (_, true) => Plan::unchanged(),
            (true, false) => Plan::change(steps, ()),
            (false, false) => Plan::unreported(steps, ()),
        };
        let touched = a
            .name
            .iter()
            .map(|n| Touched::Fact(systemd::key(n)))
            .collect();
        Ok(plan.with_result(result).touching(touched))
    }
}
