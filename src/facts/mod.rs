//! Facts: what edgefleet knows about a device, gathered read-only in as few round trips as possible.
//!
//! Owns the fact requests modules make ([`FactReq`]), the per-device cache modules read while planning
//! ([`FactCache`]), and every device-side read-only script with its pure parser, tested on recorded output:
//! the batched file/command gather ([`gather`]) and the re-stat that follows a change, the setup facts
//! ([`setup`]), systemd unit state ([`systemd`]), the IoT Edge verify gather ([`iotedge`], with the running modules'
//! `docker inspect` in [`containers`]) and a rollout wave's health probe that extends it ([`health`]), the certificate
//! gather of `certs report` ([`certs`]) and the maintenance gather that extends it ([`maintenance`], whose
//! clean-up script is the one exception that removes: only what a module planned). It must never change anything
//! on a device on its own, and it knows neither modules nor the executor: they ask, it answers.
//!
//! The cache never answers with a stale fact: whoever changes the device tells it which paths and command
//! facts it touched ([`FactCache::restated`], [`FactCache::forget`], [`FactCache::forget_command`]) or that
//! anything may have changed ([`FactCache::invalidate`]). Every request ever made is remembered, so the first
//! question after an invalidation re-gathers everything the play still asks about in one round trip, not one
//! per task.

pub mod certs;
pub mod containers;
pub mod file;
pub mod gather;
pub mod health;
pub mod iotedge;
pub mod maintenance;
pub mod reach;
pub mod setup;
pub mod systemd;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::transport::{Become, Cmd, Exec, ExitStatus, Output, SharedTransport, TransportError};

pub use file::{sha1_hex, sha256_hex, FileFact};
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
    /// stat + sha256 + sha1 (+ content when `content`) of a path (`stat`'s default checksum is sha1).
    Checksum {
        /// Path.
        path: String,
        /// Also fetch the content (small files only).
        content: bool,
    },
    /// A read-only command (built from quoted parts), cached under `key`. Keys starting with `__` are asked
    /// once (the setup facts): they are not gathered again after an invalidation.
    Command {
        /// Cache key.
        key: String,
        /// The command (read-only!).
        cmd: Cmd,
    },
}

impl FactReq {
    /// A plain file request (stat + sha256).
    pub fn file(path: impl Into<String>) -> Self {
        FactReq::File {
            path: path.into(),
            content: false,
        }
    }

    /// The path of a file request.
    pub fn path(&self) -> Option<&str> {
        match self {
            FactReq::File { path, .. } | FactReq::Checksum { path, .. } => Some(path),
            FactReq::Command { .. } => None,
        }
    }

    /// Does it want the content?
    pub fn wants_content(&self) -> bool {
        matches!(
            self,
            FactReq::File { content: true, .. } | FactReq::Checksum { content: true, .. }
        )
    }

    /// Does it want the sha1?
    pub fn wants_sha1(&self) -> bool {
        matches!(self, FactReq::Checksum { .. })
    }

    /// One request for a path that answers both (content and sha1 when either wants them).
    fn merged(path: &str, content: bool, sha1: bool) -> Self {
        let path = path.to_string();
        if sha1 {
            FactReq::Checksum { path, content }
        } else {
            FactReq::File { path, content }
        }
    }
}

