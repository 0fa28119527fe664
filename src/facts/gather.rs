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
