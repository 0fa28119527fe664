//! One lint run over several files: tells each file's kind by its content, runs the rule groups on it, then the
//! cross-file rules (UpstreamProtocol across manifests and config.toml; per-module log limits OR a daemon.json
//! with log limits in the same run), then applies waivers. Findings come out sorted by file and position.
//!
//! It must not read files or print: the command hands in the texts (and any waiver files) and renders the
//! findings. Pure: no I/O.

use std::path::{Path, PathBuf};

use super::config;
use super::deployment;
use super::finding::{Ctx, Finding, Input, Kind, Outcome};
use super::source::{self, Pos, Remark};
use super::waivers::{self, WaiverFile};
use super::{edgehub, modules, runtime, secrets, size, storage, update};

/// Keys that mark a JSON object as a Docker daemon.json.
const DAEMON_KEYS: &[&str] = &[
    "log-driver",
    "log-opts",
    "dns",
    "data-root",
    "registry-mirrors",
    "insecure-registries",
    "storage-driver",
    "default-address-pools",
    "live-restore",
    "features",
    "exec-opts",
    "bip",
    "ipv6",
];

fn is_template(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".template.json"))
}

fn looks_like_json(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("toml") => false,
        _ => {
            let t = text.trim_start_matches('\u{feff}').trim_start();
            t.starts_with('{') || t.starts_with('[') || t.starts_with("//") || t.starts_with("/*")
        }
    }
}

/// Lint `inputs` together; `waiver_files` are the `.edgefleet-lint.yml` files found next to them.
pub fn lint(inputs: &[Input], waiver_files: &[WaiverFile]) -> Outcome {
    let mut out = Vec::new();
    let mut kinds = Vec::new();
    let mut parsed = Vec::new();
    // Pass 1: parse and classify.
    for inp in inputs {
        let file = inp.path.as_path();
        if !looks_like_json(file, &inp.text) {
            kinds.push((inp.path.clone(), Kind::Config));
            parsed.push(None);
            continue;
        }
        let template = is_template(file);
        match source::parse(&inp.text, template) {
            Err(e) => {
                out.push(Finding::new(
                    "EF001",
                    file,
                    e.pos,
                    format!("not valid JSON: {}", e.message),
                ));
                kinds.push((inp.path.clone(), Kind::Unknown));
                parsed.push(None);
            }
            Ok(p) => {
                for r in &p.remarks {
                    out.push(match r {
                        Remark::DuplicateKey(at, first, key) => Finding::new(
                            "EF002",
                            file,
                            *at,
                            format!("duplicate key `{key}` (first at line {}, column {}): only one of them is kept; merge them", first.line, first.col),
                        ),
                        Remark::Bom => Finding::new(
                            "EF003",
                            file,
                            Pos { line: 1, col: 1 },
                            "the file starts with a UTF-8 byte-order mark, which strict JSON readers (az CLI) refuse; save it as UTF-8 without BOM",
                        ),
                        Remark::Comment(at) => Finding::new(
                            "EF004",
                            file,
                            *at,
                            "a comment in a JSON file: only `*.template.json` files may hold comments; remove it",
                        ),
                    });
                }
                let kind = if deployment::modules_content(&p.root).is_some() {
                    Kind::Manifest { template }
                } else if p
                    .root
                    .members()
                    .iter()
                    .any(|m| DAEMON_KEYS.contains(&m.key.as_str()))
                    || (p.root.is_obj()
                        && p.root.members().is_empty()
                        && file.ends_with("daemon.json"))
                {
                    Kind::Daemon
                } else {
                    out.push(Finding::new(
                        "EF005",
                        file,
                        p.root.pos,
                        "neither a deployment manifest (no `modulesContent` or `$edgeAgent`) nor a daemon.json (no Docker daemon keys); pass deployment manifests, daemon.json or config.toml",
                    ));
                    Kind::Unknown
                };
                kinds.push((inp.path.clone(), kind));
                parsed.push(Some(p));
            }
        }
    }
    // Pass 2: daemon.json and config.toml first (the manifests' cross-file rules need them).
    let mut daemon_log_limits = false;
    let mut protocols: Vec<(PathBuf, Pos, String)> = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        match kinds[i].1 {
            Kind::Daemon => {
                if let Some(p) = &parsed[i] {
                    daemon_log_limits |= config::daemon(&inp.path, &p.root, &mut out);
                }
            }
            Kind::Config => {
                if let Some(up) = config::config_toml(&inp.path, &inp.text, &mut out) {
                    protocols.push((inp.path.clone(), up.0, up.1));
                }
            }
            _ => {}
        }
    }
    // Pass 3: manifests.
    for (i, inp) in inputs.iter().enumerate() {
        let (Kind::Manifest { template }, Some(p)) = (kinds[i].1, &parsed[i]) else {
            continue;
        };
        let Some(mc) = deployment::modules_content(&p.root) else {
            continue;
        };
        let dep = deployment::read(mc, template);
        let ctx = Ctx {
            file: &inp.path,
            template,
            dep: &dep,
            daemon_log_limits,
        };
        if !dep.has_agent || (dep.agent_desired.is_none() && !dep.layered) {
            out.push(Finding::new(
                "EF010",
                &inp.path,
                dep.agent_pos,
                "no `$edgeAgent` with `properties.desired`: IoT Edge has nothing to deploy; add the `$edgeAgent` section (runtime, systemModules, modules)",
            ));
            continue;
        }
        runtime::check(&ctx, &mut out);
        protocols.extend(runtime::upstream(&ctx, &mut out));
        edgehub::check(&ctx, &mut out);
        storage::check(&ctx, &mut out);
        modules::check(&ctx, &mut out);
        size::check(&ctx, &mut out);
        secrets::check(&ctx, &mut out);
        update::check(&ctx, &mut out);
    }
    runtime::cross_file(&protocols, &mut out);
    // Waivers.
    let inline: Vec<(PathBuf, &source::Parsed)> = inputs
        .iter()
        .zip(&parsed)
        .filter_map(|(inp, p)| p.as_ref().map(|p| (inp.path.clone(), p)))
        .collect();
    waivers::apply(waiver_files, &inline, &mut out);
    out.sort_by(|a, b| {
        (&a.file, a.pos.line, a.pos.col, a.rule).cmp(&(&b.file, b.pos.line, b.pos.col, b.rule))
    });
    Outcome {
        findings: out,
        kinds,
    }
}
