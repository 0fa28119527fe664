//! `command` and `shell`: run a command on the device.
//!
//! `command` splits its string like a shell would and quotes every word (no shell features); `shell` runs the
//! string with `/bin/sh -c`. Both are skipped in check mode (they cannot predict their effect) unless the task
//! says `check_mode: false`, and honour `creates`/`removes` (relative to `chdir`) like Ansible: a command that
//! does not run for them is ok (not skipped) with `rc` 0 and Ansible's "skipped, since ..." output. In the
//! free form (`command: make install chdir=/src creates=/usr/bin/x`) the words `creates=`, `removes=`, `chdir=`,
//! `executable=`, `stdin=`, `stdin_add_newline=`, `strip_empty_ends=` and `warn=` are options, as in Ansible.
//! Secrets belong on `stdin`, never in the command.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::shell::split_words;

/// `command` (shell = false) or `shell` (shell = true).
pub struct Command {
    /// Run through /bin/sh?
    pub shell: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    cmd: Option<String>,
    /// The free form, options still inside (see [`Args::resolve`]).
    #[serde(default, rename = "_raw_params")]
    raw_params: Option<String>,
    #[serde(default)]
    argv: Option<Vec<String>>,
    #[serde(default)]
    chdir: Option<String>,
    #[serde(default)]
    creates: Option<String>,
    #[serde(default)]
    removes: Option<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default = "yes")]
    stdin_add_newline: bool,
    #[serde(default = "yes")]
    strip_empty_ends: bool,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    warn: Option<bool>,
}

fn yes() -> bool {
    true
}

/// The options the free form may carry as `key=value` words (Ansible's `parse_kv(check_raw=True)` list).
const FREE_FORM_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// Split the free form into its command and its `key=value` options. Words are separated by unquoted
/// whitespace outside `{{ }}`; an option word is removed from the command text (with the space before it), the
/// rest of the text is kept as written (newlines of a multi-line script included).
fn split_free_form(s: &str) -> (String, Vec<(String, String)>) {
    let b = s.as_bytes();
    let mut words: Vec<(usize, usize)> = Vec::new();
    let (mut i, mut start, mut quote, mut depth) = (0usize, None::<usize>, None::<u8>, 0usize);
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' && q == b'"' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else if c == b'{' && b.get(i + 1) == Some(&b'{') {
            depth += 1;
            start.get_or_insert(i);
            i += 1;
        } else if c == b'}' && b.get(i + 1) == Some(&b'}') && depth > 0 {
            depth -= 1;
            i += 1;
        } else if depth == 0 && c.is_ascii_whitespace() {
            if let Some(st) = start.take() {
                words.push((st, i));
            }
        } else {
            start.get_or_insert(i);
            if depth == 0 && (c == b'"' || c == b'\'') {
                quote = Some(c);
            }
        }
        i += 1;
    }
    if let Some(st) = start {
        words.push((st, b.len()));
    }
    let mut opts = Vec::new();
    let mut cmd = String::new();
    let mut last = 0;
    for (st, en) in words {
        let w = &s[st..en];
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        if !FREE_FORM_OPTIONS.contains(&k) {
            continue;
        }
        let unquoted = match v.as_bytes() {
            [q @ (b'"' | b'\''), .., e] if q == e && v.len() >= 2 => &v[1..v.len() - 1],
            _ => v,
        };
        opts.push((k.to_string(), unquoted.to_string()));
        // Drop the word and the whitespace before it.
        let cut = s[last..st].trim_end_matches([' ', '\t']).len() + last;
        cmd.push_str(&s[last..cut]);
        last = en;
    }
    cmd.push_str(&s[last..]);
    (cmd.trim().to_string(), opts)
}

/// The arguments with the free form's options applied.
struct Resolved {
    cmd: Option<String>,
    argv: Option<Vec<String>>,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    stdin: Option<String>,
    stdin_add_newline: bool,
    strip_empty_ends: bool,
    executable: Option<String>,
}

fn truthy(v: &str) -> Result<bool, ArgError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "y" | "t" => Ok(true),
        "no" | "false" | "off" | "0" | "n" | "f" => Ok(false),
        _ => Err(ArgError::new(format!("`{v}` is not a boolean"))),
    }
}

