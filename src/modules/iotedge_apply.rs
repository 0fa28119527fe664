//! `iotedge_apply` (used as a handler): runs `iotedge config apply` at most once per device per run.
//!
//! `config apply` always restarts the IoT Edge services, so it must only run when the configuration really
//! changed (the playbook notifies it from `iotedge_config`). If apply fails, the previous config.toml (the
//! newest rollback copy the atomic write kept in edgefleet's state directory, see [`rollback_name`]) is restored
//! and applied again, the rejected file is kept beside that copy (`<name>.failed`, never in /etc/aziot), and the
//! device's own error text is reported. The hostname-change refusal is recognised and explained. One round trip.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The module.
pub struct IotedgeApply;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "dest")]
    config: String,
    #[serde(default = "yes")]
    restore_on_failure: bool,
}

fn dest() -> String {
    "/etc/aziot/config.toml".into()
}
fn yes() -> bool {
    true
}

/// Arguments: the config path, restore (1/0), the rollback name; then the state directories to look in.
const SCRIPT: &str = r#"cfg=$1; restore=$2; name=$3; shift 3
out=$(iotedge config apply -c "$cfg" 2>&1); rc=$?
printf '%s\n' "$out"
bak=
for bd; do if [ -f "$bd/$name.1" ]; then bak="$bd/$name"; break; fi; done
if [ "$rc" -ne 0 ] && [ "$restore" = 1 ]; then
  if [ -n "$bak" ]; then
    cp -p -- "$cfg" "$bak.failed" 2>/dev/null
    tmp=$(mktemp -- "$cfg.XXXXXX") && cp -p -- "$bak.1" "$tmp" && mv -f -- "$tmp" "$cfg" && sync -- "$cfg" 2>/dev/null
    printf '\036EF:restored %s\n' "$bak.failed"
    out2=$(iotedge config apply -c "$cfg" 2>&1); rc2=$?
    printf '\036EF:reapply %s\n%s\n' "$rc2" "$out2"
  else
    printf '\036EF:norestore\n'
  fi
fi
exit $rc"#;

#[async_trait]
impl TypedModule for IotedgeApply {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "iotedge_apply"
    }

    fn applies_config(&self) -> bool {
        true
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        vec![FactReq::File {
            path: a.config.clone(),
            content: false,
        }]
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let f = cx.file(&a.config, false).await?;
        if !f.exists {
            if cx.check {
                // A dry run of a first provisioning: the earlier task would have written the file, and this
                // handler would apply it.
                return Ok(Plan::change(vec![], ()).with_msg(format!(
                    "would apply {} (written earlier in this run)",
                    a.config
                )));
            }
            return Err(ModuleError::Failed(format!(
                "{} does not exist: nothing to apply",
                a.config
            )));
        }
        let sha = f.sha256.clone().unwrap_or_default();
        // At most once per device per run for the same content.
        if cx
            .vars
            .raw("__edgefleet_applied_sha256")
            .and_then(Value::as_str)
            == Some(sha.as_str())
        {
            return Ok(Plan::skip(
                "this configuration was already applied in this run",
            ));
        }
        let mut facts = Map::new();
        facts.insert("__edgefleet_applied_sha256".into(), json!(sha));
        let cmd = Cmd::new("set --")
            .arg(a.config.clone())
            .arg(if a.restore_on_failure { "1" } else { "0" })
            .arg(rollback_name(&a.config))
            .raw(ROLLBACK_DIRS_SH)
            .raw(";")
            .raw(SCRIPT);
        Ok(Plan::change(
            vec![Step::Exec {
                exec: cx.exec(cmd).timeout(Some(
                    cx.timeout.unwrap_or(std::time::Duration::from_secs(300)),
                )),
                what: "iotedge config apply".into(),
            }],
            (),
        )
        .with_facts(facts)
        // A failed apply restores the previous file.
        .touching(vec![Touched::Path(a.config.clone())]))
    }

    fn interpret(&self, _state: (), ran: Ran) -> Outcome {
        let Some(o) = ran.output() else {
            return ran.outcome();
        };
        let out = o.stdout_str();
        let (main, tail) = match out.split_once(crate::facts::iotedge::MARK) {
            Some((m, t)) => (m.to_string(), Some(t.to_string())),
            None => (out.clone(), None),
        };
        let device_text = format!(
            "{}{}",
            main.trim(),
            if o.stderr.is_empty() {
                String::new()
            } else {
                format!("\n{}", o.stderr_str().trim())
            }
        );
        let mut result = Map::new();
        result.insert("rc".into(), json!(o.status.code()));
        result.insert("stdout".into(), json!(main.trim()));
        let mut outcome = Outcome {
            changed: true,
            ..Outcome::default()
        };
        let failed_services: Vec<&str> = main
            .lines()
            .filter(|l| {
                l.contains("Failed to")
                    || l.contains("failed with exit code")
                    || l.contains("Job for")
            })
            .collect();
        if o.status.success() {
            if !failed_services.is_empty() {
                outcome.warnings.push(format!(
                    "iotedge config apply succeeded but reported service problems (verify the device): {}",
                    failed_services.join(" | ")
                ));
            }
            outcome.msg = Some("IoT Edge configured and restarted".into());
            outcome.result = result;
            return outcome;
        }
        let first_error = main
            .lines()
            .find(|l| l.contains("Command failed") || l.contains("rror"))
            .unwrap_or_else(|| main.lines().last().unwrap_or("(no output)"))
            .trim()
            .to_string();
        let mut msg = format!("iotedge config apply failed: {first_error}");
        if device_text.contains("Cannot apply config because the hostname") {
            msg.push_str(". The way out: either keep the previous hostname in config.toml, or remove the modules first (`iotedge system stop`, then `docker rm -f $(docker ps -aq)` on the device) and apply again; the modules are recreated by edgeAgent");
        }
        match tail.as_deref() {
            Some(t) if t.starts_with("restored") => {
                let reapply_ok = t.contains("EF:reapply 0");
                let failed_copy = t
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("restored "))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if reapply_ok {
                    msg.push_str(&format!(". The previous config.toml was restored and re-applied successfully (the rejected one is kept as {failed_copy})"));
                } else {
                    msg.push_str(". The previous config.toml was restored, but re-applying it failed too: the device needs attention");
                }
                result.insert("rejected_copy".into(), json!(failed_copy));
                result.insert("restored".into(), json!(true));
                result.insert("reapplied".into(), json!(reapply_ok));
            }
            Some(t) if t.starts_with("norestore") => {
                msg.push_str(". There was no previous config.toml to restore (first provisioning)");
            }
            _ => {}
        }
        result.insert("device_output".into(), json!(device_text));
        outcome.failed = Some(msg);
        outcome.result = result;
        outcome
    }
}
