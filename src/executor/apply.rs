//! Applying plans: the atomic multi-file write script, running steps, and rendering diffs.
//!
//! Owns how a `Step::Write` reaches the device: every file's content streams over stdin into a temp file in the
//! destination directory that already has its final mode and owner, is fsynced, the previous version is kept as
//! a rollback copy in edgefleet's state directory on the device (never beside the file: include directories
//! read stray files; the last [`ROLLBACK_KEEP`] per file), with Ansible's `backup: yes` also a timestamped
//! copy beside it, and an atomic rename puts it in place. A dropped connection or a full disk at any point
//! leaves the old file intact (the temp file is removed when the shell can still run). All files of one step
//! travel in one round trip.

use bytes::{Bytes, BytesMut};

use crate::modules::{rollback_name, Diff, DirSpec, FileWrite, ROLLBACK_DIRS_SH, ROLLBACK_KEEP};
use crate::transport::{Become, Cmd, Exec};

/// The rollback copy: `ef_keep FILE NAME KEEP` links (or copies) FILE to `<state dir>/NAME.1` after shifting the
/// older copies up to `NAME.KEEP`. Preceded by `for bd in <ROLLBACK_DIRS_SH>; do` and its `done`.
const KEEP: &str = r#"
    if [ -d "$bd" ] || mkdir -p -m 700 -- "$bd" 2>/dev/null; then
      [ -w "$bd" ] || continue
      b="$bd/$2"; j=$3
      while [ "$j" -gt 1 ]; do i=$((j-1)); if [ -f "$b.$i" ]; then mv -f -- "$b.$i" "$b.$j" || return 1; fi; j=$i; done
      ln -f -- "$1" "$b.1" 2>/dev/null || cp -p -- "$1" "$b.1" || return 1
      return 0
    fi
  "#;