/// The per-device fact cache for one run.
#[derive(Default)]
pub struct FactCache {
    files: Mutex<HashMap<String, FileFact>>,
    commands: Mutex<HashMap<String, Output>>,
    /// Every request made in this run (per path the widest; commands by key), in order: what is gathered again
    /// after an invalidation.
    wanted: Mutex<Vec<FactReq>>,
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
            wanted: Mutex::new(Vec::new()),
        }
    }

    /// Remember requests (merged per path and per command key).
    fn remember(&self, reqs: &[FactReq]) {
        let Ok(mut w) = self.wanted.lock() else {
            return;
        };
        merge_into(&mut w, reqs.iter().filter(|r| !is_once(r)).cloned());
    }

    /// What was asked before and is not cached now.
    fn missing_wanted(&self) -> Vec<FactReq> {
        let wanted = self.wanted.lock().map(|w| w.clone()).unwrap_or_default();
        wanted.into_iter().filter(|r| !self.has(r)).collect()
    }

    /// Gather many facts in one round trip. Already-cached ones are skipped.
    pub async fn gather(
        &self,
        t: &SharedTransport,
        reqs: &[FactReq],
        become_: Option<Become>,
    ) -> Result<(), TransportError> {
        self.remember(reqs);
        let todo = self.todo(reqs.iter().cloned());
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

    /// The requests not answered by the cache yet, one per path (content and sha1 when any wants them) and
    /// one per command key.
    fn todo(&self, reqs: impl Iterator<Item = FactReq>) -> Vec<FactReq> {
        let mut todo = Vec::new();
        merge_into(&mut todo, reqs.filter(|r| !self.has(r)));
        todo
    }

    /// Gather `req` now, with everything asked before that is no longer cached (one round trip).
    async fn fetch(
        &self,
        t: &SharedTransport,
        req: FactReq,
        become_: Option<Become>,
    ) -> Result<(), TransportError> {
        let mut reqs = vec![req];
        reqs.extend(self.missing_wanted());
        self.gather(t, &reqs, become_).await
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
            FactReq::File { path, .. } | FactReq::Checksum { path, .. } => self
                .files
                .lock()
                .map(|m| {
                    m.get(path.as_str())
                        .map(|f| {
                            !f.is_file()
                                || ((!r.wants_content() || f.content.is_some())
                                    && (!r.wants_sha1() || f.sha1.is_some()))
                        })
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
        self.file_with(
            t,
            FactReq::File {
                path: path.to_string(),
                content,
            },
            become_,
        )
        .await
    }

    /// A file's facts with its sha1 too (fetched now if not cached).
    pub async fn file_checksum(
        &self,
        t: &SharedTransport,
        path: &str,
        content: bool,
        become_: Option<Become>,
    ) -> Result<FileFact, TransportError> {
        self.file_with(
            t,
            FactReq::Checksum {
                path: path.to_string(),
                content,
            },
            become_,
        )
        .await
    }

    async fn file_with(
        &self,
        t: &SharedTransport,
        req: FactReq,
        become_: Option<Become>,
    ) -> Result<FileFact, TransportError> {
        let path = req.path().unwrap_or_default().to_string();
        if !self.has(&req) {
            self.fetch(t, req, become_).await?;
        }
        let path = path.as_str();
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
            self.fetch(t, req, become_).await?;
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
                    sha1: None,
                    link: None,
                },
            );
        }
    }

    /// Take what a re-stat after a change found. `known`: the content is what we just wrote (a re-stat
    /// without a hash keeps the written content's hash); otherwise a fact without a hash has lost it.
    pub fn restated(&self, facts: Vec<FileFact>, known: bool) {
        let Ok(mut m) = self.files.lock() else {
            return;
        };
        for mut f in facts {
            if let Some(old) = m.get(&f.path) {
                let same = old.is_file() && f.is_file() && old.size == f.size;
                if same && known && f.sha256.is_none() {
                    f.sha256 = old.sha256.clone();
                    f.content = old.content.clone();
                    f.sha1 = old.sha1.clone();
                } else if same && f.sha256.is_some() && f.sha256 == old.sha256 {
                    f.content = old.content.clone();
                    f.sha1 = old.sha1.clone();
                }
            }
            if f.is_file() && f.sha256.is_none() {
                // Unknown content: ask again when someone needs it.
                m.remove(&f.path);
            } else {
                m.insert(f.path.clone(), f);
            }
        }
    }

    /// Forget what we know about a path and everything under it (after a change that may have touched them).
    pub fn forget(&self, path: &str) {
        let under = format!("{}/", path.trim_end_matches('/'));
        if let Ok(mut m) = self.files.lock() {
            m.retain(|p, _| p != path && !p.starts_with(&under));
        }
    }

    /// Forget everything under a path (its children changed; its own facts are current).
    pub fn forget_under(&self, path: &str) {
        let under = format!("{}/", path.trim_end_matches('/'));
        if let Ok(mut m) = self.files.lock() {
            m.retain(|p, _| !p.starts_with(&under));
        }
    }

    /// Forget a command fact (after a change to what it reports).
    pub fn forget_command(&self, key: &str) {
        if let Ok(mut m) = self.commands.lock() {
            m.remove(key);
        }
    }

    /// Forget every fact, keeping what was asked (after a command that may have changed anything): the next
    /// question gathers them all again in one round trip.
    pub fn invalidate(&self) {
        if let Ok(mut m) = self.files.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.commands.lock() {
            m.retain(|k, _| k.starts_with("__"));
        }
    }

    /// Forget everything, what was asked too (the host runs nothing more).
    pub fn forget_all(&self) {
        self.invalidate();
        if let Ok(mut m) = self.commands.lock() {
            m.clear();
        }
        if let Ok(mut w) = self.wanted.lock() {
            *w = Vec::new();
        }
    }
}

