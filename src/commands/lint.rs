//! `edgefleet lint PATH...`: reads the files (a directory stands for its `*.json` and `*.toml` files) and the
//! `.edgefleet-lint.yml` waiver files next to them, hands them to `iotedge::manifest::lint`, and renders the
//! findings as rustc-like text (with the source line and a caret), one JSON document, or SARIF 2.1.0. Also
//! `--explain RULE` from the rule table.
//!
//! Exit codes: 0 when no unwaived finding is at deny level (errors; warnings too under `--deny warnings`;
//! notes never), 30 otherwise, 4 when a file cannot be read, 5 for an unknown `--explain` rule. It must not
//! hold rules: they are `iotedge::manifest`'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::{LintArgs, LintDeny, LintFormat};
use crate::diag::{Diagnostic, Diagnostics};
use crate::error::{AppError, ExitCode};
use crate::iotedge::manifest::{
    lint, rule, Finding, Input, Kind, Outcome, Severity, WaiverFile, RULES, WAIVER_FILE,
};

/// Run `edgefleet lint`.
pub fn run(a: LintArgs) -> Result<ExitCode, AppError> {
    if let Some(r) = &a.explain {
        let r = rule(r).ok_or_else(|| {
            AppError::Usage(format!(
                "no lint rule `{r}`; rules are {}",
                RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
            ))
        })?;
        println!(
            "{} ({}): {}\nchecklist: {}\n\n{}",
            r.id,
            r.name,
            r.severity.as_str(),
            r.checklist,
            r.explain
        );
        return Ok(ExitCode::Ok);
    }
    let (inputs, waivers) = read_inputs(&a.paths)?;
    let outcome = lint(&inputs, &waivers);
    let deny = |f: &Finding| {
        f.waived.is_none()
            && (f.severity == Severity::Error
                || (f.severity == Severity::Warning && a.deny == Some(LintDeny::Warnings)))
    };
    let denied = outcome.findings.iter().filter(|f| deny(f)).count();
    let sources: HashMap<&Path, &str> = inputs
        .iter()
        .map(|i| (i.path.as_path(), i.text.as_str()))
        .chain(waivers.iter().map(|w| (w.path.as_path(), w.text.as_str())))
        .collect();
    let out = match a.format {
        LintFormat::Text => text(&outcome, &sources, denied),
        LintFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json_doc(&outcome, denied))
                .map_err(|e| AppError::Other(e.to_string()))?;
            s.push('\n');
            s
        }
        LintFormat::Sarif => {
            let mut s = serde_json::to_string_pretty(&sarif(&outcome))
                .map_err(|e| AppError::Other(e.to_string()))?;
            s.push('\n');
            s
        }
    };
    // Source excerpts quote the files: a proxy password in config.toml (registered when it was validated) is masked.
    print!("{}", crate::redact::redact(&out));
    Ok(if denied > 0 {
        ExitCode::LintFindings
    } else {
        ExitCode::Ok
    })
}

/// Read every file (directories: their `*.json` and `*.toml`, sorted) and each directory's waiver file.
fn read_inputs(paths: &[PathBuf]) -> Result<(Vec<Input>, Vec<WaiverFile>), AppError> {
    let mut files = Vec::new();
    let mut problems = Diagnostics::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut found: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| {
                            f.is_file()
                                && matches!(
                                    f.extension().and_then(|e| e.to_str()),
                                    Some("json" | "toml")
                                )
                        })
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        problems.push(Diagnostic::file(
                            p,
                            "the directory has no *.json or *.toml file to lint",
                        ));
                    }
                    files.extend(found);
                }
                Err(e) => problems.push(Diagnostic::file(
                    p,
                    format!("cannot read the directory: {e}"),
                )),
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut inputs = Vec::new();
    for f in files {
        match std::fs::read(&f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => inputs.push(Input { path: f, text }),
                Err(_) => problems.push(Diagnostic::file(&f, "not UTF-8 text: save it as UTF-8")),
            },
            Err(e) => problems.push(Diagnostic::file(&f, format!("cannot read it: {e}"))),
        }
    }
    let mut waivers: Vec<WaiverFile> = Vec::new();
    for i in &inputs {
        let w = i.path.parent().unwrap_or(Path::new("")).join(WAIVER_FILE);
        if waivers.iter().any(|x| x.path == w) {
            continue;
        }
        match std::fs::read_to_string(&w) {
            Ok(text) => waivers.push(WaiverFile { path: w, text }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(Diagnostic::file(
                &w,
                format!("cannot read the waiver file: {e}"),
            )),
        }
    }
    problems
        .into_result((inputs, waivers))
        .map_err(AppError::Load)
}

