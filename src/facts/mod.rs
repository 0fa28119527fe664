//! Facts: what edgefleet knows about a device, gathered read-only in as few round trips as possible.
//!
//! Owns the fact requests modules make ([`FactReq`]), the per-device cache modules read while planning
//! ([`FactCache`]), and every device-side read-only script with its pure parser, tested on recorded output:
//! the batched file/command gather ([`gather`]), the setup facts ([`setup`]), systemd unit state ([`systemd`]),
//! the IoT Edge verify gather ([`iotedge`]) and the certificate gather of `certs report` ([`certs`]). It must
//! never change anything on a device, and it knows neither
//! modules nor the executor: they ask, it answers.

pub mod certs;
pub mod file;
pub mod gather;
pub mod iotedge;
pub mod setup;
pub mod systemd;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::transport::{Become, Cmd, Exec, ExitStatus, Output, SharedTransport, TransportError};

pub use file::{sha256_hex, FileFact};
use gather::{gather_cmd, parse_gather, Gathered};

/// Facts a module wants gathered before the play runs (batched into one round trip with everyone else's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactReq {
    /// stat + sha256 (+ content when `content`) of a path.
    File {
        /// Path.
        path: String,
        /// Also fetch the content (small files only).
        content: bool,
    },
    /// A read-only command (built from quoted parts), cached under `key`.
    Command {
        /// Cache key.
        key: String,
        /// The command (read-only!).
        cmd: Cmd,
    },
}

/// The per-device fact cache for one run.
#[derive(Default)]
pub struct FactCache {
    files: Mutex<HashMap<String, FileFact>>,
    commands: Mutex<HashMap<String, Output>>,
}

