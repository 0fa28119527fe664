//! The documentation works when pasted: every command block of README.md and inventory/example/README.md, run in
//! order in a fresh copy of the repository (against a lab where a command needs devices).
//!
//! What runs: every fenced block whose info string is `sh`, one command per line (a line ending in `\` goes on
//! on the next; blank and `#` lines are skipped), all the blocks of one document in one `bash` process, so an
//! `export` or `cd` holds for the commands after it, as in the reader's terminal. The working directory is a
//! fresh copy of the repository's tracked files (`git ls-files`: no target/, no lab/), `edgefleet` on PATH is
//! the binary under test, and standard input is empty. Each command must exit 0, or the code its trailing
//! comment names as `exit N`.
//!
//! Rewrites, so that the test neither builds nor recurses: a `cargo run --release --` or `cargo run --` prefix
//! runs `edgefleet` (the debug binary this test run built, not a release build), and the test command
//! `tests/run` runs as `tests/run --dry-run` (the suite cannot run itself; the dry run still checks that the
//! script runs and reports what it would install).
//!
//! The marker ```` ```sh no-test ```` keeps a block from running: for commands that cannot run unattended (an
//! editor: `edgefleet vault edit`). Use it sparingly: every other command a document shows is exercised here.
//! Command blocks in other shells' fences (`bash`, `shell`, `console`) are refused, so none escapes the test.
//!
//! Any lab a document brings up (`lab up`/`lab run`, `--dir` or the default `lab`) is taken down again by a
//! guard, also when a command fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{bin, repo};
use crate::tools;

/// One command of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocCommand {
    /// Line in the document (1-based) where the command starts.
    line: usize,
    /// The command as the document shows it.
    text: String,
    /// The exit code the document says it has (0 unless its comment says `exit N`).
    expect: i32,
}

/// Fence languages that would hold shell commands: refused, so that every command block is `sh` and runs.
const OTHER_SHELLS: &[&str] = &[
    "bash",
    "shell",
    "console",
    "zsh",
    "shell-session",
    "sh-session",
];

/// The commands of every runnable ```` ```sh ```` block of `markdown`, in order.
fn commands(markdown: &str) -> Result<Vec<DocCommand>, String> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or("");
        let flags: Vec<&str> = words.collect();
        if OTHER_SHELLS.contains(&lang) {
            return Err(format!(
                "line {}: a ```{lang} block: write shell commands as ```sh so the docs test runs them",
                i + 1
            ));
        }
        let run = lang == "sh" && !flags.contains(&"no-test");
        if lang == "sh" {
            if let Some(bad) = flags.iter().find(|f| **f != "no-test") {
                return Err(format!(
                    "line {}: unknown marker `{bad}` (the one marker is `no-test`)",
                    i + 1
                ));
            }
        }
        let mut pending: Option<DocCommand> = None;
        let mut closed = false;
        for (j, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            if !run {
                continue;
            }
            let (cont, body) = match l.strip_suffix('\\') {
                Some(b) => (true, b),
                None => (false, l),
            };
            match pending.as_mut() {
                Some(p) => {
                    p.text.push(' ');
                    p.text.push_str(body.trim());
                }
                None => {
                    let t = body.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    pending = Some(DocCommand {
                        line: j + 1,
                        text: t.to_string(),
                        expect: 0,
                    });
                }
            }
            if !cont {
                let mut c = pending.take().expect("a command");
                c.expect = expected_exit(&c.text)
                    .map_err(|e| format!("line {}: {e}", c.line))?
                    .unwrap_or(0);
                out.push(c);
            }
        }
        if !closed {
            return Err(format!("line {}: the block is never closed", i + 1));
        }
        if let Some(p) = pending {
            return Err(format!("line {}: the command ends in `\\`", p.line));
        }
    }
    Ok(out)
}

