//! `ping`: prove the device answers (one round trip).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The `ping` module.
pub struct Ping;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    data: Option<String>,
}

#[async_trait]
impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        validate_args::<Args>("ping", v)
    }

    async fn plan(&self, v: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let a: Args = parse_args("ping", v)?;
        let data = a.data.unwrap_or_else(|| "pong".into());
        let mut result = Map::new();
        result.insert("ping".into(), json!(data));
        Ok(Plan {
            steps: vec![Step::Exec {
                exec: cx.exec(Cmd::new("true")),
                what: "ping".into(),
            }],
            read_only: true,
            result,
            ..Plan::default()
        })
    }
}
