//! `edgefleet inventory` against the real `ansible-inventory` (ansible-core) on every fixture, plus error
//! cases, the documented YAML differences and the library API the executor uses.
//!
//! The comparison needs `ansible-inventory` on PATH (`tests/run` installs ansible-core); without it these tests fail
//! with that instruction rather than skip. Both tools run in an empty temporary directory with an empty
//! ansible.cfg, so no group_vars/ or configuration of the machine leaks into either side.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use edgefleet::inventory::{conn_spec, Inventory};
use serde_json::{json, Value};

use crate::support::{edgefleet, fixture};

fn inv(rel: &str) -> PathBuf {
    fixture("inventory").join(rel)
}

/// An isolated place to run both tools from.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ansible.cfg"), "").expect("ansible.cfg");
        std::fs::create_dir(dir.path().join("tmp")).expect("tmp");
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ansible(&self, args: &[OsString]) -> Child {
        let mut c = Command::new("ansible-inventory");
        c.args(args)
            .current_dir(self.path())
            .env("ANSIBLE_CONFIG", self.path().join("ansible.cfg"))
            .env("ANSIBLE_LOCAL_TEMP", self.path().join("tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env_remove("ANSIBLE_INVENTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match c.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::tools::require("ansible-inventory");
                panic!("cannot run ansible-inventory: {e}")
            }
            Err(e) => panic!("cannot run ansible-inventory: {e}"),
        }
    }

    fn ours(&self, args: &[OsString]) -> Output {
        edgefleet()
            .arg("inventory")
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .output()
            .expect("run edgefleet")
    }
}

