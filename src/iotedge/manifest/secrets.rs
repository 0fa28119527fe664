//! Credentials and secrets: registry credentials that look like an admin account (EF801: user `admin`, or an
//! Azure Container Registry's admin user, which is named after the registry), and secrets written in clear
//! (EF802): registry passwords, and env values (module `env` or createOptions `Env`) whose name says secret or
//! whose value is a connection string with a key. A `${VAR}` placeholder is not a secret in clear.
//!
//! Messages never contain the secret's value. Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::source::{is_placeholder, Node};

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "connectionstring",
    "connection_string",
    "sharedaccesskey",
    "privatekey",
    "private_key",
    "sas_key",
    "saskey",
];

/// Does this env name, with this value, hold a secret in clear?
pub(super) fn secret_in_clear(name: &str, value: &str) -> bool {
    if value.trim().is_empty() || is_placeholder(value) {
        return false;
    }
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w)) || value.contains("SharedAccessKey=")
}

/// The credential and secret rules.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    if let Some(creds) = ctx
        .dep
        .runtime
        .and_then(|r| r.path(&["settings", "registryCredentials"]))
    {
        for c in creds.members() {
            let user = c.value.get("username");
            let address = c.value.get("address").and_then(Node::as_str).unwrap_or("");
            if let Some(u) = user.and_then(Node::as_str).filter(|u| !is_placeholder(u)) {
                let registry = address.split('.').next().unwrap_or("");
                let acr_admin =
                    address.ends_with(".azurecr.io") && u.eq_ignore_ascii_case(registry);
                if u.eq_ignore_ascii_case("admin") || acr_admin {
                    out.push(Finding::new("EF801", ctx.file, user.map(|n| n.pos).unwrap_or(c.key_pos), format!(
                        "registry credential `{}` for `{address}` looks like the registry's admin user (`{u}`), which can push and delete images: use a token or service principal with pull rights only", c.key)));
                }
            }
            if let Some(p) = c.value.get("password") {
                if p.as_str()
                    .is_some_and(|s| !s.is_empty() && !is_placeholder(s))
                {
                    out.push(Finding::new("EF802", ctx.file, p.pos, format!(
                        "registry credential `{}` has its password in clear: use a `${{VAR}}` placeholder in a deployment.template.json filled at release time from a secret store", c.key)));
                }
            }
        }
    }
    for m in &ctx.dep.modules {
        for e in m.node.get("env").map(Node::members).unwrap_or(&[]) {
            if let Some(v) = e.value.get("value") {
                if v.as_str().is_some_and(|s| secret_in_clear(&e.key, s)) {
                    out.push(Finding::new("EF802", ctx.file, v.pos, format!(
                        "module `{}`: env `{}` holds a secret in clear: use a `${{VAR}}` placeholder filled at release time, or give the module its secret another way", m.name, e.key)).module(&m.name));
                }
            }
        }
        let envs = m
            .create_at(&["Env"])
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for e in envs.iter().filter_map(|v| v.as_str()) {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            if secret_in_clear(k, v) {
                out.push(Finding::new("EF802", ctx.file, m.create_pos(), format!(
                    "module `{}`: createOptions Env `{k}` holds a secret in clear: use a `${{VAR}}` placeholder filled at release time", m.name)).module(&m.name));
            }
        }
    }
}
