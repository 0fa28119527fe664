//! The health probe of a rollout wave's gate: the IoT Edge verify gather ([`super::iotedge`]) with one more
//! section, every module's restart state (`docker inspect` of the modules `iotedge list` shows: name, restart
//! count, state, start time), in the same single round trip; and the pure parser of that section, tested on
//! recorded output.
//!
//! Read-only. What the answers mean (a restart during the soak, a check that started failing) is
//! `iotedge::health`'s business, not this file's.

use crate::transport::Cmd;

/// Appended to the verify script: the module names are the first column of the `iotedge list` output the
/// script already holds (`$lst`), so this costs one `docker inspect` and no other process.
const RESTARTS: &str = r#"set -f
names=$(printf '%s\n' "$lst" | { read -r _; while read -r n _; do printf '%s ' "$n"; done; })
printf '\036EF:restarts\n'
[ -z "$names" ] || docker inspect --format '{{.Name}} {{.RestartCount}} {{.State.Status}} {{.State.StartedAt}}' $names 2>/dev/null
true"#;

/// The probe: the verify gather (waiting up to `wait` seconds for the services and edgeAgent/edgeHub) plus the
/// modules' restart state.
pub fn probe_cmd(wait: u64, config: &str, daemon_json: &str, dont_run: &[String]) -> Cmd {
    super::iotedge::verify_cmd(wait, config, daemon_json, true, dont_run)
        .raw(";")
        .raw(RESTARTS)
}

/// One module's restart state, as `docker inspect` showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRestarts {
    /// Module (container) name.
    pub name: String,
    /// Docker's restart count.
    pub restart_count: u64,
    /// Container state (`running`, `exited`, `restarting`, ...).
    pub state: String,
    /// When the container last started (RFC 3339, as Docker prints it).
    pub started_at: String,
}

/// The `restarts` section of the probe's output (lines that do not parse are left out: a module missing from
/// it is reported by the judge as gone).
pub fn parse_restarts(out: &str) -> Vec<ModuleRestarts> {
    let mut section = None;
    let mut rows = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix(super::iotedge::MARK) {
            section = Some(rest.trim().to_string());
            continue;
        }
        if section.as_deref() != Some("restarts") {
            continue;
        }
        let mut w = line.split_whitespace();
        let (Some(name), Some(count), Some(state), Some(started)) =
            (w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        let Ok(restart_count) = count.parse() else {
            continue;
        };
        rows.push(ModuleRestarts {
            name: name.trim_start_matches('/').to_string(),
            restart_count,
            state: state.to_string(),
            started_at: started.to_string(),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_section_parses_and_skips_noise() {
        let out = "\u{1e}EF:list 0\nNAME STATUS DESCRIPTION CONFIG\nedgeHub running Up 1 second img\n\u{1e}EF:restarts\n/edgeAgent 0 running 2026-12-03T18:00:00.123456789Z\n/edgeHub 7 running 2026-12-03T18:05:01.000000000Z\nError: No such object: x\n";
        let r = parse_restarts(out);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].name, "edgeHub");
        assert_eq!(r[1].restart_count, 7);
        assert_eq!(r[0].started_at, "2026-12-03T18:00:00.123456789Z");
        assert!(parse_restarts("\u{1e}EF:list 0\n/edgeHub 1 running x\n").is_empty());
    }

    #[test]
    fn probe_is_the_verify_gather_plus_restarts() {
        let c = probe_cmd(5, "/etc/aziot/config.toml", "/etc/docker/daemon.json", &[]).to_string();
        assert!(c.contains("iotedge check --output json"), "{c}");
        assert!(c.ends_with("true"), "{c}");
        assert!(c.contains("EF:restarts"), "{c}");
    }
}
