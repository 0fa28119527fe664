//! Module fixture tests: every module's plan, table-driven on recorded device facts
//! (`tests/fixtures/modules/<module>/<case>.yaml`): unchanged, changed, check mode, bad arguments.
//!
//! A case gives the task's arguments (as written: validated statically like the loader does, then rendered,
//! parsed once, pre-flighted and planned like an attempt does), the device's facts as the gather records
//! them (`files`, `commands`; `probes` for the few commands a module runs while planning), and what is
//! expected: the decision, its steps, the diff, the result, or where the arguments are refused. With
//! `outputs` (what the steps printed), the module's interpretation is checked too. Nothing reaches a device:
//! a fact that is not recorded fails the case. Adding a module is one source file plus one fixture file.
//!
//! Also here: a role using `iotedge_config: {src: ...}` and `edge_ca` with the role's own files passes
//! pre-flight (the search path pre-flight uses is the plan's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use edgefleet::facts::{sha1_hex, sha256_hex, FactCache, FileFact};
use edgefleet::modules::{ArgCtx, Decision, InCheckMode, PlanCtx, Ran, Registry, Step};
use edgefleet::report::StatsSnapshot;
use edgefleet::template::context::Context;
use edgefleet::template::Templar;
use edgefleet::transport::{Exec, ExitStatus, Output, SharedTransport, Transport, TransportError};

use crate::support::{edgefleet, fixture};

/// A device that only answers the probes a case recorded.
struct Recorded {
    probes: BTreeMap<String, Output>,
}

#[async_trait]
impl Transport for Recorded {
    fn host(&self) -> &str {
        "edge-1"
    }

    async fn exec(&self, req: Exec) -> Result<Output, TransportError> {
        let cmd = req.cmd.to_shell();
        self.probes.get(&cmd).cloned().ok_or_else(|| {
            TransportError::Other(format!("not recorded (add it to the case's facts): {cmd}"))
        })
    }

    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }

    async fn close(&self) {}
}

fn output(v: &Value) -> Output {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    Output {
        status: ExitStatus::Code(v.get("rc").and_then(Value::as_u64).unwrap_or(0) as u32),
        stdout: text("stdout").as_bytes().to_vec(),
        stderr: text("stderr").as_bytes().to_vec(),
    }
}

fn octal(v: Option<&Value>, default: u32) -> u32 {
    match v {
        Some(Value::String(s)) => u32::from_str_radix(s, 8).expect("a mode like \"0644\""),
        Some(Value::Number(n)) => n.as_u64().unwrap_or_default() as u32,
        _ => default,
    }
}

/// A file fact as the gather records it: `absent`, or stat fields (+ content, whose hash and size follow).
fn file_fact(path: &str, v: &Value) -> FileFact {
    if v.as_str() == Some("absent") {
        return FileFact::missing(path);
    }
    let s = |k: &str, d: &str| v.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
    let kind = s("kind", "file");
    let content = v
        .get("content")
        .and_then(Value::as_str)
        .map(|c| c.as_bytes().to_vec());
    let owner = s("owner", "root");
    let group = s("group", "root");
    let id = |name: &str| match name {
        "root" => 0,
        other => other.parse().unwrap_or(1000),
    };
    let sha1 = (kind == "file").then(|| {
        v.get("sha1")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| sha1_hex(content.as_deref().unwrap_or_default()))
    });
    FileFact {
        path: path.to_string(),
        exists: true,
        mode: octal(
            v.get("mode"),
            if kind == "directory" { 0o755 } else { 0o644 },
        ),
        uid: id(&owner),
        gid: id(&group),
        owner,
        group,
        size: content.as_ref().map(|c| c.len() as u64).unwrap_or(0),
        sha256: (kind == "file").then(|| {
            v.get("sha256")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| sha256_hex(content.as_deref().unwrap_or_default()))
        }),
        content: if kind == "file" { content } else { None },
        sha1,
        link: v.get("link").and_then(Value::as_str).map(String::from),
        kind,
    }
}

