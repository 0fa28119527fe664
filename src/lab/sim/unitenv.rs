//! The environment systemd gives a unit from its drop-ins (`/etc/systemd/system/<unit>.service.d/*.conf`,
//! `[Service] Environment=` lines), as systemd LOADED it: the drop-ins are read at `systemctl daemon-reload`
//! (and when the device starts: a fresh state has none loaded yet), so a drop-in written without a reload is not
//! in effect — as on a real device. `systemctl show --property=Environment` and `iotedge check`'s
//! `proxy-settings` read the loaded environment.
//!
//! Device model: it must not import a program.

use std::collections::BTreeMap;

use super::state::{read_json, write_json, Env, State, StateError};

/// The state file holding each unit's loaded environment.
const FILE: &str = "unit-env.json";

/// Split one `Environment=` value into its assignments (systemd's quoting: double or single quotes, backslash
/// escapes; `%%` is a literal `%`).
pub fn parse_assignments(value: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .filter_map(|w| {
            let w = w.replace("%%", "%");
            let (k, v) = w.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The environment a unit's drop-ins set now (files in name order, later assignments win).
pub fn from_dropins(env: &Env, unit: &str) -> BTreeMap<String, String> {
    let dir = env.path(&format!("/etc/systemd/system/{unit}.service.d"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = BTreeMap::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut in_service = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_service = line == "[Service]";
            } else if in_service {
                if let Some(v) = line.strip_prefix("Environment=") {
                    if v.trim().is_empty() {
                        out.clear();
                    }
                    out.extend(parse_assignments(v));
                }
            }
        }
    }
    out
}

/// The units whose environment the simulator tracks (the ones IoT Edge's proxy guidance configures).
pub const UNITS: [&str; 3] = ["docker", "aziot-identityd", "aziot-edged"];

/// `systemctl daemon-reload`: load every tracked unit's drop-ins.
pub fn reload(st: &State) -> Result<(), StateError> {
    let all: BTreeMap<String, BTreeMap<String, String>> = UNITS
        .iter()
        .map(|u| (u.to_string(), from_dropins(&st.env, u)))
        .collect();
    write_json(&st.env.state_file(FILE), &all)
}

/// A unit's loaded environment (empty when nothing was loaded).
pub fn loaded(env: &Env, unit: &str) -> Result<BTreeMap<String, String>, StateError> {
    let all: BTreeMap<String, BTreeMap<String, String>> = read_json(&env.state_file(FILE))?;
    Ok(all.get(unit).cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_as_systemd_splits_them() {
        assert_eq!(
            parse_assignments(
                r#""https_proxy=http://u:p%%40w@proxy:3128" no_proxy=localhost 'A=b c'"#
            ),
            vec![
                ("https_proxy".into(), "http://u:p%40w@proxy:3128".into()),
                ("no_proxy".into(), "localhost".into()),
                ("A".into(), "b c".into()),
            ]
        );
    }

    #[test]
    fn dropins_load_on_reload_only() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::for_root(dir.path());
        let d = env.path("/etc/systemd/system/docker.service.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("proxy.conf"),
            "[Service]\nEnvironment=\"https_proxy=http://proxy:3128\"\n[Install]\nEnvironment=X=1\n",
        )
        .unwrap();
        assert_eq!(
            from_dropins(&env, "docker")["https_proxy"],
            "http://proxy:3128"
        );
        assert!(!from_dropins(&env, "docker").contains_key("X"));
        assert!(loaded(&env, "docker").unwrap().is_empty());
    }
}
