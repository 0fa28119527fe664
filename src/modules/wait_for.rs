//! `wait_for`: wait on the device until a port answers or a path exists (or holds a line matching
//! `search_regex`), or the opposite, bounded; with neither a port nor a path, just wait `timeout` seconds (as
//! Ansible does). The regex is matched on the device with `grep -E` (POSIX extended, line by line); the first
//! matching line comes back and gives `match_groups`/`match_groupdict` with Python's regex semantics.
//!
//! One round trip: the wait loop runs on the device in POSIX sh. Ports are probed with bash's /dev/tcp when
//! bash exists, else `nc -z`; local listening ports are also found in /proc/net/tcp{,6} without any tool.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;

/// The `wait_for` module.
pub struct WaitFor;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: u64,
    #[serde(default)]
    delay: u64,
    #[serde(default = "one")]
    sleep: u64,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    connect_timeout: Option<u64>,
    #[serde(default)]
    search_regex: Option<String>,
    #[serde(default)]
    msg: Option<String>,
}

fn default_timeout() -> u64 {
    300
}
fn one() -> u64 {
    1
}

const SCRIPT: &str = r#"host=$1; port=$2; path=$3; state=$4; timeout=$5; delay=$6; sleep_s=$7; regex=$8
ef_port_open() {
  if command -v bash >/dev/null 2>&1; then
    bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null && return 0
    return 1
  fi
  if command -v nc >/dev/null 2>&1; then nc -z -w 2 "$host" "$port" >/dev/null 2>&1; return $?; fi
  hex=$(printf '%04X' "$port")
  grep -qi ":$hex [0-9A-F]*:[0-9A-F]* 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
ef_ready() {
  if [ -n "$path" ]; then
    case $state in
      absent) [ ! -e "$path" ]; return $? ;;
      *) [ -e "$path" ] || return 1
         if [ -n "$regex" ]; then grep -Eq -- "$regex" "$path" 2>/dev/null; return $?; fi
         return 0 ;;
    esac
  fi
  case $state in
    stopped|absent|drained) ! ef_port_open ;;
    *) ef_port_open ;;
  esac
}
[ "$delay" -gt 0 ] && sleep "$delay"
if [ -z "$path" ] && [ -z "$port" ]; then sleep "$timeout"; echo "elapsed=$timeout"; exit 0; fi
start=$(date +%s)
while :; do
  if ef_ready; then
    now=$(date +%s); echo "elapsed=$((now - start))"
    if [ -n "$path" ] && [ -n "$regex" ]; then printf 'match='; grep -Em1 -- "$regex" "$path" | base64 -w0; echo; fi
    exit 0
  fi
  now=$(date +%s)
  if [ $((now - start)) -ge "$timeout" ]; then echo "elapsed=$((now - start))"; exit 1; fi
  sleep "$sleep_s"
done"#;