/// A step as the fixtures spell it.
fn describe(step: &Step) -> String {
    match step {
        Step::Exec { exec, what } => {
            let stdin = match &exec.stdin {
                Some(s) if s.secret => format!(" <secret stdin, {} bytes>", s.data.len()),
                Some(s) => format!(" <stdin, {} bytes>", s.data.len()),
                None => String::new(),
            };
            format!("{what}: {}{stdin}", exec.cmd.to_shell())
        }
        Step::Guarded {
            exec,
            what,
            rollback,
            rollback_what,
            ..
        } => {
            let stdin = match &exec.stdin {
                Some(s) if s.secret => format!(" <secret stdin, {} bytes>", s.data.len()),
                Some(s) => format!(" <stdin, {} bytes>", s.data.len()),
                None => String::new(),
            };
            format!(
                "{what}: {}{stdin} | else {rollback_what}: {}",
                exec.cmd.to_shell(),
                rollback.cmd.to_shell()
            )
        }
        Step::Write(files) => files
            .iter()
            .map(|f| {
                format!(
                    "write {} {} {}:{} {} bytes{}{}",
                    f.path,
                    f.mode
                        .map(|m| format!("{m:04o}"))
                        .unwrap_or_else(|| "-".into()),
                    f.owner.as_deref().unwrap_or("-"),
                    f.group.as_deref().unwrap_or("-"),
                    f.content.len(),
                    if f.secret { " secret" } else { "" },
                    f.parent
                        .as_ref()
                        .map(|p| format!(
                            " (parent {} {} {})",
                            p.path,
                            p.mode
                                .map(|m| format!("{m:04o}"))
                                .unwrap_or_else(|| "-".into()),
                            p.owner.as_deref().unwrap_or("-")
                        ))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Step::EnsureDirs(dirs) => dirs
            .iter()
            .map(|d| {
                format!(
                    "dir {} {} {}:{}",
                    d.path,
                    d.mode
                        .map(|m| format!("{m:04o}"))
                        .unwrap_or_else(|| "-".into()),
                    d.owner.as_deref().unwrap_or("-"),
                    d.group.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `want` matches `got`: equal, or a prefix when `want` ends with `...`.
fn text_matches(want: &str, got: &str) -> bool {
    match want.strip_suffix("...") {
        Some(prefix) => got.starts_with(prefix),
        None => want == got,
    }
}

/// Every key of `want` is in `got` with a matching value (objects recursively; strings may end with `...`).
fn subset(want: &Value, got: &Value, at: &str, errs: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => subset(wv, gv, &format!("{at}.{k}"), errs),
                    None => errs.push(format!("{at}.{k}: missing (got {got})")),
                }
            }
        }
        (Value::String(w), Value::String(g)) if text_matches(w, g) => {}
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset(wv, gv, &format!("{at}[{i}]"), errs);
            }
        }
        _ if want == got => {}
        _ => errs.push(format!("{at}: want {want}, got {got}")),
    }
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.map(|v| match v {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    })
}

/// Run one case; returns what did not match.
async fn run_case(registry: &Registry, module: &str, path: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    let text = std::fs::read_to_string(path).unwrap();
    let case = match edgefleet::yaml::parse_value(&text, path) {
        Ok(c) => c,
        Err(d) => return vec![d.to_string()],
    };
    let get = |k: &str| case.get(k).cloned().unwrap_or(Value::Null);
    let expect = get("expect");
    let want = |k: &str| expect.get(k);
    let want_error = want("error").and_then(Value::as_str);
    let error_at = want("at").and_then(Value::as_str);
    let m = registry.get(module).unwrap_or_else(|| {
        panic!("no module `{module}` (the directory is named after the module)")
    });
    let args = get("args");
    let host = case
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("edge-1")
        .to_string();
    // Where the stage's result is an error: compare with the expectation, and say whether to stop.
    let refused = |stage: &str, res: Result<(), String>, errs: &mut Vec<String>| -> bool {
        match (res, want_error) {
            (Ok(()), Some(_)) if error_at == Some(stage) => {
                errs.push(format!("{stage}: expected an error, got none"));
                true
            }
            (Ok(()), _) => false,
            (Err(e), Some(w)) if error_at.is_none() || error_at == Some(stage) => {
                if !text_matches(w, &e) && !e.contains(w) {
                    errs.push(format!("{stage}: error `{e}` does not contain `{w}`"));
                }
                true
            }
            (Err(e), _) => {
                errs.push(format!("{stage}: unexpected error: {e}"));
                true
            }
        }
    };

    // As the loader does: arguments as written.
    if refused(
        "validate",
        m.validate(&args).map_err(|e| e.message),
        &mut errs,
    ) {
        return errs;
    }
    let templar = Templar::new();
    let mut vars = match get("vars") {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    vars.entry("inventory_hostname")
        .or_insert_with(|| json!(host));
    let cx = Context::new(&templar, vec![Arc::new(vars)]);
    let rendered = match cx.render_value(&args, "fixture args") {
        Ok(v) => edgefleet::template::drop_omit(v),
        Err(e) => {
            refused("render", Err(e.message), &mut errs);
            return errs;
        }
    };
    let prepared = match m.prepare(&rendered) {
        Ok(p) => p,
        Err(e) => {
            refused("prepare", Err(e.message), &mut errs);
            return errs;
        }
    };
    if refused("prepare", Ok(()), &mut errs) {
        return errs;
    }
    let search = vec![path.parent().unwrap().to_path_buf()];
    let acx = ArgCtx {
        host: &host,
        vars: &cx,
        search: &search,
    };
    let preflight_warnings = match prepared.preflight(&acx) {
        Ok(w) => w,
        Err(e) => {
            refused("preflight", Err(e.message), &mut errs);
            return errs;
        }
    };
    if refused("preflight", Ok(()), &mut errs) {
        return errs;
    }
    if let Some(w) = strings(want("preflight_warnings")) {
        if preflight_warnings.len() != w.len()
            || !w
                .iter()
                .zip(&preflight_warnings)
                .all(|(a, b)| text_matches(a, b))
        {
            errs.push(format!(
                "preflight warnings: want {w:?}, got {preflight_warnings:?}"
            ));
        }
    }

    // The device, as recorded.
    let files: Vec<FileFact> = match get("files") {
        Value::Object(o) => o.iter().map(|(p, v)| file_fact(p, v)).collect(),
        _ => vec![],
    };
    let commands: Vec<(String, Output)> = match get("commands") {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), output(v))).collect(),
        _ => vec![],
    };
    let probes: BTreeMap<String, Output> = match get("probes") {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), output(v))).collect(),
        _ => BTreeMap::new(),
    };
    let facts = FactCache::from_recorded(files, commands);
    let transport: SharedTransport = Arc::new(Recorded { probes });
    let flag = |k: &str| case.get(k).and_then(Value::as_bool).unwrap_or(false);
    let environment: Vec<(String, String)> = match get("environment") {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => vec![],
    };
    let pcx = PlanCtx {
        host: &host,
        vars: &cx,
        search: &search,
        check: flag("check"),
        diff: flag("diff"),
        become_: None,
        timeout: None,
        environment,
        facts: &facts,
        transport: &transport,
    };
    let plan = match prepared.plan(&pcx).await {
        Ok(p) => p,
        Err(e) => {
            refused("plan", Err(e.to_string()), &mut errs);
            return errs;
        }
    };
    if refused("plan", Ok(()), &mut errs) {
        return errs;
    }

    // The decision and what holds whatever it is.
    let kind = plan.decision.kind();
    match want("decision").and_then(Value::as_str) {
        Some(w) if w != kind => errs.push(format!("decision: want {w}, got {kind}")),
        Some(_) => {}
        None => errs.push(format!("expect.decision is missing (got {kind})")),
    }
    if let Some(w) = want("in_check_mode").and_then(Value::as_str) {
        let got = match plan.decision.in_check_mode() {
            InCheckMode::Run => "run",
            InCheckMode::Report => "report",
            InCheckMode::Skip => "skip",
        };
        if w != got {
            errs.push(format!("in_check_mode: want {w}, got {got}"));
        }
    }
    let reason = match &plan.decision {
        Decision::Skip(r) | Decision::Fail(r) => Some(r.clone()),
        _ => None,
    };
    if let Some(w) = want("reason").and_then(Value::as_str) {
        if !reason.as_deref().is_some_and(|r| text_matches(w, r)) {
            errs.push(format!("reason: want {w:?}, got {reason:?}"));
        }
    }
    let steps: Vec<String> = plan.decision.steps().iter().map(describe).collect();
    if let Some(w) = strings(want("steps")) {
        if w.len() != steps.len() || !w.iter().zip(&steps).all(|(a, b)| text_matches(a, b)) {
            errs.push(format!("steps:\n  want {w:#?}\n  got  {steps:#?}"));
        }
    }
    if let Some(w) = want("diff").and_then(Value::as_str) {
        let got: String = plan
            .diffs
            .iter()
            .map(edgefleet::executor::apply::render_diff)
            .collect();
        if w != got {
            errs.push(format!("diff:\n--- want\n{w}--- got\n{got}"));
        }
    }
    if let Some(w) = want("result") {
        subset(w, &Value::Object(plan.result.clone()), "result", &mut errs);
    }
    if let Some(w) = want("msg") {
        let got = plan.msg.clone().map(Value::String).unwrap_or(Value::Null);
        subset(w, &got, "msg", &mut errs);
    }
    if let Some(w) = strings(want("warnings")) {
        if plan.warnings.len() != w.len()
            || !w
                .iter()
                .zip(&plan.warnings)
                .all(|(a, b)| text_matches(a, b))
        {
            errs.push(format!("warnings: want {w:?}, got {:?}", plan.warnings));
        }
    }
    if let Some(w) = want("set_facts") {
        let got = plan
            .set_facts
            .clone()
            .map(Value::Object)
            .unwrap_or(Value::Null);
        subset(w, &got, "set_facts", &mut errs);
    }

    // What the module makes of what its steps printed.
    if let Value::Array(outs) = get("outputs") {
        let whats: Vec<String> = plan
            .decision
            .steps()
            .iter()
            .flat_map(|s| match s {
                Step::Exec { what, .. } => vec![what.clone()],
                Step::Guarded {
                    what,
                    rollback_what,
                    ..
                } => vec![what.clone(), rollback_what.clone()],
                _ => vec![],
            })
            .collect();
        let (state, changed) = match plan.decision {
            Decision::Change { state, effects, .. } => (state, effects.reported()),
            Decision::ReadOnly { state, .. } => (state, false),
            _ => {
                errs.push("outputs given, but the decision runs nothing".into());
                return errs;
            }
        };
        let outcome = state.run(Ran {
            changed,
            result: plan.result,
            msg: plan.msg,
            outputs: whats.into_iter().zip(outs.iter().map(output)).collect(),
        });
        let got = json!({
            "changed": outcome.changed,
            "failed": outcome.failed,
            "msg": outcome.msg,
            "result": outcome.result,
            "warnings": outcome.warnings,
            "findings": outcome.findings,
            "checks": outcome.checks.map(|m| json!({"passed": m.passed, "checks": m.checks})),
        });
        match want("outcome") {
            Some(w) => subset(w, &got, "outcome", &mut errs),
            None => errs.push(format!("outputs given but no expect.outcome (got {got})")),
        }
    }
    errs
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn every_module_plans_its_recorded_cases() {
    let registry = Registry::builtin();
    let root = fixture("modules");
    let mut failures = Vec::new();
    let mut ran = 0;
    for module in registry.canonical() {
        let dir = root.join(module);
        let cs = cases(&dir);
        if cs.is_empty() {
            failures.push(format!(
                "{module}: no fixture (add tests/fixtures/modules/{module}/<case>.yaml)"
            ));
        }
        for c in cs {
            ran += 1;
            let errs = run_case(&registry, module, &c).await;
            if !errs.is_empty() {
                failures.push(format!(
                    "{}:\n  {}",
                    c.strip_prefix(&root).unwrap_or(&c).display(),
                    errs.join("\n  ")
                ));
            }
        }
    }
    // Every fixture directory belongs to a module.
    for e in std::fs::read_dir(&root).unwrap().filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !registry.canonical().contains(&name.as_str()) {
            failures.push(format!("{name}: not a module's canonical name"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// A role whose task renders `iotedge_config: {src: ...}` from the role's `templates/`, and `edge_ca` with the
/// certificate and key in the role's `files/`: pre-flight finds them where the run would.
#[test]
fn role_src_files_are_found_in_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let root_key = rcgen::KeyPair::generate().unwrap();
    let mut rp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    rp.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    rp.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    rp.distinguished_name
        .push(rcgen::DnType::CommonName, "root");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Edge CA edge-1");
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    let issuer = rcgen::Issuer::new(rp, root_key);
    let cert = p.signed_by(&key, &issuer).unwrap();
    let role = dir.path().join("roles/edge");
    write(&role, "files/edge-ca.cert.pem", &cert.pem());
    write(&role, "files/edge-ca.key.pem", &key.serialize_pem());
    write(
        &role,
        "templates/config.toml.j2",
        "hostname = \"{{ inventory_hostname }}\"\n\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=hub.azure-devices.net;DeviceId={{ inventory_hostname }};SharedAccessKey=c2VjcmV0\"\n\n[edge_ca]\ncert = \"file:///var/aziot/certs/edge-ca.cert.pem\"\npk = \"file:///var/aziot/secrets/edge-ca.key.pem\"\n",
    );
    write(
        &role,
        "tasks/main.yml",
        "- name: Edge CA\n  edge_ca:\n    cert: edge-ca.cert.pem\n    key: edge-ca.key.pem\n- name: config\n  iotedge_config:\n    src: config.toml.j2\n",
    );
    let inv = write(
        dir.path(),
        "inv.yml",
        "all:\n  hosts:\n    edge-1:\n      ansible_host: 127.0.0.1\n",
    );
    let play = |name: &str, role_name: &str| {
        write(
            dir.path(),
            name,
            &format!("- hosts: all\n  gather_facts: false\n  roles:\n    - {role_name}\n"),
        )
    };
    let pb = play("site.yml", "edge");
    let o = edgefleet()
        .args(["play", "--syntax-check", "-i"])
        .arg(&inv)
        .arg(&pb)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("syntax check passed"),
        "{err}"
    );
    // The test can fail: without the template, pre-flight says where it looked (exit 4, before contact).
    std::fs::remove_file(role.join("templates/config.toml.j2")).unwrap();
    let o = edgefleet()
        .args(["play", "--syntax-check", "-i"])
        .arg(&inv)
        .arg(&pb)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("could not find `config.toml.j2`"), "{err}");
    assert!(
        err.contains(&role.join("templates").display().to_string()),
        "{err}"
    );
}

/// `mode: 644` (unquoted) is refused before contact, at its line, with the fix.
#[test]
fn unquoted_octal_mode_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(dir.path(), "inv.yml", "all:\n  hosts:\n    edge-1: {}\n");
    let pb = write(
        dir.path(),
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - file:\n        path: /etc/x\n        mode: 644\n    - file:\n        path: /etc/y\n        mode: 0644\n",
    );
    let o = edgefleet()
        .args(["play", "--syntax-check", "-i"])
        .arg(&inv)
        .arg(&pb)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("site.yml:6:9: file: mode 644 is an unquoted number, which YAML reads as decimal (it would be mode 1204); quote it: \"0644\""),
        "{err}"
    );
    assert!(err.contains("1 problem found"), "{err}");
}