/// The trailing comment of a command line (from the first `#` that starts a word outside quotes).
fn comment(cmd: &str) -> Option<&str> {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, ch) in cmd.char_indices() {
        match ch {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return Some(&cmd[i + 1..]),
            _ => {}
        }
        prev_space = ch.is_whitespace();
    }
    None
}

/// The exit code a command's comment declares (`exit N`), if any.
fn expected_exit(cmd: &str) -> Result<Option<i32>, String> {
    let Some(c) = comment(cmd) else {
        return Ok(None);
    };
    let Some(at) = c.find("exit ") else {
        return Ok(None);
    };
    let digits: String = c[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return Ok(None);
    }
    digits
        .parse()
        .map(Some)
        .map_err(|e| format!("bad exit code in {c:?}: {e}"))
}

/// The command as the test runs it (see the module doc for the rewrites).
fn rewrite(cmd: &str) -> String {
    // The test must not build a release binary: `cargo run` runs the binary under test instead.
    for prefix in ["cargo run --release -- ", "cargo run -- "] {
        if let Some(rest) = cmd.strip_prefix(prefix) {
            return format!("edgefleet {rest}");
        }
    }
    // The test command: the suite cannot run itself from inside; its dry run checks the script.
    if cmd == "tests/run" || cmd.starts_with("tests/run ") {
        return format!("tests/run --dry-run{}", &cmd["tests/run".len()..]);
    }
    cmd.to_string()
}

/// The lab directories a document's commands bring up (`--dir D`, or `lab`, the default).
fn lab_dirs(cmds: &[DocCommand]) -> Vec<String> {
    let mut dirs = vec!["lab".to_string()];
    for c in cmds {
        let words: Vec<&str> = c.text.split_whitespace().collect();
        if !words.contains(&"lab") {
            continue;
        }
        for w in words.windows(2) {
            if w[0] == "--dir" && !dirs.iter().any(|d| d == w[1]) {
                dirs.push(w[1].to_string());
            }
        }
    }
    dirs
}

/// Takes down every lab a document may have left running (also when the test fails).
struct LabsDown {
    root: PathBuf,
    dirs: Vec<String>,
}

impl Drop for LabsDown {
    fn drop(&mut self) {
        for d in &self.dirs {
            if self.root.join(d).join("lab.json").exists() {
                let _ = Command::new(bin())
                    .args(["lab", "down", "--dir", d])
                    .current_dir(&self.root)
                    .stdin(Stdio::null())
                    .output();
            }
        }
    }
}

/// A fresh copy of the repository's tracked files (as they are in the working tree) in `dst`.
fn copy_tracked(dst: &Path) {
    tools::require("git");
    let o = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
        .expect("git ls-files");
    assert!(
        o.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for rel in o.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 path"));
        let from = repo().join(rel);
        let to = dst.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copy {}: {e} (tracked but deleted?)", from.display()));
    }
}

