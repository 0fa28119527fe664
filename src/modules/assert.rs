//! `assert` and `fail`: decide on the controller whether a host passes.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The `assert` module.
pub struct Assert;

/// The arguments of `assert`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertArgs {
    that: Value,
    #[serde(default, alias = "msg")]
    fail_msg: Option<Value>,
    #[serde(default)]
    success_msg: Option<Value>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    quiet: bool,
}

fn conditions(v: &Value) -> Result<Vec<String>, ArgError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Bool(b) => Ok(vec![if *b { "True".into() } else { "False".into() }]),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(if *b { "True".into() } else { "False".into() }),
                _ => Err(ArgError::key(
                    "that",
                    "assert: `that` must be a list of conditions",
                )),
            })
            .collect(),
        _ => Err(ArgError::key(
            "that",
            "assert: `that` must be a condition or a list of conditions",
        )),
    }
}

fn text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(|m| match m {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[async_trait]
impl TypedModule for Assert {
    type Args = AssertArgs;
    type State = ();

    fn name(&self) -> &'static str {
        "assert"
    }

    fn local_only(&self) -> bool {
        true
    }

    fn check_args(&self, a: &AssertArgs) -> Result<(), ArgError> {
        conditions(&a.that).map(|_| ())
    }

    async fn plan(&self, a: &AssertArgs, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        for c in conditions(&a.that)? {
            let ok = cx.vars.eval_condition(&c, "assert").map_err(|e| {
                ModuleError::Failed(format!("assert: cannot evaluate `{c}`: {}", e.message))
            })?;
            if !ok {
                let msg = text(&a.fail_msg).unwrap_or_else(|| "Assertion failed".into());
                let mut result = Map::new();
                result.insert("assertion".into(), json!(c));
                result.insert("evaluated_to".into(), json!(false));
                return Ok(Plan::fail(msg.clone()).with_msg(msg).with_result(result));
            }
        }
        Ok(Plan::unchanged()
            .with_msg(text(&a.success_msg).unwrap_or_else(|| "All assertions passed".into())))
    }
}

/// The `fail` module.
pub struct Fail;

/// The arguments of `fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailArgs {
    #[serde(default)]
    msg: Option<Value>,
}

#[async_trait]
impl TypedModule for Fail {
    type Args = FailArgs;
    type State = ();

    fn name(&self) -> &'static str {
        "fail"
    }

    fn local_only(&self) -> bool {
        true
    }

    async fn plan(&self, a: &FailArgs, _cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let msg = text(&a.msg).unwrap_or_else(|| "Failed as requested from task".into());
        Ok(Plan::fail(msg.clone()).with_msg(msg))
    }
}
