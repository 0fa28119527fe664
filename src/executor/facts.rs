//! Device facts: one batched, read-only round trip that gathers what a whole play needs to decide.
//!
//! Owns the gather script (POSIX sh + coreutils only), the pure parser of its output (tested on recorded
//! output), and the per-device cache modules read through `PlanCtx`. It must never change anything on a device.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::modules::FactReq;
use crate::transport::{Become, Cmd, Exec, ExitStatus, Output, SharedTransport, TransportError};

/// What we know about one path on the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFact {
    /// The path.
    pub path: String,
    /// Does it exist?
    pub exists: bool,
    /// "file", "directory", "link", "other".
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Owner name (or the uid as text).
    pub owner: String,
    /// Group name (or the gid as text).
    pub group: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 (hex) of a readable regular file.
    pub sha256: Option<String>,
    /// Content, when it was asked for.
    pub content: Option<Vec<u8>>,
}

impl FileFact {
    /// A path that does not exist.
    pub fn missing(path: &str) -> Self {
        FileFact {
            path: path.to_string(),
            ..Default::default()
        }
    }

    /// Is it a regular file?
    pub fn is_file(&self) -> bool {
        self.exists && self.kind == "file"
    }

    /// Is it a directory?
    pub fn is_dir(&self) -> bool {
        self.exists && self.kind == "directory"
    }

    /// Does the owner match `want` (a name or a numeric id)?
    pub fn owner_is(&self, want: &str) -> bool {
        want == self.owner || want.parse::<u32>().map(|u| u == self.uid).unwrap_or(false)
    }

    /// Does the group match `want` (a name or a numeric id)?
    pub fn group_is(&self, want: &str) -> bool {
        want == self.group || want.parse::<u32>().map(|g| g == self.gid).unwrap_or(false)
    }

    /// The content as text (lossy), if fetched.
    pub fn text(&self) -> Option<String> {
        self.content
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
    }
}

/// The gather script. Arguments come in pairs: kind (`f` stat+hash, `c` also content, `x` run a read-only
/// snippet), then the path or snippet. One output line per request, tagged with its index.
const GATHER: &str = r#"ef_b64() { base64 -w0 2>/dev/null || base64 | tr -d '\n'; }
i=0
while [ $# -ge 2 ]; do
  k=$1; a=$2; shift 2
  case $k in
  f|c)
    if [ -e "$a" ]; then
      st=$(stat -L -c '%F|%a|%u|%g|%U|%G|%s' -- "$a" 2>/dev/null) || st='other|0|0|0|?|?|0'
      sum=-
      if [ -f "$a" ] && [ -r "$a" ]; then sum=$(sha256sum < "$a" | cut -c1-64); fi
      printf 'F|%s|%s|%s' "$i" "$st" "$sum"
      if [ "$k" = c ] && [ -f "$a" ] && [ -r "$a" ]; then printf '|'; ef_b64 < "$a"; fi
      printf '\n'
    else
      printf 'N|%s\n' "$i"
    fi ;;
  x)
    o=$(eval "$a" 2>/dev/null); rc=$?
    printf 'X|%s|%s|' "$i" "$rc"; printf '%s' "$o" | ef_b64; printf '\n' ;;
  esac
  i=$((i+1))
done"#;

/// Build the gather command for `reqs`.
pub fn gather_cmd(reqs: &[FactReq]) -> Cmd {
    let mut cmd = Cmd::new("set --");
    for r in reqs {
        match r {
            FactReq::File { path, content } => {
                cmd = cmd.arg(if *content { "c" } else { "f" }).arg(path.clone());
            }
            FactReq::Command { cmd: c, .. } => {
                cmd = cmd.arg("x").arg(c.to_shell());
            }
        }
    }
    cmd.raw(";").raw(GATHER)
}

/// One parsed result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gathered {
    /// A path.
    File(FileFact),
    /// A command's exit code and stdout.
    Command {
        /// Exit code.
        rc: u32,
        /// stdout.
        stdout: Vec<u8>,
    },
}

