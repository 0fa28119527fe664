//! The dead-man revert: a change that may cut a device off (a module's plan says so with
//! [`CutOff`](crate::modules::CutOff): config.toml, daemon.json DNS/proxy settings) is applied only after the
//! device holds its own way back, and is kept only once a *new* connection reached the device after it.
//!
//! On the device, under `/var/lib/edgefleet/deadman/<id>/` (else `~/.edgefleet/deadman/<id>/`, mode 0700):
//! `files` (`N<TAB>path` per file; `saved/N` is its previous version, absent when the file did not exist),
//! `reapply` (what restores the previous files' effect, one line each from [`Reapply::words`]: `restart
//! docker`, `iotedge-config-apply`, `daemon-reload`), `revert.sh` (mode 0700, written atomically, the same text
//! on every device), and `how` (`systemd`: a transient timer `edgefleet-revert-<id>.timer` made by
//! `systemd-run --on-active`; `process`: a detached `setsid sh -c 'sleep W; exec revert.sh'` whose process
//! group is in `pid`, where there is no systemd or the login is not root). Whoever first creates `claim/` wins:
//! the revert (restores the files, re-applies, writes `reverted` with the time) or the disarm (stops the timer,
//! removes the directory) — so the two never both happen.
//!
//! Round trips: arming is folded into the plan's write command (before the files are written: if arming fails,
//! nothing is written); disarming is the first command of a new connection, opened once per play and host at
//! the end of the play (after its handlers, where the restarts happen), so a changed device pays one round trip
//! and an unchanged one none. The disarm also verifies: every unit the revert would restart must be active,
//! otherwise the revert runs right then. When no new connection gets through before the window ends, the run
//! waits a little longer for the device to come back and say it reverted, and reports the host as "rolled back
//! by the device" either way. Reverts a device ran for an earlier run (a controller killed between arm and
//! disarm) are reported by the next arm on that device (`EF-DM-PRIOR`), as a warning.
//!
//! The window is the `deadman_window` variable (seconds, or `90s`/`2m`; `0`, `off` or `false` turn it off; any
//! variable layer: play `vars`, inventory, `-e`). When it is unset, a change of a configuration the device
//! already ran with (the file existed) is armed with [`DEFAULT_WINDOW`], and a first provisioning (no previous
//! file: nothing known to work to go back to, and the provisioning round-trip budget stays as it was) is not.
//! Never for `connection: local` or delegated tasks (the controller is the device). It must not know what a module changes beyond its
//! `CutOff`; it only builds commands, reads their answers and emits events.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::modules::{CutOff, Reapply};
use crate::report::{DeadmanState, Event, StatsSnapshot};
use crate::transport::{Become, Cmd, ConnSpec, Exec, SharedTransport};

/// The confirm window when `deadman_window` is not set.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(120);

/// The variable that sets (or turns off) the window.
pub const WINDOW_VAR: &str = "deadman_window";

/// How long after the window the run keeps trying to hear from a device that did not answer, to confirm that
/// it reverted (at least this, at most the window again).
const CONFIRM_GRACE_MIN: Duration = Duration::from_secs(20);

