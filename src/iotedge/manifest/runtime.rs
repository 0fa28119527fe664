//! Rules on images and the upstream protocol: runtime images pinned to a full version (EF101, the same test
//! `iotedge_config` applies to `[agent.config] image`), images that are missing or do not parse (EF102), debug
//! images (EF103), debugger ports published (EF104); `UpstreamProtocol` present on both runtime modules (EF201),
//! valid (EF202), and the same on both and across the files of one run (EF203).
//!
//! It must not read files. Pure: no I/O.

use std::path::PathBuf;

use crate::iotedge::config::{image_finding, UPSTREAM_PROTOCOLS};

use super::finding::{Ctx, Finding};
use super::hostconfig::is_debug_tag;
use super::source::{is_placeholder, Pos};

/// Ports debuggers listen on: debugpy, Node inspector (legacy and current), vsdbg, delve, JDWP.
const DEBUG_PORTS: &[(u16, &str)] = &[
    (5678, "debugpy"),
    (5858, "the Node.js legacy debugger"),
    (9229, "the Node.js inspector"),
    (9230, "the Node.js inspector"),
    (4020, "vsdbg"),
    (4022, "vsdbg"),
    (4024, "vsdbg"),
    (2345, "delve"),
    (5005, "Java JDWP"),
];

/// Why an image reference does not parse, if it does not.
pub(super) fn image_error(image: &str) -> Option<String> {
    if image.trim().is_empty() {
        return Some("is empty".into());
    }
    if image.chars().any(char::is_whitespace) {
        return Some("contains whitespace".into());
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return Some(format!("has a malformed digest `@{d}`"));
        }
    }
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Some(format!("has an invalid tag `{t}`"));
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    // The first part is a registry host when it has a dot, a colon or is localhost.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        parts.remove(0);
    }
    for p in parts {
        let ok = !p.is_empty()
            && p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && !p.starts_with(['.', '_', '-'])
            && !p.ends_with(['.', '_', '-']);
        if !ok {
            return Some(format!(
                "has an invalid repository component `{p}` (lower-case letters, digits and . _ - only)"
            ));
        }
    }
    None
}

/// Images, debug images and debugger ports.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    for m in &ctx.dep.modules {
        let image = m.image();
        match image.map(|n| (n, n.as_str())) {
            None if !ctx.dep.layered || m.node.get("settings").is_some() => out.push(
                Finding::new(
                    "EF102",
                    ctx.file,
                    m.pos,
                    format!(
                        "module `{}` has no `settings.image`: give the image it runs",
                        m.name
                    ),
                )
                .module(&m.name),
            ),
            None => {}
            Some((n, None)) => out.push(
                Finding::new(
                    "EF102",
                    ctx.file,
                    n.pos,
                    format!(
                        "module `{}`: `settings.image` is {}, not a string",
                        m.name,
                        n.kind()
                    ),
                )
                .module(&m.name),
            ),
            Some((_, Some(s))) if is_placeholder(s) => {}
            Some((n, Some(s))) => {
                if let Some(e) = image_error(s) {
                    out.push(
                        Finding::new("EF102", ctx.file, n.pos, format!("module `{}`: image `{s}` {e}; give a valid `registry/repository:tag`", m.name))
                            .module(&m.name),
                    );
                } else if is_debug_tag(s) {
                    out.push(
                        Finding::new("EF103", ctx.file, n.pos, format!("module `{}`: `{s}` is a debug image; use the release image in production", m.name))
                            .module(&m.name),
                    );
                } else if m.system {
                    if let Some(f) = image_finding(s) {
                        out.push(
                            Finding::new("EF101", ctx.file, n.pos, format!("{}: {f}", m.name))
                                .module(&m.name),
                        );
                    }
                }
            }
        }
        let mut ports: Vec<String> = Vec::new();
        for path in [&["HostConfig", "PortBindings"][..], &["ExposedPorts"][..]] {
            if let Some(serde_json::Value::Object(o)) = m.create_at(path) {
                ports.extend(o.keys().cloned());
            }
        }
        ports.sort();
        ports.dedup();
        for p in ports {
            let num = p.split('/').next().and_then(|n| n.parse::<u16>().ok());
            if let Some((port, what)) = num.and_then(|n| DEBUG_PORTS.iter().find(|d| d.0 == n)) {
                out.push(
                    Finding::new("EF104", ctx.file, m.create_pos(), format!("module `{}` publishes port {port} ({what}'s debugger port): remove the binding in production", m.name))
                        .module(&m.name),
                );
            }
        }
    }
}

