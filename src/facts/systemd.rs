//! systemd unit facts: whether a unit is active and enabled, read with `systemctl is-active` and
//! `systemctl is-enabled` in one read-only command (batched with the play's other facts), and the pure parser
//! of its output.

use crate::transport::Cmd;

/// The state of one unit as systemctl reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    /// `systemctl is-active`: active, inactive, failed, activating, ... (empty when unknown).
    pub active: String,
    /// `systemctl is-enabled`: enabled, disabled, static, masked, ... (empty when unknown).
    pub enabled: String,
}

impl UnitState {
    /// Running, or on its way there.
    pub fn is_active(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }

    /// Started at boot (or always there).
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias"
        )
    }
}

/// The fact-cache key of a unit's state.
pub fn key(unit: &str) -> String {
    format!("systemd:{unit}")
}

/// The read-only command that prints `<is-active>|<is-enabled>` for `unit`.
pub fn state_cmd(unit: &str) -> Cmd {
    Cmd::new("systemctl")
        .raw("is-active")
        .raw("--")
        .arg(unit.to_string())
        .raw("2>/dev/null; printf '|'; systemctl is-enabled --")
        .arg(unit.to_string())
        .raw("2>/dev/null; true")
}

/// Parse [`state_cmd`]'s output.
pub fn parse(stdout: &str) -> UnitState {
    let (active, enabled) = stdout.split_once('|').unwrap_or((stdout, ""));
    UnitState {
        active: active.trim().to_string(),
        enabled: enabled.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recorded_output() {
        // Recorded on Debian 12: a running enabled unit, a stopped disabled one, an unknown unit (systemctl prints
        // `inactive` and nothing for is-enabled), a static unit.
        let s = parse("active\n|enabled\n");
        assert!(s.is_active() && s.is_enabled());
        let s = parse("inactive\n|disabled\n");
        assert!(!s.is_active() && !s.is_enabled());
        assert_eq!(
            parse("inactive\n|"),
            UnitState {
                active: "inactive".into(),
                enabled: String::new()
            }
        );
        assert!(parse("failed\n|static\n").is_enabled());
        assert_eq!(parse(""), UnitState::default());
    }

    #[test]
    fn command_quotes_the_unit() {
        assert!(state_cmd("a b.service")
            .to_shell()
            .contains("'a b.service'"));
    }
}
