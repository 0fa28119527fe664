//! Operator output end to end, through the real CLI: plain lines and recap, the JSON report (validated against
//! the documented schema), jsonl, `--log`, colour, secrets, and the live display on a real terminal (tmux) for
//! a 100-device run. Devices are `ansible_connection: local` hosts; one non-local host on port 1 is unreachable.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{bin, edgefleet, fixture, repo};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run the three-device fixture (one changed, one failed, one unreachable) with `args` added.
fn run_fixture(out: &Path, args: &[&str]) -> Output {
    let pb = fixture("report/play.yml");
    let inv = fixture("report/inv.yml");
    edgefleet()
        .arg("play")
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .arg("-e")
        .arg(format!("out={}", out.display()))
        .args(args)
        .output()
        .expect("run edgefleet")
}

/// Filters for what legitimately changes between runs: temp paths, durations, timestamps, the SSH error text.
fn settings(tmp: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex::escape(&tmp.display().to_string()), "[TMP]");
    s.add_filter(&regex::escape(&repo().display().to_string()), "[REPO]");
    s.add_filter(
        r"cannot connect to 127\.0\.0\.1[^\n\x22]*",
        "cannot connect to 127.0.0.1[REASON]",
    );
    s.add_filter(
        r#""(started_at|finished_at|ts)": "[^"]+""#,
        r#""$1": "[TS]""#,
    );
    s.add_filter(
        r#""(duration_ms|connect_ms|duration|elapsed|bytes_sent|bytes_received)": \d+"#,
        r#""$1": "[N]""#,
    );
    s.add_filter(r#""edgefleet": "[^"]+""#, r#""edgefleet": "[VERSION]""#);
    s.add_filter(r"duration: \d+(\.\d+)?(ms|s)", "duration: [DURATION]");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Plain output with the event lines sorted: devices run in parallel, so their order is not part of the
/// contract; the recap's order (inventory order) is.
fn stable_plain(out: &str) -> String {
    let (events, recap) = out.split_at(out.find("\nRECAP").unwrap_or(out.len()));
    let mut lines: Vec<&str> = events.lines().collect();
    let play = if lines.first().is_some_and(|l| l.starts_with("PLAY [")) {
        Some(lines.remove(0))
    } else {
        None
    };
    lines.sort();
    let mut s = String::new();
    if let Some(p) = play {
        s.push_str(p);
        s.push('\n');
    }
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str(recap);
    s
}

pub(crate) fn load_schema(name: &str) -> jsonschema::Validator {
    let path = repo().join("docs").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"));
    jsonschema::validator_for(&schema).unwrap()
}

pub(crate) fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

#[test]
fn plain_output_and_recap() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_fixture(dir.path(), &["--progress", "plain"]);
    // Unreachable beats failed (Ansible's rule).
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let out = stable_plain(&text(&o.stdout));
    settings(dir.path()).bind(|| insta::assert_snapshot!("plain_output", out));
    assert!(dir.path().join("dev-changed.txt").exists());
}

