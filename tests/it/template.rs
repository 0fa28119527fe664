//! Templates: realistic IoT Edge templates rendered through the public `Templar` API and compared with what
//! ansible-core 2.19 produced from the same files (tests/fixtures/template/README.md), plus the guarantees
//! around undefined variables, secrets in errors, lookups and `omit`.

use std::path::Path;

use edgefleet::template::{omit_marker, search_path_value, Templar, SEARCH_PATH_VAR};
use edgefleet::vars::Vars;
use serde_json::json;

use crate::support::fixture;

fn vars_from(name: &str) -> Vars {
    let path = fixture(&format!("template/{name}"));
    let text = std::fs::read_to_string(&path).unwrap();
    match edgefleet::yaml::parse_value(&text, &path).unwrap() {
        serde_json::Value::Object(m) => m,
        other => panic!("{name} is not a mapping: {other}"),
    }
}

fn render_fixture(template: &str, vars: &str) -> String {
    Templar::new()
        .render_file(&fixture(&format!("template/{template}")), &vars_from(vars))
        .unwrap_or_else(|e| panic!("{template}: {}", e.message))
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("template/{name}"))).unwrap()
}

#[test]
fn aziot_config_dps_matches_ansible() {
    let out = render_fixture("config.toml.j2", "vars-dps.yml");
    similar_asserts(&out, &expected("config.toml.dps.expected"));
    // And it is a config aziotctl would accept: valid TOML with the shapes IoT Edge 1.5 requires.
    let t: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(t["provisioning"]["source"].as_str(), Some("dps"));
    assert_eq!(
        t["provisioning"]["attestation"]["method"].as_str(),
        Some("symmetric_key")
    );
    assert_eq!(
        t["agent"]["env"]["OptimizeForPerformance"].as_str(),
        Some("false")
    );
    assert!(t["agent"]["env"]
        .as_table()
        .unwrap()
        .values()
        .all(|v| v.is_str()));
    assert_eq!(
        t["image_garbage_collection"]["enabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn aziot_config_manual_matches_ansible() {
    let out = render_fixture("config.toml.j2", "vars-manual.yml");
    similar_asserts(&out, &expected("config.toml.manual.expected"));
    let t: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(t["cloud_timeout_sec"].as_integer(), Some(120));
    assert_eq!(
        t["edge_ca"]["auto_generated_edge_ca_expiry_days"].as_integer(),
        Some(30)
    );
    assert!(t["agent"]
        .get("config")
        .and_then(|c| c.get("auth"))
        .is_none());
    assert_eq!(
        t["image_garbage_collection"]["enabled"].as_bool(),
        Some(false)
    );
}

#[test]
fn daemon_json_matches_ansible_to_nice_json() {
    let out = render_fixture("daemon.json.j2", "vars-daemon.yml");
    similar_asserts(&out, &expected("daemon.json.expected"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The user's keys survive the merge; log-opts values stay strings (IoT Edge's logrotate check wants that).
    assert_eq!(v["registry-mirrors"][0], "https://mirror.plant.local");
    assert_eq!(v["log-opts"]["max-file"], "3");
    assert_eq!(v["log-opts"]["compress"], "true");
    assert_eq!(v["data-root"], "/var/lib/docker-ü");
}

#[test]
fn module_yaml_matches_ansible_to_nice_yaml() {
    let out = render_fixture("modules.yml.j2", "vars-modules.yml");
    similar_asserts(&out, &expected("modules.yml.expected"));
    // The YAML part reads back to the same data with our own loader.
    let yaml_part: String = out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let back = edgefleet::yaml::parse_value(&yaml_part, Path::new("back.yml")).unwrap();
    let vars = vars_from("vars-modules.yml");
    assert_eq!(back["modules"], vars["modules"]);
    assert_eq!(back["tags"], json!(["007", "line-3", "plant-a", "yes"]));
}

fn similar_asserts(got: &str, want: &str) {
    if got != want {
        let diff = similar::TextDiff::from_lines(want, got)
            .unified_diff()
            .header("expected (ansible)", "edgefleet")
            .to_string();
        panic!("rendered output differs from Ansible's:\n{diff}");
    }
}

fn vars(v: serde_json::Value) -> Vars {
    v.as_object().cloned().unwrap()
}

#[test]
fn undefined_is_strict_but_chainable() {
    let t = Templar::new();
    let v = vars(json!({"edge": {"agent": {"version": "1.5.21"}}}));
    // Chains through missing parts work with default / is defined, like Ansible.
    assert_eq!(
        t.render_str("{{ nope.x.y | default('d') }}", &v, "task")
            .unwrap(),
        "d"
    );
    assert_eq!(
        t.render_str("{{ edge.proxy.https | default('none') }}", &v, "task")
            .unwrap(),
        "none"
    );
    assert!(!t
        .eval_condition("edge.proxy.https is defined", &v, "when")
        .unwrap());
    assert!(t
        .eval_condition("edge.agent.version is defined", &v, "when")
        .unwrap());
    assert_eq!(
        t.render_value(
            &json!("{{ edge.agent.version | default('x') }}"),
            &v,
            "task"
        )
        .unwrap(),
        json!("1.5.21")
    );
    // Everything else stays strict, and the error names the template, line and missing name.
    let e = t
        .render_str(
            "line one\n{{ edge.proxy.https }}",
            &v,
            "roles/edge/templates/x.j2",
        )
        .unwrap_err();
    assert!(e.undefined);
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.contains("roles/edge/templates/x.j2"),
        "{}",
        e.message
    );
    assert!(e.message.contains("edge.proxy"), "{}", e.message);
    let e = t.eval_condition("not edge_typo", &v, "when").unwrap_err();
    assert!(e.message.contains("edge_typo"), "{}", e.message);
    let e = t
        .render_str("{% for m in modules %}{{ m }}{% endfor %}", &v, "t")
        .unwrap_err();
    assert!(e.message.contains("modules"), "{}", e.message);
    let e = t
        .render_str("{{ edge.agent.image | mandatory }}", &v, "t")
        .unwrap_err();
    assert!(
        e.message
            .contains("Mandatory variable 'edge.agent.image' not defined."),
        "{}",
        e.message
    );
}

#[test]
fn template_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.toml.j2");
    std::fs::write(
        &p,
        "[provisioning]\nsource = \"{{ edge.provisioning.source }}\"\n",
    )
    .unwrap();
    let e = Templar::new()
        .render_file(&p, &vars(json!({"edge": {}})))
        .unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.contains(&p.display().to_string()),
        "{}",
        e.message
    );
    assert!(e.message.contains("edge.provisioning"), "{}", e.message);
}

