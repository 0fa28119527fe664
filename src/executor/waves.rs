//! Waves: how a play's hosts are split into `serial` batches (Ansible's sizes), and what happens between two
//! waves — the health gate of a play with `rollout:`, and the operator's go-ahead under `--confirm`.
//!
//! **The gate.** After a wave's tasks, if some device of the wave changed (and not in check mode), every device
//! of the wave still in the play is probed once (`iotedge_verify`'s gather plus the modules' restart state, one
//! round trip), the wave soaks for `rollout.soak` (a timer; Ctrl-C ends it), and every device is probed again
//! and judged (`modules::iotedge_verify::HealthGate`). An unhealthy device is failed with its reasons. The wave
//! fails its gate when its failed plus unhealthy devices are more than `max_fail_percentage` of the wave (0
//! without it): the rollout stops there, and the devices of the later waves are never contacted. Devices keep
//! their connection until their gate is done (the executor finishes them after it).
//!
//! It emits events (`WaveSoaking`, `WaveGate`, `RolloutStopped`) and never prints; `--confirm`'s prompt is the
//! command layer's [`ConfirmWave`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::layers::VarsFiles;
use super::{Executor, HostState, PlayRt};
use crate::modules::iotedge_verify::{HealthGate, Probe};
use crate::playbook::{Rollout, Serial, Soak};
use crate::report::{Event, GateStatus, HostStatus, Unhealthy, WaveResult};
use crate::template::context::Warnings;
use crate::transport::{Become, Exec};

/// Split hosts into `serial` batches as Ansible does: each step is a number of hosts (0: all that are left) or
/// a percentage of ALL the play's hosts, `int(pct / 100.0 * n)` (rounded down, in floating point as Python
/// computes it) or 1 when that is 0; the last step repeats until every host is in a batch.
pub fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let n = hosts.len();
    let mut out = Vec::new();
    let mut i = 0;
    let mut step = 0;
    while i < n {
        let s = serial[step.min(serial.len() - 1)];
        let size = match s {
            Serial::Count(0) => n,
            Serial::Count(c) => c,
            Serial::Percent(p) => (((p / 100.0) * n as f64) as usize).max(1),
        };
        let end = (i + size).min(n);
        out.push(hosts[i..end].to_vec());
        i = end;
        step += 1;
    }
    out
}

/// Asks an operator whether the next wave may start (`--confirm`). Called off the async runtime: it may block
/// on the terminal. `false` stops the rollout.
pub trait ConfirmWave: Send + Sync + std::fmt::Debug {
    /// Wave `done` is over (its summary); may wave `done.index + 1`, of `next_hosts` devices, start?
    fn confirm(&self, done: &WaveResult, next_hosts: usize) -> bool;
}

/// Each host's changed-task count before its wave (to tell whether the wave changed anything).
pub(crate) fn changed_counts(ex: &Executor, batch: &[String]) -> HashMap<String, usize> {
    batch
        .iter()
        .map(|h| (h.clone(), ex.host_state(h).acc(|a| a.changed)))
        .collect()
}

/// Do the devices of a wave of this play keep their connection until the wave's gate has run?
pub(crate) fn holds_connections(ex: &Executor, rt: &PlayRt) -> bool {
    rt.play.rollout.is_some() && !ex.opts.check
}

/// Before the first wave: a templated soak must give a duration, or no device is touched (the reason stops the
/// run).
pub(crate) fn check_soak(ex: &Executor, rt: &PlayRt) -> Option<String> {
    let (Some(r), Some(first)) = (&rt.play.rollout, rt.hosts.first()) else {
        return None;
    };
    let Soak::Template(t) = &r.soak else {
        return None;
    };
    soak_of(ex, rt, &ex.host_state(first), &rt.hosts, t)
        .err()
        .map(|e| format!("play '{}' not started: {e}", rt.play.name))
}