#[test]
fn json_report_matches_the_schema_and_stdout_holds_only_json() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let o = run_fixture(
        dir.path(),
        &[
            "--output",
            "json",
            "--diff",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    // stdout is one JSON document and nothing else; the human text went to stderr.
    let doc: Value =
        serde_json::from_slice(&o.stdout).expect("stdout is exactly one JSON document");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        doc, file,
        "--report and --output json write the same document"
    );
    assert!(text(&o.stderr).contains("RECAP"), "{}", text(&o.stderr));
    assert_valid(&load_schema("report.schema.json"), &doc, "the report");
    // What the brief asks of every device, checked by value (the snapshot shows the whole document).
    let dev = |n: &str| -> &Value {
        doc["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(dev("dev-changed")["status"], "changed");
    assert_eq!(
        dev("dev-changed")["changed_tasks"][0]["task"],
        "write marker"
    );
    assert!(dev("dev-changed")["changed_tasks"][0]["diff"]
        .as_str()
        .unwrap()
        .contains("+managed"));
    assert_eq!(dev("dev-failed")["failed_task"]["task"], "check disk");
    assert!(dev("dev-failed")["error"]
        .as_str()
        .unwrap()
        .contains("No space left on device"));
    assert_eq!(dev("dev-unreachable")["status"], "unreachable");
    assert!(dev("dev-changed")["round_trips"].as_u64().unwrap() > 0);
    assert_eq!(doc["exit_code"], 3);
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    settings(dir.path()).bind(|| insta::assert_snapshot!("json_report", pretty));
}

#[test]
fn jsonl_every_line_is_an_event_that_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_fixture(dir.path(), &["--output", "jsonl", "-vvv"]);
    assert_eq!(o.status.code(), Some(3));
    let schema = load_schema("events.schema.json");
    let out = text(&o.stdout);
    let mut kinds = vec![];
    for (i, line) in out.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", i + 1));
        assert_valid(&schema, &v, &format!("jsonl line {}", i + 1));
        kinds.push(v["event"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds.first().map(String::as_str), Some("run_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("summary"));
    for k in [
        "task_result",
        "exec",
        "host_unreachable",
        "host_finished",
        "run_finished",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} event in:\n{out}");
    }
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], 3);
    let bad: Vec<&str> = last["not_ok"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(bad, vec!["dev-failed", "dev-unreachable"]);
    // -vvv's command lines are human text: stderr, never stdout.
    assert!(text(&o.stderr).contains("| exec |"), "{}", text(&o.stderr));
}

#[test]
fn log_file_records_commands_exit_codes_and_durations_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let o = run_fixture(dir.path(), &["--log", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let text = std::fs::read_to_string(&log).unwrap();
    let stamp =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (-|dev-[a-z]+) ").unwrap();
    for l in text.lines() {
        assert!(stamp.is_match(l), "unstamped log line: {l}");
    }
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" dev-failed "))
        .collect();
    let joined = failed.join("\n");
    assert!(
        joined.contains("exec: : && /bin/sh -c 'echo '\\''No space left on device'\\'' >&2; exit 1' -> exit code 1 in "),
        "{joined}"
    );
    assert!(
        joined.contains("task check disk [shell]: FAILED in "),
        "{joined}"
    );
    assert!(joined.contains("finished: FAILED in "), "{joined}");
    assert!(
        text.contains(" dev-unreachable UNREACHABLE: cannot connect to 127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("stdin=<8 bytes>"),
        "the copy's content goes over stdin: {text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "the log names devices and commands: owner-only"
        );
    }
}

#[test]
fn secrets_never_reach_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("secret.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  tasks:\n    - name: use the secret\n      shell: \"echo token {{ db_password }}; echo {{ db_password }} >&2; exit 1\"\n      when: inventory_hostname == 'dev-failed'\n    - name: write it\n      copy: {content: \"pw={{ db_password }}\\n\", dest: \"{{ out }}/{{ inventory_hostname }}.conf\"}\n",
    )
    .unwrap();
    let canary = "Canary-Pw-8731-zz";
    let log = dir.path().join("run.log");
    let report = dir.path().join("r.json");
    for output in ["text", "jsonl", "json"] {
        let o = edgefleet()
            .arg("play")
            .arg(&pb)
            .arg("-i")
            .arg(fixture("report/inv.yml"))
            .arg("-e")
            .arg(format!("out={}", dir.path().display()))
            .arg("-e")
            .arg(format!("db_password={canary}"))
            .args(["--diff", "-vvv", "--output", output])
            .arg("--log")
            .arg(&log)
            .arg("--report")
            .arg(&report)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let all = [
            text(&o.stdout),
            text(&o.stderr),
            std::fs::read_to_string(&log).unwrap(),
            std::fs::read_to_string(&report).unwrap(),
        ];
        for (what, s) in ["stdout", "stderr", "log", "report"].iter().zip(&all) {
            assert!(
                !s.contains(canary),
                "{output}: the secret leaked into {what}:\n{s}"
            );
        }
        // The secret was used (so the test can fail): the file holds it, the outputs hold the mask.
        assert!(all[2].contains("********"), "{}", all[2]);
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dev-changed.conf")).unwrap(),
        format!("pw={canary}\n")
    );
}

#[test]
fn unwritable_report_or_log_is_refused_before_any_device_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--report", "--log"] {
        let bad = dir.path().join("no/such/dir/file");
        let o = run_fixture(dir.path(), &[flag, bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!(
                "{flag} {}: cannot open for writing",
                bad.display()
            )),
            "{err}"
        );
        assert!(
            !dir.path().join("dev-changed.txt").exists(),
            "a device was contacted"
        );
    }
}

#[test]
fn files_are_not_left_behind_when_nothing_ran() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let log = dir.path().join("l.log");
    let o = run_fixture(
        dir.path(),
        &[
            "--syntax-check",
            "--report",
            report.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!report.exists() && !log.exists());
}