/// A command asked once (the setup facts), never gathered again.
fn is_once(r: &FactReq) -> bool {
    matches!(r, FactReq::Command { key, .. } if key.starts_with("__"))
}

/// Add `reqs` to `list`: one request per path (content and sha1 when any wants them), one per command key.
fn merge_into(list: &mut Vec<FactReq>, reqs: impl Iterator<Item = FactReq>) {
    for r in reqs {
        match r.path() {
            Some(path) => {
                if let Some(slot) = list.iter_mut().find(|t| t.path() == Some(path)) {
                    let m = FactReq::merged(
                        path,
                        slot.wants_content() || r.wants_content(),
                        slot.wants_sha1() || r.wants_sha1(),
                    );
                    *slot = m;
                } else {
                    list.push(r);
                }
            }
            None => {
                let key = |x: &FactReq| match x {
                    FactReq::Command { key, .. } => Some(key.clone()),
                    _ => None,
                };
                if !list.iter().any(|t| key(t) == key(&r)) {
                    list.push(r);
                }
            }
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

    #[tokio::test]
    async fn after_an_invalidation_one_question_regathers_everything_asked_before() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a").display().to_string();
        let b = dir.path().join("b").display().to_string();
        let t: SharedTransport =
            std::sync::Arc::new(crate::transport::local::LocalTransport::new("localhost"));
        let cache = FactCache::new();
        let reqs = [FactReq::file(a.clone()), FactReq::file(b.clone())];
        cache.gather(&t, &reqs, None).await.unwrap();
        assert!(!cache.file(&t, &a, false, None).await.unwrap().exists);
        // Something behind our back (a shell task) creates both.
        std::fs::write(&a, "A").unwrap();
        std::fs::create_dir(&b).unwrap();
        cache.invalidate();
        assert_eq!(t.stats().execs, 1);
        assert!(cache.file(&t, &a, false, None).await.unwrap().is_file());
        assert!(cache.file(&t, &b, false, None).await.unwrap().is_dir());
        assert_eq!(t.stats().execs, 2, "one round trip for both");
        // A sha1 question for a cached path asks again, once.
        let f = cache.file_checksum(&t, &a, false, None).await.unwrap();
        assert_eq!(f.sha1.as_deref(), Some(sha1_hex(b"A").as_str()));
        assert_eq!(t.stats().execs, 3);
        cache.file_checksum(&t, &a, false, None).await.unwrap();
        assert_eq!(t.stats().execs, 3);
    }

    #[tokio::test]
    async fn restat_after_a_change_updates_the_cache_in_the_same_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d").display().to_string();
        let l = dir.path().join("l").display().to_string();
        let paths = vec![(d.clone(), true), (l.clone(), true)];
        let cmd = gather::with_restat(
            Cmd::new("mkdir")
                .arg(d.clone())
                .raw("&& ln -s")
                .arg("/nowhere")
                .arg(l.clone())
                .raw("&& echo made && exit 3"),
            &paths,
        );
        let t = crate::transport::local::LocalTransport::new("localhost");
        use crate::transport::Transport;
        let o = t.exec(Exec::new(cmd)).await.unwrap();
        // `exit 3` inside the command: no re-stat, the status is the command's.
        assert_eq!(o.status, ExitStatus::Code(3));
        assert_eq!(gather::split_restat(&o.stdout), (&b"made\n"[..], None));
        std::fs::remove_dir(&d).unwrap();
        std::fs::remove_file(&l).unwrap();
        let cmd = gather::with_restat(
            Cmd::new("mkdir")
                .arg(d.clone())
                .raw("&& ln -s")
                .arg("/nowhere")
                .arg(l.clone())
                .raw("&& echo made && false"),
            &paths,
        );
        let o = t.exec(Exec::new(cmd)).await.unwrap();
        assert_eq!(
            o.status,
            ExitStatus::Code(1),
            "the command's status is kept"
        );
        let (own, rest) = gather::split_restat(&o.stdout);
        assert_eq!(own, b"made\n");
        let facts = gather::parse_restat(&paths, &String::from_utf8_lossy(rest.unwrap()));
        assert_eq!(facts.len(), 2, "{facts:?}");
        let cache = FactCache::new();
        cache.restated(facts, false);
        let st: SharedTransport = std::sync::Arc::new(t);
        assert!(cache.file(&st, &d, false, None).await.unwrap().is_dir());
        let lf = cache.file(&st, &l, false, None).await.unwrap();
        assert!(!lf.exists);
        assert_eq!(lf.link.as_deref(), Some("/nowhere"));
        assert_eq!(st.stats().execs, 2, "answers came from the re-stat");
    }
}