/// After wave `bi` of `batches` ran its tasks: gate it (plays with `rollout:`) and ask the operator
/// (`--confirm`) before the next one. Returns why the rollout stops, if it does (the event saying so is
/// emitted here).
pub(crate) async fn after_wave(
    ex: &Arc<Executor>,
    rt: &Arc<PlayRt>,
    batches: &[Vec<String>],
    bi: usize,
    changed_before: &HashMap<String, usize>,
) -> Option<String> {
    let batch = &batches[bi];
    let waves = batches.len();
    let later = || -> Vec<String> { batches[bi + 1..].iter().flatten().cloned().collect() };
    let stop = |reason: String| {
        ex.emit(Event::RolloutStopped {
            play: rt.play.name.clone(),
            wave: bi + 1,
            waves,
            reason: reason.clone(),
            untouched: later(),
        });
        Some(reason)
    };
    let result = match &rt.play.rollout {
        Some(r) => {
            let w = gate(ex, rt, r, batch, bi, waves, changed_before).await;
            ex.emit(Event::WaveGate(w.clone()));
            if w.gate == GateStatus::Failed {
                let tolerance = match rt.play.max_fail_percentage {
                    Some(p) => format!("more than max_fail_percentage {p}% allows"),
                    None => "a rollout without max_fail_percentage allows none".to_string(),
                };
                return stop(format!(
                    "play '{}': wave {}/{waves} failed its health gate: {} of {} devices unhealthy ({}); {tolerance}",
                    rt.play.name,
                    bi + 1,
                    w.unhealthy.len(),
                    w.hosts.len(),
                    crate::report::recap::names(
                        &w.unhealthy.iter().map(|u| u.host.clone()).collect::<Vec<_>>(),
                        5
                    ),
                ));
            }
            w
        }
        None => summary(ex, rt, batch, bi, waves, changed_before),
    };
    let next_hosts = batches.get(bi + 1).map(Vec::len)?;
    let confirm = ex.opts.confirm.clone()?;
    if ex.interrupted.load(Ordering::SeqCst) {
        return None;
    }
    let asked = tokio::task::spawn_blocking(move || confirm.confirm(&result, next_hosts)).await;
    if asked.unwrap_or(false) {
        None
    } else {
        stop(format!(
            "play '{}': the operator did not confirm wave {}/{waves}",
            rt.play.name,
            bi + 2
        ))
    }
}

/// A wave's summary without a gate (for `--confirm` on plays without `rollout:`).
fn summary(
    ex: &Executor,
    rt: &PlayRt,
    batch: &[String],
    bi: usize,
    waves: usize,
    changed_before: &HashMap<String, usize>,
) -> WaveResult {
    let mut w = base_result(ex, rt, batch, bi, waves, changed_before);
    w.skipped_because = Some("the play has no rollout gate".into());
    w
}

/// The wave's result before any gate: what changed, which devices failed (each with its first error).
fn base_result(
    ex: &Executor,
    rt: &PlayRt,
    batch: &[String],
    bi: usize,
    waves: usize,
    changed_before: &HashMap<String, usize>,
) -> WaveResult {
    let mut changed = 0;
    let mut unhealthy = Vec::new();
    for h in batch {
        let hs = ex.host_state(h);
        let (now, err) = hs.acc(|a| (a.changed, a.first_error.clone()));
        if now > changed_before.get(h).copied().unwrap_or(0) {
            changed += 1;
        }
        if hs.is_out() {
            unhealthy.push(Unhealthy {
                host: h.clone(),
                reasons: vec![err.unwrap_or_else(|| "failed".into())],
            });
        }
    }
    WaveResult {
        play: rt.play.name.clone(),
        index: bi + 1,
        waves,
        hosts: batch.to_vec(),
        changed,
        failed: unhealthy.len(),
        soak: Duration::ZERO,
        gate: GateStatus::Skipped,
        skipped_because: None,
        healthy: 0,
        unhealthy,
        max_fail_percentage: rt.play.max_fail_percentage.unwrap_or(0.0),
    }
}

