//! Connection variables: a host's `ansible_*` connection variables turned into a validated [`ConnSpec`].
//!
//! Owns the Ansible names and their legacy aliases (`ansible_ssh_host`/`_port`/`_user`/`_pass` win over the
//! new names when both are set, as in Ansible), type checks with messages naming the host and the variable,
//! shell-style splitting of `ansible_ssh_common_args`/`ansible_ssh_extra_args`, and registering passwords with
//! the redactor. It must not render templates (callers pass already-rendered values) and must never put a
//! secret value in an error message.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::py;
use crate::diag::Diagnostic;
use crate::pycompat;
use crate::transport::ConnSpec;
use crate::vars::Vars;

fn bad(host: &str, var: &str, problem: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::plain(format!("host '{host}': variable {var}: {problem}"))
}

/// The first of `names` that is set (not null), with the name it was found under.
fn pick<'a>(vars: &'a Vars, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
    names
        .iter()
        .find_map(|n| vars.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A scalar as text (numbers are accepted where Ansible's `type: string` options accept them).
fn text(
    host: &str,
    vars: &Vars,
    names: &[&'static str],
    secret: bool,
) -> Result<Option<String>, Diagnostic> {
    let Some((name, v)) = pick(vars, names) else {
        return Ok(None);
    };
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(bad(
                host,
                name,
                format!("expected a string, got {}", describe(other)),
            ));
        }
    };
    if secret {
        crate::redact::register(&s);
    }
    Ok(Some(s))
}

/// Ansible's `boolean()`: true/false, yes/no, on/off, y/n, t/f, 1/0 (strings case-insensitive).
fn boolean(host: &str, name: &str, v: &Value) -> Result<bool, Diagnostic> {
    let err = || {
        bad(
            host,
            name,
            format!(
                "expected a boolean (true/false, yes/no), got {}",
                pycompat::repr_value(v)
            ),
        )
    };
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Ok(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Ok(false),
            _ => Err(err()),
        },
        _ => Err(err()),
    }
}

fn opt_bool(host: &str, vars: &Vars, names: &[&'static str]) -> Result<Option<bool>, Diagnostic> {
    pick(vars, names)
        .map(|(n, v)| boolean(host, n, v))
        .transpose()
}

fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(p)
}

