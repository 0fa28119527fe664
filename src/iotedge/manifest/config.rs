//! config.toml and daemon.json in a lint run. config.toml goes through the one validator
//! `crate::iotedge::config` (the same the `iotedge_config` module uses, so the linter and the module give the
//! device's verdict in the same words): the TOML 1.0 parse IoT Edge 1.5 does (EF001), then every unknown key
//! (EF902: the device ignores them silently), then what `iotedge config apply` refuses (EF901), then the
//! production findings (EF101/EF103 for `[agent.config] image`, EF202 for `[agent.env] UpstreamProtocol`, EF903
//! for the rest). Each finding points at its key, found with `toml_edit`'s spans. daemon.json is judged as
//! `iotedge check`'s container-engine-logrotate judges it (EF951), using `crate::iotedge::daemon`.
//!
//! It must not hold config rules of its own (they belong to `iotedge::config`). Pure: no I/O.

use std::path::Path;

use serde_json::Value;

use crate::iotedge::config as cfg;
use crate::iotedge::daemon;

use super::finding::Finding;
use super::rules::Severity;
use super::source::{Json, Node, Pos};

/// 1-based line and column of a byte offset (one inside a character counts as that character's start: the
/// TOML parser's error spans can point into a multi-byte character).
pub(super) fn pos_of(text: &str, offset: usize) -> Pos {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    Pos { line, col }
}

/// Where a dotted key is in a TOML text (the deepest part of it that exists; line 0 when nothing does).
fn key_pos(doc: Option<&toml_edit::Document<&str>>, text: &str, key: &str) -> Pos {
    let Some(doc) = doc else {
        return Pos::default();
    };
    let mut best = Pos::default();
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    for part in key.split('.') {
        let Some((k, item)) = table.get_key_value(part) else {
            break;
        };
        if let Some(span) = k.span() {
            best = pos_of(text, span.start);
        }
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    best
}

/// Lint a config.toml. Returns `[agent.env] UpstreamProtocol` (where and what) when it is valid.
pub(super) fn config_toml(
    file: &Path,
    text: &str,
    out: &mut Vec<Finding>,
) -> Option<(Pos, String)> {
    let mut v = match cfg::parse_toml(text) {
        Ok(v) => v,
        Err(msg) => {
            let pos = toml_07::from_str::<toml_07::Table>(text)
                .err()
                .and_then(|e| e.span())
                .map(|s| pos_of(text, s.start))
                .unwrap_or(Pos { line: 1, col: 1 });
            let first = msg
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or(&msg)
                .trim()
                .to_string();
            out.push(Finding::new("EF001", file, pos, format!("not TOML as IoT Edge 1.5 reads it (`iotedge config apply` fails: could not parse config file): {first}")));
            return None;
        }
    };
    let doc = toml_edit::Document::parse(text).ok();
    let doc = doc.as_ref();
    let mut config = None;
    // Every unknown key (the device ignores them silently), then the first error that is not one.
    for _ in 0..100 {
        match cfg::from_value(&v) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(p) if p.message.starts_with("unknown key") => {
                out.push(Finding::new(
                    "EF902",
                    file,
                    key_pos(doc, text, &p.key),
                    p.to_string(),
                ));
                if !remove_key(&mut v, &p.key) {
                    break;
                }
            }
            Err(p) => {
                out.push(Finding::new(
                    "EF901",
                    file,
                    key_pos(doc, text, &p.key),
                    p.to_string(),
                ));
                break;
            }
        }
    }
    let c = config?;
    for p in cfg::validate(&c) {
        out.push(Finding::new(
            "EF901",
            file,
            key_pos(doc, text, &p.key),
            p.to_string(),
        ));
    }
    for f in cfg::production_findings(&c) {
        let (key, msg) = match f.split_once(": ") {
            Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
            _ => (String::new(), f.clone()),
        };
        let id = match key.as_str() {
            "agent.config.image" if msg.contains("debug image") => "EF103",
            "agent.config.image" => "EF101",
            "agent.env.UpstreamProtocol" => "EF202",
            _ => "EF903",
        };
        let shown = if key.is_empty() {
            msg
        } else {
            format!("`{key}`: {msg}")
        };
        let pos = if key.is_empty() {
            Pos { line: 1, col: 1 }
        } else {
            key_pos(doc, text, &key)
        };
        out.push(Finding::new(id, file, pos, shown));
    }
    let up = c
        .agent
        .as_ref()
        .and_then(|a| a.env.get("UpstreamProtocol"))?
        .as_str()?
        .to_string();
    cfg::UPSTREAM_PROTOCOLS
        .contains(&up.as_str())
        .then(|| (key_pos(doc, text, "agent.env.UpstreamProtocol"), up))
}

/// Remove a dotted key from JSON-like data; false when it is not there.
fn remove_key(v: &mut Value, key: &str) -> bool {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut cur = v;
    for p in parts {
        match cur.get_mut(p) {
            Some(x) => cur = x,
            None => return false,
        }
    }
    cur.as_object_mut().and_then(|o| o.remove(last)).is_some()
}

/// Lint a daemon.json (already parsed with positions). Returns whether it rotates every container's logs.
pub(super) fn daemon(file: &Path, root: &Node, out: &mut Vec<Finding>) -> bool {
    let driver = root.get("log-driver");
    let name = driver.and_then(Node::as_str);
    if matches!(name, Some("journald") | Some("none")) {
        return true;
    }
    let Some(name) = name else {
        out.push(Finding::new("EF951", file, driver.map(|n| n.pos).unwrap_or(root.pos), "no `log-driver` (or not a string): Docker's default json-file driver keeps logs forever; set \"log-driver\": \"local\" with log-opts max-size and max-file"));
        return false;
    };
    let opts = root.get("log-opts");
    let mut ok = true;
    for k in ["max-size", "max-file"] {
        match opts.and_then(|o| o.get(k)) {
            None => {
                ok = false;
                out.push(Finding::new("EF951", file, opts.map(|n| n.pos).unwrap_or(driver.map(|n| n.pos).unwrap_or(root.pos)), format!("log-driver `{name}` without `log-opts.{k}`: logs are not rotated; set \"{k}\" (e.g. {})", if k == "max-size" { "\"10m\"" } else { "\"3\"" })));
            }
            Some(n) => match &n.val {
                Json::Str(s) if k == "max-size" && !daemon::valid_size(s) => {
                    ok = false;
                    out.push(
                        Finding::new(
                            "EF951",
                            file,
                            n.pos,
                            format!("`log-opts.max-size` `{s}` is not a size like \"10m\""),
                        )
                        .severity(Severity::Error),
                    );
                }
                Json::Str(s) if k == "max-file" && s.parse::<u32>().map_or(true, |x| x == 0) => {
                    ok = false;
                    out.push(
                        Finding::new(
                            "EF951",
                            file,
                            n.pos,
                            format!("`log-opts.max-file` `{s}` is not a positive count like \"3\""),
                        )
                        .severity(Severity::Error),
                    );
                }
                Json::Str(_) => {}
                _ => {
                    ok = false;
                    out.push(Finding::new("EF951", file, n.pos, format!("`log-opts.{k}` is {}: Docker and iotedge check require a string (write \"3\", not 3)", n.kind())).severity(Severity::Error));
                }
            },
        }
    }
    ok
}