/// Gate one wave: probe, soak, probe and judge every device still in the play.
async fn gate(
    ex: &Arc<Executor>,
    rt: &Arc<PlayRt>,
    r: &Rollout,
    batch: &[String],
    bi: usize,
    waves: usize,
    changed_before: &HashMap<String, usize>,
) -> WaveResult {
    let mut w = base_result(ex, rt, batch, bi, waves, changed_before);
    let over = |w: &WaveResult| {
        w.unhealthy.len() as f64 * 100.0 / w.hosts.len().max(1) as f64 > w.max_fail_percentage
    };
    let skip = if ex.opts.check {
        Some("check mode: nothing was changed")
    } else if w.changed == 0 {
        Some("no device of the wave changed")
    } else if rt.abort_reason().is_some() || ex.interrupted.load(Ordering::SeqCst) {
        Some("the play was stopped")
    } else {
        None
    };
    if let Some(why) = skip {
        w.skipped_because = Some(why.into());
        // Devices that failed still count against the tolerance.
        if over(&w) {
            w.gate = GateStatus::Failed;
        }
        return w;
    }
    let live: Vec<Arc<HostState>> = batch
        .iter()
        .map(|h| ex.host_state(h))
        .filter(|hs| !hs.is_out())
        .collect();
    let mut probes: Vec<(Arc<HostState>, Result<DeviceGate, String>)> = live
        .iter()
        .map(|hs| (hs.clone(), device_gate(ex, rt, hs, batch, r)))
        .collect();
    // The soak, rendered with the first device's variables when it is a template; a soak that is no duration
    // leaves every device unjudged, so the wave fails its gate saying why.
    let soak_time = match (&r.soak, probes.first()) {
        (Soak::Fixed(d), _) => Ok(*d),
        (Soak::Template(_), None) => Ok(Duration::ZERO),
        (Soak::Template(t), Some((hs, _))) => soak_of(ex, rt, hs, batch, t),
    };
    let soak_time = match soak_time {
        Ok(d) => d,
        Err(e) => {
            for p in &mut probes {
                p.1 = Err(e.clone());
            }
            Duration::ZERO
        }
    };
    let soaking = !soak_time.is_zero();
    let before = if soaking {
        probe_all(ex, &probes).await
    } else {
        HashMap::new()
    };
    if soaking {
        ex.emit(Event::WaveSoaking {
            play: rt.play.name.clone(),
            index: bi + 1,
            waves,
            hosts: batch.len(),
            soak: soak_time,
        });
        soak(ex, soak_time).await;
        w.soak = soak_time;
    }
    // Ctrl-C: the devices did what they were asked; their health is simply not known.
    if ex.interrupted.load(Ordering::SeqCst) {
        w.skipped_because = Some("interrupted".into());
        return w;
    }
    let after = probe_all(ex, &probes).await;
    if ex.interrupted.load(Ordering::SeqCst) {
        w.skipped_because = Some("interrupted".into());
        return w;
    }
    for (hs, dg) in &probes {
        let reasons = match (dg, after.get(&hs.name)) {
            (Err(e), _) => vec![e.clone()],
            (_, Some(Err(e))) => vec![e.clone()],
            (_, None) => vec!["no health probe ran".into()],
            (Ok(g), Some(Ok(end))) => {
                // A baseline that could not be read is not a reason in itself: the end state is judged alone.
                let start = before.get(&hs.name).and_then(|b| b.as_ref().ok());
                g.gate.judge(start, end)
            }
        };
        if reasons.is_empty() {
            w.healthy += 1;
        } else {
            hs.mark_out(
                HostStatus::Failed,
                format!(
                    "unhealthy after wave {}/{waves}: {}",
                    bi + 1,
                    reasons.join("; ")
                ),
                &ex.fail_gen,
            );
            w.unhealthy.push(Unhealthy {
                host: hs.name.clone(),
                reasons,
            });
        }
    }
    w.gate = if over(&w) {
        GateStatus::Failed
    } else {
        GateStatus::Passed
    };
    w
}

/// What probing one device needs: its gate (policy and the config.toml this run rendered for it) and become.
struct DeviceGate {
    gate: HealthGate,
    become_: Option<Become>,
}

fn device_gate(
    ex: &Executor,
    rt: &PlayRt,
    hs: &HostState,
    batch: &[String],
    r: &Rollout,
) -> Result<DeviceGate, String> {
    let warnings = Arc::new(Warnings::default());
    let base = ex.host_play_layers(hs, rt, batch, VarsFiles::Required, &warnings)?;
    let cx = ex.context(&base, &[], hs);
    let expected = cx
        .get("iotedge_config_sha256")
        .ok()
        .flatten()
        .and_then(|v| v.as_str().map(String::from));
    Ok(DeviceGate {
        gate: HealthGate::new(
            r.wait_timeout,
            r.dont_run.clone(),
            r.fail_on_warnings.clone(),
            r.waivers.clone(),
            expected,
        ),
        become_: super::host::become_for(&rt.play, None, &cx),
    })
}

