//! `group_vars/` and `host_vars/`: finding and reading the variable files of one group or host in one directory.
//!
//! Owns Ansible's lookup rules (`NAME` as a file or a directory, else `NAME.yml`, `NAME.yaml`, `NAME.json`: the
//! first that exists wins; a directory is read recursively in sorted order, skipping hidden files, `~` backups,
//! extensions other than none/.yml/.yaml/.json and sub-directories with an extension) plus edgefleet's
//! age-encrypted `*.age` files (decrypted by `crate::vars::secrets`), and the rule that a vars file holds a
//! mapping (empty files are skipped). It must not decide precedence between directories: `mod.rs` does.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::vars::Vars;

const YAML_EXTS: [&str; 3] = [".yml", ".yaml", ".json"];

/// Where a group's or host's variable files are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `group_vars/`.
    Group,
    /// `host_vars/`.
    Host,
}

impl Kind {
    fn subdir(self) -> &'static str {
        match self {
            Kind::Group => "group_vars",
            Kind::Host => "host_vars",
        }
    }
}

/// One `group_vars/` or `host_vars/` directory, listed once.
#[derive(Debug)]
pub struct VarsDir {
    dir: PathBuf,
    entries: Option<HashSet<OsString>>,
}

impl VarsDir {
    /// The `group_vars`/`host_vars` directory under `base` (which may not exist).
    pub fn open(base: &Path, kind: Kind) -> Self {
        let dir = base.join(kind.subdir());
        let entries = if dir.is_dir() {
            std::fs::read_dir(&dir).ok().map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect::<HashSet<_>>()
            })
        } else {
            None
        };
        VarsDir { dir, entries }
    }

    /// Does the directory exist?
    pub fn exists(&self) -> bool {
        self.entries.is_some()
    }

    fn has(&self, name: &str) -> bool {
        match &self.entries {
            None => false,
            // Names with a separator point below the directory: ask the filesystem.
            Some(_) if name.contains('/') => self.dir.join(name).exists(),
            Some(set) => set.contains(&OsString::from(name)),
        }
    }

    /// The files that hold `name`'s variables, in the order they apply (Ansible's `find_vars_files`).
    pub fn find(&self, name: &str) -> Vec<PathBuf> {
        if self.entries.is_none() || name.is_empty() || name.starts_with('/') {
            return Vec::new();
        }
        let candidates = std::iter::once(String::new())
            .chain(YAML_EXTS.iter().map(|e| e.to_string()))
            .chain(std::iter::once(".age".to_string()))
            .chain(YAML_EXTS.iter().map(|e| format!("{e}.age")));
        for ext in candidates {
            let file = format!("{name}{ext}");
            if !self.has(&file) {
                continue;
            }
            let full = self.dir.join(&file);
            if full.is_dir() {
                let mut out = Vec::new();
                dir_files(&full, &mut out);
                return out;
            }
            return vec![full];
        }
        Vec::new()
    }
}

fn extension(name: &str) -> &str {
    // os.path.splitext: leading dots do not start an extension.
    let trimmed = name.trim_start_matches('.');
    match trimmed.rfind('.') {
        Some(i) => &trimmed[i..],
        None => "",
    }
}

fn dir_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names {
        if n.starts_with('.') || n.ends_with('~') {
            continue;
        }
        let ext = extension(&n);
        let full = dir.join(&n);
        if full.is_dir() {
            if ext.is_empty() {
                dir_files(&full, out);
            }
        } else if full.is_file() && (ext.is_empty() || YAML_EXTS.contains(&ext) || ext == ".age") {
            out.push(full);
        }
    }
}

/// Is this vars file age-encrypted (`*.age`)?
pub fn is_encrypted(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "age")
}

/// Read one vars file: YAML/JSON, or age-encrypted YAML for `*.age`. Empty files give `None`.
pub fn load_file(path: &Path) -> Result<Option<Vars>, Diagnostic> {
    let (value, line, col, text) = if is_encrypted(path) {
        (crate::vars::secrets::load_vars_file(path)?, 0, 0, None)
    } else {
        let (node, text) = crate::yaml::parse_file(path)?;
        (node.to_json(), node.line, node.col, Some(text))
    };
    let falsy = match &value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if falsy {
        return Ok(None);
    }
    match value {
        Value::Object(m) => Ok(Some(m)),
        other => {
            let kind = match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            let d = Diagnostic::at(
                path,
                line,
                col,
                format!("a vars file must be a mapping of variable names to values, found {kind}"),
            );
            Err(match text {
                Some(t) => d.with_source(&t),
                None => d,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    #[test]
    fn lookup_order_and_directories() {
        let t = tempfile::tempdir().unwrap();
        let gv = t.path().join("group_vars");
        write(&gv.join("web.yml"), "a: 1\n");
        write(&gv.join("web.yaml"), "a: 2\n");
        write(&gv.join("db/b.yml"), "x: 1\n");
        write(&gv.join("db/a"), "x: 0\n");
        write(&gv.join("db/c.txt"), "x: 9\n");
        write(&gv.join("db/.hidden.yml"), "x: 9\n");
        write(&gv.join("db/z.yml~"), "x: 9\n");
        write(&gv.join("db/sub/d.json"), "{\"x\": 2}\n");
        write(&gv.join("db/sub.d/e.yml"), "x: 9\n");
        write(&gv.join("db.yml"), "ignored: true\n");
        let d = VarsDir::open(t.path(), Kind::Group);
        assert_eq!(d.find("web"), vec![gv.join("web.yml")]);
        assert_eq!(
            d.find("db"),
            vec![
                gv.join("db/a"),
                gv.join("db/b.yml"),
                gv.join("db/sub/d.json")
            ]
        );
        assert!(d.find("nothing").is_empty());
        // age-encrypted files: found by name when no plain file exists, and inside directories.
        write(
            &gv.join("vault.yml.age"),
            "-----BEGIN AGE ENCRYPTED FILE-----\n",
        );
        write(
            &gv.join("db/secrets.age"),
            "-----BEGIN AGE ENCRYPTED FILE-----\n",
        );
        let d = VarsDir::open(t.path(), Kind::Group);
        assert_eq!(d.find("vault"), vec![gv.join("vault.yml.age")]);
        assert!(d.find("db").contains(&gv.join("db/secrets.age")));
        assert!(!VarsDir::open(t.path(), Kind::Host).exists());
    }

    #[test]
    fn content_rules() {
        let t = tempfile::tempdir().unwrap();
        let empty = t.path().join("empty.yml");
        write(&empty, "# nothing\n");
        assert_eq!(load_file(&empty).unwrap(), None);
        let list = t.path().join("list.yml");
        write(&list, "- a\n- b\n");
        let e = load_file(&list).unwrap_err();
        assert!(e.message.contains("found a list"), "{e}");
        assert_eq!(e.line, 1);
        let bad = t.path().join("bad.yml");
        write(&bad, "a: [1\n");
        assert!(load_file(&bad).unwrap_err().line > 0);
    }
}
