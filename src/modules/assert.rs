//! `assert` and `fail`: decide on the controller whether a host passes.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The `assert` module.
pub struct Assert;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertArgs {
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
impl Module for Assert {
    fn name(&self) -> &'static str {
        "assert"
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        // `that` holds raw expressions: they are not rendered like other arguments.
        let a: AssertArgs = parse_args("assert", v)?;
        conditions(&a.that).map(|_| ())
    }

    async fn plan(&self, v: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let a: AssertArgs = parse_args("assert", v)?;
        for c in conditions(&a.that)? {
            let ok = cx.vars.eval_condition(&c, "assert").map_err(|e| {
                ModuleError::Failed(format!("assert: cannot evaluate `{c}`: {}", e.message))
            })?;
            if !ok {
                let msg = text(&a.fail_msg).unwrap_or_else(|| "Assertion failed".into());
                let mut result = Map::new();
                result.insert("assertion".into(), json!(c));
                result.insert("evaluated_to".into(), json!(false));
                return Ok(Plan {
                    failed: Some(msg.clone()),
                    msg: Some(msg),
                    result,
                    read_only: true,
                    ..Plan::default()
                });
            }
        }
        Ok(Plan {
            msg: Some(text(&a.success_msg).unwrap_or_else(|| "All assertions passed".into())),
            read_only: true,
            ..Plan::default()
        })
    }
}

/// The `fail` module.
pub struct Fail;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailArgs {
    #[serde(default)]
    msg: Option<Value>,
}

#[async_trait]
impl Module for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        validate_args::<FailArgs>("fail", v)
    }

    async fn plan(&self, v: &Value, _cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let a: FailArgs = parse_args("fail", v)?;
        let msg = text(&a.msg).unwrap_or_else(|| "Failed as requested from task".into());
        Ok(Plan {
            failed: Some(msg.clone()),
            msg: Some(msg),
            read_only: true,
            ..Plan::default()
        })
    }
}
