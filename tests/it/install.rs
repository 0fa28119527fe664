//! What an operator installs besides the binary: `--version` with the commit, shell completions (loaded in the
//! real bash, and `--limit` completed from a real inventory, also by pressing Tab in an interactive bash on a
//! tmux terminal), and man pages for every subcommand, rendered by `man` and `groff` without a warning.
//!
//! zsh and fish are checked in their own shell only where installed (the suite does not install them); their
//! scripts are still checked for content everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::CommandFactory;

use crate::support::{bin, edgefleet, repo};
use crate::tools;

/// The example inventory: five devices in three site groups (plus `manual` and `dps`), with an age-encrypted
/// `group_vars/all/secrets.yml.age` that completion must never need to open.
fn example_inventory() -> PathBuf {
    repo().join("inventory/example")
}

fn stdout_of(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run the command");
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A directory holding an `edgefleet` that is the binary under test, to put first on PATH.
fn bin_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(bin(), d.path().join("edgefleet")).expect("symlink");
    d
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    std::env::join_paths(
        std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .expect("PATH")
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = stdout_of(edgefleet().arg("--version"));
    let re =
        regex::Regex::new(r"^edgefleet (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40}|unknown)\)\n$")
            .unwrap();
    let caps = re
        .captures(&out)
        .unwrap_or_else(|| panic!("--version prints {out:?}"));
    assert_eq!(&caps[1], env!("CARGO_PKG_VERSION"));
    // Built from a git checkout (as here): the commit is HEAD's (build.rs reruns when HEAD moves).
    tools::require("git");
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output()
        .expect("git");
    if head.status.success() {
        assert_eq!(
            &caps[2],
            String::from_utf8_lossy(&head.stdout).trim(),
            "{out}"
        );
    } else {
        assert_eq!(
            &caps[2], "unknown",
            "no git checkout, yet --version names a commit"
        );
    }
    // Subcommands say the same version.
    assert!(stdout_of(edgefleet().args(["play", "--version"])).contains(&caps[0][10..]));
}

#[test]
fn completion_scripts_load_in_their_shells() {
    let dir = bin_dir();
    tools::require("bash");
    let out = stdout_of(
        Command::new("bash")
            .args([
                "--norc",
                "-c",
                "source <(edgefleet completions bash) && complete -p edgefleet",
            ])
            .env("PATH", path_with(dir.path())),
    );
    assert!(
        out.contains("-F _edgefleet_limit") && out.trim_end().ends_with(" edgefleet"),
        "bash registered: {out}"
    );
    let zsh = stdout_of(edgefleet().args(["completions", "zsh"]));
    assert!(
        zsh.starts_with("#compdef edgefleet"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    let fish = stdout_of(edgefleet().args(["completions", "fish"]));
    assert!(
        fish.contains("complete -c edgefleet"),
        "fish script: {}",
        &fish[..200.min(fish.len())]
    );
    for script in [&zsh, &fish] {
        for sub in [
            "play",
            "inventory",
            "lab",
            "vault",
            "certs",
            "bundle",
            "lint",
            "man",
            "completions",
        ] {
            assert!(script.contains(sub), "a completion script lacks `{sub}`");
        }
        assert!(
            !script.contains("__complete-hosts"),
            "the internal subcommand is offered"
        );
    }
    if tools::found("zsh") {
        let out = stdout_of(
            Command::new("zsh")
                .args([
                    "-f",
                    "-c",
                    "autoload -U compinit && compinit -u && source <(edgefleet completions zsh) && print -r -- $_comps[edgefleet]",
                ])
                .env("PATH", path_with(dir.path())),
        );
        assert_eq!(out.trim(), "_edgefleet");
    }
    if tools::found("fish") {
        let out = stdout_of(
            Command::new("fish")
                .args([
                    "--no-config",
                    "-c",
                    "edgefleet completions fish | source; complete -C 'edgefleet pi'",
                ])
                .env("PATH", path_with(dir.path())),
        );
        assert!(
            out.starts_with("ping"),
            "fish completes `edgefleet pi` as {out:?}"
        );
    }
}

/// Calls the bash completion function as bash does on Tab, for the command line `line` (cursor at its end),
/// split into `words` as bash splits it (at spaces and at COMP_WORDBREAKS: `=` and `:` are words of their own,
/// and the word being completed is then what follows them). Returns COMPREPLY.
fn bash_complete(line: &str, words: &[&str]) -> Vec<String> {
    let dir = bin_dir();
    let cur = match words.last() {
        Some(&":") | Some(&"=") => "",
        Some(w) => w,
        None => "",
    };
    let script = format!(
        "source <(edgefleet completions bash) || exit 9\n\
         COMP_LINE={line}; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
         COMPREPLY=(); _edgefleet_limit edgefleet {cur} \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        line = sh_quote(line),
        words = words.iter().map(|w| sh_quote(w)).collect::<Vec<_>>().join(" "),
        cur = sh_quote(cur),
    );
    let out = stdout_of(
        Command::new("bash")
            .args(["--norc", "-c", &script])
            .current_dir(repo())
            .env("PATH", path_with(dir.path()))
            // No identity at all: the inventory's encrypted vars file must stay closed.
            .env("EDGEFLEET_AGE_IDENTITY", "/nonexistent/no-identity")
            .env("HOME", dir.path())
            .env_remove("EDGEFLEET_INVENTORY"),
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_limit_with_the_inventorys_hosts_and_groups() {
    let inv = example_inventory();
    let inv = inv.to_str().expect("UTF-8 path");
    let all = [
        "all",
        "ungrouped",
        "site_munich",
        "site_lyon",
        "site_remote",
        "manual",
        "dps",
        "munich-edge-01",
        "munich-edge-02",
        "lyon-edge-01",
        "lyon-edge-02",
        "remote-edge-01",
    ];
    let line = format!("edgefleet play x.yml -i {inv} --limit ");
    assert_eq!(
        bash_complete(
            &line,
            &["edgefleet", "play", "x.yml", "-i", inv, "--limit", ""]
        ),
        all
    );
    let line = format!("edgefleet play x.yml -i {inv} -l lyon");
    assert_eq!(
        bash_complete(
            &line,
            &["edgefleet", "play", "x.yml", "-i", inv, "-l", "lyon"]
        ),
        ["lyon-edge-01", "lyon-edge-02"]
    );
    // `--inventory=` and `--limit=`: bash makes `=` a word; the reply is the part after it.
    let line = format!("edgefleet ping --inventory={inv} --limit=site_m");
    assert_eq!(
        bash_complete(
            &line,
            &[
                "edgefleet",
                "ping",
                "--inventory",
                "=",
                inv,
                "--limit",
                "=",
                "site_m"
            ]
        ),
        ["site_munich"]
    );
    // After `:` (bash's word ends there): the next name of the pattern, with its operator.
    let line = format!("edgefleet certs report -i{inv} --limit site_lyon:!lyon-edge-0");
    assert_eq!(
        bash_complete(
            &line,
            &[
                "edgefleet",
                "certs",
                "report",
                &format!("-i{inv}"),
                "--limit",
                "site_lyon",
                ":",
                "!lyon-edge-0"
            ]
        ),
        ["!lyon-edge-01", "!lyon-edge-02"]
    );
    // No -i and no $EDGEFLEET_INVENTORY: nothing to offer (bash then falls back to file names, for `@file`).
    let line = "edgefleet inventory --list --limit remote";
    let words = ["edgefleet", "inventory", "--list", "--limit", "remote"];
    assert!(
        bash_complete(line, &words).is_empty(),
        "no inventory, no names"
    );
    // Other arguments still get clap_complete's completion.
    let line = format!("edgefleet play x.yml -i {inv} --syntax-");
    assert_eq!(
        bash_complete(
            &line,
            &["edgefleet", "play", "x.yml", "-i", inv, "--syntax-"]
        ),
        ["--syntax-check"]
    );
}

#[test]
fn complete_hosts_reads_the_inventory_without_secrets_and_reports_a_bad_one() {
    // Without any identity, an inventory with encrypted vars still lists its names.
    let out = stdout_of(
        edgefleet()
            .args(["__complete-hosts", "-i"])
            .arg(example_inventory())
            .args(["--", "site_lyon,&munich"])
            .env("EDGEFLEET_AGE_IDENTITY", "/nonexistent/no-identity"),
    );
    assert_eq!(
        out,
        "site_lyon,&munich-edge-01\nsite_lyon,&munich-edge-02\n"
    );
    // $EDGEFLEET_INVENTORY is the default, as for every command.
    let out = stdout_of(
        edgefleet()
            .args(["__complete-hosts", "remote"])
            .env("EDGEFLEET_INVENTORY", example_inventory()),
    );
    assert_eq!(out, "remote-edge-01\n");
    let o = edgefleet()
        .args(["__complete-hosts", "-i", "/nonexistent/inventory.yml", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("/nonexistent/inventory.yml: inventory not found"));
}

/// A private tmux server (its own socket), killed with everything in it when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn send(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "sh"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-t", "sh"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Polls the screen until `done` holds (or panics after a minute, showing the screen).
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
fn tab_in_an_interactive_bash_completes_limit_from_the_inventory() {
    tools::require("tmux");
    tools::require("bash");
    let dir = bin_dir();
    let tmux = Tmux {
        socket: format!("edgefleet-install-{}", std::process::id()),
    };
    let shell = format!(
        "env -u EDGEFLEET_INVENTORY EDGEFLEET_AGE_IDENTITY=/nonexistent PATH={} PS1='ready$ ' bash --norc --noprofile -i",
        sh_quote(&path_with(dir.path()).to_string_lossy())
    );
    let st = tmux
        .cmd()
        .args([
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "sh",
            "-x",
            "200",
            "-y",
            "40",
        ])
        .arg(&shell)
        .current_dir(repo())
        .status()
        .expect("tmux new-session");
    assert!(st.success(), "tmux new-session failed");
    tmux.wait_for("the prompt", |s| s.contains("ready$"));
    tmux.send(&[
        "source <(edgefleet completions bash); echo loaded-$?",
        "Enter",
    ]);
    tmux.wait_for("the script to load", |s| s.contains("loaded-0"));
    // One match: Tab completes it in place (and adds a space).
    tmux.send(&["clear", "Enter"]);
    tmux.wait_for("a clear screen", |s| !s.contains("loaded-0"));
    tmux.send(&[
        "edgefleet play x.yml -i inventory/example --limit site_ly",
        "Tab",
    ]);
    tmux.wait_for("site_lyon on the line", |s| {
        s.contains("--limit site_lyon ")
    });
    // Several: Tab completes their common part, then Tab Tab lists them.
    tmux.send(&[
        "C-u",
        "edgefleet ping -i inventory/example -l munich",
        "Tab",
    ]);
    tmux.wait_for("the common part", |s| s.contains("-l munich-edge-0"));
    tmux.send(&["Tab", "Tab"]);
    let s = tmux.wait_for("the munich devices listed", |s| {
        s.lines().any(|l| {
            l.contains("munich-edge-01") && l.contains("munich-edge-02") && !l.contains("ready$")
        })
    });
    assert!(!s.contains("lyon-edge-01"), "{s}");
    tmux.send(&["C-u", "exit", "Enter"]);
}

/// Every visible subcommand's page name, from the clap definitions: `edgefleet`, `edgefleet-play`, ...
fn expected_pages() -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        out.push(prefix.to_string());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, &format!("{prefix}-{}", sub.get_name()), out);
        }
    }
    let mut out = Vec::new();
    walk(&edgefleet::cli::Cli::command(), "edgefleet", &mut out);
    out
}

#[test]
fn man_pages_exist_for_every_subcommand_and_render_cleanly() {
    tools::require("man");
    tools::require("groff");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man/man1");
    let listed = stdout_of(edgefleet().args(["man", "--dir"]).arg(&dir));
    let expected = expected_pages();
    assert!(expected.len() > 20, "{expected:?}");
    for must in [
        "edgefleet-play",
        "edgefleet-lab-up",
        "edgefleet-completions",
        "edgefleet-man",
    ] {
        assert!(expected.iter().any(|p| p == must), "{must}");
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = expected.iter().map(|p| format!("{p}.1")).collect();
    want.sort();
    assert_eq!(
        files, want,
        "one page per visible subcommand, no page for hidden ones"
    );
    assert_eq!(listed.lines().count(), want.len(), "{listed}");
    // man's bold and underline are overstrikes (`X\bX`) when it writes to a pipe.
    let overstrike = regex::Regex::new(".\x08").unwrap();
    for page in &expected {
        let file = dir.join(format!("{page}.1"));
        // groff with every warning on: a page that does not parse cleanly fails here.
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{page}.1: groff says {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = stdout_of(
            Command::new("man")
                .arg("-l")
                .arg(&file)
                .env("MANWIDTH", "100")
                .env("MAN_KEEP_FORMATTING", "0")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat"),
        );
        let text = overstrike.replace_all(&text, "");
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{page}: {text}"
        );
        // (man justifies the line: `edgefleet  -  Fleet ...`)
        let name_line = regex::Regex::new(&format!(r"(?m)^\s+{page}\s+-\s+\S")).unwrap();
        assert!(
            name_line.is_match(&text),
            "{page}: NAME line missing:\n{text}"
        );
    }
    // The pages say what --help says: the synopsis is the command path, options with their help.
    let play = stdout_of(
        Command::new("man")
            .arg("-l")
            .arg(dir.join("edgefleet-play.1"))
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat"),
    );
    let play = overstrike.replace_all(&play, "");
    assert!(
        regex::Regex::new(r"SYNOPSIS\n\s+edgefleet\s+play\s")
            .unwrap()
            .is_match(&play),
        "{play}"
    );
    assert!(play.contains("-l, --limit <PATTERN>"), "{play}");
    assert!(
        play.contains("Don't change anything; say what would change"),
        "{play}"
    );
    // man finds them by name through MANPATH, as `man edgefleet-play` will once installed.
    let found = stdout_of(
        Command::new("man")
            .args(["-w", "edgefleet-play"])
            .env("MANPATH", tmp.path().join("man")),
    );
    assert_eq!(found.trim(), dir.join("edgefleet-play.1").to_string_lossy());
}
