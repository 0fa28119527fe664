//! Helpers shared by the file-like modules: attribute comparison and the commands that fix attributes.

use serde_json::{json, Map, Value};

use crate::facts::FileFact;
use crate::transport::Cmd;

/// Wanted attributes of a path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Mode bits.
    pub mode: Option<u32>,
    /// Owner (name or uid).
    pub owner: Option<String>,
    /// Group (name or gid).
    pub group: Option<String>,
}

impl Attrs {
    /// Differences between the wanted attributes and what the device has, as "mode: 0644 -> 0600" lines.
    pub fn diff(&self, f: &FileFact) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = self.mode {
            if f.mode != m {
                out.push(format!("mode: {:04o} -> {:04o}", f.mode, m));
            }
        }
        if let Some(o) = &self.owner {
            if !f.owner_is(o) {
                out.push(format!("owner: {} -> {o}", f.owner));
            }
        }
        if let Some(g) = &self.group {
            if !f.group_is(g) {
                out.push(format!("group: {} -> {g}", f.group));
            }
        }
        out
    }

    /// The command that sets these attributes on `path` (None when nothing is wanted).
    pub fn fix_cmd(&self, path: &str) -> Option<Cmd> {
        let mut parts: Vec<Cmd> = Vec::new();
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => parts.push(
                Cmd::new("chown")
                    .raw("--")
                    .arg(format!("{o}:{g}"))
                    .arg(path),
            ),
            (Some(o), None) => parts.push(Cmd::new("chown").raw("--").arg(o.clone()).arg(path)),
            (None, Some(g)) => parts.push(Cmd::new("chgrp").raw("--").arg(g.clone()).arg(path)),
            (None, None) => {}
        }
        if let Some(m) = self.mode {
            parts.push(
                Cmd::new("chmod")
                    .raw("--")
                    .arg(format!("{m:04o}"))
                    .arg(path),
            );
        }
        join_and(parts)
    }
}

/// The directories above `path`, outermost first (`/a/b/c` -> `/a`, `/a/b`; relative paths likewise).
pub fn ancestors(path: &str) -> Vec<String> {
    let trimmed = path.trim_end_matches('/');
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = trimmed[at..].find('/') {
        let end = at + i;
        if end > 0 {
            out.push(trimmed[..end].to_string());
        }
        at = end + 1;
    }
    out
}

/// Join commands with `&&`.
pub fn join_and(parts: Vec<Cmd>) -> Option<Cmd> {
    let mut it = parts.into_iter();
    let first = it.next()?;
    let mut out = first;
    for p in it {
        out = out.raw("&&");
        for part in p.parts() {
            out = match part {
                crate::transport::Part::Raw(r) => out.raw(r),
                crate::transport::Part::Arg(a) => out.arg(a.clone()),
            };
        }
    }
    Some(out)
}

/// The `stat`-like result Ansible modules return for a path.
pub fn file_result(f: &FileFact) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("path".into(), json!(f.path));
    if f.exists {
        m.insert("mode".into(), json!(format!("{:04o}", f.mode)));
        m.insert("owner".into(), json!(f.owner));
        m.insert("group".into(), json!(f.group));
        m.insert("uid".into(), json!(f.uid));
        m.insert("gid".into(), json!(f.gid));
        m.insert("size".into(), json!(f.size));
        m.insert(
            "state".into(),
            json!(if f.is_dir() { "directory" } else { "file" }),
        );
        if let Some(s) = &f.sha256 {
            m.insert("checksum".into(), json!(s));
        }
    } else {
        m.insert("state".into(), json!("absent"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_outermost_first() {
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert_eq!(ancestors("/a/b/"), vec!["/a"]);
        assert_eq!(ancestors("a/b"), vec!["a"]);
        assert!(ancestors("/a").is_empty());
    }

    #[test]
    fn attr_diff_and_fix() {
        let f = FileFact {
            path: "/x".into(),
            exists: true,
            kind: "file".into(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            ..Default::default()
        };
        let a = Attrs {
            mode: Some(0o600),
            owner: Some("aziotks".into()),
            group: None,
        };
        assert_eq!(
            a.diff(&f),
            vec!["mode: 0644 -> 0600", "owner: root -> aziotks"]
        );
        assert_eq!(
            a.fix_cmd("/x y").unwrap().to_shell(),
            "chown -- aziotks '/x y' && chmod -- 0600 '/x y'"
        );
        assert!(Attrs::default().fix_cmd("/x").is_none());
    }
}