/// A templated soak, rendered with `hs`'s variables.
fn soak_of(
    ex: &Executor,
    rt: &PlayRt,
    hs: &HostState,
    batch: &[String],
    template: &str,
) -> Result<Duration, String> {
    let warnings = Arc::new(Warnings::default());
    let base = ex.host_play_layers(hs, rt, batch, VarsFiles::Required, &warnings)?;
    let cx = ex.context(&base, &[], hs);
    let text = cx
        .render_str(template, "rollout.soak")
        .map_err(|e| format!("rollout: soak: {}", e.message))?;
    crate::playbook::parse_duration(&serde_json::Value::String(text))
        .map_err(|e| format!("rollout: soak {template:?} rendered {e}"))
}

/// Probe every device (at most `--forks` at a time), each in one round trip on its own connection.
async fn probe_all(
    ex: &Arc<Executor>,
    probes: &[(Arc<HostState>, Result<DeviceGate, String>)],
) -> HashMap<String, Result<Probe, String>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(ex.opts.forks.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (hs, dg) in probes {
        let Ok(dg) = dg else { continue };
        let (cmd, timeout) = dg.gate.probe();
        let exec = Exec::new(cmd)
            .timeout(Some(timeout))
            .become_(dg.become_.clone());
        let hs = hs.clone();
        let sem = sem.clone();
        let interrupted = ex.interrupted.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            if interrupted.load(Ordering::SeqCst) {
                return (hs.name.clone(), Err("interrupted".to_string()));
            }
            let t = hs.transport.lock().await.clone();
            let r = match t {
                None => Err("its connection was closed before the health probe".to_string()),
                Some(t) => match t.exec(exec).await {
                    Ok(o) => Ok(Probe::parse(&o.stdout_str())),
                    Err(e) => Err(format!(
                        "the health probe did not run: {}",
                        crate::redact::redact(&e.to_string())
                    )),
                },
            };
            (hs.name.clone(), r)
        });
    }
    let mut out = HashMap::new();
    while let Some(r) = set.join_next().await {
        if let Ok((h, p)) = r {
            out.insert(h, p);
        }
    }
    out
}

/// Wait out the soak; Ctrl-C ends it early.
async fn soak(ex: &Executor, d: Duration) {
    let end = tokio::time::Instant::now() + d;
    while !ex.interrupted.load(Ordering::SeqCst) {
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(200))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    fn sizes(n: usize, serial: &[Serial]) -> Vec<usize> {
        batches(&hs(n), serial).iter().map(Vec::len).collect()
    }

    #[test]
    fn serial_batches() {
        assert_eq!(
            sizes(10, &[Serial::Count(1), Serial::Percent(30.0)]),
            [1, 3, 3, 3]
        );
        assert_eq!(batches(&hs(3), &[]).len(), 1);
        assert_eq!(sizes(5, &[Serial::Count(2)]), [2, 2, 1]);
        assert_eq!(batches(&hs(4), &[Serial::Percent(10.0)]).len(), 4);
    }

    #[test]
    fn serial_sizes_are_ansibles() {
        let waves = [
            Serial::Count(1),
            Serial::Percent(10.0),
            Serial::Percent(100.0),
        ];
        // The fleet: 1, then 10% of all 100, then the rest.
        assert_eq!(sizes(100, &waves), [1, 10, 89]);
        assert_eq!(sizes(20, &waves), [1, 2, 17]);
        // Percentages are of the play's hosts, not of those left; the last step repeats.
        assert_eq!(
            sizes(10, &[Serial::Percent(50.0), Serial::Percent(20.0)]),
            [5, 2, 2, 1]
        );
        // Python's `int((29 / 100.0) * 100)` is 28 (0.29 * 100 = 28.999999999999996): the same here.
        assert_eq!(sizes(100, &[Serial::Percent(29.0)])[0], 28);
        // A percentage that rounds to nothing is one host; 0 is all that are left.
        assert_eq!(sizes(3, &[Serial::Percent(10.0)]), [1, 1, 1]);
        assert_eq!(sizes(5, &[Serial::Count(1), Serial::Count(0)]), [1, 4]);
    }
}
