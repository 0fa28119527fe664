//! `ping`: prove the device answers (one round trip).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::*;

/// The `ping` module.
pub struct Ping;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    data: Option<String>,
}

#[async_trait]
impl TypedModule for Ping {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "ping"
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let data = a.data.clone().unwrap_or_else(|| "pong".into());
        let mut result = Map::new();
        result.insert("ping".into(), json!(data));
        Ok(Plan::read_only(
            vec![Step::Exec {
                exec: cx.exec(Cmd::new("true")),
                what: "ping".into(),
            }],
            (),
        )
        .with_result(result))
    }
}