#[test]
fn colour_follows_the_flag_and_is_never_the_only_signal() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_fixture(dir.path(), &["--color", "always"]);
    let out = text(&o.stdout);
    assert!(out.contains("\x1b[31mFAILED\x1b[0m"), "{out:?}");
    assert!(out.contains("\x1b[1;31mUNREACHABLE\x1b[0m"), "{out:?}");
    for flag in [&["--color", "never"][..], &[][..]] {
        // never; and auto when stdout is not a terminal (and NO_COLOR is set by the test harness)
        let o = run_fixture(dir.path(), flag);
        let out = text(&o.stdout);
        assert!(!out.contains('\x1b'), "{flag:?}: {out:?}");
        assert!(out.contains("FAILED") && out.contains("UNREACHABLE"));
    }
}

#[test]
fn check_mode_recap_says_nothing_changed_and_report_says_check_mode() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let o = run_fixture(
        dir.path(),
        &["--check", "--diff", "--report", report.to_str().unwrap()],
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("RECAP (check mode: nothing was changed"),
        "{out}"
    );
    assert!(
        out.contains("    +managed"),
        "the dry-run review shows the diff: {out}"
    );
    assert!(!dir.path().join("dev-changed.txt").exists());
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(doc["check_mode"], true);
    assert_eq!(doc["devices"][0]["status"], "changed");
}

// ---------------------------------------------------------------------------------------------------------
// The live display on a real terminal.

