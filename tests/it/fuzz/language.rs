//! The language layer: INI and YAML inventories (with host ranges), host patterns, the playbook loader,
//! templates, and the age files of vars and secrets.

use std::path::{Path, PathBuf};

use edgefleet::inventory::{Inventory, Secrets};
use edgefleet::modules::Registry;
use edgefleet::playbook::{load_playbook_text, LoadCtx};
use edgefleet::template::Templar;
use edgefleet::vars::secrets::{check_secret_yaml, inspect, looks_like_age, parse_recipient};
use edgefleet::vars::Vars;

use super::{fuzz_bytes, fuzz_text};

/// Load one inventory file (through the real loader: group_vars, ranges, patterns and all).
fn load_inventory(dir: &Path, name: &str, text: &str) -> Option<Inventory> {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp inventory written");
    Inventory::load_with(&[path], &[], Secrets::Required).ok()
}

const INI_TOKENS: &[&str] = &[
    "[",
    "]",
    "[all:vars]",
    "[web:children]",
    ":vars]",
    ":children]",
    "[01:99]",
    "[a:z]",
    "[0:9999999]",
    "[1:5:2]",
    "ansible_host=",
    "ansible_port=",
    "ansible_port=99999",
    "=",
    " ",
    "\n",
    "#",
    ";",
    "'",
    "\"",
];

#[test]
fn inventory_ini() {
    let dir = tempfile::tempdir().unwrap();
    fuzz_text("inventory-ini", INI_TOKENS, |s| {
        if let Some(inv) = load_inventory(dir.path(), "hosts", s) {
            let _ = inv.select("all");
        }
    });
}

const YAML_TOKENS: &[&str] = &[
    "all:",
    "hosts:",
    "children:",
    "vars:",
    "  ",
    "\n    ",
    "- ",
    ": ",
    "&a",
    "*a",
    "<<: *a",
    "!!str",
    "!vault",
    "[01:20]",
    "{",
    "}",
    "---",
    "...",
    "? ",
    "|",
    ">",
    "'",
    "\"",
    "null",
    "~",
    "yes",
];

#[test]
fn inventory_yaml() {
    let dir = tempfile::tempdir().unwrap();
    fuzz_text("inventory-yaml", YAML_TOKENS, |s| {
        if let Some(inv) = load_inventory(dir.path(), "hosts.yml", s) {
            let _ = inv.select("all");
        }
    });
}

const PATTERN_TOKENS: &[&str] = &[
    ":",
    ",",
    "&",
    "!",
    "*",
    "?",
    "~",
    "~^edge-0[0-9]+$",
    "[0]",
    "[-1]",
    "[0:2]",
    "[1:]",
    "[:3]",
    "[99999999999999999999]",
    "[-9223372036854775808]",
    "all",
    "web",
    "edge",
    "ungrouped",
    "(",
    ")",
    "\\",
];

#[test]
fn host_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let inv = load_inventory(
        dir.path(),
        "hosts",
        "[web]\nweb[01:12].example\n[edge]\nedge-0[0:9] ansible_host=127.0.0.1\n[prod:children]\nweb\nedge\n",
    )
    .expect("the pattern test's inventory loads");
    fuzz_text("host-patterns", PATTERN_TOKENS, |s| {
        // `@file` patterns read a file: only the ones the corpus names, never a file the fuzzer invents.
        if s.contains('@') {
            return;
        }
        let _ = edgefleet::inventory::split_host_pattern(s);
        if let Ok(sel) = inv.select(s) {
            let mut seen = std::collections::HashSet::new();
            assert!(
                sel.hosts.iter().all(|h| seen.insert(h)),
                "{s:?} selected a host twice: {:?}",
                sel.hosts
            );
        }
    });
}

const PLAYBOOK_TOKENS: &[&str] = &[
    "- hosts: all\n",
    "  tasks:\n",
    "    - name: x\n",
    "      command: ",
    "      when: ",
    "block:",
    "rescue:",
    "always:",
    "loop:",
    "with_items:",
    "register:",
    "notify:",
    "handlers:",
    "roles:",
    "import_tasks: ",
    "include_tasks: ",
    "vars:",
    "become: yes",
    "serial: ",
    "{{ ",
    " }}",
    "{% ",
    " %}",
    "- ",
    ": ",
    "&a",
    "*a",
    "<<: *a",
];

#[test]
fn playbook_loader() {
    let registry = Registry::builtin();
    let templar = Templar::new();
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("play.yml");
    fuzz_text("playbook", PLAYBOOK_TOKENS, |s| {
        let mut ctx = LoadCtx::new(&registry, &templar);
        let pb = load_playbook_text(s, &path, &mut ctx);
        // A playbook that loaded has no errors; one that did not has at least one saying why.
        assert!(
            pb.is_some() || !ctx.diags.is_empty(),
            "the loader refused {s:?} without saying why"
        );
    });
}

const TEMPLATE_TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{%- ",
    " -%}",
    "if ",
    "else",
    "endif",
    "for x in ",
    "endfor",
    "| ",
    "default(",
    "to_json",
    "from_json",
    "regex_replace(",
    "b64decode",
    "ipaddr",
    "join(",
    "split(",
    "[",
    "]",
    "(",
    ")",
    "'",
    "\"",
    "~",
    "**",
    "//",
    "%",
    "range(",
    "lookup(",
    "item",
    "hostvars",
    "inventory_hostname",
    "9999999999999999999999",
    "-",
    ".",
    "__class__",
];

#[test]
fn templates() {
    let templar = Templar::new();
    let mut vars = Vars::new();
    vars.insert("inventory_hostname".into(), "edge-01".into());
    vars.insert(
        "items".into(),
        serde_json::json!(["a", "b", {"k": [1, 2.5, null]}]),
    );
    vars.insert("n".into(), 3.into());
    fuzz_text("template", TEMPLATE_TOKENS, |s| {
        let _ = templar.check_syntax(s, "fuzz");
        let _ = templar.render_str(s, &vars, "fuzz");
    });
}

const AGE_TOKENS: &[&str] = &[
    "age-encryption.org/v1\n",
    "-> X25519 ",
    "-> scrypt ",
    "--- ",
    "-----BEGIN AGE ENCRYPTED FILE-----\n",
    "-----END AGE ENCRYPTED FILE-----\n",
    "age1",
    "AGE-SECRET-KEY-1",
    "ssh-ed25519 ",
    "=",
    "\n",
];

#[test]
fn age_files() {
    let path = Path::new("vars/secrets.age");
    fuzz_bytes("age", AGE_TOKENS, |b| {
        let _ = looks_like_age(b);
        let _ = inspect(path, b);
        let text = String::from_utf8_lossy(b);
        for line in text.lines().take(64) {
            let _ = parse_recipient(line, "fuzz");
        }
        let _ = check_secret_yaml(&text, path);
    });
}