fn ok_stdout(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn parse(what: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{text}"))
}

/// One fixture and what to compare on it.
#[derive(Default)]
struct Case {
    sources: Vec<PathBuf>,
    playbook_dir: Option<PathBuf>,
    /// Compare `--graph --vars` too (off where PyYAML's merge-key order shows in Python dict reprs).
    graph_vars: bool,
    limits: Vec<String>,
    hosts: Vec<&'static str>,
    graph_groups: Vec<&'static str>,
}

/// Run every comparison of `case`: both tools' commands are started together, then compared.
fn compare(case: &Case) {
    let sb = Sandbox::new();
    let mut base: Vec<OsString> = Vec::new();
    for s in &case.sources {
        base.push("-i".into());
        base.push(s.into());
    }
    if let Some(pb) = &case.playbook_dir {
        base.push("--playbook-dir".into());
        base.push(pb.into());
    }
    let with = |extra: &[&str]| -> Vec<OsString> {
        let mut v = base.clone();
        v.extend(extra.iter().map(OsString::from));
        v
    };
    // (description, args, compare as JSON?)
    let mut runs: Vec<(String, Vec<OsString>, bool)> =
        vec![("--list".into(), with(&["--list"]), true)];
    // `--graph --vars` has every line of `--graph` plus the variables.
    if case.graph_vars {
        runs.push(("--graph --vars".into(), with(&["--graph", "--vars"]), false));
    } else {
        runs.push(("--graph".into(), with(&["--graph"]), false));
    }
    for g in &case.graph_groups {
        runs.push((
            format!("--graph {g} --vars"),
            with(&["--graph", g, "--vars"]),
            false,
        ));
    }
    for l in &case.limits {
        runs.push((
            format!("--list --limit {l}"),
            with(&["--list", "--limit", l]),
            true,
        ));
    }
    for h in &case.hosts {
        runs.push((format!("--host {h}"), with(&["--host", h]), true));
    }
    let children: Vec<Child> = runs.iter().map(|(_, a, _)| sb.ansible(a)).collect();
    let ours: Vec<Output> = runs.iter().map(|(_, a, _)| sb.ours(a)).collect();
    for (((what, _, json), child), mine) in runs.iter().zip(children).zip(ours) {
        let theirs = child.wait_with_output().expect("ansible-inventory output");
        let theirs = ok_stdout(&format!("ansible-inventory {what}"), &theirs);
        let mine = ok_stdout(&format!("edgefleet inventory {what}"), &mine);
        if *json {
            assert_eq!(
                parse("edgefleet", &mine),
                parse("ansible-inventory", &theirs),
                "{what} differs for {:?}\n--- edgefleet:\n{mine}\n--- ansible-inventory:\n{theirs}",
                case.sources
            );
        }
        // The text is identical too (same key order, indentation and spelling of values).
        assert_eq!(mine, theirs, "{what} text differs for {:?}", case.sources);
    }
}

/// Ansible's own host selection (`InventoryManager.get_hosts`) for many patterns in one Python process.
const PY_PATTERNS: &str = r#"
import json, sys
try:
    from ansible.parsing.dataloader import DataLoader
    from ansible.inventory.manager import InventoryManager
except ImportError:
    print("NO-ANSIBLE")
    sys.exit(3)
req = json.load(sys.stdin)
im = InventoryManager(loader=DataLoader(), sources=req["sources"])
out = {}
for p in req["patterns"]:
    try:
        out[p] = [h.name for h in im.get_hosts(p)]
    except Exception as e:
        out[p] = {"error": str(e)}
print(json.dumps(out))
"#;

/// Compare `Inventory::select` with Ansible's `get_hosts` (same hosts, same order) for every pattern.
fn compare_patterns(sources: &[PathBuf], patterns: &[&str]) {
    use std::io::Write;
    let sb = Sandbox::new();
    let mut child = match Command::new("python3")
        .args(["-c", PY_PATTERNS])
        .current_dir(sb.path())
        .env("ANSIBLE_CONFIG", sb.path().join("ansible.cfg"))
        .env("ANSIBLE_LOCAL_TEMP", sb.path().join("tmp"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            crate::tools::require("python3");
            panic!("cannot run python3: {e}")
        }
    };
    let req = json!({"sources": sources, "patterns": patterns});
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("python3 output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("NO-ANSIBLE"),
        "python3 cannot import ansible: run `tests/run` (it installs what the tests need)"
    );
    let theirs = parse(
        "ansible get_hosts",
        &ok_stdout("python3 (ansible get_hosts)", &out),
    );
    let i = Inventory::load(sources, &[]).expect("load");
    for p in patterns {
        let want = &theirs[*p];
        match i.select(p) {
            Ok(sel) => assert_eq!(&json!(sel.hosts), want, "pattern {p:?}"),
            Err(e) => assert!(
                want.get("error").is_some(),
                "pattern {p:?}: we fail ({e}) but Ansible selects {want}"
            ),
        }
    }
}

#[test]
fn patterns_match_ansible_yaml() {
    compare_patterns(
        &[inv("yaml_basic/hosts.yml")],
        &[
            "all",
            "*",
            "site_a",
            "site_a:&gpu",
            "site_a,gpu",
            "gpu,site_a",
            "all:!site_b",
            "!site_b",
            "&gpu",
            "edge-a-0*",
            "edge-?-0?",
            "~edge-b-[ab]",
            "~.*gw",
            "site_a[1:2]",
            "site_a[-1]",
            "site_a[0]",
            "site_a[1:]",
            "site_a[0:0]",
            "site_a[9]",
            "site_a[2-3]",
            "edge-sites:!gpu:&prod",
            "prod:edge-sites",
            "gpu,typed",
            "!typed",
            "edge-?-0[1-2]",
            "nomatch",
            "ungrouped",
            "e*[1:]",
            "*.example.com",
            "al*",
            "edge-a-01,edge-a-01,gpu",
            "edge-a-gw",
            "edge-[ab]-0[12]",
            "edge-sites[1:3]:&gpu",
            "prod:!edge-a-02:&edge-a-0*",
            " gpu , typed ",
            "controller.example.com",
        ],
    );
}

#[test]
fn patterns_match_ansible_ini_and_multi() {
    compare_patterns(
        &[inv("ini_basic/hosts.ini")],
        &[
            "sites:!db",
            "edge-0[1:3]",
            "10.0.0.9",
            "edge-x*",
            "edge-0[0:1]",
            "db[1]",
            "~^edge-(0[1-5]|x)",
            "ungrouped:typed",
            "sites:&~.*-0[13]",
            "jump.example.com:edge-gw",
        ],
    );
    compare_patterns(
        &[inv("multi/a/hosts.yml"), inv("multi/b/hosts.ini")],
        &[
            "parent",
            "parent:!late",
            "edge:&m-*",
            "later-grouped",
            "ungrouped",
            "late[0]",
        ],
    );
}

#[test]
fn yaml_inventory_matches_ansible() {
    let t = tempfile::tempdir().unwrap();
    let list = t.path().join("limit.txt");
    std::fs::write(&list, "edge-a-03\n\ngpu\n!edge-b-b\n").unwrap();
    compare(&Case {
        sources: vec![inv("yaml_basic/hosts.yml")],
        graph_vars: true,
        limits: vec![
            "edge-sites:!gpu:&prod".into(),
            "nomatch".into(),
            format!("@{}", list.display()),
        ],
        hosts: vec!["typed-1", "edge-a-gw"],
        graph_groups: vec!["prod"],
        ..Case::default()
    });
}

#[test]
fn ini_inventory_matches_ansible() {
    compare(&Case {
        sources: vec![inv("ini_basic/hosts.ini")],
        graph_vars: true,
        limits: vec!["sites:!db".into()],
        hosts: vec!["t1", "t2"],
        graph_groups: vec!["sites"],
        ..Case::default()
    });
}

#[test]
fn anchors_and_merge_keys_match_ansible() {
    compare(&Case {
        sources: vec![inv("yaml_anchors/hosts.yaml")],
        hosts: vec!["e2"],
        ..Case::default()
    });
}

#[test]
fn directory_inventory_matches_ansible() {
    compare(&Case {
        sources: vec![inv("dir_inventory")],
        graph_vars: true,
        hosts: vec!["dev-2"],
        graph_groups: vec!["edge"],
        ..Case::default()
    });
}

#[test]
fn precedence_matches_ansible() {
    compare(&Case {
        sources: vec![inv("precedence/inventory/hosts.yml")],
        playbook_dir: Some(inv("precedence/playbooks")),
        graph_vars: true,
        hosts: vec!["host-vars-file-wins"],
        graph_groups: vec!["region"],
        ..Case::default()
    });
    // Without --playbook-dir the playbook's group_vars do not apply (and the current directory has none).
    compare(&Case {
        sources: vec![inv("precedence/inventory/hosts.yml")],
        ..Case::default()
    });
}

#[test]
fn multiple_sources_match_ansible() {
    compare(&Case {
        sources: vec![inv("multi/a/hosts.yml"), inv("multi/b/hosts.ini")],
        graph_vars: true,
        hosts: vec!["m-1"],
        ..Case::default()
    });
}

#[test]
fn env_inventory_is_the_default() {
    let sb = Sandbox::new();
    let a = inv("multi/a/hosts.yml");
    let b = inv("multi/b/hosts.ini");
    let env = format!("{}, {}", a.display(), b.display());
    let from_env = edgefleet()
        .args(["inventory", "--list"])
        .env("EDGEFLEET_INVENTORY", &env)
        .current_dir(sb.path())
        .output()
        .unwrap();
    let from_args = sb.ours(&[
        "-i".into(),
        a.into(),
        "-i".into(),
        b.into(),
        "--list".into(),
    ]);
    assert_eq!(ok_stdout("env", &from_env), ok_stdout("args", &from_args));
    // -i wins over the environment.
    let only_a = edgefleet()
        .args(["inventory", "--list", "-i"])
        .arg(inv("multi/a/hosts.yml"))
        .env("EDGEFLEET_INVENTORY", inv("ini_basic/hosts.ini"))
        .current_dir(sb.path())
        .output()
        .unwrap();
    let v = parse("only_a", &ok_stdout("only_a", &only_a));
    assert!(v["_meta"]["hostvars"].get("m-1").is_some(), "{v}");
    assert!(v["_meta"]["hostvars"].get("t1").is_none(), "{v}");
}

/// Scalars where serde-saphyr alone differs from PyYAML: src/yaml.rs corrects them, so both sides agree.
#[test]
fn documented_yaml_differences() {
    let sb = Sandbox::new();
    let args: Vec<OsString> = vec![
        "-i".into(),
        inv("yaml_known_differences/hosts.yml").into(),
        "--host".into(),
        "diff-1".into(),
    ];
    let ours = parse("edgefleet", &ok_stdout("edgefleet", &sb.ours(&args)));
    assert_eq!(
        ours,
        json!({"y_value": "y", "n_value": "n", "octal_o": "0o17", "sexagesimal": 80})
    );
    let theirs = sb.ansible(&args).wait_with_output().unwrap();
    let theirs = parse("ansible", &ok_stdout("ansible-inventory", &theirs));
    assert_eq!(
        theirs,
        json!({"y_value": "y", "n_value": "n", "octal_o": "0o17", "sexagesimal": 80})
    );
}

fn expect_error(args: &[OsString], code: i32, wants: &[&str]) {
    let sb = Sandbox::new();
    let out = sb.ours(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr:\n{err}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: printed on stdout despite the error"
    );
    for w in wants {
        assert!(err.contains(w), "{args:?}: expected {w:?} in:\n{err}");
    }
}

fn list_of(rel: &str) -> Vec<OsString> {
    vec!["-i".into(), inv(rel).into(), "--list".into()]
}

#[test]
fn load_errors_name_file_and_line_and_exit_4() {
    let cases: &[(&str, &[&str])] = &[
        ("errors/yaml_syntax.yml", &["yaml_syntax.yml:5:"]),
        (
            "errors/host_vars_not_mapping.yml",
            &[
                "host_vars_not_mapping.yml:5:14: ",
                "host variables must be a mapping",
                "5 |     edge-02: 22",
            ],
        ),
        (
            "errors/cycle.yml",
            &["cycle.yml:", "recursive dependency loop"],
        ),
        (
            "errors/bad_range.ini",
            &["bad_range.ini:3:1: ", "equal-length"],
        ),
        (
            "errors/undefined_child.ini",
            &[
                "undefined_child.ini:3:1: ",
                "includes undefined group 'typo_group'",
            ],
        ),
        (
            "errors/unknown_key.yml",
            &["unknown_key.yml:2:3: ", "did you mean `hosts:`"],
        ),
        (
            "errors/bad_host_line.ini",
            &[
                "bad_host_line.ini:3:",
                "Expected key=value host variable assignment, got: ansible_port",
            ],
        ),
        (
            "errors/vars_not_mapping",
            &[
                "group_vars/web.yml:1:1: ",
                "must be a mapping of variable names to values",
            ],
        ),
        (
            "errors/dir_with_bad_file",
            &["02-bad.ini:1:1: ", "not valid for undefined group 'bad'"],
        ),
    ];
    for (rel, wants) in cases {
        expect_error(&list_of(rel), 4, wants);
    }
}

#[test]
fn missing_inventory_is_an_error_naming_the_path() {
    let missing = inv("does/not/exist.yml");
    expect_error(
        &["-i".into(), missing.clone().into(), "--list".into()],
        4,
        &[&format!("{}: inventory not found", missing.display())],
    );
    // Neither -i nor EDGEFLEET_INVENTORY.
    expect_error(
        &["--list".into()],
        4,
        &["no inventory given", "EDGEFLEET_INVENTORY"],
    );
}

#[test]
fn option_errors_exit_5() {
    let base = |extra: &[&str]| {
        let mut v: Vec<OsString> = vec!["-i".into(), inv("yaml_basic/hosts.yml").into()];
        v.extend(extra.iter().map(OsString::from));
        v
    };
    expect_error(&base(&["--host", "nosuch"]), 5, &["single valid host"]);
    expect_error(&base(&["--host", "site_a"]), 5, &["matches 5 hosts"]);
    expect_error(&base(&["--graph", "nosuch"]), 5, &["valid group name"]);
    // A bad regex in --limit is a load-time error about the pattern.
    expect_error(
        &base(&["--list", "-l", "~edge-("]),
        4,
        &["Invalid host list pattern"],
    );
}

#[test]
fn unmatched_limit_warns_and_lists_nothing() {
    let sb = Sandbox::new();
    let out = sb.ours(&[
        "-i".into(),
        inv("yaml_basic/hosts.yml").into(),
        "--list".into(),
        "-l".into(),
        "nomatch".into(),
    ]);
    let v = parse("edgefleet", &ok_stdout("edgefleet", &out));
    assert_eq!(v["_meta"]["hostvars"], json!({}));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("[WARNING]: Could not match supplied host pattern, ignoring: nomatch"));
}

