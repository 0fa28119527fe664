//! The playbook language end to end, through the real CLI, on hosts with `ansible_connection: local`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{edgefleet, fixture};

fn run(args: &[&str]) -> Output {
    edgefleet().args(args).output().expect("run edgefleet")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Replace the fixture directory with a stable token so snapshots don't depend on the checkout path.
fn filtered(s: &str) -> String {
    s.replace(&fixture("playbook").display().to_string(), "[FIX]")
}

fn syntax(file: &str) -> (i32, String) {
    let pb = fixture(&format!("playbook/syntax/{file}"));
    let inv = fixture("playbook/inv.yml");
    let o = run(&[
        "play",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "--syntax-check",
    ]);
    (o.status.code().unwrap_or(-1), filtered(&text(&o.stderr)))
}

#[test]
fn syntax_check_bad_yaml() {
    let (code, err) = syntax("bad_yaml.yml");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("[FIX]/syntax/bad_yaml.yml:4:"), "{err}");
}

#[test]
fn syntax_check_duplicate_key() {
    let (code, err) = syntax("duplicate_key.yml");
    assert_eq!(code, 4);
    assert!(
        err.contains("[FIX]/syntax/duplicate_key.yml:4:7: duplicate mapping key: name"),
        "{err}"
    );
}

#[test]
fn syntax_check_unknown_module() {
    let (code, err) = syntax("unknown_module.yml");
    assert_eq!(code, 4);
    insta::assert_snapshot!(err, @r"
    error: [FIX]/syntax/unknown_module.yml:4:7: unknown module or task keyword `copyy` (did you mean `copy`?)
    2 |   tasks:
    3 |     - name: typo in module
    4 |       copyy:
      |       ^

    1 problem found; nothing was contacted.
    ");
}

#[test]
fn syntax_check_unknown_argument() {
    let (code, err) = syntax("unknown_arg.yml");
    assert_eq!(code, 4);
    assert!(
        err.contains(
            "[FIX]/syntax/unknown_arg.yml:6:9: copy: unknown argument `dst` (did you mean `dest`?)"
        ),
        "{err}"
    );
}

#[test]
fn syntax_check_undefined_role() {
    let (code, err) = syntax("undefined_role.yml");
    assert_eq!(code, 4);
    assert!(
        err.contains("[FIX]/syntax/undefined_role.yml:3:7: role `no_such_role` not found"),
        "{err}"
    );
}

#[test]
fn syntax_check_template_error() {
    let (code, err) = syntax("template_syntax.yml");
    assert_eq!(code, 4);
    assert!(
        err.contains("[FIX]/syntax/template_syntax.yml:5:14: template error:"),
        "{err}"
    );
}

#[test]
fn syntax_check_bad_serial() {
    let (code, err) = syntax("bad_serial.yml");
    assert_eq!(code, 4);
    assert!(
        err.contains("[FIX]/syntax/bad_serial.yml:2:3: serial: 'half' is neither a number of hosts nor a percentage"),
        "{err}"
    );
}

#[test]
fn syntax_check_when_not_an_expression() {
    let (code, err) = syntax("bad_when.yml");
    assert_eq!(code, 4);
    assert!(
        err.contains("[FIX]/syntax/bad_when.yml:5:7: when: `x === 1` is not a valid expression"),
        "{err}"
    );
}

#[test]
fn syntax_check_reports_every_problem_at_once() {
    let (code, err) = syntax("many.yml");
    assert_eq!(code, 4);
    for needle in [
        "many.yml:2:3: expected a boolean (yes/no, true/false), found 'maybe'",
        "many.yml:5:7: unknown module or task keyword `shel` (did you mean `shell`?)",
        "many.yml:9:9: file: state `gone` is not one of",
        "many.yml:12:7: register: `not valid` is not a valid variable name",
        "4 problems found; nothing was contacted.",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn syntax_check_passes_on_a_good_playbook() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(dir.path(), "- hosts: all\n  tasks:\n    - debug: msg=hi\n");
    let o = run(&["play", &pb, "-i", &inv, "--syntax-check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("syntax check passed"));
}

/// Write a playbook and a local inventory (two hosts) into `dir`.
fn write_play(dir: &Path, play: &str) -> (String, String) {
    let pb = dir.join("play.yml");
    std::fs::write(&pb, play).unwrap();
    let inv = dir.join("inv.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  vars:\n    out: {}\n  hosts:\n    local1:\n      ansible_connection: local\n    local2:\n      ansible_connection: local\n",
            dir.display()
        ),
    )
    .unwrap();
    (pb.display().to_string(), inv.display().to_string())
}

fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn roles_templates_handlers_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let roles = fixture("playbook/roles");
    let play = format!(
        "- hosts: all\n  vars:\n    precedence_probe: play-vars\n    web_greeting: \"hi from {{{{ inventory_hostname }}}}\"\n  roles:\n    - role: {}/web\n      web_port: 8080\n",
        roles.display()
    );
    let (pb, inv) = write_play(dir.path(), &play);
    let o = run(&["play", &pb, "-i", &inv]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let conf = std::fs::read_to_string(dir.path().join("local1.site.conf")).unwrap();
    assert_eq!(
        conf,
        "# managed by edgefleet\nlisten 8080\nlisten 8081\ngreeting = hi from local1\nport=8080\nprobe = play-vars\n"
    );
    // The dependency ran first, with its own defaults.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("local2.base")).unwrap(),
        "from-base-defaults\n"
    );
    // The handler ran once per host because the template changed.
    assert!(dir.path().join("local1.handler").exists());
    // Second run: nothing changes, so the handler does not run again.
    std::fs::remove_file(dir.path().join("local1.handler")).unwrap();
    let o = run(&["play", &pb, "-i", &inv]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        !dir.path().join("local1.handler").exists(),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("changed=0"), "{}", text(&o.stdout));
}

#[test]
fn check_mode_changes_nothing_and_diff_shows_what_would() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(
        dir.path(),
        "- hosts: all\n  tasks:\n    - copy: {content: \"new\\n\", dest: \"{{ out }}/{{ inventory_hostname }}.txt\"}\n    - file: {path: \"{{ out }}/sub-{{ inventory_hostname }}\", state: directory}\n    - command: touch {{ out }}/{{ inventory_hostname }}.touched\n",
    );
    std::fs::write(dir.path().join("local1.txt"), "old\n").unwrap();
    let before = snapshot_dir(dir.path());
    let o = run(&["play", &pb, "-i", &inv, "--check", "--diff"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(snapshot_dir(dir.path()), before, "check mode changed files");
    assert!(!dir.path().join("sub-local1").exists());
    let out = text(&o.stdout);
    assert!(out.contains("-old\n    +new"), "{out}");
    assert!(out.contains("check mode"), "{out}");
}

#[test]
fn a_failing_host_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(
        dir.path(),
        "- hosts: all\n  tasks:\n    - command: /bin/false\n      when: inventory_hostname == 'local1'\n    - copy: {content: done, dest: \"{{ out }}/{{ inventory_hostname }}.done\"}\n",
    );
    let o = run(&["play", &pb, "-i", &inv]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(!dir.path().join("local1.done").exists());
    assert!(dir.path().join("local2.done").exists());
    let out = text(&o.stdout);
    assert!(
        out.contains("local1 | FAILED | command | non-zero return code"),
        "{out}"
    );
}

#[test]
fn blocks_rescue_always_register_loops_until_and_set_fact() {
    let dir = tempfile::tempdir().unwrap();
    let play = r#"- hosts: local1
  vars:
    items: [a, b, c]
  tasks:
    - block:
        - command: /bin/false
        - copy: {content: never, dest: "{{ out }}/never"}
      rescue:
        - copy: {content: "rescued {{ ansible_failed_task.name }}", dest: "{{ out }}/rescued"}
      always:
        - copy: {content: always, dest: "{{ out }}/always"}
    - shell: echo {{ item }}-$((1+1))
      loop: "{{ items }}"
      register: echoes
      changed_when: false
    - set_fact:
        joined: "{{ echoes.results | map(attribute='stdout') | join(',') }}"
    - shell: "n=$(cat {{ out }}/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ out }}/count; echo $n"
      register: counter
      until: counter.stdout | int >= 3
      retries: 5
      delay: 0
    - copy: {content: "{{ joined }} {{ counter.attempts }}", dest: "{{ out }}/result"}
    - debug: msg=skipped
      when: false
      tags: [never]
"#;
    let (pb, inv) = write_play(dir.path(), play);
    let o = run(&["play", &pb, "-i", &inv]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
    assert!(!dir.path().join("never").exists());
    assert_eq!(read("rescued"), "rescued command");
    assert_eq!(read("always"), "always");
    assert_eq!(read("result"), "a-2,b-2,c-2 3");
}

#[test]
fn tags_and_extra_vars() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(
        dir.path(),
        "- hosts: local1\n  vars:\n    v: play\n  tasks:\n    - copy: {content: \"{{ v }}\", dest: \"{{ out }}/tagged\"}\n      tags: [config]\n    - copy: {content: x, dest: \"{{ out }}/untagged\"}\n",
    );
    let o = run(&["play", &pb, "-i", &inv, "-t", "config", "-e", "v=extra"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tagged")).unwrap(),
        "extra"
    );
    assert!(!dir.path().join("untagged").exists());
    let o = run(&["play", &pb, "-i", &inv, "--skip-tags", "config"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(dir.path().join("untagged").exists());
}

#[test]
fn list_hosts_and_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(
        dir.path(),
        "- name: p1\n  hosts: local2\n  tasks:\n    - name: first\n      debug: msg=a\n      tags: [t1]\n",
    );
    let o = run(&["play", &pb, "-i", &inv, "--list-hosts", "--list-tasks"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    assert!(out.contains("play: p1 (hosts: local2)"), "{out}");
    assert!(out.contains("      local2\n"), "{out}");
    assert!(out.contains("first\tTAGS: [t1]"), "{out}");
}

#[test]
fn undefined_variable_fails_the_task_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(
        dir.path(),
        "- hosts: local1\n  vars:\n    image: \"{{ registry }}/agent:1.5.3\"\n  tasks:\n    - name: uses image\n      debug: msg=\"{{ image }}\"\n",
    );
    let o = run(&["play", &pb, "-i", &inv]);
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o.stdout);
    assert!(out.contains("registry"), "{out}");
}

/// Sends every line read from `r` to `tx` and returns them all once `r` ends.
fn line_reader(
    r: impl std::io::Read + Send + 'static,
    tx: std::sync::mpsc::Sender<String>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    })
}

#[test]
fn ctrl_c_finishes_work_in_flight_starts_nothing_new_and_exits_99() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    // The first task says it started, then holds until the test releases it, after edgefleet saw the Ctrl-C.
    let (pb, inv) = write_play(
        dir.path(),
        "- hosts: all\n  tasks:\n    - name: slow\n      shell: touch {{ out }}/{{ inventory_hostname }}.started; while [ ! -e {{ out }}/release ]; do sleep 0.05; done; touch {{ out }}/{{ inventory_hostname }}.first\n    - name: next\n      copy: {content: x, dest: \"{{ out }}/{{ inventory_hostname }}.second\"}\n",
    );
    /// Whatever happens below: release the task and do not leave edgefleet running.
    struct Cleanup(std::process::Child, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.1, "");
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Cleanup(
        edgefleet()
            .args(["play", &pb, "-i", &inv, "--progress", "plain"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        release.clone(),
    );
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = line_reader(child.0.stdout.take().unwrap(), tx.clone());
    let stderr = line_reader(child.0.stderr.take().unwrap(), tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    // Both hosts are inside the first task.
    for h in ["local1", "local2"] {
        let started = dir.path().join(format!("{h}.started"));
        while !started.exists() {
            assert!(
                Instant::now() < deadline,
                "{h}: the first task never started"
            );
            if let Ok(Some(st)) = child.0.try_wait() {
                panic!("edgefleet exited early: {st}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGINT);
    }
    // Release the task only once edgefleet says it is finishing the work in flight.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains("interrupted: finishing the commands in flight") => break,
            Ok(_) => {}
            Err(e) => panic!("edgefleet never acknowledged the Ctrl-C: {e}"),
        }
    }
    std::fs::write(&release, "").unwrap();
    let status = child.0.wait().unwrap();
    let all = format!("{}{}", stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(99), "{all}");
    for h in ["local1", "local2"] {
        assert!(
            dir.path().join(format!("{h}.first")).exists(),
            "{h}: the command in flight was killed"
        );
        assert!(
            !dir.path().join(format!("{h}.second")).exists(),
            "{h}: new work started after Ctrl-C"
        );
    }
    assert!(all.contains("interrupted"), "{all}");
    assert!(all.contains("RECAP"), "{all}");
}

#[test]
fn environment_reaches_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (pb, inv) = write_play(
        dir.path(),
        "- hosts: local1\n  vars:\n    who: \"world's\"\n  tasks:\n    - shell: printf '%s' \"$GREETING\" > {{ out }}/env.txt\n      environment:\n        GREETING: \"hello {{ who }}\"\n    - command: sh -c 'printf %s \"$N\" > {{ out }}/n.txt'\n      environment: {N: 42}\n",
    );
    let o = run(&["play", &pb, "-i", &inv]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("env.txt")).unwrap(),
        "hello world's"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("n.txt")).unwrap(),
        "42"
    );
}
