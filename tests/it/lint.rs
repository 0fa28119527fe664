//! `edgefleet lint`: the corpus under tests/fixtures/lint (each case directory linted as one run, its findings
//! compared with the case's `expected.txt`), SARIF validated against the official 2.1.0 schema, a snapshot of
//! the text output, generated manifests (200 modules, createOptions chunks, twin size), `--explain`,
//! `--deny warnings` and the exit codes.
//!
//! `expected.txt`: first line `exit N`, then one line per finding, `RULE severity file:line:col`, plus
//! ` waived` when a waiver covers it, in the order the linter reports them (by file, then position).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::support::{edgefleet, fixture};

fn run_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = edgefleet()
        .current_dir(dir)
        .args(["lint", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn finding_lines(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}:{}:{}{}",
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                f["file"].as_str().unwrap(),
                f["line"],
                f["column"],
                if f["waived"] == Value::Bool(true) {
                    " waived"
                } else {
                    ""
                }
            )
        })
        .collect()
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture("lint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_cases_give_their_expected_findings() {
    let cases = cases();
    assert!(cases.len() >= 15, "{cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let expected = std::fs::read_to_string(case.join("expected.txt"))
            .unwrap_or_else(|e| panic!("{}: no expected.txt: {e}", case.display()));
        let mut lines = expected.lines().filter(|l| !l.trim().is_empty());
        let want_exit: i32 = lines
            .next()
            .and_then(|l| l.strip_prefix("exit "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: expected.txt must start with `exit N`", case.display()));
        let want: Vec<String> = lines.map(str::to_string).collect();
        let (code, doc) = run_json(case, &["."]);
        let got = finding_lines(&doc);
        if code != want_exit || got != want {
            failures.push(format!(
                "{}: exit {code} (want {want_exit})\n got:\n  {}\n want:\n  {}",
                case.display(),
                got.join("\n  "),
                want.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_finding_names_its_rule_checklist_item_and_a_position() {
    let (_, doc) = run_json(&fixture("lint/checklist"), &["."]);
    let findings = doc["findings"].as_array().unwrap();
    assert!(findings.len() > 20, "{doc}");
    for f in findings {
        assert!(
            f["checklist"].as_str().is_some_and(|c| !c.is_empty()),
            "{f}"
        );
        assert!(f["name"].as_str().is_some(), "{f}");
        assert!(
            f["line"].as_u64().unwrap() > 0 && f["column"].as_u64().unwrap() > 0,
            "{f}"
        );
        // Secrets are named, never shown.
        let msg = f["message"].as_str().unwrap();
        assert!(
            !msg.contains("hunter2")
                && !msg.contains("not-a-real-password")
                && !msg.contains("c2VjcmV0"),
            "{msg}"
        );
    }
}

/// The official SARIF 2.1.0 schema (as shipped in the serde-sarif 0.8.0 crate, `src/schema.json`).
///
/// One adjustment, in memory only: the `language` pattern of `run` and `toolComponent` has a bare `]` (`...[a-zA-Z]{2}]?$`), a literal
/// in ECMA-262 regexes but refused by the Rust regex engine the validator uses; it is escaped (`\\]`), which
/// matches exactly what the ECMA pattern matches.
fn sarif_validator() -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("lint/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema["$id"],
        "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
    );
    for def in ["run", "toolComponent"] {
        let pattern = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        assert_eq!(pattern, "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$", "{def}");
        *pattern = Value::String("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$".into());
    }
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn sarif_output_validates_against_the_2_1_0_schema() {
    let v = sarif_validator();
    for case in [
        "checklist",
        "waivers",
        "config-errors",
        "template-comments",
        "good",
        "not-json",
    ] {
        let out = edgefleet()
            .current_dir(fixture(&format!("lint/{case}")))
            .args(["lint", "--format", "sarif", "."])
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{case}: {errors:#?}");
        assert_eq!(doc["version"], "2.1.0");
        let run = &doc["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        for r in run["results"].as_array().unwrap() {
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"], "{r}");
        }
        if case == "waivers" {
            let suppressed: Vec<&Value> = run["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r.get("suppressions").is_some())
                .collect();
            assert_eq!(suppressed.len(), 1, "{run}");
            assert!(suppressed[0]["suppressions"][0]["justification"]
                .as_str()
                .unwrap()
                .contains("delay alarms"));
        }
    }
    // The validator does reject what is not SARIF (so the check above can fail).
    let bad: Value = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {}}]});
    assert!(!v.is_valid(&bad));
}

#[test]
fn text_output_is_rustc_like_with_the_source_line() {
    let out = edgefleet()
        .current_dir(fixture("lint/cross-file"))
        .args(["lint", "config.toml", "daemon.json", "deployment.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(30));
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("lint_text_cross_file", text);
}

#[test]
fn explain_prints_the_rule_and_unknown_rules_are_bad_options() {
    let out = edgefleet()
        .args(["lint", "--explain", "EF503"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.starts_with("EF503 (log-limits-missing): warning\nchecklist: "),
        "{s}"
    );
    assert!(s.contains("daemon.json"), "{s}");
    let out = edgefleet()
        .args(["lint", "--explain", "storage-not-bound"])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("EF402 "));
    let out = edgefleet()
        .args(["lint", "--explain", "EF999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lint rule `EF999`"));
}

#[test]
fn deny_warnings_and_unreadable_files() {
    let bom = fixture("lint/bom");
    assert_eq!(run_json(&bom, &["."]).0, 0);
    assert_eq!(run_json(&bom, &["--deny", "warnings", "."]).0, 30);
    // Notes never fail a run; waived findings neither.
    let layered = fixture("lint/layered");
    let (code, doc) = run_json(&layered, &["--deny", "warnings", "layered.json"]);
    assert_eq!(code, 30, "{doc}");
    let out = edgefleet()
        .args(["lint", "/nonexistent/deployment.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("/nonexistent/deployment.json: cannot read it"));
}

/// A complete deployment with `n` custom modules (each with memory and CPU limits, no log limits).
fn big_manifest(n: usize, create_extra: &str) -> String {
    let mut modules = Vec::new();
    for i in 0..n {
        modules.push(format!(
            r#""m{i:03}": {{"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
  "settings": {{"image": "contoso.azurecr.io/m{i:03}:1.0.{i}", "createOptions": "{{\"HostConfig\":{{\"Memory\":67108864,\"NanoCpus\":100000000{create_extra}}}}}"}},
  "env": {{"INTERVAL": {{"value": "{i}"}}}}}}"#
        ));
    }
    let hub_create = r#"{\"HostConfig\":{\"Binds\":[\"/srv/edgeHub:/tmp/edgeHub\"]}}"#;
    let agent_create = r#"{\"HostConfig\":{\"Binds\":[\"/srv/edgeAgent:/tmp/edgeAgent\"]}}"#;
    format!(
        r#"{{"modulesContent": {{
"$edgeAgent": {{"properties.desired": {{"schemaVersion": "1.1", "runtime": {{"type": "docker", "settings": {{}}}},
  "systemModules": {{
    "edgeAgent": {{"type": "docker", "settings": {{"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21", "createOptions": "{agent_create}"}},
      "env": {{"UpstreamProtocol": {{"value": "Mqtt"}}, "storageFolder": {{"value": "/tmp/edgeAgent"}}}}}},
    "edgeHub": {{"type": "docker", "status": "running", "restartPolicy": "always", "settings": {{"image": "mcr.microsoft.com/azureiotedge-hub:1.5.21", "createOptions": "{hub_create}"}},
      "env": {{"UpstreamProtocol": {{"value": "Mqtt"}}, "storageFolder": {{"value": "/tmp/edgeHub"}}, "OptimizeForPerformance": {{"value": "false"}}, "amqpSettings__enabled": {{"value": "false"}}}}}}}},
  "modules": {{{}}}}}}},
"$edgeHub": {{"properties.desired": {{"schemaVersion": "1.1", "routes": {{}}, "storeAndForwardConfiguration": {{"timeToLiveSecs": 3600}}}}}}}}}}"#,
        modules.join(",\n")
    )
}

fn lint_text(name: &str, text: String) -> edgefleet::iotedge::manifest::Outcome {
    let inputs = [edgefleet::iotedge::manifest::Input {
        path: PathBuf::from(name),
        text,
    }];
    edgefleet::iotedge::manifest::lint(&inputs, &[])
}

fn rules_of(o: &edgefleet::iotedge::manifest::Outcome) -> Vec<&'static str> {
    o.findings.iter().map(|f| f.rule).collect()
}

#[test]
fn a_200_module_manifest_is_linted_quickly_and_over_the_twin_limit() {
    let text = big_manifest(200, "");
    let start = Instant::now();
    let o = lint_text("deployment.json", text.clone());
    let took = start.elapsed();
    println!(
        "lint of a 200-module manifest ({} bytes): {took:?}",
        text.len()
    );
    let rules = rules_of(&o);
    // Every module and both runtime modules lack log limits; nothing else is wrong but the twin size.
    assert_eq!(
        rules.iter().filter(|r| **r == "EF503").count(),
        202,
        "{rules:?}"
    );
    let twin: Vec<_> = o.findings.iter().filter(|f| f.rule == "EF603").collect();
    assert_eq!(twin.len(), 1, "{rules:?}");
    assert!(
        twin[0].message.contains("over the 32768-byte"),
        "{}",
        twin[0].message
    );
    assert_eq!(rules.len(), 203, "{rules:?}");
    // Generous: the bench measures; this only catches an accidental quadratic blow-up in a debug build.
    assert!(took.as_secs_f64() < 2.0, "{took:?}");
    // Growing the manifest goes from no finding, through a warning (within 10% of the limit), to an error.
    let mut states = Vec::new();
    for n in (40..=200).step_by(2) {
        let o = lint_text("deployment.json", big_manifest(n, ""));
        let twin: Vec<_> = o
            .findings
            .iter()
            .filter(|f| f.rule == "EF603")
            .map(|f| f.severity)
            .collect();
        assert!(twin.len() <= 1);
        states.push(twin.first().map(|s| *s as u8 + 1).unwrap_or(0));
    }
    assert!(states.windows(2).all(|w| w[0] <= w[1]), "{states:?}");
    let warn = edgefleet::iotedge::manifest::Severity::Warning as u8 + 1;
    assert!(states.contains(&0) && states.contains(&warn), "{states:?}");
    assert_eq!(
        states.last(),
        Some(&(edgefleet::iotedge::manifest::Severity::Error as u8 + 1))
    );
}

#[test]
fn create_options_are_joined_from_chunks_and_long_values_must_be_split() {
    let pad = format!(r#",\"Labels\":{{\"note\":\"{}\"}}"#, "x".repeat(600));
    let long = big_manifest(1, &pad);
    let o = lint_text("deployment.json", long.clone());
    let f: Vec<_> = o.findings.iter().filter(|f| f.rule == "EF602").collect();
    assert_eq!(f.len(), 1, "{:?}", rules_of(&o));
    assert!(
        f[0].message.contains("split it into createOptions01"),
        "{}",
        f[0].message
    );
    // The same text split at 400 characters into createOptions + createOptions01 is fine, and still parsed
    // (the memory limit inside the second chunk is seen).
    let v: Value = serde_json::from_str(&long).unwrap();
    let co = v["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["m000"]["settings"]
        ["createOptions"]
        .as_str()
        .unwrap()
        .to_string();
    let (a, b) = co.split_at(400);
    let mut v2 = v.clone();
    let s = &mut v2["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["m000"]
        ["settings"];
    s["createOptions"] = Value::String(a.into());
    s["createOptions01"] = Value::String(b.into());
    let o = lint_text(
        "deployment.json",
        serde_json::to_string_pretty(&v2).unwrap(),
    );
    let rules = rules_of(&o);
    assert!(
        !rules.contains(&"EF602") && !rules.contains(&"EF601") && !rules.contains(&"EF501"),
        "{rules:?}"
    );
    // In a template the tools split it: no EF602.
    let o = lint_text("deployment.template.json", long);
    assert!(!rules_of(&o).contains(&"EF602"));
}