/// The API the executor uses, on a real fixture.
#[test]
fn library_api_on_fixtures() {
    let i = Inventory::load(&[inv("ini_basic/hosts.ini")], &[]).expect("load");
    // `all` walks its children (ungrouped, typed, sites) before grandchildren (edge, db).
    assert_eq!(
        i.host_names()[..5],
        ["jump.example.com", "10.0.0.9", "t1", "t2", "edge-01"]
    );
    let jump = conn_spec("jump.example.com", &i.host_vars("jump.example.com")).unwrap();
    assert_eq!((jump.port, jump.user.as_deref()), (Some(2222), Some("ops")));
    let e08 = conn_spec("edge-08", &i.host_vars("edge-08")).unwrap();
    assert_eq!(e08.address, "10.1.0.1");
    assert_eq!(
        conn_spec("10.0.0.9", &i.host_vars("10.0.0.9"))
            .unwrap()
            .port,
        Some(2200)
    );
    assert_eq!(i.group_names("db-1"), ["db", "sites"]);
    assert_eq!(i.group_names("jump.example.com"), ["ungrouped"]);
    let groups = i.groups_map();
    assert_eq!(
        groups.keys().take(2).collect::<Vec<_>>(),
        ["all", "ungrouped"]
    );
    assert_eq!(groups["sites"][..2], ["edge-01", "edge-03"]);
    assert_eq!(groups["db"], ["db-1", "db-2"]);
    let sel = i.select("sites:!db:&edge-0*").unwrap();
    assert_eq!(
        sel.hosts,
        ["edge-01", "edge-03", "edge-05", "edge-08", "edge-09"]
    );
    assert!(sel.warnings.is_empty());
    let none = i.select("nothing-here").unwrap();
    assert!(none.hosts.is_empty());
    assert_eq!(none.warnings.len(), 1, "{:?}", none.warnings);
    assert!(i.select("db[5]").is_err());
    // An empty host list file (a retry file with nothing in it) selects nothing, never the whole fleet (Ansible
    // would select all hosts), also with only `!`/`&` patterns beside it; a non-empty one selects its hosts.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.retry");
    std::fs::write(&empty, "\n\n").unwrap();
    for p in [
        format!("@{}", empty.display()),
        format!("@{}:!db", empty.display()),
    ] {
        let sel = i.select(&p).unwrap();
        assert!(sel.hosts.is_empty(), "{p}: {:?}", sel.hosts);
        assert!(
            sel.warnings[0].contains("names no hosts"),
            "{:?}",
            sel.warnings
        );
    }
    let two = dir.path().join("two.retry");
    std::fs::write(&two, "db-2\nedge-03\n").unwrap();
    let sel = i.select(&format!("@{}", two.display())).unwrap();
    assert_eq!(sel.hosts, ["db-2", "edge-03"]);
}