fn counts(o: &Outcome) -> (usize, usize, usize, usize) {
    let live = |s: Severity| {
        o.findings
            .iter()
            .filter(|f| f.waived.is_none() && f.severity == s)
            .count()
    };
    let waived = o.findings.iter().filter(|f| f.waived.is_some()).count();
    (
        live(Severity::Error),
        live(Severity::Warning),
        live(Severity::Note),
        waived,
    )
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// rustc-like text: `warning[EF101]: message`, ` --> file:line:col`, the source line and a caret.
fn text(o: &Outcome, sources: &HashMap<&Path, &str>, denied: usize) -> String {
    let mut s = String::new();
    for f in &o.findings {
        let waived = if f.waived.is_some() { " (waived)" } else { "" };
        s.push_str(&format!(
            "{}[{}]{waived}: {}\n",
            f.severity.as_str(),
            f.rule,
            f.message
        ));
        let loc = match (f.pos.line, f.pos.col) {
            (0, _) => f.file.display().to_string(),
            (l, c) => format!("{}:{l}:{c}", f.file.display()),
        };
        s.push_str(&format!("  --> {loc}\n"));
        if let (Some(src), true) = (sources.get(f.file.as_path()), f.pos.line > 0) {
            let snip = crate::diag::snippet(src, f.pos.line as u64, f.pos.col as u64);
            for l in snip.lines() {
                s.push_str(&format!("  {l}\n"));
            }
        }
        if let Some(r) = rule(f.rule) {
            s.push_str(&format!("  = checklist: {} ({})\n", r.checklist, r.name));
        }
        if let Some(reason) = &f.waived {
            s.push_str(&format!("  = waived: {reason}\n"));
        }
        s.push('\n');
    }
    let (e, w, n, waived) = counts(o);
    s.push_str(&format!(
        "{} linted: {}, {}, {}, {} waived; {} at deny level\n",
        plural(o.kinds.len(), "file"),
        plural(e, "error"),
        plural(w, "warning"),
        plural(n, "note"),
        waived,
        denied
    ));
    s
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Manifest { template: true } => "deployment-template",
        Kind::Manifest { template: false } => "deployment",
        Kind::Daemon => "daemon.json",
        Kind::Config => "config.toml",
        Kind::Unknown => "unknown",
    }
}

/// The JSON document (`--format json`).
fn json_doc(o: &Outcome, denied: usize) -> Value {
    let (e, w, n, waived) = counts(o);
    json!({
        "version": 1,
        "files": o.kinds.iter().map(|(p, k)| json!({"path": p.display().to_string(), "kind": kind_name(*k)})).collect::<Vec<_>>(),
        "findings": o.findings.iter().map(|f| json!({
            "rule": f.rule,
            "name": rule(f.rule).map(|r| r.name),
            "severity": f.severity.as_str(),
            "checklist": rule(f.rule).map(|r| r.checklist),
            "file": f.file.display().to_string(),
            "line": f.pos.line,
            "column": f.pos.col,
            "message": f.message,
            "module": f.module,
            "waived": f.waived.is_some(),
            "waiver_reason": f.waived,
        })).collect::<Vec<_>>(),
        "summary": {"errors": e, "warnings": w, "notes": n, "waived": waived, "denied": denied},
    })
}

/// A relative URI reference for a path (SARIF `artifactLocation.uri`).
fn uri(p: &Path) -> String {
    let s = p.display().to_string().replace('\\', "/");
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// SARIF 2.1.0 (`--format sarif`): one run, the rule table as `tool.driver.rules`, waived findings as results
/// with a suppression carrying the reason.
fn sarif(o: &Outcome) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.checklist},
                "fullDescription": {"text": r.explain},
                "help": {"text": r.explain},
                "defaultConfiguration": {"level": r.severity.as_str()},
                "properties": {"checklist": r.checklist},
            })
        })
        .collect();
    let results: Vec<Value> = o
        .findings
        .iter()
        .map(|f| {
            let mut phys = json!({"artifactLocation": {"uri": uri(&f.file)}});
            if f.pos.line > 0 {
                phys["region"] = json!({"startLine": f.pos.line, "startColumn": f.pos.col.max(1)});
            }
            let mut r = json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": f.severity.as_str(),
                "message": {"text": f.message},
                "locations": [{"physicalLocation": phys}],
            });
            if let Some(reason) = &f.waived {
                r["suppressions"] = json!([{"kind": "external", "justification": reason}]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "edgefleet",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "artifacts": o.kinds.iter().map(|(p, _)| json!({"location": {"uri": uri(p)}})).collect::<Vec<_>>(),
            "results": results,
        }],
    })
}