/// `UpstreamProtocol` on edgeAgent and edgeHub: present, valid, the same. Returns the values found (for the
/// cross-file comparison).
pub(super) fn upstream(ctx: &Ctx, out: &mut Vec<Finding>) -> Vec<(PathBuf, Pos, String)> {
    let mut found: Vec<(PathBuf, Pos, String)> = Vec::new();
    for name in ["edgeAgent", "edgeHub"] {
        let Some(m) = ctx.dep.modules.iter().find(|m| m.system && m.name == name) else {
            continue;
        };
        match m.env("UpstreamProtocol") {
            None if ctx.dep.layered => {}
            None => out.push(
                Finding::new("EF201", ctx.file, m.pos, format!("{name} has no `env.UpstreamProtocol`: set it (Amqp, AmqpWs, Mqtt or MqttWs) on edgeAgent and edgeHub, the same as config.toml's [agent.env]"))
                    .module(name),
            ),
            Some(n) => match n.as_str() {
                Some(s) if is_placeholder(s) => {}
                Some(s) if UPSTREAM_PROTOCOLS.contains(&s) => {
                    found.push((ctx.file.to_path_buf(), n.pos, s.to_string()))
                }
                _ => out.push(
                    Finding::new("EF202", ctx.file, n.pos, format!("{name}: UpstreamProtocol {} is not one of {} (case-sensitive)", show(n), UPSTREAM_PROTOCOLS.join(", ")))
                        .module(name),
                ),
            },
        }
    }
    if let [a, b] = found.as_slice() {
        if a.2 != b.2 {
            out.push(Finding::new(
                "EF203",
                ctx.file,
                b.1,
                format!("edgeHub's UpstreamProtocol `{}` differs from edgeAgent's `{}` (line {}): use one value for both", b.2, a.2, a.1.line),
            ));
        }
    }
    found
}

fn show(n: &super::source::Node) -> String {
    match n.as_str() {
        Some(s) => format!("`{s}`"),
        None => n.kind().to_string(),
    }
}

/// Across files: every UpstreamProtocol of the run (manifests and config.toml `[agent.env]`) must agree.
pub(super) fn cross_file(found: &[(PathBuf, Pos, String)], out: &mut Vec<Finding>) {
    let Some(first) = found.first() else {
        return;
    };
    let mut reported = std::collections::HashSet::new();
    for f in found.iter().skip(1) {
        if f.2 != first.2 && f.0 != first.0 && reported.insert(f.0.clone()) {
            out.push(Finding::new(
                "EF203",
                &f.0,
                f.1,
                format!(
                    "UpstreamProtocol `{}` here differs from `{}` in {}:{}: edgeAgent starts with config.toml's value and switches to the deployment's, so use one value in every file",
                    f.2,
                    first.2,
                    first.0.display(),
                    first.1.line
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(
            image_error("mcr.microsoft.com/azureiotedge-hub:1.5.21"),
            None
        );
        assert_eq!(image_error("localhost:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), None);
        assert!(image_error("").is_some());
        assert!(image_error("Foo/Bar:1").unwrap().contains("`Foo`"));
        assert!(image_error("a:").unwrap().contains("tag"));
        assert!(image_error("a b").is_some());
    }
}