impl Args {
    /// Apply the free form's `key=value` options (they win over nothing: giving one both ways is refused).
    fn resolve(&self) -> Result<Resolved, ArgError> {
        let mut r = Resolved {
            cmd: self.cmd.clone(),
            argv: self.argv.clone(),
            chdir: self.chdir.clone(),
            creates: self.creates.clone(),
            removes: self.removes.clone(),
            stdin: self.stdin.clone(),
            stdin_add_newline: self.stdin_add_newline,
            strip_empty_ends: self.strip_empty_ends,
            executable: self.executable.clone(),
        };
        let Some(raw) = &self.raw_params else {
            return Ok(r);
        };
        let (cmd, opts) = split_free_form(raw);
        if r.cmd.is_some() && !cmd.is_empty() {
            return Err(ArgError::key(
                "cmd",
                "give the command either as the free form or as `cmd`, not both",
            ));
        }
        if !cmd.is_empty() {
            r.cmd = Some(cmd);
        }
        for (k, v) in opts {
            let slot = match k.as_str() {
                "creates" => &mut r.creates,
                "removes" => &mut r.removes,
                "chdir" => &mut r.chdir,
                "executable" => &mut r.executable,
                "stdin" => &mut r.stdin,
                "stdin_add_newline" => {
                    r.stdin_add_newline = truthy(&v)?;
                    continue;
                }
                "strip_empty_ends" => {
                    r.strip_empty_ends = truthy(&v)?;
                    continue;
                }
                _ => continue,
            };
            *slot = Some(v);
        }
        Ok(r)
    }
}

/// A `creates`/`removes` path as the device sees it: relative ones are relative to `chdir`, as in Ansible.
fn under_chdir(p: &str, chdir: Option<&str>) -> String {
    match chdir {
        Some(d) if !p.starts_with('/') => format!("{}/{p}", d.trim_end_matches('/')),
        _ => p.to_string(),
    }
}

/// What Ansible returns for a command that did not run because of `creates`/`removes`.
fn not_run(display: &str, given: &str, why: &str) -> Map<String, serde_json::Value> {
    let stdout = format!("skipped, since {given} {why}");
    let mut r = Map::new();
    r.insert("cmd".into(), json!(display));
    r.insert("rc".into(), json!(0));
    r.insert("stdout".into(), json!(stdout));
    r.insert("stdout_lines".into(), json!([stdout]));
    r.insert("stderr".into(), json!(""));
    r.insert("stderr_lines".into(), json!([]));
    r.insert(
        "msg".into(),
        json!(format!("Did not run command since '{given}' {why}")),
    );
    r
}

#[async_trait]
impl TypedModule for Command {
    type Args = Args;
    /// Strip trailing newlines from stdout/stderr (`strip_empty_ends`).
    type State = bool;

