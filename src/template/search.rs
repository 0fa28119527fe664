//! The one search path for local files named by `src:`-like arguments: the `copy`/`template` modules' `src`,
//! `edge_ca`'s certificate and key files, `iotedge_config`'s `src` template (and `lookup('file')`, which
//! delegates here).
//!
//! Owns the order, which is Ansible's: the task's search path is its role's directory, the directory of the
//! task file, then the playbook's directory ([`task_search_path`]); in each directory `d`, `d/<subdir>/<name>`
//! (`subdir` is `files` or `templates`) comes before `d/<name>`. Absolute names are used as they are. Without a
//! search path, a relative name is resolved from the current directory. Pre-flight and the run use the same
//! path, so a file found at run time is found before contact too. It only looks at the controller's file
//! system and never reads a file's content.

use std::path::{Path, PathBuf};

/// The search path of a task: its role's directory (when it comes from a role), the directory of the file it
/// was written in, and the playbook's directory, in that order.
pub fn task_search_path(
    role_dir: Option<&Path>,
    task_dir: &Path,
    playbook_dir: &Path,
) -> Vec<PathBuf> {
    let mut v = Vec::with_capacity(3);
    if let Some(r) = role_dir {
        v.push(r.to_path_buf());
    }
    v.push(task_dir.to_path_buf());
    v.push(playbook_dir.to_path_buf());
    v
}

/// A file named by an argument was not found. Names the places looked in, never a file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not find `{name}` in {}", describe(.tried))]
pub struct NotFound {
    /// The name as given.
    pub name: String,
    /// Every candidate path tried, in order.
    pub tried: Vec<PathBuf>,
}

fn describe(tried: &[PathBuf]) -> String {
    let mut dirs: Vec<String> = Vec::new();
    for t in tried {
        let d = t
            .parent()
            .map(|p| p.display().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ".".into());
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.join(", ")
}

/// Every path `name` may be found at, in the order they are tried.
pub fn candidates(search: &[PathBuf], subdir: &str, name: &str) -> Vec<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() || search.is_empty() {
        return vec![p.to_path_buf()];
    }
    search
        .iter()
        .flat_map(|d| {
            let mut v = Vec::with_capacity(2);
            if !subdir.is_empty() {
                v.push(d.join(subdir).join(p));
            }
            v.push(d.join(p));
            v
        })
        .collect()
}

/// Resolve `name` (an argument like `src: motd`) to a local regular file: see the module docs for the order.
pub fn find(search: &[PathBuf], subdir: &str, name: &str) -> Result<PathBuf, NotFound> {
    let tried = candidates(search, subdir, name);
    match tried.iter().find(|c| c.is_file()) {
        Some(c) => Ok(c.clone()),
        None => Err(NotFound {
            name: name.to_string(),
            tried,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_subdir_first_then_role_then_task_then_playbook() {
        let dir = tempfile::tempdir().unwrap();
        let role = dir.path().join("roles/r");
        let tasks = dir.path().join("tasks");
        std::fs::create_dir_all(role.join("templates")).unwrap();
        std::fs::create_dir_all(&tasks).unwrap();
        std::fs::write(role.join("templates/a.j2"), "t").unwrap();
        std::fs::write(role.join("a.j2"), "plain").unwrap();
        std::fs::write(tasks.join("b.txt"), "task dir").unwrap();
        std::fs::write(dir.path().join("b.txt"), "playbook dir").unwrap();
        std::fs::write(dir.path().join("c.txt"), "playbook dir").unwrap();
        let sp = task_search_path(Some(&role), &tasks, dir.path());
        assert_eq!(
            find(&sp, "templates", "a.j2").unwrap(),
            role.join("templates/a.j2")
        );
        assert_eq!(find(&sp, "files", "a.j2").unwrap(), role.join("a.j2"));
        assert_eq!(find(&sp, "files", "b.txt").unwrap(), tasks.join("b.txt"));
        assert_eq!(
            find(&sp, "files", "c.txt").unwrap(),
            dir.path().join("c.txt")
        );
        let e = find(&sp, "files", "nope.txt").unwrap_err();
        assert_eq!(e.tried.len(), 6);
        let msg = e.to_string();
        assert!(msg.starts_with("could not find `nope.txt` in "), "{msg}");
        assert!(
            msg.contains(&role.join("files").display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn absolute_and_no_search_path() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.pem");
        std::fs::write(&f, "x").unwrap();
        let abs = f.display().to_string();
        assert_eq!(
            find(&[dir.path().join("elsewhere")], "files", &abs).unwrap(),
            f
        );
        assert!(find(&[], "files", "/no/such/file").is_err());
        // A directory is not a file to read.
        assert!(find(&[], "files", &dir.path().display().to_string()).is_err());
    }
}
