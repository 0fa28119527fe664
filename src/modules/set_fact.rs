//! `set_fact`: set host variables for the rest of the run (above everything but extra vars).

use async_trait::async_trait;
use serde_json::Value;

use super::*;

/// The `set_fact` module.
pub struct SetFact;

/// The variables to set, except `cacheable` (accepted for compatibility; facts live for the run).
fn facts(args: &Map<String, Value>) -> Map<String, Value> {
    args.iter()
        .filter(|(k, _)| k.as_str() != "cacheable")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[async_trait]
impl TypedModule for SetFact {
    /// Variable names and their values.
    type Args = Map<String, Value>;
    type State = ();

    fn name(&self) -> &'static str {
        "set_fact"
    }

    fn local_only(&self) -> bool {
        true
    }

    fn check_args(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        let f = facts(args);
        for k in f.keys() {
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
        }
        if f.is_empty() {
            return Err(ArgError::new("set_fact: no variables given"));
        }
        Ok(())
    }

    async fn plan(
        &self,
        args: &Map<String, Value>,
        _cx: &PlanCtx<'_>,
    ) -> Result<Plan<()>, ModuleError> {
        let f = facts(args);
        let mut result = Map::new();
        result.insert("ansible_facts".into(), Value::Object(f.clone()));
        Ok(Plan::unchanged().with_facts(f).with_result(result))
    }
}