/// The write script (after `ef_keep`). Arguments: the number of rollback copies to keep, then 11 per file
/// (dest size mode owner group rollback_name backup_beside ensure_parent pmode powner pgroup; a directory to
/// ensure has size `-`); contents arrive concatenated on stdin, read exactly by `head -c`. Prints
/// `B|<file#>|<backup path>` for each backup made beside a file.
const WRITE: &str = r#"keep=$1; shift
tmp=
trap 'if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
ef_fail() { echo "edgefleet: $*" >&2; exit 1; }
ef_own() {
  if [ -n "$2" ] && [ -n "$3" ]; then chown -- "$2:$3" "$1" || return 1
  elif [ -n "$2" ]; then chown -- "$2" "$1" || return 1
  elif [ -n "$3" ]; then chgrp -- "$3" "$1" || return 1
  fi
}
n=0
while [ $# -ge 11 ]; do
  d=$1; size=$2; mode=$3; owner=$4; group=$5; rb=$6; ab=$7; ensure=$8; pmode=$9; shift 9; powner=$1; pgroup=$2; shift 2
  if [ "$size" = "-" ]; then
    [ -d "$d" ] || mkdir -p -- "$d" || ef_fail "cannot create directory $d"
    if [ -n "$mode" ]; then chmod -- "$mode" "$d" || ef_fail "cannot set mode $mode on $d"; fi
    ef_own "$d" "$owner" "$group" || ef_fail "cannot set owner $owner:$group on $d"
    continue
  fi
  n=$((n+1))
  dir=$(dirname -- "$d")
  if [ "$ensure" = 1 ]; then
    [ -d "$dir" ] || mkdir -p -- "$dir" || ef_fail "cannot create directory $dir"
    if [ -n "$pmode" ]; then chmod -- "$pmode" "$dir" || ef_fail "cannot set mode $pmode on $dir"; fi
    ef_own "$dir" "$powner" "$pgroup" || ef_fail "cannot set owner $powner:$pgroup on $dir"
  fi
  [ -d "$dir" ] || ef_fail "directory $dir does not exist"
  tmp=$(mktemp -- "$dir/.edgefleet.XXXXXX") || ef_fail "cannot create a temporary file in $dir"
  if [ -n "$mode" ]; then chmod -- "$mode" "$tmp" || ef_fail "cannot set mode $mode on $d"; fi
  ef_own "$tmp" "$owner" "$group" || ef_fail "cannot set owner $owner:$group on $d (does the user exist?)"
  head -c "$size" > "$tmp" || ef_fail "writing $d failed"
  got=$(wc -c < "$tmp")
  [ "$got" -eq "$size" ] || ef_fail "incomplete write to $d ($got of $size bytes; connection lost?)"
  sync -- "$tmp" 2>/dev/null || sync
  if [ -f "$d" ]; then
    if [ -n "$rb" ]; then ef_keep "$d" "$rb" "$keep" || ef_fail "cannot keep a rollback copy of $d in the state directory"; fi
    if [ "$ab" = 1 ]; then
      bf="$d.$$.$(date +%Y-%m-%d@%H:%M:%S)~"
      cp -p -- "$d" "$bf" || ef_fail "cannot back up $d to $bf"
      printf 'B|%s|%s\n' "$((n-1))" "$bf"
    fi
  fi
  # Earlier versions kept their copy beside the file, where include directories read it.
  if [ -f "$d.edgefleet.bak" ]; then rm -f -- "$d.edgefleet.bak"; fi
  mv -f -- "$tmp" "$d" || ef_fail "cannot move the new $d into place"
  tmp=
  sync -- "$dir" 2>/dev/null || true
done"#;

/// The exec that writes `files` atomically in one round trip.
pub fn write_exec(
    files: &[FileWrite],
    become_: Option<Become>,
    timeout: Option<std::time::Duration>,
) -> Exec {
    dirs_and_write_exec(&[], files, become_, timeout)
}

/// The exec that first ensures `dirs` (mode and owner), then writes `files` atomically, in one round trip.
pub fn dirs_and_write_exec(
    dirs: &[DirSpec],
    files: &[FileWrite],
    become_: Option<Become>,
    timeout: Option<std::time::Duration>,
) -> Exec {
    let mut cmd = Cmd::new("set --").arg(ROLLBACK_KEEP.to_string());
    for d in dirs {
        cmd = cmd
            .arg(d.path.clone())
            .arg("-")
            .arg(d.mode.map(|m| format!("{m:04o}")).unwrap_or_default())
            .arg(d.owner.clone().unwrap_or_default())
            .arg(d.group.clone().unwrap_or_default())
            .args(["", "0", "0", "", "", ""]);
    }
    let mut stdin = BytesMut::new();
    let mut secret = false;
    for f in files {
        let mode = f.mode.map(|m| format!("{m:04o}")).unwrap_or_default();
        let (ensure, pmode, powner, pgroup) = match &f.parent {
            Some(p) => (
                "1",
                p.mode.map(|m| format!("{m:04o}")).unwrap_or_default(),
                p.owner.clone().unwrap_or_default(),
                p.group.clone().unwrap_or_default(),
            ),
            None => ("0", String::new(), String::new(), String::new()),
        };
        cmd = cmd
            .arg(f.path.clone())
            .arg(f.content.len().to_string())
            .arg(mode)
            .arg(f.owner.clone().unwrap_or_default())
            .arg(f.group.clone().unwrap_or_default())
            .arg(if f.backup {
                rollback_name(&f.path)
            } else {
                String::new()
            })
            .arg(if f.backup_beside { "1" } else { "0" })
            .arg(ensure)
            .arg(pmode)
            .arg(powner)
            .arg(pgroup);
        stdin.extend_from_slice(&f.content);
        secret |= f.secret;
    }
    let cmd = cmd
        .raw("; ef_keep() {\n  for bd in")
        .raw(ROLLBACK_DIRS_SH)
        .raw("; do")
        .raw(KEEP)
        .raw("done\n  return 1\n}\n")
        .raw(WRITE);
    let data: Bytes = stdin.freeze();
    let e = Exec::new(cmd).become_(become_).timeout(timeout);
    if secret {
        e.secret_stdin(data)
    } else {
        e.stdin(data)
    }
}

/// The backups beside files a write step made (`backup: yes`), from its output: (file path, backup path).
pub fn backups_made(files: &[FileWrite], stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            let (i, b) = l.strip_prefix("B|")?.split_once('|')?;
            let f = files.get(i.parse::<usize>().ok()?)?;
            Some((f.path.clone(), b.to_string()))
        })
        .collect()
}