/// 3000 hosts in 120 groups with group_vars and host_vars files load and merge correctly.
#[test]
fn large_inventory_loads() {
    let t = tempfile::tempdir().unwrap();
    let mut ini = String::new();
    for g in 0..120 {
        ini.push_str(&format!(
            "[g{g}]\nh-{g}-[000:024] idx={g}\n[g{g}:vars]\ngv=g{g}\n"
        ));
    }
    ini.push_str("[region:children]\n");
    for g in 0..120 {
        ini.push_str(&format!("g{g}\n"));
    }
    std::fs::write(t.path().join("hosts"), ini).unwrap();
    std::fs::create_dir_all(t.path().join("group_vars")).unwrap();
    std::fs::create_dir_all(t.path().join("host_vars")).unwrap();
    std::fs::write(
        t.path().join("group_vars/region.yml"),
        "gv: region\nregion: true\n",
    )
    .unwrap();
    std::fs::write(t.path().join("group_vars/g7.yml"), "from_file: g7\n").unwrap();
    std::fs::write(t.path().join("host_vars/h-7-003.yml"), "hv: 3\n").unwrap();
    let i = Inventory::load(&[t.path().join("hosts")], &[]).unwrap();
    assert_eq!(i.host_names().len(), 3000);
    let v = i.host_vars("h-7-003");
    // group_vars files beat variables set in inventory files.
    assert_eq!(v["gv"], "region");
    assert_eq!(v["region"], true);
    assert_eq!(v["from_file"], "g7");
    assert_eq!(v["hv"], 3);
    assert_eq!(v["idx"], 7);
    // g1, g10..g19, g100..g119.
    assert_eq!(i.select("region:&g1*").unwrap().hosts.len(), 31 * 25);
    let list = i.list_json(None);
    assert_eq!(list["_meta"]["hostvars"].as_object().unwrap().len(), 3000);
}