/// Single-quote `s` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run every command of the document `rel` (relative to the repository root), in order, in a fresh copy.
fn run_document(rel: &str) {
    let text = std::fs::read_to_string(repo().join(rel)).expect("read the document");
    let cmds = commands(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(!cmds.is_empty(), "{rel} shows no command");

    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("edgefleet");
    copy_tracked(&root);
    // `edgefleet` on PATH is the binary under test.
    let bindir = tmp.path().join("bin");
    std::fs::create_dir_all(&bindir).expect("mkdir bin");
    std::os::unix::fs::symlink(bin(), bindir.join("edgefleet")).expect("symlink edgefleet");
    let _labs = LabsDown {
        root: root.clone(),
        dirs: lab_dirs(&cmds),
    };

    let mut script = String::from("exec 2>&1\n");
    for c in &cmds {
        let run = rewrite(&c.text);
        script.push_str(&format!(
            "printf '\\n%s$ %s\\n' {} {}\n{run}\n__rc=$?\nif [ \"$__rc\" -ne {} ]; then printf '\\nDOCS: %s: exit %s, the document expects %s\\n' {} \"$__rc\" {}; exit 1; fi\n",
            quote(&format!("{rel}:{}: ", c.line)),
            quote(&run),
            c.expect,
            quote(&format!("{rel}:{}: {}", c.line, c.text)),
            c.expect
        ));
    }
    script.push_str("printf '\\nDOCS: every command ran as documented\\n'\n");
    let script_path = tmp.path().join("doc.sh");
    std::fs::write(&script_path, &script).expect("write the script");

    let path = std::env::join_paths(std::iter::once(bindir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let o = Command::new("bash")
        .arg(&script_path)
        .current_dir(&root)
        .env("PATH", path)
        .env_remove("EDGEFLEET_AGE_IDENTITY")
        .env_remove("EDGEFLEET_INVENTORY")
        // Run journals (`--resume last`, `--limit @failed`) of this document only, not of other tests.
        .env("XDG_STATE_HOME", tmp.path().join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("bash");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.ends_with("DOCS: every command ran as documented\n"),
        "{rel}: a command did not work as documented ({}):\n{out}",
        o.status
    );
}

#[test]
fn readme_commands_work_when_pasted() {
    run_document("README.md");
}

#[test]
fn example_inventory_readme_commands_work_when_pasted() {
    run_document("inventory/example/README.md");
}

/// `.ci/run` runs exactly the test command the README shows (its second command).
#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let cmds = commands(&readme).expect("README.md blocks");
    let test_cmd = cmds.get(1).expect("the README's second command");
    let test_cmd = test_cmd.text.split(" #").next().unwrap_or("").trim();
    assert_eq!(test_cmd, "tests/run", "the README's second command");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    let last = ci
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect(".ci/run has commands");
    assert_eq!(
        last, test_cmd,
        ".ci/run must end by running the README's test command"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo().join(test_cmd))
        .expect("tests/run")
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "tests/run must be executable");
}

#[test]
fn blocks_markers_exit_codes_and_rewrites() {
    let md = "text\n```sh\ncargo run --release -- lab run --devices 2   # go\n\n# a comment line\n\
              edgefleet play x.yml \\\n  -i inv   # dry run (exit 2 on new devices)\n```\n\
              ```sh no-test\nedgefleet vault edit f.age\n```\n```yaml\nnot: run\n```\n\
              ```sh\necho '# exit 7' \"a#b\" # exit 3\n```\n";
    let c = commands(md).unwrap();
    let got: Vec<(usize, &str, i32)> = c
        .iter()
        .map(|c| (c.line, c.text.as_str(), c.expect))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "cargo run --release -- lab run --devices 2   # go", 0),
            (
                6,
                "edgefleet play x.yml -i inv   # dry run (exit 2 on new devices)",
                2
            ),
            (16, "echo '# exit 7' \"a#b\" # exit 3", 3),
        ]
    );
    assert_eq!(rewrite(&c[0].text), "edgefleet lab run --devices 2   # go");
    assert_eq!(rewrite("cargo run -- ping -i x"), "edgefleet ping -i x");
    assert_eq!(rewrite("tests/run"), "tests/run --dry-run");
    assert_eq!(
        rewrite("tests/run --test it docs"),
        "tests/run --dry-run --test it docs"
    );
    assert_eq!(rewrite("edgefleet ping"), "edgefleet ping");
    assert_eq!(
        lab_dirs(&commands("```sh\nedgefleet lab up --dir lab2 --devices 3\n```\n").unwrap()),
        vec!["lab", "lab2"]
    );
    assert!(commands("```bash\nls\n```\n")
        .unwrap_err()
        .contains("```sh"));
    assert!(commands("```sh skip\nls\n```\n")
        .unwrap_err()
        .contains("no-test"));
    assert!(commands("```sh\nls\n")
        .unwrap_err()
        .contains("never closed"));
}