/// A secret-looking value in the variables must never show up in an error message, whatever fails.
#[test]
fn secrets_never_appear_in_errors() {
    const SECRET: &str = "Sup3r-S3cret-canary-7f3a9c";
    let t = Templar::new();
    let v = vars(json!({
        "pw": SECRET,
        "cfg": {"password": SECRET, "n": 1},
        "l": [SECRET],
        "num": SECRET,
    }));
    let failing = [
        "{{ pw + 1 }}",
        "{{ pw | from_json }}",
        "{{ pw | from_yaml | int + 'x' }}",
        "{{ pw | b64decode }}",
        "{{ pw | regex_replace(pw ~ '(', '') }}",
        "{{ 'x' | regex_replace(pw ~ '(?=x)', '') }}",
        "{{ 'x' | regex_replace('x', pw ~ '\\q') }}",
        "{{ pw | regex_search('(.)', '\\\\9') }}",
        "{{ pw is version('1.0', 'lt') }}",
        "{{ pw is version('1.0', 'lt', version_type='semver') }}",
        "{{ pw is version(pw, 'lt', strict=true) }}",
        "{{ pw | int(base=1) }}",
        "{{ pw.nope.deeper }}",
        "{{ cfg.password.x.y }}",
        "{{ cfg | combine(pw) }}",
        "{{ cfg | combine(l) }}",
        "{{ l | items2dict }}",
        "{{ cfg | dict2items | items2dict(key_name='nope') }}",
        "{{ pw | dict2items }}",
        "{{ pw | hash(pw) }}",
        "{{ pw | unknown_filter }}",
        "{{ pw.foo() }}",
        "{{ pw is failed }}",
        "{{ cfg | to_json(indent=pw) }}",
        "{{ l[pw] }}",
        "{% for x in pw + 1 %}{% endfor %}",
        "{{ pw | regex_replace('x', 'y', mandatory_count=3) }}",
        "{{ lookup('vars', pw) }}",
        "{{ lookup(pw) }}",
    ];
    for tpl in failing {
        let e = t.render_str(tpl, &v, "task").expect_err(tpl);
        assert!(
            !e.message.contains(SECRET),
            "{tpl} leaked the secret: {}",
            e.message
        );
        assert!(
            !e.message.contains("7f3a9c"),
            "{tpl} leaked part of the secret: {}",
            e.message
        );
    }
    // The same for conditions.
    for cond in ["pw - 1 > 0", "pw is version('x', 'zz')", "cfg.password.x"] {
        let e = t.eval_condition(cond, &v, "when").expect_err(cond);
        assert!(
            !e.message.contains(SECRET),
            "{cond} leaked the secret: {}",
            e.message
        );
    }
}

/// Values registered as secrets still render into files (that is their purpose) but are masked in errors,
/// even when an error message does mention the value (a lookup term here).
#[test]
fn registered_secrets_render_but_are_redacted_in_errors() {
    const SECRET: &str = "registered-canary-3c2b1a-value";
    edgefleet::redact::register(SECRET);
    let t = Templar::new();
    let v = vars(json!({"key": SECRET}));
    assert_eq!(
        t.render_str("k={{ key }}", &v, "task").unwrap(),
        format!("k={SECRET}")
    );
    let e = t
        .render_str("{{ lookup('file', key) }}", &v, "task")
        .unwrap_err();
    assert!(!e.message.contains(SECRET), "{}", e.message);
    assert!(e.message.contains(edgefleet::redact::MASK), "{}", e.message);
}