/// Commands that need no secret value need no age identity: `inventory --graph`, `play --list-hosts` /
/// `--list-tasks` leave the encrypted vars files closed, and `ping` goes on without them (saying which files it
/// did not read). `inventory --list` and plays still need the identity, with the clear error.
#[test]
fn secrets_only_when_needed() {
    let home = tempfile::tempdir().unwrap();
    let bare = |args: &[&str]| {
        let o = crate::support::edgefleet()
            .current_dir(crate::support::repo())
            .env("HOME", home.path())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code(), text)
    };
    let (code, text) = bare(&["inventory", "-i", "inventory/example", "--graph"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("munich-edge-01"), "{text}");
    for flag in ["--list-hosts", "--list-tasks"] {
        let (code, text) = bare(&[
            "play",
            "playbooks/provision.yml",
            "-i",
            "inventory/example",
            flag,
        ]);
        assert_eq!(code, Some(0), "{flag}: {text}");
        assert!(!text.contains("no identity"), "{flag}: {text}");
    }
    // Values are needed: the identity is, with today's error (exit 4, nothing contacted).
    let (code, text) = bare(&["inventory", "-i", "inventory/example", "--list"]);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("no identity to decrypt"), "{text}");
    let (code, text) = bare(&[
        "play",
        "playbooks/provision.yml",
        "-i",
        "inventory/example",
        "--syntax-check",
    ]);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("no identity to decrypt"), "{text}");
    // ping on a lab whose inventory keeps its secrets encrypted: every device answers without the identity.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = edgefleet::lab::LabConfig::new(dir.path().join("lab"), 2);
    cfg.exe = Some(crate::support::bin());
    let lab = edgefleet::lab::Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
    let inv = lab.inventory_path();
    let (code, text) = bare(&["ping", "-i", inv.to_str().unwrap()]);
    lab.down().unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("not decrypted, so") && text.contains(".age"),
        "{text}"
    );
}