/// Resolve a host's connection parameters from its merged (and already templated) variables.
///
/// Names: `ansible_connection` (ssh, the default, or local), `ansible_host` / `ansible_ssh_host`,
/// `ansible_port` / `ansible_ssh_port` (1..65535), `ansible_user` / `ansible_ssh_user`, `ansible_password` /
/// `ansible_ssh_pass`, `ansible_ssh_private_key_file` / `ansible_private_key_file`,
/// `ansible_ssh_private_key_passphrase`, `ansible_ssh_common_args` + `ansible_ssh_extra_args` (split like a
/// shell would), `ansible_ssh_jump`, `ansible_ssh_timeout` / `ansible_timeout` (seconds), `ansible_become`,
/// `ansible_become_user`, `ansible_become_password` / `ansible_become_pass`, `ansible_become_method` (sudo
/// only), `ansible_ssh_host_key_checking` / `ansible_host_key_checking`. Secret values are registered with the
/// redactor and never appear in errors.
pub fn conn_spec(host: &str, vars: &Vars) -> Result<ConnSpec, Diagnostic> {
    let connection = match text(host, vars, &["ansible_connection"], false)? {
        None => "ssh".to_string(),
        Some(c) => match c.trim_start_matches("ansible.builtin.") {
            "ssh" | "smart" | "paramiko" | "paramiko_ssh" => "ssh".to_string(),
            "local" => "local".to_string(),
            other => {
                return Err(bad(
                    host,
                    "ansible_connection",
                    format!(
                        "unsupported connection '{other}' (edgefleet connects with ssh or local)"
                    ),
                ))
            }
        },
    };
    let address = match text(host, vars, &["ansible_ssh_host", "ansible_host"], false)? {
        Some(a) => {
            let a = a.trim().to_string();
            if a.is_empty() || a.contains(char::is_whitespace) {
                let name = pick(vars, &["ansible_ssh_host", "ansible_host"])
                    .map_or("ansible_host", |p| p.0);
                return Err(bad(
                    host,
                    name,
                    format!("'{a}' is not a host name or address"),
                ));
            }
            a
        }
        None => host.to_string(),
    };
    let port = match pick(vars, &["ansible_ssh_port", "ansible_port"]) {
        None => None,
        Some((name, v)) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => super::ranges::py_int(s),
                _ => None,
            };
            match n {
                Some(p) if (1..=65535).contains(&p) => Some(p as u16),
                _ => {
                    return Err(bad(
                        host,
                        name,
                        format!(
                            "expected a port number 1..65535, got {}",
                            pycompat::repr_value(v)
                        ),
                    ))
                }
            }
        }
    };
    let user = text(host, vars, &["ansible_ssh_user", "ansible_user"], false)?;
    let password = text(
        host,
        vars,
        &[
            "ansible_ssh_pass",
            "ansible_ssh_password",
            "ansible_password",
        ],
        true,
    )?;
    let private_key_file = text(
        host,
        vars,
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
        false,
    )?
    .map(|p| expand_home(&p));
    let private_key_passphrase = text(host, vars, &["ansible_ssh_private_key_passphrase"], true)?;
    let mut ssh_args = Vec::new();
    for name in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(s) = text(host, vars, &[name], false)? {
            let parts = py::shlex_split(&s, false)
                .map_err(|e| bad(host, name, format!("cannot split into arguments: {e}")))?;
            ssh_args.extend(parts);
        }
    }
    let jump = text(host, vars, &["ansible_ssh_jump"], false)?.filter(|j| !j.trim().is_empty());
    let connect_timeout = match pick(vars, &["ansible_ssh_timeout", "ansible_timeout"]) {
        None => None,
        Some((name, v)) => {
            let secs = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match secs {
                Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
                    Some(Duration::from_secs_f64(s))
                }
                _ => {
                    return Err(bad(
                        host,
                        name,
                        format!(
                            "expected a timeout in seconds (> 0), got {}",
                            pycompat::repr_value(v)
                        ),
                    ))
                }
            }
        }
    };
    let become_ = opt_bool(host, vars, &["ansible_become"])?.unwrap_or(false);
    if let Some(m) = text(host, vars, &["ansible_become_method"], false)? {
        if m.trim_start_matches("ansible.builtin.") != "sudo" {
            return Err(bad(
                host,
                "ansible_become_method",
                format!("unsupported become method '{m}' (edgefleet becomes with sudo)"),
            ));
        }
    }
    let become_user = text(host, vars, &["ansible_become_user"], false)?;
    let become_password = text(
        host,
        vars,
        &["ansible_become_password", "ansible_become_pass"],
        true,
    )?;
    let host_key_checking = opt_bool(
        host,
        vars,
        &["ansible_ssh_host_key_checking", "ansible_host_key_checking"],
    )?;
    Ok(ConnSpec {
        name: host.to_string(),
        connection,
        address,
        port,
        user,
        password,
        private_key_file,
        private_key_passphrase,
        ssh_args,
        jump,
        connect_timeout,
        become_,
        become_user,
        become_password,
        host_key_checking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn defaults() {
        let c = conn_spec("edge-01", &Vars::new()).unwrap();
        assert_eq!(c.connection, "ssh");
        assert_eq!(c.address, "edge-01");
        assert_eq!(c.port, None);
        assert!(!c.become_);
    }

    #[test]
    fn full_and_aliases() {
        let c = conn_spec(
            "edge-01",
            &vars(json!({
                "ansible_host": "10.0.0.5", "ansible_ssh_host": "10.0.0.6",
                "ansible_port": "2222", "ansible_user": "ops",
                "ansible_password": "pw-canary-123",
                "ansible_ssh_private_key_file": "/keys/id",
                "ansible_ssh_common_args": "-o 'ProxyCommand=ssh -W %h:%p bastion'",
                "ansible_ssh_extra_args": "-o StrictHostKeyChecking=no",
                "ansible_ssh_jump": "bastion:22",
                "ansible_ssh_timeout": 7,
                "ansible_become": "yes", "ansible_become_user": "root",
                "ansible_become_pass": "sudo-canary-456",
                "ansible_host_key_checking": "False",
            })),
        )
        .unwrap();
        assert_eq!(c.address, "10.0.0.6");
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.user.as_deref(), Some("ops"));
        assert_eq!(c.password.as_deref(), Some("pw-canary-123"));
        assert_eq!(
            c.ssh_args,
            [
                "-o",
                "ProxyCommand=ssh -W %h:%p bastion",
                "-o",
                "StrictHostKeyChecking=no"
            ]
        );
        assert_eq!(c.jump.as_deref(), Some("bastion:22"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(7)));
        assert!(c.become_);
        assert_eq!(c.become_password.as_deref(), Some("sudo-canary-456"));
        assert_eq!(c.host_key_checking, Some(false));
        assert!(crate::redact::contains_secret("x sudo-canary-456 y"));
    }

    #[test]
    fn validation_names_host_and_variable() {
        let cases = [
            (json!({"ansible_port": 0}), "ansible_port"),
            (json!({"ansible_port": 70000}), "ansible_port"),
            (json!({"ansible_ssh_port": "ssh"}), "ansible_ssh_port"),
            (json!({"ansible_become": "maybe"}), "ansible_become"),
            (json!({"ansible_connection": "winrm"}), "ansible_connection"),
            (json!({"ansible_user": ["a"]}), "ansible_user"),
            (json!({"ansible_ssh_timeout": -1}), "ansible_ssh_timeout"),
            (
                json!({"ansible_ssh_common_args": "-o 'x"}),
                "ansible_ssh_common_args",
            ),
            (json!({"ansible_host": "a b"}), "ansible_host"),
            (
                json!({"ansible_become_method": "su"}),
                "ansible_become_method",
            ),
        ];
        for (v, name) in cases {
            let e = conn_spec("edge-09", &vars(v.clone())).unwrap_err();
            assert!(
                e.message
                    .starts_with(&format!("host 'edge-09': variable {name}: ")),
                "{v}: {e}"
            );
        }
        let e = conn_spec("h", &vars(json!({"ansible_password": ["secret-in-list"]}))).unwrap_err();
        assert!(!e.message.contains("secret-in-list"), "{e}");
    }
}
