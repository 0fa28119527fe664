//! `stat`: facts about a path on the device (read-only; runs in check mode too), with Ansible's semantics: a
//! symlink is described as a link unless `follow: yes` (`islnk`, `lnk_target`, `lnk_source`), the checksum is
//! sha1 unless `checksum_algorithm` says sha256, and `readable`/`writeable`/`executable` say what the connecting
//! user may do. Everything comes from the batched gather (sha1 and the user's ids included): no extra round trip.

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
    #[serde(default, alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: Option<String>,
    #[serde(default)]
    follow: bool,
    #[serde(default, alias = "get_mime_type")]
    // Accepted for compatibility with Ansible playbooks; mime types are not reported (see
    // docs/ansible-differences.md).
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

/// The fact-cache key of the connecting user's ids (`id -u`, then `id -G`), asked once per run.
const IDS_KEY: &str = "__user_ids";

fn ids_cmd() -> Cmd {
    Cmd::new("id -u; id -G")
}

impl Args {
    fn sha1(&self) -> bool {
        self.get_checksum && self.checksum_algorithm.as_deref().unwrap_or("sha1") == "sha1"
    }
}

/// What the user with `uid` and groups `gids` may do with a path of `mode` owned by `owner:group`, as
/// `os.access` answers it: (read, write, execute). Root reads and writes anything, and executes a directory or
/// anything with an execute bit.
fn access(mode: u32, owner: u32, group: u32, is_dir: bool, uid: u32, gids: &[u32]) -> [bool; 3] {
    if uid == 0 {
        return [true, true, is_dir || mode & 0o111 != 0];
    }
    let bits = if uid == owner {
        (mode >> 6) & 7
    } else if gids.contains(&group) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    [bits & 4 != 0, bits & 2 != 0, bits & 1 != 0]
}

/// Where a link points, made absolute and normalized (`lnk_source`; further links are not resolved).
fn link_source(path: &str, target: &str) -> String {
    let joined = if target.starts_with('/') {
        target.to_string()
    } else {
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{target}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
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
        let file = if a.sha1() {
            FactReq::Checksum {
                path: a.path.clone(),
                content: false,
            }
        } else {
            FactReq::file(a.path.clone())
        };
        vec![
            file,
            FactReq::Command {
                key: IDS_KEY.into(),
                cmd: ids_cmd(),
            },
        ]
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let f = if a.sha1() {
            cx.facts
                .file_checksum(cx.transport, &a.path, false, cx.become_.clone())
                .await
                .map_err(ModuleError::from)?
        } else {
            cx.file(&a.path, false).await?
        };
        let as_link = f.link.is_some() && !a.follow;
        let mut st = Map::new();
        st.insert("exists".into(), json!(f.exists || as_link));
        st.insert("path".into(), json!(a.path));
        if f.exists || as_link {
            let ids = cx.fact_command(IDS_KEY, ids_cmd()).await?.stdout_str();
            let mut lines = ids.lines();
            let uid: u32 = lines
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(u32::MAX);
            let gids: Vec<u32> = lines
                .next()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect();
            let target = f.link.clone().unwrap_or_default();
            let (mode, size) = if as_link {
                (0o777, target.len() as u64)
            } else {
                (f.mode, f.size)
            };
            let (is_dir, is_reg) = if as_link {
                (false, false)
            } else {
                (f.is_dir(), f.is_file())
            };
            st.insert("mode".into(), json!(format!("{mode:04o}")));
            st.insert("isdir".into(), json!(is_dir));
            st.insert("isreg".into(), json!(is_reg));
            st.insert("islnk".into(), json!(as_link));
            // The gather does not tell devices, fifos and sockets apart: none of them is claimed.
            for k in ["ischr", "isblk", "isfifo", "issock"] {
                st.insert(k.into(), json!(false));
            }
            st.insert("uid".into(), json!(f.uid));
            st.insert("gid".into(), json!(f.gid));
            st.insert("pw_name".into(), json!(f.owner));
            st.insert("gr_name".into(), json!(f.group));
            st.insert("size".into(), json!(size));
            for (k, bit) in [
                ("rusr", 0o400),
                ("wusr", 0o200),
                ("xusr", 0o100),
                ("rgrp", 0o040),
                ("wgrp", 0o020),
                ("xgrp", 0o010),
                ("roth", 0o004),
                ("woth", 0o002),
                ("xoth", 0o001),
                ("isuid", 0o4000),
                ("isgid", 0o2000),
            ] {
                st.insert(k.into(), json!(mode & bit != 0));
            }
            // os.access follows links: a dangling one allows nothing.
            let [r, w, x] = if f.exists {
                access(f.mode, f.uid, f.gid, f.is_dir(), uid, &gids)
            } else {
                [false, false, false]
            };
            st.insert("readable".into(), json!(r));
            st.insert("writeable".into(), json!(w));
            st.insert("executable".into(), json!(x));
            if as_link {
                st.insert("lnk_target".into(), json!(target));
                st.insert("lnk_source".into(), json!(link_source(&a.path, &target)));
            }
            if a.get_checksum && is_reg {
                let sum = if a.sha1() {
                    f.sha1.clone()
                } else {
                    f.sha256.clone()
                };
                if let Some(s) = sum {
                    st.insert("checksum".into(), json!(s));
                }
            }
        }
        let mut result = Map::new();
        result.insert("stat".into(), Value::Object(st));
        Ok(Plan::unchanged().with_result(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_like_os_access() {
        assert_eq!(access(0o400, 5, 5, false, 0, &[]), [true, true, false]);
        assert_eq!(access(0o750, 5, 5, false, 0, &[]), [true, true, true]);
        assert_eq!(access(0o700, 5, 5, true, 0, &[]), [true, true, true]);
        assert_eq!(access(0o640, 5, 7, false, 6, &[7]), [true, false, false]);
        assert_eq!(access(0o604, 5, 7, false, 6, &[8]), [true, false, false]);
        assert_eq!(access(0o600, 5, 7, false, 6, &[8]), [false, false, false]);
    }

    #[test]
    fn link_sources_are_absolute_and_normalized() {
        assert_eq!(link_source("/a/b/link", "../c/t"), "/a/c/t");
        assert_eq!(link_source("/a/link", "/x/./y"), "/x/y");
        assert_eq!(link_source("/a/link", "t"), "/a/t");
    }
}