/// Shell functions: `ef_dm_stop DIR ID` stops a timer or detached process; `ef_dm_arm ID WINDOW NREAPPLY
/// REAPPLY... FILE...` records the files' previous versions and (re)starts the timer.
const ARM: &str = r#"ef_dm_bases() { printf '%s\n' /var/lib/edgefleet/deadman "${HOME:-/root}/.edgefleet/deadman"; }
ef_dm_stop() {
  case $(cat "$1/how" 2>/dev/null) in
    systemd) systemctl stop "edgefleet-revert-$2.timer" >/dev/null 2>&1
      systemctl reset-failed "edgefleet-revert-$2.timer" "edgefleet-revert-$2.service" >/dev/null 2>&1 ;;
    process) dm_p=$(cat "$1/pid" 2>/dev/null)
      if [ -n "$dm_p" ] && tr '\0' ' ' <"/proc/$dm_p/cmdline" 2>/dev/null | grep -q edgefleet-deadman; then
        kill -TERM -- "-$dm_p" 2>/dev/null || kill -TERM "$dm_p" 2>/dev/null
      fi ;;
  esac
  rm -f -- "$1/how" "$1/pid"
  return 0
}
ef_dm_arm() {
  dm_id=$1 dm_w=$2 dm_nr=$3; shift 3
  dm_b=
  for dm_x in $(ef_dm_bases); do
    if [ -d "$dm_x" ] || mkdir -p -m 700 -- "$dm_x" 2>/dev/null; then
      if [ -w "$dm_x" ]; then dm_b=$dm_x; break; fi
    fi
  done
  [ -n "$dm_b" ] || { echo "edgefleet: cannot arm the dead-man revert: neither /var/lib/edgefleet/deadman nor ~/.edgefleet/deadman is writable (use become)" >&2; return 1; }
  for dm_r in "$dm_b"/*/reverted; do
    [ -f "$dm_r" ] || continue
    printf 'EF-DM-PRIOR\t%s\t%s\n' "$(basename -- "$(dirname -- "$dm_r")")" "$(head -n 1 -- "$dm_r")"
    mv -f -- "$dm_r" "$dm_r.reported" || true
  done
  dm_d=$dm_b/$dm_id
  if [ -d "$dm_d/claim" ]; then echo "edgefleet: the device already rolled back this run's earlier change by itself (the dead-man revert ran); not changing it again" >&2; return 1; fi
  mkdir -p -m 700 -- "$dm_d/saved" || return 1
  : >>"$dm_d/files" && : >>"$dm_d/reapply" || return 1
  while [ "$dm_nr" -gt 0 ]; do
    grep -qxF -- "$1" "$dm_d/reapply" || printf '%s\n' "$1" >>"$dm_d/reapply" || return 1
    shift; dm_nr=$((dm_nr-1))
  done
  for dm_f in "$@"; do
    # An earlier change of this run already saved this file: the oldest version is the one to go back to.
    if cut -f2- -- "$dm_d/files" | grep -qxF -- "$dm_f"; then continue; fi
    dm_n=$(($(wc -l <"$dm_d/files") + 1))
    if [ -f "$dm_f" ]; then
      cp -p -- "$dm_f" "$dm_d/saved/$dm_n" || { echo "edgefleet: cannot keep a copy of $dm_f for the dead-man revert" >&2; return 1; }
    fi
    printf '%s\t%s\n' "$dm_n" "$dm_f" >>"$dm_d/files" || return 1
  done
  cat >"$dm_d/.revert.sh.tmp" <<'EF_DM_REVERT' || return 1
#!/bin/sh
# edgefleet dead-man revert: no new connection confirmed the change in time, so the previous files go back
# and are applied again. The disarm removes this directory; whoever creates claim/ first wins.
d=$(dirname -- "$0")
mkdir -- "$d/claim" 2>/dev/null || exit 0
exec >>"$d/revert.log" 2>&1 </dev/null
echo "revert started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
while IFS='	' read -r n f; do
  [ -n "$f" ] || continue
  if [ -f "$d/saved/$n" ]; then
    t=$(mktemp -- "$(dirname -- "$f")/.edgefleet.XXXXXX") && cp -p -- "$d/saved/$n" "$t" && mv -f -- "$t" "$f" && echo "restored $f" || { [ -n "$t" ] && rm -f -- "$t"; echo "cannot restore $f"; }
  else
    rm -f -- "$f" && echo "removed $f (it did not exist before)"
  fi
done <"$d/files"
sync
while read -r a u; do
  case $a in
    daemon-reload) systemctl daemon-reload ;;
    restart) systemctl restart "$u" || service "$u" restart ;;
    iotedge-config-apply) iotedge config apply ;;
    *) false ;;
  esac && echo "$a $u: ok" || echo "$a $u: failed"
done <"$d/reapply"
date -u +%Y-%m-%dT%H:%M:%SZ >"$d/reverted.tmp" && mv -f -- "$d/reverted.tmp" "$d/reverted"
EF_DM_REVERT
  chmod 700 "$dm_d/.revert.sh.tmp" && mv -f -- "$dm_d/.revert.sh.tmp" "$dm_d/revert.sh" || return 1
  sync
  # A later change of the same run starts the window again.
  ef_dm_stop "$dm_d" "$dm_id"
  if [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
    # (`--collect` needs systemd 236; an older one refuses the option before it creates anything.)
    systemd-run --quiet --collect --unit="edgefleet-revert-$dm_id" --on-active="$dm_w" \
      --timer-property=AccuracySec=1s --description="edgefleet dead-man revert" /bin/sh "$dm_d/revert.sh" >/dev/null 2>&1 \
      || systemd-run --quiet --unit="edgefleet-revert-$dm_id" --on-active="$dm_w" \
      --timer-property=AccuracySec=1s --description="edgefleet dead-man revert" /bin/sh "$dm_d/revert.sh" >/dev/null \
      || { echo "edgefleet: systemd-run did not accept the dead-man timer" >&2; return 1; }
    echo systemd >"$dm_d/how"
  else
    if command -v setsid >/dev/null 2>&1; then
      setsid sh -c 'sleep "$1"; exec /bin/sh "$2"' edgefleet-deadman "$dm_w" "$dm_d/revert.sh" </dev/null >/dev/null 2>&1 &
    else
      nohup sh -c 'sleep "$1"; exec /bin/sh "$2"' edgefleet-deadman "$dm_w" "$dm_d/revert.sh" </dev/null >/dev/null 2>&1 &
    fi
    echo "$!" >"$dm_d/pid"
    echo process >"$dm_d/how"
  fi
  printf 'EF-DM-ARMED\t%s\t%s\n' "$(cat "$dm_d/how")" "$dm_d"
}
"#;

/// The disarm (after [`ARM`]'s functions): `ef_dm_disarm ID`. Answers one line: `EF-DM-DISARMED`,
/// `EF-DM-REVERTED<TAB>time`, `EF-DM-REVERTING`, `EF-DM-GONE`, or `EF-DM-NOT-ACTIVE<TAB>units` (a unit the
/// revert restarts is not active: reverted now).
const DISARM: &str = r#"ef_dm_disarm() {
  dm_d=
  for dm_x in $(ef_dm_bases); do
    if [ -d "$dm_x/$1" ]; then dm_d=$dm_x/$1; break; fi
  done
  [ -n "$dm_d" ] || { echo EF-DM-GONE; return 0; }
  if [ -d "$dm_d/claim" ]; then
    if [ -f "$dm_d/reverted" ]; then
      printf 'EF-DM-REVERTED\t%s\n' "$(head -n 1 -- "$dm_d/reverted")"
      mv -f -- "$dm_d/reverted" "$dm_d/reverted.reported"
    else
      echo EF-DM-REVERTING
    fi
    return 0
  fi
  dm_bad=
  if command -v systemctl >/dev/null 2>&1; then
    while read -r dm_a dm_u; do
      [ "$dm_a" = restart ] || continue
      systemctl is-active --quiet "$dm_u" || dm_bad="$dm_bad $dm_u"
    done <"$dm_d/reapply"
  fi
  if [ -n "$dm_bad" ]; then
    ef_dm_stop "$dm_d" "$1"
    /bin/sh "$dm_d/revert.sh"
    printf 'EF-DM-NOT-ACTIVE\t%s\n' "${dm_bad# }"
    [ -f "$dm_d/reverted" ] && mv -f -- "$dm_d/reverted" "$dm_d/reverted.reported"
    return 0
  fi
  mkdir -- "$dm_d/claim" 2>/dev/null || { echo EF-DM-REVERTING; return 0; }
  ef_dm_stop "$dm_d" "$1"
  rm -rf -- "$dm_d"
  echo EF-DM-DISARMED
}
"#;

/// What a task asks of the dead-man before its write (computed by `attempt` from the plan and the variables).
#[derive(Debug, Clone)]
pub(crate) struct ArmRequest {
    pub cut_off: CutOff,
    pub window: Duration,
}

/// An armed revert on one device.
#[derive(Debug, Clone)]
struct Armed {
    window: Duration,
    at: Instant,
    become_: Option<Become>,
    why: Vec<String>,
}

#[derive(Default)]
struct Inner {
    /// The device's dead-man id for this run (its directory and timer name), made at the first arm.
    id: Option<String>,
    spec: Option<ConnSpec>,
    armed: Option<Armed>,
    /// Counters of the confirming connections (added to the host's).
    extra: StatsSnapshot,
}

/// One host's dead-man state for the whole run.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Inner>);

impl Slot {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Remember how the host was reached (the confirming connection is made the same way).
    pub fn set_spec(&self, spec: &ConnSpec) {
        self.with(|i| i.spec = Some(spec.clone()));
    }

    /// The confirming connections' counters.
    pub fn extra_stats(&self) -> StatsSnapshot {
        self.with(|i| i.extra)
    }

    /// The device's dead-man id for this run (made once).
    fn id(&self) -> String {
        self.with(|i| {
            i.id.get_or_insert_with(|| crate::runid::RunId::generate().to_string().replace('.', ""))
                .clone()
        })
    }

    /// Is the host reached over a network connection (not `connection: local`)?
    pub fn remote(&self) -> bool {
        self.with(|i| i.spec.as_ref().is_some_and(|s| s.connection != "local"))
    }

    /// Is a revert armed on the device?
    pub fn is_armed(&self) -> bool {
        self.with(|i| i.armed.is_some())
    }
}

/// Both counters added.
pub(crate) fn add_stats(a: StatsSnapshot, b: StatsSnapshot) -> StatsSnapshot {
    StatsSnapshot {
        execs: a.execs + b.execs,
        bytes_sent: a.bytes_sent + b.bytes_sent,
        bytes_received: a.bytes_received + b.bytes_received,
        connects: a.connects + b.connects,
    }
}

/// Read `deadman_window`: `None` when turned off; when unset, the default for a change of a configuration the
/// device ran with (`previous`), and off for a first provisioning.
pub(crate) fn window(v: Option<&Value>, previous: bool) -> Result<Option<Duration>, String> {
    let bad = |s: &str| {
        format!("{WINDOW_VAR}: `{s}` is not a window: give seconds (120), `90s`, `2m`, or 0/off to turn the dead-man revert off")
    };
    let secs = match v {
        None | Some(Value::Null) => return Ok(previous.then_some(DEFAULT_WINDOW)),
        Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => return Ok(Some(DEFAULT_WINDOW)),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(&n.to_string()))?,
        Some(Value::String(s)) => {
            let t = s.trim().to_ascii_lowercase();
            if matches!(t.as_str(), "off" | "false" | "no" | "0") {
                return Ok(None);
            }
            let (num, mult) = if let Some(n) = t.strip_suffix('m') {
                (n, 60)
            } else if let Some(n) = t.strip_suffix('s') {
                (n, 1)
            } else {
                (t.as_str(), 1)
            };
            num.trim()
                .parse::<u64>()
                .map_err(|_| bad(s))?
                .checked_mul(mult)
                .ok_or_else(|| bad(s))?
        }
        Some(other) => return Err(bad(&other.to_string())),
    };
    if secs == 0 {
        return Ok(None);
    }
    if !(2..=86_400).contains(&secs) {
        return Err(format!(
            "{WINDOW_VAR}: {secs}s is outside 2s..24h (the device must be reachable again within it)"
        ));
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// Check what the device will store: a unit name, a path without tab or newline.
fn check_words(req: &ArmRequest, files: &[String]) -> Result<(), String> {
    for r in &req.cut_off.reapply {
        if let Reapply::Restart(u) = r {
            let ok = !u.is_empty()
                && !u.starts_with('-')
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._-:".contains(c));
            if !ok {
                return Err(format!(
                    "the dead-man revert cannot restart `{u}`: not a systemd unit name"
                ));
            }
        }
    }
    for f in files {
        if !f.starts_with('/') || f.contains(['\t', '\n']) {
            return Err(format!(
                "the dead-man revert cannot keep `{f}`: only absolute paths without tabs or newlines"
            ));
        }
    }
    Ok(())
}

/// `cmd` with the arm in front of it: the arm runs first, and when it fails nothing of `cmd` runs.
pub(crate) fn with_arm(
    slot: &Slot,
    req: &ArmRequest,
    files: &[String],
    cmd: Cmd,
) -> Result<Cmd, String> {
    check_words(req, files)?;
    let words: Vec<String> = req
        .cut_off
        .reapply
        .iter()
        .map(|r| r.words().join(" "))
        .collect();
    let mut out = Cmd::new(ARM)
        .raw("ef_dm_arm")
        .arg(slot.id())
        .arg(req.window.as_secs().to_string())
        .arg(words.len().to_string())
        .args(words)
        .args(files.iter().cloned())
        .raw("|| exit 1\n");
    for part in cmd.parts() {
        out = match part {
            crate::transport::Part::Raw(r) => out.raw(r),
            crate::transport::Part::Arg(a) => out.arg(a.clone()),
        };
    }
    Ok(out)
}

/// What an arm printed: was it armed (and how), and the earlier runs' reverts it found (id, time).
pub(crate) fn parse_arm(stdout: &[u8]) -> (Option<String>, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(stdout);
    let mut how = None;
    let mut prior = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        match f.as_slice() {
            ["EF-DM-ARMED", h, ..] => how = Some(h.to_string()),
            ["EF-DM-PRIOR", id, at, ..] => prior.push((id.to_string(), at.to_string())),
            _ => {}
        }
    }
    (how, prior)
}

/// The device's answer to the disarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Disarmed,
    Reverted(String),
    Reverting,
    NotActive(String),
    Gone,
}

fn parse_disarm(stdout: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(stdout);
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        Some(match f.as_slice() {
            ["EF-DM-DISARMED"] => Answer::Disarmed,
            ["EF-DM-REVERTED", at, ..] => Answer::Reverted(at.to_string()),
            ["EF-DM-REVERTING"] => Answer::Reverting,
            ["EF-DM-NOT-ACTIVE", units, ..] => Answer::NotActive(units.to_string()),
            ["EF-DM-GONE"] => Answer::Gone,
            _ => return None,
        })
    })
}

fn disarm_exec(id: &str, become_: Option<Become>) -> Exec {
    Exec::new(
        Cmd::new(ARM)
            .raw(DISARM)
            .raw("ef_dm_disarm")
            .arg(id.to_string()),
    )
    .become_(become_)
    .timeout(Some(Duration::from_secs(60)))
}

impl super::Executor {
    /// A write of a plan that may cut the device off was sent with its arm: record what the device said.
    pub(super) fn deadman_armed(
        &self,
        host: &str,
        slot: &Slot,
        req: &ArmRequest,
        become_: Option<Become>,
        stdout: &[u8],
    ) {
        let (how, prior) = parse_arm(stdout);
        for (id, at) in prior {
            self.emit(Event::Warning {
                host: Some(host.to_string()),
                message: format!(
                    "rolled back by the device: an earlier run's change (dead-man {id}) was never confirmed, and the device restored its previous configuration by itself at {at}"
                ),
            });
        }
        let Some(how) = how else { return };
        let why = req.cut_off.why.clone();
        slot.with(|i| {
            let a = i.armed.get_or_insert_with(|| Armed {
                window: req.window,
                at: Instant::now(),
                become_: become_.clone(),
                why: Vec::new(),
            });
            a.at = Instant::now();
            a.window = req.window;
            if !a.why.contains(&why) {
                a.why.push(why.clone());
            }
        });
        self.emit(Event::Deadman {
            host: host.to_string(),
            state: DeadmanState::Armed,
            window_s: req.window.as_secs(),
            detail: format!(
                "{why}: armed a revert on the device ({}) that runs unless a new connection confirms the change within {}s",
                if how == "systemd" { "systemd timer" } else { "detached process" },
                req.window.as_secs()
            ),
        });
    }

    /// After a play on a host that armed a revert: reach the device over a new connection and disarm, or
    /// report that the device rolled back by itself. Returns the message to fail the host with when it did.
    pub(super) async fn deadman_confirm(&self, host: &str, slot: &Slot) -> Option<String> {
        let (armed, spec) = slot.with(|i| (i.armed.take(), i.spec.clone()));
        let armed = armed?;
        let id = slot.id();
        let Some(spec) = spec else {
            return Some("the dead-man revert was armed but the connection is unknown".into());
        };
        let deadline = armed.at + armed.window;
        let grace = armed.window.clamp(CONFIRM_GRACE_MIN, CONFIRM_GRACE_MIN * 6);
        let why = armed.why.join("; ");
        let mut last_err = String::new();
        let mut delay = Duration::from_millis(200);
        loop {
            let now = Instant::now();
            if now >= deadline + grace {
                break;
            }
            let mut spec = spec.clone();
            let left = (deadline + grace).saturating_duration_since(now);
            spec.connect_timeout = Some(
                spec.connect_timeout
                    .unwrap_or(Duration::from_secs(10))
                    .min(left.max(Duration::from_secs(1))),
            );
            match self.connector.connect(&spec).await {
                Ok(t) => {
                    let t: SharedTransport = if self.opts.log_commands {
                        super::logged::Logged::wrap(t, self.sink.clone())
                    } else {
                        t
                    };
                    let r = t.exec(disarm_exec(&id, armed.become_.clone())).await;
                    let stats = t.stats();
                    t.close().await;
                    slot.with(|i| i.extra = add_stats(i.extra, stats));
                    match r {
                        Ok(o) => match parse_disarm(&o.stdout) {
                            // The revert is running: ask again for its outcome while there is time.
                            Some(Answer::Reverting)
                                if Instant::now() + delay < deadline + grace =>
                            {
                                last_err =
                                    "the device is restoring its previous configuration".into()
                            }
                            Some(a) => return self.deadman_answer(host, &armed, &why, a, now),
                            None => {
                                last_err = format!(
                                    "the disarm did not answer ({}): {}",
                                    o.status,
                                    o.stderr_str().trim()
                                )
                            }
                        },
                        Err(e) => last_err = e.to_string(),
                    }
                }
                Err(e) => last_err = e.to_string(),
            }
            self.report_connector_warnings();
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        let detail = format!(
            "{why}: no new connection reached the device within the {}s window, so it restores its previous configuration by itself (not confirmed: still unreachable {}s later: {})",
            armed.window.as_secs(),
            grace.as_secs(),
            crate::redact::redact(&last_err)
        );
        self.emit(Event::Deadman {
            host: host.to_string(),
            state: DeadmanState::RolledBack,
            window_s: armed.window.as_secs(),
            detail: detail.clone(),
        });
        Some(format!("rolled back by the device: {detail}"))
    }

    fn deadman_answer(
        &self,
        host: &str,
        armed: &Armed,
        why: &str,
        a: Answer,
        when: Instant,
    ) -> Option<String> {
        let after = when.saturating_duration_since(armed.at).as_secs();
        let window_s = armed.window.as_secs();
        let (state, detail) = match a {
            Answer::Disarmed | Answer::Gone => (
                DeadmanState::Disarmed,
                format!("{why}: confirmed from a new connection {after}s after the change; revert disarmed"),
            ),
            Answer::Reverted(at) => (
                DeadmanState::RolledBack,
                format!("{why}: no new connection reached the device within the {window_s}s window; it restored its previous configuration by itself at {at}"),
            ),
            Answer::Reverting => (
                DeadmanState::RolledBack,
                format!("{why}: no new connection reached the device within the {window_s}s window; it is restoring its previous configuration"),
            ),
            Answer::NotActive(units) => (
                DeadmanState::RolledBack,
                format!("{why}: {units} not active after the change; the device restored its previous configuration"),
            ),
        };
        self.emit(Event::Deadman {
            host: host.to_string(),
            state,
            window_s,
            detail: detail.clone(),
        });
        (state == DeadmanState::RolledBack).then(|| format!("rolled back by the device: {detail}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_parse_and_turn_off() {
        assert_eq!(window(None, true).unwrap(), Some(DEFAULT_WINDOW));
        assert_eq!(window(None, false).unwrap(), None, "first provisioning");
        assert_eq!(
            window(Some(&json!(30)), false).unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            window(Some(&json!("2m")), true).unwrap(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            window(Some(&json!("45s")), true).unwrap(),
            Some(Duration::from_secs(45))
        );
        for off in [json!(0), json!("off"), json!(false), json!("0")] {
            assert_eq!(window(Some(&off), true).unwrap(), None, "{off}");
        }
        let e = window(Some(&json!("soon")), true).unwrap_err();
        assert!(e.contains("deadman_window") && e.contains("soon"), "{e}");
        assert!(window(Some(&json!(1)), true)
            .unwrap_err()
            .contains("2s..24h"));
    }

    #[test]
    fn answers_are_read_from_their_marker_lines() {
        assert_eq!(
            parse_disarm(b"noise\nEF-DM-DISARMED\n"),
            Some(Answer::Disarmed)
        );
        assert_eq!(
            parse_disarm(b"EF-DM-REVERTED\t2026-12-03T18:00:00Z\n"),
            Some(Answer::Reverted("2026-12-03T18:00:00Z".into()))
        );
        assert_eq!(parse_disarm(b"EF-DM-DISARMED-NOT\n"), None);
        let (how, prior) = parse_arm(b"B|0|x\nEF-DM-PRIOR\tabc\t2026-01-01T00:00:00Z\nEF-DM-ARMED\tprocess\t/var/lib/edgefleet/deadman/abc\n");
        assert_eq!(how.as_deref(), Some("process"));
        assert_eq!(prior, vec![("abc".into(), "2026-01-01T00:00:00Z".into())]);
    }

    #[test]
    fn odd_units_and_paths_are_refused_before_contact() {
        let req = |u: &str| ArmRequest {
            cut_off: CutOff {
                why: "x".into(),
                reapply: vec![Reapply::Restart(u.into())],
                previous: true,
            },
            window: DEFAULT_WINDOW,
        };
        assert!(check_words(&req("docker"), &["/etc/docker/daemon.json".into()]).is_ok());
        assert!(check_words(&req("docker; reboot"), &[]).is_err());
        assert!(check_words(&req("-x"), &[]).is_err());
        assert!(check_words(&req("docker"), &["/etc/a\tb".into()]).is_err());
        assert!(check_words(&req("docker"), &["relative".into()]).is_err());
    }
}
