//! Sizes IoT Edge can carry: createOptions must be a string holding a JSON object (EF601); a value over 512
//! characters must be split into `createOptions01..` and all parts together fit in 100 parts (EF602, edgeAgent's
//! TwinMaxValueSize = 512 and TwinValueMaxChunks = 100); the `$edgeAgent` desired properties within the 32 KB
//! module-twin limit, warning when less than 10% is left (EF603).
//!
//! Template files are generated into deployments by tools that split createOptions themselves, so EF602's
//! per-value length is not applied to them. Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::rules::Severity;
use super::source::{is_placeholder, Json};

/// edgeAgent's TwinMaxValueSize.
pub const MAX_VALUE: usize = 512;
/// edgeAgent's TwinValueMaxChunks.
pub const MAX_CHUNKS: usize = 100;
/// The module-twin desired-properties limit (bytes).
pub const TWIN_LIMIT: usize = 32 * 1024;

/// The size rules.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    for m in &ctx.dep.modules {
        let Some(settings) = m.node.get("settings") else {
            continue;
        };
        let Some(co) = settings.get("createOptions") else {
            continue;
        };
        let f =
            |id: &'static str, msg: String| Finding::new(id, ctx.file, co.pos, msg).module(&m.name);
        let Json::Str(first) = &co.val else {
            let written_later =
                matches!(co.val, Json::Placeholder(_)) || (ctx.template && co.is_obj());
            if !written_later {
                out.push(f("EF601", format!("module `{}`: createOptions is {}; in a deployment it must be a string holding the JSON object (stringify it; only template files may write the object)", m.name, co.kind())));
            }
            continue;
        };
        let Some((text, _)) = &m.create_text else {
            continue;
        };
        if is_placeholder(text) {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Err(e) => out.push(f("EF601", format!("module `{}`: createOptions is not JSON ({e}, counting from the start of the joined createOptions text); fix it", m.name))),
            Ok(v) if !v.is_object() => out.push(f("EF601", format!("module `{}`: createOptions must be a JSON object, not {}", m.name, kind(&v)))),
            Ok(_) => {}
        }
        if text.chars().count() > MAX_VALUE * MAX_CHUNKS {
            out.push(f("EF602", format!("module `{}`: createOptions is {} characters, more than IoT Edge can carry ({} parts of {MAX_VALUE}); shorten it", m.name, text.chars().count(), MAX_CHUNKS)));
        } else if !ctx.template {
            let mut parts = vec![("createOptions".to_string(), first.as_str(), co.pos)];
            for i in 1..MAX_CHUNKS {
                let k = format!("createOptions{i:02}");
                match settings.get(&k) {
                    Some(n) => parts.push((k, n.as_str().unwrap_or(""), n.pos)),
                    None => break,
                }
            }
            for (k, s, pos) in parts {
                if s.chars().count() > MAX_VALUE {
                    out.push(Finding::new("EF602", ctx.file, pos, format!("module `{}`: `{k}` is {} characters; a twin value holds at most {MAX_VALUE}: split it into createOptions01, createOptions02, ...", m.name, s.chars().count())).module(&m.name));
                }
            }
        }
    }
    if let Some(desired) = ctx.dep.agent_desired {
        let size = serde_json::to_string(&desired.to_value())
            .map(|s| s.len())
            .unwrap_or(0);
        let left = TWIN_LIMIT as i64 - size as i64;
        if left < 0 {
            out.push(Finding::new("EF603", ctx.file, ctx.dep.agent_pos, format!("the $edgeAgent desired properties are {size} bytes, {} over the {TWIN_LIMIT}-byte module-twin limit: IoT Hub refuses the deployment; shorten createOptions or move settings to module twins", -left)));
        } else if (left as usize) < TWIN_LIMIT / 10 {
            out.push(
                Finding::new("EF603", ctx.file, ctx.dep.agent_pos, format!("the $edgeAgent desired properties are {size} bytes: only {left} bytes are left below the {TWIN_LIMIT}-byte module-twin limit"))
                    .severity(Severity::Warning),
            );
        }
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}
