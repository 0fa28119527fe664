//! The batched gather: one read-only round trip that answers every file and command fact a play needs.
//!
//! Owns the device-side script (POSIX sh + coreutils only) and the pure parser of its output, tested on
//! recorded output. It must never change anything on a device.

use base64::Engine;

use super::{FactReq, FileFact};
use crate::transport::Cmd;

/// The gather script, written to start as few processes as possible on the device: one `stat` and one
/// `sha256sum` for all paths, one `base64` per file whose content is wanted, one subshell per command.
///
/// Arguments: the kinds of the file requests (`f` stat+hash, `c` also content, `s` also sha1, `b` both) as one
/// word, the number of commands, the commands, then the paths. Output sections:
/// `X|<cmd#>|<rc>|<base64 stdout>` per command; `M|<map>` with one character per path (0 missing, 1 exists but
/// not a readable regular file, 2 readable regular file); `S` then one `stat` line per existing path; `H` then one
/// `sha256sum` line per readable regular file; `C|<path#>|<base64>` per content request; `A|<path#>|<sha1sum
/// line>` per sha1 request; `L|<path#>|<base64 target>` per path that is a symlink (dangling ones too).
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
  if [ "$c" = 2 ]; then case $k in [cb]) printf 'C|%s|' "$i"; base64 -w0 < "$p"; printf '\n' ;; esac; fi
  if [ "$c" = 2 ]; then case $k in [sb]) printf 'A|%s|' "$i"; sha1sum < "$p" ;; esac; fi
  if [ -L "$p" ]; then printf 'L|%s|' "$i"; readlink -- "$p" | base64 -w0; printf '\n'; fi
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
            FactReq::Checksum { path, content } => {
                kinds.push(if *content { 'b' } else { 's' });
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
        .filter(|(_, r)| r.path().is_some())
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
    let mut sha1s: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    let mut links: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
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
        } else if let Some(rest) = line.strip_prefix("A|") {
            sec = Sec::None;
            if let Some((i, data)) = rest.split_once('|') {
                let h: String = data.chars().take(40).collect();
                if let (Ok(i), true) = (i.parse::<usize>(), is_hex(&h, 40)) {
                    sha1s.insert(i, h);
                }
            }
        } else if let Some(rest) = line.strip_prefix("L|") {
            sec = Sec::None;
            if let Some((i, data)) = rest.split_once('|') {
                if let (Ok(i), Ok(b)) = (i.parse::<usize>(), b64.decode(data.trim())) {
                    let t = String::from_utf8_lossy(&b);
                    links.insert(i, t.strip_suffix('\n').unwrap_or(&t).to_string());
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
        let req = &reqs[file_idx[k]];
        let (Some(path), content, want_sha1) = (req.path(), req.wants_content(), req.wants_sha1())
        else {
            continue;
        };
        let link = links.remove(&k);
        if state == b'0' {
            out.push((
                file_idx[k],
                Gathered::File(FileFact {
                    link,
                    ..FileFact::missing(path)
                }),
            ));
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
        let kind = kind_of(f[0]);
        let sha256 = hash.map(|h| {
            h.trim_start_matches('\\')
                .chars()
                .take(64)
                .collect::<String>()
        });
        if sha256.as_ref().map(|h| h.len() != 64).unwrap_or(false) {
            continue;
        }
        let content_bytes = if content && state == b'2' {
            match contents.remove(&k) {
                Some(b) => Some(b),
                None => continue,
            }
        } else {
            None
        };
        let sha1 = if want_sha1 && state == b'2' {
            match sha1s.remove(&k) {
                Some(h) => Some(h),
                None => continue,
            }
        } else {
            None
        };
        out.push((
            file_idx[k],
            Gathered::File(FileFact {
                path: path.to_string(),
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
                sha1,
                link,
            }),
        ));
    }
    out
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The re-stat appended to a command that changes paths, so the cache learns their new state in the same round
/// trip. Arguments: one word of kinds (`h`: also hash a regular file, `n`: stat only), then the paths. One line
/// per path: `R|<path#>|0|<base64 link target>` for a missing path, else
/// `R|<path#>|1|<stat -L fields>|<sha256sum line or empty>|<base64 link target>`.
const RESTAT: &str = r#"k=$1;shift;i=0
for p;do l=;[ -L "$p" ]&&l=$(readlink -- "$p"|base64 -w0);h=${k%"${k#?}"};k=${k#?}
if [ -e "$p" ];then x=;[ $h = h ]&&[ -f "$p" ]&&[ -r "$p" ]&&x=$(sha256sum<"$p")
printf 'R|%s|1|%s|%.64s|%s\n' $i "$(stat -L -c '%F|%a|%u|%g|%U|%G|%s' -- "$p")" "$x" "$l"
else printf 'R|%s|0|%s\n' $i "$l";fi;i=$((i+1));done"#;

/// The marker line between a command's own output and the re-stat's.
pub const RESTAT_MARK: &str = "\u{1e}EF:restat\n";

/// Append a re-stat of `paths` (with `hash`: also their sha256) to `cmd`, keeping `cmd`'s exit status. The
/// command's own output is what comes before the last [`RESTAT_MARK`]; [`split_restat`] separates them.
pub fn with_restat(cmd: Cmd, paths: &[(String, bool)]) -> Cmd {
    let mut out = Cmd::new("{");
    for part in cmd.parts() {
        out = match part {
            crate::transport::Part::Raw(r) => out.raw(r),
            crate::transport::Part::Arg(a) => out.arg(a.clone()),
        };
    }
    out.raw("\n}; ef_rc=$?; printf '\\036EF:restat\\n'; set --")
        .arg(
            paths
                .iter()
                .map(|(_, h)| if *h { 'h' } else { 'n' })
                .collect::<String>()
                + "-",
        )
        .args(paths.iter().map(|(p, _)| p.clone()))
        .raw(";")
        .raw(RESTAT)
        .raw("; exit $ef_rc")
}

/// Split a re-stated command's stdout into its own output and the re-stat's.
pub fn split_restat(stdout: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mark = RESTAT_MARK.as_bytes();
    match stdout.windows(mark.len()).rposition(|w| w == mark) {
        Some(i) => (&stdout[..i], Some(&stdout[i + mark.len()..])),
        None => (stdout, None),
    }
}

/// Parse the re-stat's output (pure): the facts of every path it answered for. Hashes are there only for
/// paths re-stated with `hash`.
pub fn parse_restat(paths: &[(String, bool)], text: &str) -> Vec<FileFact> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let link = |s: &str| -> Option<String> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let b = b64.decode(s).ok()?;
        let t = String::from_utf8_lossy(&b);
        Some(t.strip_suffix('\n').unwrap_or(&t).to_string())
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("R|") else {
            continue;
        };
        let f: Vec<&str> = rest.split('|').collect();
        let Some((path, _)) = f
            .first()
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| paths.get(i))
        else {
            continue;
        };
        match (f.get(1).copied(), f.len()) {
            (Some("0"), 3) => out.push(FileFact {
                link: link(f[2]),
                ..FileFact::missing(path)
            }),
            (Some("1"), 11) => {
                let sha = f[9].trim_start_matches('\\');
                let sha256 = is_hex(sha, 64).then(|| sha.to_string());
                out.push(FileFact {
                    path: path.clone(),
                    exists: true,
                    kind: kind_of(f[2]).to_string(),
                    mode: match u32::from_str_radix(f[3], 8) {
                        Ok(m) => m,
                        Err(_) => continue,
                    },
                    uid: f[4].parse().unwrap_or(0),
                    gid: f[5].parse().unwrap_or(0),
                    owner: f[6].to_string(),
                    group: f[7].to_string(),
                    size: f[8].parse().unwrap_or(0),
                    sha256,
                    content: None,
                    sha1: None,
                    link: link(f[10]),
                });
            }
            _ => {}
        }
    }
    out
}

fn kind_of(stat_type: &str) -> &'static str {
    match stat_type {
        "regular file" | "regular empty file" => "file",
        "directory" => "directory",
        "symbolic link" => "link",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::sha256_hex;

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
}
