//! Real Ansible playbooks run unchanged: the same playbook through `ansible-playbook` and through edgefleet
//! (both on localhost), compared file by file (content and mode) and by exit code.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{edgefleet, fixture};

fn files(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (mode, vec![]));
                stack.push(p);
            } else {
                out.insert(rel, (mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn python() -> String {
    crate::tools::require("python3");
    let o = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output();
    match o {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => panic!("python3 does not run: run `tests/run` (it installs what the tests need)"),
    }
}

#[test]
fn a_real_ansible_playbook_gives_the_same_files() {
    crate::tools::require("ansible-playbook");
    let work = tempfile::tempdir().unwrap();
    let inv = work.path().join("inv.ini");
    std::fs::write(
        &inv,
        format!(
            "localhost ansible_connection=local ansible_python_interpreter={}\n",
            python()
        ),
    )
    .unwrap();
    let pb = fixture("compat/site.yml");
    let a = work.path().join("ansible");
    let b = work.path().join("edgefleet");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();

    let ansible = Command::new("ansible-playbook")
        .arg("-i")
        .arg(&inv)
        .arg(&pb)
        .arg("-e")
        .arg(format!("out={}", a.display()))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", work.path().join("ansible-tmp"))
        .env("ANSIBLE_HOME", work.path().join("ansible-home"))
        .output()
        .unwrap();
    assert!(
        ansible.status.success(),
        "ansible-playbook failed:\n{}",
        String::from_utf8_lossy(&ansible.stdout)
    );
    let ours = edgefleet()
        .args(["play"])
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .arg("-e")
        .arg(format!("out={}", b.display()))
        .output()
        .unwrap();
    assert!(
        ours.status.success(),
        "edgefleet failed:\n{}\n{}",
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&ours.stderr)
    );
    let fa = files(&a);
    let fb = files(&b);
    assert!(
        fa.len() >= 18,
        "the fixture should produce many files: {:?}",
        fa.keys()
    );
    for (name, (mode, content)) in &fa {
        let Some((m2, c2)) = fb.get(name) else {
            panic!(
                "edgefleet did not produce {name}; it produced {:?}",
                fb.keys()
            );
        };
        assert_eq!(
            String::from_utf8_lossy(content),
            String::from_utf8_lossy(c2),
            "content of {name} differs"
        );
        assert_eq!(
            format!("{mode:o}"),
            format!("{m2:o}"),
            "mode of {name} differs"
        );
    }
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());

    // Run it again: Ansible and edgefleet agree that nothing changes except the `command`/`shell` tasks.
    let again = edgefleet()
        .args(["play"])
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .arg("-e")
        .arg(format!("out={}", b.display()))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(files(&b), fb, "a second run changed files");
}