/// A private tmux server (its own socket), killed with everything in it when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cols: u16, rows: u16, command: &str) -> Tmux {
        let socket = format!("edgefleet-report-{}", std::process::id());
        let t = Tmux { socket };
        let st = t
            .cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "run"])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .arg(command)
            .status()
            .unwrap_or_else(|e| {
                crate::tools::require("tmux");
                panic!("cannot run tmux: {e}")
            });
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// The visible screen, one string per row.
    fn screen(&self) -> Vec<String> {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "run"])
            .output()
            .unwrap();
        text(&o.stdout).lines().map(String::from).collect()
    }

    /// Everything, scrollback included, wrapped lines joined.
    fn history(&self) -> String {
        let o = self
            .cmd()
            .args([
                "capture-pane",
                "-p",
                "-J",
                "-t",
                "run",
                "-S",
                "-",
                "-E",
                "-",
            ])
            .output()
            .unwrap();
        text(&o.stdout)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// 100 devices: 97 local, 3 unreachable; two fail a task; two stragglers hold the run's tail until the test
/// creates `release` in `dir` (or a minute passes), so the tail is observed without any timing assumption.
fn fleet_of_100(dir: &Path) -> (PathBuf, PathBuf) {
    let mut inv = String::from("all:\n  hosts:\n");
    for i in 1..=100 {
        if [13, 57, 91].contains(&i) {
            inv.push_str(&format!(
                "    dev-{i:03}:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n"
            ));
        } else {
            inv.push_str(&format!(
                "    dev-{i:03}:\n      ansible_connection: local\n"
            ));
        }
    }
    let inv_path = dir.join("inv.yml");
    std::fs::write(&inv_path, inv).unwrap();
    let pb = dir.join("play.yml");
    std::fs::write(
        &pb,
        format!(
            r#"- name: fleet
  hosts: all
  vars:
    slow: [dev-004, dev-077]
    broken: [dev-021, dev-064]
  tasks:
    - name: stage files
      shell: "sleep 0.2"
    - name: apply configuration
      shell: "sleep 0.3"
    - name: wait for release
      shell: "for i in $(seq 600); do [ -e {release} ] && break; sleep 0.1; done"
      when: inventory_hostname in slow
    - name: check disk
      shell: "echo 'No space left on device' >&2; exit 1"
      when: inventory_hostname in broken
    - name: finish
      shell: "true"
"#,
            release = dir.join("release").display()
        ),
    )
    .unwrap();
    (pb, inv_path)
}

#[test]
fn live_display_on_a_terminal_stays_within_the_screen_and_ends_with_the_recap() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = fleet_of_100(dir.path());
    let (cols, rows) = (100u16, 24u16);
    let command = format!(
        "env -u NO_COLOR -u EDGEFLEET_INVENTORY -u EDGEFLEET_AGE_IDENTITY {} play {} -i {}; echo __EXIT__=$?; sleep 120",
        sh_quote(&bin().display().to_string()),
        sh_quote(&pb.display().to_string()),
        sh_quote(&inv.display().to_string()),
    );
    let tmux = Tmux::start(cols, rows, &command);
    let overall = regex::Regex::new(r"\[[#-]+\] \d+/100 devices ").unwrap();
    let device_line = regex::Regex::new(r"^  dev-\d{3} +\S+  ").unwrap();
    let budget = edgefleet::report::progress::device_lines_for(rows);
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut frames, mut saw_straggler) = (0, false);
    let last = loop {
        let screen = tmux.screen();
        assert!(screen.len() <= usize::from(rows));
        if screen.iter().any(|l| l.starts_with("__EXIT__=")) {
            break screen;
        }
        let bars = screen.iter().filter(|l| overall.is_match(l)).count();
        let devices: Vec<&String> = screen.iter().filter(|l| device_line.is_match(l)).collect();
        let more = screen
            .iter()
            .filter(|l| l.contains("more in flight"))
            .count();
        assert!(
            bars <= 1,
            "the overall line is drawn more than once:\n{}",
            screen.join("\n")
        );
        if bars == 1 {
            frames += 1;
            assert!(
                devices.len() <= budget,
                "{} device lines > {budget}:\n{}",
                devices.len(),
                screen.join("\n")
            );
            assert!(
                1 + devices.len() + more <= usize::from(rows) / 2,
                "the display takes more than half the screen:\n{}",
                screen.join("\n")
            );
            // As the run tails off, the stragglers are the ones on screen, with what they are doing.
            if !saw_straggler && screen.iter().any(|l| l.contains(" 98/100 devices")) {
                let mut names: Vec<&str> = devices.iter().map(|l| &l[2..9]).collect();
                names.sort();
                assert_eq!(names, vec!["dev-004", "dev-077"], "{}", screen.join("\n"));
                assert!(
                    devices.iter().all(|l| l.contains("wait for release (")),
                    "{}",
                    screen.join("\n")
                );
                saw_straggler = true;
                std::fs::write(dir.path().join("release"), "").unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish:\n{}",
            screen.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(frames > 0, "the overall bar was never on screen");
    assert!(
        saw_straggler,
        "the stragglers never surfaced on the display"
    );
    let history = tmux.history();
    // Nothing of the display is left anywhere: not on screen, not in the scrollback (a display taller than
    // the screen, or lines printed into a half-drawn frame, would leave pieces behind).
    assert!(!overall.is_match(&history), "display remnants:\n{history}");
    assert!(
        !history.lines().any(|l| device_line.is_match(l)),
        "display remnants:\n{history}"
    );
    // Failures were printed above the bars, whole lines.
    for d in ["dev-021", "dev-064"] {
        assert!(
            history.contains(&format!("{d} | FAILED | check disk | non-zero return code (exit code 1): No space left on device")),
            "{history}"
        );
    }
    for d in ["dev-013", "dev-057", "dev-091"] {
        assert!(
            history.contains(&format!("{d} | UNREACHABLE | ")),
            "{history}"
        );
    }
    // It ends with the recap, then the exit code.
    let tail: Vec<&String> = last.iter().filter(|l| !l.trim().is_empty()).collect();
    let n = tail.len();
    assert!(tail[n - 1].starts_with("__EXIT__=3"), "{}", last.join("\n"));
    let recap = history.rfind("RECAP").expect("no recap");
    let recap = &history[recap..];
    assert!(
        recap.contains("devices: 100 total: 95 changed, 0 ok, 2 failed, 3 unreachable, 0 skipped"),
        "{recap}"
    );
    assert!(
        recap.contains("FAILED       dev-021, dev-064: check disk: non-zero return code"),
        "{recap}"
    );
    assert!(
        recap.contains("UNREACHABLE  dev-013, dev-057, dev-091: cannot connect to 127.0.0.1"),
        "{recap}"
    );
}

#[test]
fn verify_matrix_in_the_recap_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let path = format!(
        "{}:{}",
        fixture("report/fakebin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = edgefleet()
        .arg("play")
        .arg(fixture("report/verify.yml"))
        .arg("-i")
        .arg(fixture("report/verify-inv.yml"))
        .arg("--report")
        .arg(&report)
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let out = stable_plain(&text(&o.stdout));
    settings(dir.path()).bind(|| insta::assert_snapshot!("verify_recap", out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_valid(&load_schema("report.schema.json"), &doc, "the report");
    assert_eq!(doc["verify"]["devices"], 3);
    assert_eq!(doc["verify"]["passed"], 2);
    let row = |id: &str| -> Value {
        doc["verify"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} row"))
    };
    assert_eq!(
        row("certs-preloaded")["error"],
        serde_json::json!(["dev-bad"])
    );
    assert_eq!(
        row("container-engine-logrotate")["warning"],
        serde_json::json!(["dev-warn"])
    );
    assert_eq!(
        row("edgefleet-daemon-dns")["waived"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let bad = &doc["devices"][2];
    assert_eq!(bad["name"], "dev-bad");
    assert_eq!(bad["verify"]["passed"], false);
    assert_eq!(bad["failed_task"]["module"], "iotedge_verify");
}
