//! Build script: records the git commit the binary is built from, for `edgefleet --version`.
//!
//! Sets `EDGEFLEET_GIT_COMMIT` to `git rev-parse --short HEAD` of the source tree, or to "unknown" when there is
//! no git or no repository (a tarball or `cargo package` build). It never fails the build, and asks cargo to run
//! it again only when HEAD or the branch it points to moves (not on every source change).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Tell cargo to rerun when `p` changes; only for existing files (cargo reruns every time for a missing one).
fn watch(p: &Path) {
    if p.is_file() {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only this package's own repository counts: a source tarball unpacked inside some other checkout must
    // not report that checkout's commit.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ours = git(&["rev-parse", "--show-toplevel"])
        .and_then(|t| std::fs::canonicalize(t).ok())
        .zip(std::fs::canonicalize(manifest).ok())
        .is_some_and(|(top, m)| top == m);
    let commit = if ours {
        git(&["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    if commit.is_some() {
        let abs = |p: String| -> PathBuf {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                manifest.join(p)
            }
        };
        if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(abs) {
            watch(&dir.join("HEAD"));
        }
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(abs) {
            watch(&common.join("packed-refs"));
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watch(&common.join(branch));
            }
        }
    }
    println!(
        "cargo:rustc-env=EDGEFLEET_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
