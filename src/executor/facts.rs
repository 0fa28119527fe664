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

/// The gather script, written to start as few processes as possible on the device: one `stat` and one
/// `sha256sum` for all paths, one `base64` per file whose content is wanted, one subshell per command.
///
/// Arguments: the kinds of the file requests (`f` stat+hash, `c` also content) as one word, the number of
/// commands, the commands, then the paths. Output sections:
/// `X|<cmd#>|<rc>|<base64 stdout>` per command; `M|<map>` with one character per path (0 missing, 1 exists but
/// not a readable regular file, 2 readable regular file); `S` then one `stat` line per existing path; `H` then one
/// `sha256sum` line per readable regular file; `C|<path#>|<base64>` per content request.
const GATHER: &str = r#"kinds=$1; m=$2; shift 2
j=0
while [ "$j" -lt "$m" ]; do
  o=$(eval "$1" 2>/dev/null); rc=$?
  printf 'X|%s|%s|' "$j" "$rc"; printf '%s' "$o" | base64 -w0; printf '\n'
  shift; j=$((j+1))
done
map=
for p; do
  if [ -f "$p" ] && [ -r "$p" ]; then map="${map}2"; elif [ -e "$p" ]; then map="${map}1"; else map="${map}0"; fi
done
printf 'M|%s\n' "$map"
case $map in *[12]*) printf 'S\n'; stat -L -c '%F|%a|%u|%g|%U|%G|%s' -- "$@" 2>/dev/null ;; esac
case $map in *2*) printf 'H\n'; sha256sum -- "$@" 2>/dev/null ;; esac
i=0; rest=$map
for p; do
  k=${kinds%"${kinds#?}"}; kinds=${kinds#?}
  c=${rest%"${rest#?}"}; rest=${rest#?}
  if [ "$k" = c ] && [ "$c" = 2 ]; then printf 'C|%s|' "$i"; base64 -w0 < "$p"; printf '\n'; fi
  i=$((i+1))
done"#;

/// Build the gather command for `reqs`.
pub fn gather_cmd(reqs: &[FactReq]) -> Cmd {
    let mut kinds = String::new();
    let mut paths = Vec::new();
    let mut cmds = Vec::new();
    for r in reqs {
        match r {
            FactReq::File { path, content } => {
                kinds.push(if *content { 'c' } else { 'f' });
                paths.push(path.clone());
            }
            FactReq::Command { cmd, .. } => cmds.push(cmd.to_shell()),
        }
    }
    Cmd::new("set --")
        .arg(if kinds.is_empty() {
            "-".to_string()
        } else {
            kinds
        })
        .arg(cmds.len().to_string())
        .args(cmds)
        .args(paths)
        .raw(";")
        .raw(GATHER)
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

/// Parse the gather script's output (pure; tested on recorded output). Requests whose answers are missing or
/// damaged get no result: whoever needs them fetches them again individually.
pub fn parse_gather(reqs: &[FactReq], stdout: &str) -> Vec<(usize, Gathered)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    // Request indexes of the file requests and of the commands, in order.
    let file_idx: Vec<usize> = reqs
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, FactReq::File { .. }))
        .map(|(i, _)| i)
        .collect();
    let cmd_idx: Vec<usize> = reqs
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, FactReq::Command { .. }))
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::new();
    let mut map: Vec<u8> = Vec::new();
    let mut stat_lines: Vec<&str> = Vec::new();
    let mut hash_lines: Vec<&str> = Vec::new();
    let mut contents: std::collections::HashMap<usize, Vec<u8>> = std::collections::HashMap::new();
    #[derive(PartialEq)]
    enum Sec {
        None,
        Stat,
        Hash,
    }
    let mut sec = Sec::None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("X|") {
            sec = Sec::None;
            let f: Vec<&str> = rest.splitn(3, '|').collect();
            if f.len() == 3 {
                if let (Ok(j), Ok(rc)) = (f[0].parse::<usize>(), f[1].parse::<u32>()) {
                    if let Some(&ri) = cmd_idx.get(j) {
                        let stdout = b64.decode(f[2].trim()).unwrap_or_default();
                        out.push((ri, Gathered::Command { rc, stdout }));
                    }
                }
            }
        } else if let Some(m) = line.strip_prefix("M|") {
            sec = Sec::None;
            map = m.trim().bytes().collect();
        } else if line == "S" {
            sec = Sec::Stat;
        } else if line == "H" {
            sec = Sec::Hash;
        } else if let Some(rest) = line.strip_prefix("C|") {
            sec = Sec::None;
            if let Some((i, data)) = rest.split_once('|') {
                if let (Ok(i), Ok(b)) = (i.parse::<usize>(), b64.decode(data.trim())) {
                    contents.insert(i, b);
                }
            }
        } else if sec == Sec::Stat {
            stat_lines.push(line);
        } else if sec == Sec::Hash {
            hash_lines.push(line);
        }
    }
    if map.len() != file_idx.len() {
        return out;
    }
    let existing = map.iter().filter(|c| **c != b'0').count();
    let regular = map.iter().filter(|c| **c == b'2').count();
    let stats_ok = stat_lines.len() == existing;
    let hashes_ok = hash_lines.len() == regular;
    let (mut si, mut hi) = (0, 0);
    for (k, &state) in map.iter().enumerate() {
        let FactReq::File { path, content } = &reqs[file_idx[k]] else {
            continue;
        };
        if state == b'0' {
            out.push((file_idx[k], Gathered::File(FileFact::missing(path))));
            continue;
        }
        let stat = stat_lines.get(si).copied();
        si += 1;
        let hash = if state == b'2' {
            hi += 1;
            hash_lines.get(hi - 1).copied()
        } else {
            None
        };
        if !stats_ok || (state == b'2' && !hashes_ok) {
            continue;
        }
        let Some(stat) = stat else { continue };
        let f: Vec<&str> = stat.split('|').collect();
        if f.len() < 7 {
            continue;
        }
        let kind = match f[0] {
            "regular file" | "regular empty file" => "file",
            "directory" => "directory",
            "symbolic link" => "link",
            _ => "other",
        };
        let sha256 = hash.map(|h| {
            h.trim_start_matches('\\')
                .chars()
                .take(64)
                .collect::<String>()
        });
        if sha256.as_ref().map(|h| h.len() != 64).unwrap_or(false) {
            continue;
        }
        let content_bytes = if *content && state == b'2' {
            match contents.remove(&k) {
                Some(b) => Some(b),
                None => continue,
            }
        } else {
            None
        };
        out.push((
            file_idx[k],
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
                sha256,
                content: content_bytes,
            }),
        ));
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

    /// Recorded from a Debian 12 device (GNU coreutils): config.toml with content, a missing path, /etc, and
    /// `hostname` as a command.
    const RECORDED: &str = "X|0|0|ZWRnZS0wMDE=\n\
M|201\n\
S\n\
regular file|600|0|0|root|root|12\n\
directory|755|0|0|root|root|4096\n\
H\n\
a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447  /etc/aziot/config.toml\n\
C|0|aGVsbG8gd29ybGQK\n";

    #[test]
    fn parses_recorded_output() {
        let g = parse_gather(&reqs(), RECORDED);
        assert_eq!(g.len(), 4);
        let by = |i: usize| {
            g.iter()
                .find(|(x, _)| *x == i)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let Gathered::File(f) = by(0) else { panic!() };
        assert!(f.is_file());
        assert_eq!(f.mode, 0o600);
        assert_eq!(f.content.as_deref(), Some(&b"hello world\n"[..]));
        assert_eq!(
            f.sha256.as_deref(),
            Some(sha256_hex(b"hello world\n").as_str())
        );
        assert_eq!(by(1), Gathered::File(FileFact::missing("/nope")));
        let Gathered::File(d) = by(2) else { panic!() };
        assert!(d.is_dir());
        assert_eq!(d.sha256, None);
        assert_eq!(
            by(3),
            Gathered::Command {
                rc: 0,
                stdout: b"edge-001".to_vec()
            }
        );
    }

    #[test]
    fn damaged_output_yields_only_what_is_certain() {
        // A stat line is missing: no file facts at all (they would be misaligned); the command still counts.
        let g = parse_gather(
            &reqs(),
            "X|0|0|eA==\nM|201\nS\nregular file|600|0|0|root|root|12\nH\nabc\n",
        );
        assert_eq!(g.len(), 2, "{g:?}");
        assert!(g
            .iter()
            .any(|(i, v)| *i == 1 && matches!(v, Gathered::File(f) if !f.exists)));
        assert!(parse_gather(&reqs(), "garbage\n").is_empty());
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
