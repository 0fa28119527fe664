//! `set_fact`: set host variables for the rest of the run (above everything but extra vars).

use async_trait::async_trait;
use serde_json::Value;

use super::*;

/// The `set_fact` module.
pub struct SetFact;

fn facts(v: &Value) -> Result<Map<String, Value>, ArgError> {
    let Value::Object(m) = v else {
        return Err(ArgError::new(
            "set_fact: give variables as key: value pairs",
        ));
    };
    let mut out = Map::new();
    for (k, val) in m {
        if k == "cacheable" {
            continue;
        }
        let ok = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(ArgError::key(
                k.clone(),
                format!("set_fact: `{k}` is not a valid variable name"),
            ));
        }
        out.insert(k.clone(), val.clone());
    }
    if out.is_empty() {
        return Err(ArgError::new("set_fact: no variables given"));
    }
    Ok(out)
}

#[async_trait]
impl Module for SetFact {
    fn name(&self) -> &'static str {
        "set_fact"
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        facts(v).map(|_| ())
    }

    async fn plan(&self, v: &Value, _cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let f = facts(v)?;
        let mut result = Map::new();
        result.insert("ansible_facts".into(), Value::Object(f.clone()));
        Ok(Plan {
            set_facts: Some(f),
            result,
            read_only: true,
            ..Plan::default()
        })
    }
}
