//! `debug`: print a message or a variable (secrets are masked by the reporter).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::*;

/// The `debug` module.
pub struct Debug;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    msg: Option<Value>,
    #[serde(default)]
    var: Option<String>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks: the reporter decides what is shown.
    #[allow(dead_code)]
    verbosity: Option<u8>,
}

#[async_trait]
impl TypedModule for Debug {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "debug"
    }

    fn local_only(&self) -> bool {
        true
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if a.msg.is_some() && a.var.is_some() {
            return Err(ArgError::key("var", "debug: give `msg` or `var`, not both"));
        }
        Ok(())
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let mut result = Map::new();
        let msg = match (&a.var, &a.msg) {
            (Some(var), _) => {
                let val = cx
                    .vars
                    .eval_expr(var, "debug var")
                    .unwrap_or_else(|_| Value::String("VARIABLE IS NOT DEFINED!".into()));
                result.insert(var.clone(), val.clone());
                format!("{var}: {}", display(&val))
            }
            (None, Some(m)) => {
                result.insert("msg".into(), m.clone());
                display(m)
            }
            (None, None) => {
                result.insert("msg".into(), Value::String("Hello world!".into()));
                "Hello world!".into()
            }
        };
        Ok(Plan::unchanged().with_msg(msg).with_result(result))
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}