/// Parse the gather script's output. Pure; unknown or damaged lines are ignored (the requests they answer are
/// then fetched again individually by whoever needs them).
pub fn parse_gather(reqs: &[FactReq], stdout: &str) -> Vec<(usize, Gathered)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for line in stdout.lines() {
        let mut parts = line.split('|');
        let tag = parts.next().unwrap_or("");
        let Some(idx) = parts.next().and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        let Some(req) = reqs.get(idx) else { continue };
        match (tag, req) {
            ("N", FactReq::File { path, .. }) => {
                out.push((idx, Gathered::File(FileFact::missing(path))))
            }
            ("F", FactReq::File { path, content }) => {
                let f: Vec<&str> = parts.collect();
                if f.len() < 8 {
                    continue;
                }
                let kind = match f[0] {
                    "regular file" | "regular empty file" => "file",
                    "directory" => "directory",
                    "symbolic link" => "link",
                    _ => "other",
                };
                let content_bytes = if *content {
                    f.get(8).and_then(|c| b64.decode(c.trim()).ok())
                } else {
                    None
                };
                if *content && kind == "file" && f[7] != "-" && content_bytes.is_none() {
                    continue;
                }
                out.push((
                    idx,
                    Gathered::File(FileFact {
                        path: path.clone(),
                        exists: true,
                        kind: kind.to_string(),
                        mode: u32::from_str_radix(f[1], 8).unwrap_or(0),
                        uid: f[2].parse().unwrap_or(0),
                        gid: f[3].parse().unwrap_or(0),
                        owner: f[4].to_string(),
                        group: f[5].to_string(),
                        size: f[6].parse().unwrap_or(0),
                        sha256: (f[7] != "-").then(|| f[7].to_string()),
                        content: content_bytes,
                    }),
                ));
            }
            ("X", FactReq::Command { .. }) => {
                let f: Vec<&str> = parts.collect();
                if f.len() < 2 {
                    continue;
                }
                let rc = f[0].parse().unwrap_or(255);
                let stdout = b64.decode(f[1].trim()).unwrap_or_default();
                out.push((idx, Gathered::Command { rc, stdout }));
            }
            _ => {}
        }
    }
    out
}

/// sha256 hex of bytes (what `sha256sum` prints).
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
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

    fn reqs() -> Vec<FactReq> {
        vec![
            FactReq::File {
                path: "/etc/aziot/config.toml".into(),
                content: true,
            },
            FactReq::File {
                path: "/nope".into(),
                content: false,
            },
            FactReq::File {
                path: "/etc".into(),
                content: false,
            },
            FactReq::Command {
                key: "hostname".into(),
                cmd: Cmd::new("hostname"),
            },
        ]
    }

    /// Recorded from a Debian 12 device (busybox-free, GNU coreutils).
    const RECORDED: &str = "F|0|regular file|600|0|0|root|root|12|a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447|aGVsbG8gd29ybGQK\n\
N|1\n\
F|2|directory|755|0|0|root|root|4096|-\n\
X|3|0|ZWRnZS0wMDE=\n";

    #[test]
    fn parses_recorded_output() {
        let g = parse_gather(&reqs(), RECORDED);
        assert_eq!(g.len(), 4);
        let Gathered::File(f) = &g[0].1 else { panic!() };
        assert!(f.is_file());
        assert_eq!(f.mode, 0o600);
        assert_eq!(f.content.as_deref(), Some(&b"hello world\n"[..]));
        assert_eq!(
            f.sha256.as_deref(),
            Some(sha256_hex(b"hello world\n").as_str())
        );
        assert_eq!(g[1].1, Gathered::File(FileFact::missing("/nope")));
        let Gathered::File(d) = &g[2].1 else { panic!() };
        assert!(d.is_dir());
        assert_eq!(
            g[3].1,
            Gathered::Command {
                rc: 0,
                stdout: b"edge-001".to_vec()
            }
        );
    }

    #[test]
    fn damaged_lines_are_ignored() {
        let g = parse_gather(&reqs(), "garbage\nF|0|regular file|600\nX|9|0|\nN|1\n");
        assert_eq!(g.len(), 1);
    }

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