/// Render a diff for display: unified diff of text, `<secret changed>` for secrets, attribute lines.
pub fn render_diff(d: &Diff) -> String {
    let mut out = String::new();
    for a in &d.attrs {
        out.push_str(&format!("{}: {a}\n", d.path));
    }
    if d.before == d.after {
        return out;
    }
    if d.secret {
        out.push_str(&format!("{}: <secret changed>\n", d.path));
        return out;
    }
    // Values known to be secret are masked on both sides before diffing; if only they changed, say so.
    let before = crate::redact::redact(d.before.as_deref().unwrap_or_default()).into_owned();
    let after = crate::redact::redact(d.after.as_deref().unwrap_or_default()).into_owned();
    if before == after {
        out.push_str(&format!("{}: <secret changed>\n", d.path));
        return out;
    }
    let old_name = if d.before.is_some() {
        format!("before: {}", d.path)
    } else {
        "before: (absent)".to_string()
    };
    let new_name = if d.after.is_some() {
        format!("after: {}", d.path)
    } else {
        "after: (absent)".to_string()
    };
    let text = similar::TextDiff::from_lines(&before, &after);
    out.push_str(
        &text
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;
    use crate::transport::Transport;

    fn fw(path: &str, content: &str) -> FileWrite {
        FileWrite {
            path: path.into(),
            content: Bytes::from(content.to_string()),
            secret: false,
            mode: Some(0o640),
            owner: None,
            group: None,
            backup: true,
            backup_beside: false,
            parent: None,
        }
    }

    #[tokio::test]
    async fn writes_several_files_atomically_in_one_exec() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt").display().to_string();
        let b = dir.path().join("sub/b.txt").display().to_string();
        std::fs::write(&a, "old\n").unwrap();
        let mut fb = fw(&b, "bee\n");
        fb.parent = Some(crate::modules::DirSpec {
            path: dir.path().join("sub").display().to_string(),
            mode: Some(0o700),
            owner: None,
            group: None,
        });
        let t = LocalTransport::new("localhost");
        let out = t
            .exec(write_exec(&[fw(&a, "new content\n"), fb], None, None))
            .await
            .unwrap();
        assert!(out.status.success(), "{}", out.stderr_str());
        assert_eq!(t.stats().execs, 1);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new content\n");
        // The previous version is kept in the state directory, not beside the file.
        let kept = format!(
            "/var/lib/edgefleet/backup/{}.1",
            crate::modules::rollback_name(&a)
        );
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "old\n");
        assert!(!std::path::Path::new(&format!("{a}.edgefleet.bak")).exists());
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "bee\n");
        let m = std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777;
        assert_eq!(m, 0o640);
        let pm = std::fs::metadata(dir.path().join("sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(pm, 0o700);
        // No temp files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".edgefleet."))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn short_stdin_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt").display().to_string();
        std::fs::write(&a, "old\n").unwrap();
        let mut e = write_exec(&[fw(&a, "0123456789")], None, None);
        // Simulate a connection that drops after 4 bytes.
        e.stdin = Some(crate::transport::Stdin {
            data: Bytes::from_static(b"0123"),
            secret: false,
        });
        let t = LocalTransport::new("localhost");
        let out = t.exec(e).await.unwrap();
        assert!(!out.status.success());
        assert!(
            out.stderr_str().contains("incomplete write"),
            "{}",
            out.stderr_str()
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old\n");
        let n = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(n, 1, "temp file removed");
    }

    #[test]
    fn secret_diffs_are_masked() {
        let d = Diff {
            path: "/etc/x".into(),
            before: Some("a\n".into()),
            after: Some("b\n".into()),
            secret: true,
            attrs: vec![],
        };
        assert_eq!(render_diff(&d), "/etc/x: <secret changed>\n");
        let d = Diff { secret: false, ..d };
        let r = render_diff(&d);
        assert!(r.contains("-a\n+b\n"), "{r}");
    }
}