#[test]
fn lookups_resolve_through_the_search_path() {
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("roles/edge");
    std::fs::create_dir_all(role.join("files")).unwrap();
    std::fs::write(
        role.join("files/root-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("banner.txt"), "  hello  \n").unwrap();
    let mut v = vars(json!({"name": "root-ca.pem", "a": [1, 2]}));
    v.insert(
        SEARCH_PATH_VAR.into(),
        search_path_value(&[role.clone(), dir.path().to_path_buf()]),
    );
    let t = Templar::new();
    // Trailing whitespace is stripped like Ansible's file lookup (rstrip=True).
    assert_eq!(
        t.render_str("{{ lookup('file', name) }}", &v, "t").unwrap(),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    );
    assert_eq!(
        t.render_str("[{{ lookup('file', 'banner.txt') }}]", &v, "t")
            .unwrap(),
        "[  hello]"
    );
    assert_eq!(
        t.render_value(
            &json!("{{ query('file', 'banner.txt', rstrip=false) }}"),
            &v,
            "t"
        )
        .unwrap(),
        json!(["  hello  \n"])
    );
    let e = t
        .render_str("{{ lookup('file', 'missing.pem') }}", &v, "t")
        .unwrap_err();
    assert!(
        e.message.contains("missing.pem") && e.message.contains("roles/edge/files"),
        "{}",
        e.message
    );
    assert_eq!(
        t.render_str(
            "{{ lookup('file', 'missing.pem', errors='ignore') is none }}",
            &v,
            "t"
        )
        .unwrap(),
        "True"
    );

    // env: unset gives '' (or the default), like Ansible.
    std::env::set_var("EF_TEMPLATE_TEST_VAR", "from-env");
    assert_eq!(
        t.render_str("{{ lookup('env', 'EF_TEMPLATE_TEST_VAR') }}", &v, "t")
            .unwrap(),
        "from-env"
    );
    assert_eq!(
        t.render_str("[{{ lookup('env', 'EF_TEMPLATE_SURELY_UNSET') }}]", &v, "t")
            .unwrap(),
        "[]"
    );
    assert_eq!(
        t.render_str(
            "{{ lookup('env', 'EF_TEMPLATE_SURELY_UNSET', default='d') }}",
            &v,
            "t"
        )
        .unwrap(),
        "d"
    );
    assert_eq!(
        t.render_value(
            &json!("{{ q('env', 'EF_TEMPLATE_TEST_VAR', 'EF_TEMPLATE_SURELY_UNSET') }}"),
            &v,
            "t"
        )
        .unwrap(),
        json!(["from-env", ""])
    );
    // vars and the loop helpers.
    assert_eq!(
        t.render_value(&json!("{{ lookup('vars', 'a') }}"), &v, "t")
            .unwrap(),
        json!([1, 2])
    );
    assert_eq!(
        t.render_str("{{ lookup('vars', 'zz', default=3) }}", &v, "t")
            .unwrap(),
        "3"
    );
    assert!(t
        .render_str("{{ lookup('vars', 'zz') }}", &v, "t")
        .unwrap_err()
        .message
        .contains("zz"));
    assert_eq!(
        t.render_value(&json!("{{ query('items', a, [3, [4]]) }}"), &v, "t")
            .unwrap(),
        json!([1, 2, 3, [4]])
    );
    assert_eq!(
        t.render_value(&json!("{{ query('dict', {'x': 1}) }}"), &v, "t")
            .unwrap(),
        json!([{"key": "x", "value": 1}])
    );
}

#[test]
fn omit_placeholder_is_exposed() {
    let t = Templar::new();
    let v = vars(json!({}));
    let rendered = t
        .render_value(&json!({"mode": "{{ mode | default(omit) }}"}), &v, "t")
        .unwrap();
    assert_eq!(rendered["mode"], json!(omit_marker()));
    assert!(t
        .eval_condition(
            "omit is string and omit.startswith('__omit_place_holder__')",
            &v,
            "t"
        )
        .unwrap());
}

#[test]
fn task_args_keep_backslashes_like_ansible() {
    // In YAML `msg: "{{ name | regex_replace('^(.*)_name$', '\\1') }}"` reaches the templar with one
    // backslash; Ansible keeps it (a backreference), unlike plain Jinja which would make it \x01.
    let t = Templar::new();
    let v = vars(json!({"name": "test1_name"}));
    assert_eq!(
        t.render_str(
            r"{{ name | regex_replace('^(.*)_name$', '\1') }}",
            &v,
            "task"
        )
        .unwrap(),
        "test1"
    );
    assert_eq!(
        t.render_value(&json!(r"{{ 'C:\new' }}"), &v, "task")
            .unwrap(),
        json!(r"C:\new")
    );
    // Template files use Jinja's escapes.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.j2");
    std::fs::write(&p, r"{{ 'a\tb' }}").unwrap();
    assert_eq!(t.render_file(&p, &v).unwrap(), "a\tb");
}