impl FactCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding recorded facts (as the gather parses them): file facts, and command outputs by key.
    /// For planning on recorded devices (module fixture tests); anything else is fetched as usual.
    pub fn from_recorded(
        files: impl IntoIterator<Item = FileFact>,
        commands: impl IntoIterator<Item = (String, Output)>,
    ) -> Self {
        FactCache {
            files: Mutex::new(files.into_iter().map(|f| (f.path.clone(), f)).collect()),
            commands: Mutex::new(commands.into_iter().collect()),
        }
    }

    /// Gather many facts in one round trip. Already-cached ones are skipped.
    pub async fn gather(
        &self,
        t: &SharedTransport,
        reqs: &[FactReq],
        become_: Option<Become>,
    ) -> Result<(), TransportError> {
        // One request per path: content wins over a plain stat (a later stat must not drop fetched content).
        let mut todo: Vec<FactReq> = Vec::new();
        for r in reqs.iter().filter(|r| !self.has(r)) {
            match r {
                FactReq::File { path, content } => {
                    if let Some(FactReq::File { content: c, .. }) = todo
                        .iter_mut()
                        .find(|t| matches!(t, FactReq::File { path: p, .. } if p == path))
                    {
                        *c |= *content;
                    } else {
                        todo.push(r.clone());
                    }
                }
                FactReq::Command { .. } => {
                    if !todo.contains(r) {
                        todo.push(r.clone());
                    }
                }
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let out = t
            .exec(Exec::new(gather_cmd(&todo)).become_(become_))
            .await?;
        if !out.status.success() && out.stdout.is_empty() {
            return Err(TransportError::Other(format!(
                "gathering facts failed ({}): {}",
                out.status,
                out.stderr_str().trim()
            )));
        }
        self.absorb(&todo, &out.stdout_str());
        Ok(())
    }

    fn absorb(&self, reqs: &[FactReq], stdout: &str) {
        for (idx, g) in parse_gather(reqs, stdout) {
            match (g, &reqs[idx]) {
                (Gathered::File(f), _) => {
                    if let Ok(mut m) = self.files.lock() {
                        m.insert(f.path.clone(), f);
                    }
                }
                (Gathered::Command { rc, stdout }, FactReq::Command { key, .. }) => {
                    if let Ok(mut m) = self.commands.lock() {
                        m.insert(
                            key.clone(),
                            Output {
                                status: ExitStatus::Code(rc),
                                stdout,
                                stderr: Vec::new(),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn has(&self, r: &FactReq) -> bool {
        match r {
            FactReq::File { path, content } => self
                .files
                .lock()
                .map(|m| {
                    m.get(path)
                        .map(|f| !content || !f.is_file() || f.content.is_some())
                        .unwrap_or(false)
                })
                .unwrap_or(false),
            FactReq::Command { key, .. } => self
                .commands
                .lock()
                .map(|m| m.contains_key(key))
                .unwrap_or(false),
        }
    }

    /// A file's facts (fetched now if not cached).
    pub async fn file(
        &self,
        t: &SharedTransport,
        path: &str,
        content: bool,
        become_: Option<Become>,
    ) -> Result<FileFact, TransportError> {
        let req = FactReq::File {
            path: path.to_string(),
            content,
        };
        if !self.has(&req) {
            self.gather(t, std::slice::from_ref(&req), become_).await?;
        }
        self.files
            .lock()
            .ok()
            .and_then(|m| m.get(path).cloned())
            .ok_or_else(|| {
                TransportError::Other(format!("could not read facts about {path} from the device"))
            })
    }

    /// A read-only command's output (fetched now if not cached).
    pub async fn command(
        &self,
        t: &SharedTransport,
        key: &str,
        cmd: Cmd,
        become_: Option<Become>,
    ) -> Result<Output, TransportError> {
        let req = FactReq::Command {
            key: key.to_string(),
            cmd,
        };
        if !self.has(&req) {
            self.gather(t, std::slice::from_ref(&req), become_).await?;
        }
        self.commands
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .ok_or_else(|| {
                TransportError::Other(format!("could not run fact command `{key}` on the device"))
            })
    }

    /// Record a file we just wrote (so later tasks need no round trip to know it).
    pub fn wrote(
        &self,
        path: &str,
        content: &[u8],
        mode: Option<u32>,
        owner: Option<&str>,
        group: Option<&str>,
    ) {
        if let Ok(mut m) = self.files.lock() {
            let prev = m.get(path).cloned();
            let keep = |f: Option<&str>, old: Option<String>| {
                f.map(str::to_string)
                    .or(old)
                    .unwrap_or_else(|| "root".into())
            };
            let owner_s = keep(
                owner,
                prev.as_ref().filter(|p| p.exists).map(|p| p.owner.clone()),
            );
            let group_s = keep(
                group,
                prev.as_ref().filter(|p| p.exists).map(|p| p.group.clone()),
            );
            let numeric = |s: &str, old: Option<u32>| s.parse::<u32>().ok().or(old).unwrap_or(0);
            m.insert(
                path.to_string(),
                FileFact {
                    path: path.to_string(),
                    exists: true,
                    kind: "file".into(),
                    mode: mode
                        .or(prev.as_ref().filter(|p| p.exists).map(|p| p.mode))
                        .unwrap_or(0o600),
                    uid: numeric(&owner_s, prev.as_ref().map(|p| p.uid)),
                    gid: numeric(&group_s, prev.as_ref().map(|p| p.gid)),
                    owner: owner_s,
                    group: group_s,
                    size: content.len() as u64,
                    sha256: Some(sha256_hex(content)),
                    content: Some(content.to_vec()),
                },
            );
        }
    }

    /// Forget what we know about a path (after a command that may have changed it).
    pub fn forget(&self, path: &str) {
        if let Ok(mut m) = self.files.lock() {
            m.remove(path);
        }
    }

    /// Forget everything (after a command task that may have changed anything).
    pub fn forget_all(&self) {
        if let Ok(mut m) = self.files.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.commands.lock() {
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gathers_locally_for_real() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        std::fs::write(&p, "data\n").unwrap();
        let t: SharedTransport =
            std::sync::Arc::new(crate::transport::local::LocalTransport::new("localhost"));
        let cache = FactCache::new();
        let ps = p.display().to_string();
        let missing = dir.path().join("missing").display().to_string();
        cache
            .gather(
                &t,
                &[
                    FactReq::File {
                        path: ps.clone(),
                        content: true,
                    },
                    FactReq::File {
                        path: missing.clone(),
                        content: false,
                    },
                    FactReq::Command {
                        key: "echo".into(),
                        cmd: Cmd::new("echo").arg("hi").raw("; exit 3"),
                    },
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(t.stats().execs, 1, "one round trip for everything");
        let f = cache.file(&t, &ps, true, None).await.unwrap();
        assert_eq!(f.content.as_deref(), Some(&b"data\n"[..]));
        assert_eq!(f.sha256, Some(sha256_hex(b"data\n")));
        assert!(!cache.file(&t, &missing, false, None).await.unwrap().exists);
        let o = cache
            .command(&t, "echo", Cmd::new("echo").arg("hi").raw("; exit 3"), None)
            .await
            .unwrap();
        assert_eq!(o.stdout, b"hi");
        assert_eq!(o.status, ExitStatus::Code(3));
        assert_eq!(t.stats().execs, 1, "answers came from the cache");
    }
}