    fn name(&self) -> &'static str {
        if self.shell {
            "shell"
        } else {
            "command"
        }
    }

    fn free_form_key(&self) -> Option<&'static str> {
        Some("_raw_params")
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        let a = a.resolve()?;
        match (&a.cmd, &a.argv) {
            (None, None) => Err(ArgError::key(
                "cmd",
                format!("{}: nothing to run (give a command)", self.name()),
            )),
            (Some(_), Some(_)) => Err(ArgError::key(
                "argv",
                format!(
                    "{}: give either a command string or argv, not both",
                    self.name()
                ),
            )),
            (None, Some(_)) if self.shell => Err(ArgError::key(
                "argv",
                "shell: argv is only for the command module",
            )),
            _ => Ok(()),
        }
    }

    fn preflight(&self, a: &Args, _cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        let a = a.resolve()?;
        let mut warnings = Vec::new();
        if let Some(c) = &a.cmd {
            if crate::redact::contains_secret(c) {
                warnings.push(format!(
                    "{}: the command line contains a secret value; it would be visible in the device's process list. Pass secrets with `stdin:` instead",
                    self.name()
                ));
            }
        }
        Ok(warnings)
    }

    fn prefetch(&self, a: &Args, _vars: &Context) -> Vec<FactReq> {
        let Ok(a) = a.resolve() else {
            return Vec::new();
        };
        a.creates
            .iter()
            .chain(a.removes.iter())
            .map(|p| FactReq::file(under_chdir(p, a.chdir.as_deref())))
            .collect()
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<bool>, ModuleError> {
        let a = &a.resolve()?;
        let shown = || match (&a.argv, &a.cmd) {
            (Some(v), _) => v.join(" "),
            (None, Some(c)) => c.clone(),
            _ => String::new(),
        };
        if let Some(p) = &a.creates {
            if cx
                .file(&under_chdir(p, a.chdir.as_deref()), false)
                .await?
                .exists
            {
                return Ok(Plan::unchanged().with_result(not_run(&shown(), p, "exists")));
            }
        }
        if let Some(p) = &a.removes {
            if !cx
                .file(&under_chdir(p, a.chdir.as_deref()), false)
                .await?
                .exists
            {
                return Ok(Plan::unchanged().with_result(not_run(&shown(), p, "does not exist")));
            }
        }
        let words: Vec<String> = match (&a.argv, &a.cmd) {
            (Some(v), _) => v.clone(),
            (None, Some(c)) if !self.shell => {
                split_words(c).map_err(|e| ArgError::key("cmd", format!("command: {e}")))?
            }
            _ => vec![],
        };
        let mut cmd = match &a.chdir {
            Some(d) => Cmd::new("cd").raw("--").arg(d.clone()).raw("&&"),
            None => Cmd::new(":").raw("&&"),
        };
        // `environment:` on the task: through env(1), each NAME=value quoted.
        let mut env_secret = false;
        if !cx.environment.is_empty() {
            cmd = cmd.raw("env");
            for (k, v) in &cx.environment {
                if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || k.is_empty() {
                    return Err(ArgError::new(format!(
                        "environment: `{k}` is not a valid variable name"
                    ))
                    .into());
                }
                env_secret |= crate::redact::contains_secret(v);
                cmd = cmd.arg(format!("{k}={v}"));
            }
        }
        let display = if self.shell {
            let script = a.cmd.clone().unwrap_or_default();
            let sh = a.executable.clone().unwrap_or_else(|| "/bin/sh".into());
            cmd = cmd.arg(sh).raw("-c").arg(script.clone());
            script
        } else {
            if words.is_empty() {
                return Err(ArgError::new("command: empty command").into());
            }
            if cx.environment.is_empty() {
                cmd = cmd.raw("exec");
            }
            cmd = cmd.args(words.clone());
            words.join(" ")
        };
        let mut exec = cx.exec(cmd);
        if let Some(s) = &a.stdin {
            let mut data = s.clone().into_bytes();
            if a.stdin_add_newline {
                data.push(b'\n');
            }
            exec = if crate::redact::contains_secret(s) {
                exec.secret_stdin(data)
            } else {
                exec.stdin(data)
            };
        }
        let mut result = Map::new();
        result.insert("cmd".into(), json!(display));
        let warnings = if env_secret {
            vec![format!(
                "{}: `environment` holds a secret value; it is visible in the device's process list while the command runs. Pass secrets on `stdin` instead",
                self.name()
            )]
        } else {
            vec![]
        };
        Ok(Plan::unknown_effects(
            vec![Step::Exec {
                exec,
                what: self.name().to_string(),
            }],
            a.strip_empty_ends,
        )
        .with_result(result)
        .with_warnings(warnings))
    }

    fn interpret(&self, strip: bool, ran: Ran) -> Outcome {
        let Some(o) = ran.output().cloned() else {
            return ran.outcome();
        };
        let clean = |b: &[u8]| {
            let s = String::from_utf8_lossy(b).into_owned();
            if strip {
                s.trim_end_matches('\n').to_string()
            } else {
                s
            }
        };
        let stdout = clean(&o.stdout);
        let stderr = clean(&o.stderr);
        let rc = o.status.code();
        let mut result = ran.result;
        result.insert("rc".into(), json!(rc));
        result.insert(
            "stdout_lines".into(),
            json!(stdout.lines().collect::<Vec<_>>()),
        );
        result.insert(
            "stderr_lines".into(),
            json!(stderr.lines().collect::<Vec<_>>()),
        );
        result.insert("stdout".into(), json!(stdout));
        result.insert("stderr".into(), json!(stderr));
        let failed = (!o.status.success()).then(|| {
            let first = stderr.lines().next().unwrap_or("");
            if first.is_empty() {
                format!("non-zero return code ({})", o.status)
            } else {
                format!("non-zero return code ({}): {first}", o.status)
            }
        });
        Outcome {
            changed: true,
            failed,
            result,
            msg: None,
            ..Outcome::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_form_options_are_taken_out_and_the_rest_kept_as_written() {
        let (cmd, opts) = split_free_form("touch  'a b' creates=/tmp/x chdir=\"/my dir\"");
        assert_eq!(cmd, "touch  'a b'");
        assert_eq!(
            opts,
            vec![
                ("creates".to_string(), "/tmp/x".to_string()),
                ("chdir".to_string(), "/my dir".to_string())
            ]
        );
        let (cmd, opts) = split_free_form("echo {{ a = b }} x=1\nsecond line removes={{ p }}/f");
        assert_eq!(cmd, "echo {{ a = b }} x=1\nsecond line");
        assert_eq!(opts, vec![("removes".to_string(), "{{ p }}/f".to_string())]);
        let (cmd, opts) = split_free_form("echo 'creates=not an option'");
        assert_eq!(cmd, "echo 'creates=not an option'");
        assert!(opts.is_empty());
    }
}