/// A Python regex as `grep -E` reads it, for the common cases: groups lose their names and `?:`, and the
/// classes `\d`, `\s`, `\w` (and their negations) become POSIX bracket expressions.
fn to_ere(re: &str) -> String {
    let mut out = String::new();
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some('s') => out.push_str("[[:space:]]"),
                Some('S') => out.push_str("[^[:space:]]"),
                Some('w') => out.push_str("[[:alnum:]_]"),
                Some('W') => out.push_str("[^[:alnum:]_]"),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            '(' if chars.peek() == Some(&'?') => {
                chars.next();
                match chars.peek() {
                    Some(':') => {
                        chars.next();
                        out.push('(');
                    }
                    Some('P') => {
                        chars.next();
                        for n in chars.by_ref() {
                            if n == '>' {
                                break;
                            }
                        }
                        out.push('(');
                    }
                    _ => out.push_str("(?"),
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// What `interpret` needs: the message for a timeout, the timeout, and the regex.
pub struct Waited {
    msg: Option<String>,
    timeout: u64,
    regex: Option<String>,
}

#[async_trait]
impl TypedModule for WaitFor {
    type Args = Args;
    type State = Waited;

    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if a.search_regex.is_some() && a.path.is_none() && a.port.is_none() {
            return Err(ArgError::key(
                "search_regex",
                "wait_for: search_regex needs a `path` to search",
            ));
        }
        if let Some(s) = &a.state {
            if !["started", "stopped", "present", "absent", "drained"].contains(&s.as_str()) {
                return Err(ArgError::key(
                    "state",
                    format!("wait_for: unknown state `{s}`"),
                ));
            }
        }
        Ok(())
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<Waited>, ModuleError> {
        let cmd = Cmd::new("set --")
            .arg(a.host.clone().unwrap_or_else(|| "127.0.0.1".into()))
            .arg(a.port.map(|p| p.to_string()).unwrap_or_default())
            .arg(a.path.clone().unwrap_or_default())
            .arg(a.state.clone().unwrap_or_else(|| "started".into()))
            .arg(a.timeout.to_string())
            .arg(a.delay.to_string())
            .arg(a.sleep.max(1).to_string())
            .arg(a.search_regex.as_deref().map(to_ere).unwrap_or_default())
            .raw(";")
            .raw(SCRIPT);
        // The device enforces `timeout`; give the transport a little longer before it gives up.
        let exec = cx.exec(cmd).timeout(Some(std::time::Duration::from_secs(
            a.timeout + a.delay + 30,
        )));
        let what = match (&a.path, a.port) {
            (Some(p), _) => format!("wait for {p}"),
            (None, Some(port)) => format!("wait for port {port}"),
            _ => format!("wait {}s", a.timeout),
        };
        Ok(Plan::read_only(
            vec![Step::Exec { exec, what }],
            Waited {
                msg: a.msg.clone(),
                timeout: a.timeout,
                regex: a.search_regex.clone(),
            },
        ))
    }

    fn interpret(&self, w: Waited, ran: Ran) -> Outcome {
        let Some(o) = ran.output() else {
            return ran.outcome();
        };
        let elapsed: u64 = o
            .stdout_str()
            .lines()
            .find_map(|l| {
                l.strip_prefix("elapsed=")
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0);
        let mut result = Map::new();
        result.insert("elapsed".into(), json!(elapsed));
        let matched = o.stdout_str().lines().find_map(|l| {
            let b = l.strip_prefix("match=")?;
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()?;
            Some(String::from_utf8_lossy(&raw).into_owned())
        });
        if let (Some(line), Some(re)) = (matched, &w.regex) {
            if let Ok(re) = crate::template::pyre::compile(re, false, true) {
                if let Some(c) = re.captures(&line) {
                    let groups: Vec<Value> = c
                        .iter()
                        .skip(1)
                        .map(|g| g.map(|m| json!(m.as_str())).unwrap_or(Value::Null))
                        .collect();
                    let named: Map<String, Value> = re
                        .capture_names()
                        .flatten()
                        .map(|n| {
                            (
                                n.to_string(),
                                c.name(n).map(|m| json!(m.as_str())).unwrap_or(Value::Null),
                            )
                        })
                        .collect();
                    result.insert("match_groups".into(), Value::Array(groups));
                    result.insert("match_groupdict".into(), Value::Object(named));
                }
            }
        }
        let failed = (!o.status.success()).then(|| {
            w.msg
                .unwrap_or_else(|| format!("Timeout when waiting (waited {}s)", w.timeout))
        });
        Outcome {
            changed: false,
            failed,
            result,
            msg: None,
            ..Outcome::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_ere;

    #[test]
    fn python_regexes_become_extended_ones() {
        assert_eq!(
            to_ere(r"ready on port (?P<port>\d+)"),
            "ready on port ([0-9]+)"
        );
        assert_eq!(
            to_ere(r"^(?:a|b)\s\w\."),
            r"^(a|b)[[:space:]][[:alnum:]_]\."
        );
    }
}
