//! `stat`: facts about a path on the device (read-only; runs in check mode too).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The `stat` module.
pub struct Stat;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default = "yes")]
    get_checksum: bool,
    #[serde(default)]
    checksum_algorithm: Option<String>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    follow: Option<bool>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    get_mime: Option<bool>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    get_attributes: Option<bool>,
}

fn yes() -> bool {
    true
}

#[async_trait]
impl TypedModule for Stat {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "stat"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if let Some(alg) = &a.checksum_algorithm {
            if !matches!(alg.as_str(), "sha256" | "sha1") {
                return Err(ArgError::key(
                    "checksum_algorithm",
                    "stat: checksum_algorithm must be sha256 or sha1",
                ));
            }
        }
        Ok(())
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        vec![FactReq::File {
            path: a.path.clone(),
            content: false,
        }]
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let f = cx.file(&a.path, false).await?;
        let mut st = Map::new();
        st.insert("exists".into(), json!(f.exists));
        st.insert("path".into(), json!(a.path));
        if f.exists {
            st.insert("mode".into(), json!(format!("{:04o}", f.mode)));
            st.insert("isdir".into(), json!(f.is_dir()));
            st.insert("isreg".into(), json!(f.is_file()));
            st.insert("islnk".into(), json!(f.kind == "link"));
            st.insert("uid".into(), json!(f.uid));
            st.insert("gid".into(), json!(f.gid));
            st.insert("pw_name".into(), json!(f.owner));
            st.insert("gr_name".into(), json!(f.group));
            st.insert("size".into(), json!(f.size));
            if a.get_checksum && f.is_file() {
                let sha1 = a.checksum_algorithm.as_deref() == Some("sha1");
                if sha1 {
                    let o = cx
                        .probe(Cmd::new("sha1sum").raw("<").arg(a.path.clone()))
                        .await?;
                    let sum = o
                        .stdout_str()
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    st.insert("checksum".into(), json!(sum));
                } else if let Some(s) = &f.sha256 {
                    st.insert("checksum".into(), json!(s));
                }
            }
        }
        let mut result = Map::new();
        result.insert("stat".into(), Value::Object(st));
        Ok(Plan::unchanged().with_result(result))
    }
}
