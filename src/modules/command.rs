//! `command` and `shell`: run a command on the device.
//!
//! `command` splits its string like a shell would and quotes every word (no shell features); `shell` runs the
//! string with `/bin/sh -c`. Both are skipped in check mode (they cannot predict their effect) unless the task
//! says `check_mode: false`, and honour `creates`/`removes`. Secrets belong on `stdin`, never in the command.

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
    #[serde(default, alias = "_raw_params")]
    cmd: Option<String>,
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
        Some("cmd")
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
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
        a.creates
            .iter()
            .chain(a.removes.iter())
            .map(|p| FactReq::File {
                path: p.clone(),
                content: false,
            })
            .collect()
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<bool>, ModuleError> {
        if let Some(p) = &a.creates {
            if cx.file(p, false).await?.exists {
                return Ok(Plan::skip(format!("{p} exists")));
            }
        }
        if let Some(p) = &a.removes {
            if !cx.file(p, false).await?.exists {
                return Ok(Plan::skip(format!("{p} does not exist")));
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
