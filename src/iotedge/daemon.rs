//! `/etc/docker/daemon.json`: merge the keys edgefleet owns (dns, log-driver, log-opts max-size/max-file)
//! into whatever the operator already has, keeping every other key and its order.
//!
//! Pure: parsing, merging, semantic comparison, rendering. `log-opts` values are always strings (Docker and
//! `iotedge check` require it: a numeric `"max-file": 3` is an error on the device).

use serde_json::{Map, Value};

/// What edgefleet wants in daemon.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// DNS servers (empty: leave `dns` alone).
    pub dns: Vec<String>,
    /// Log driver (`local` by default).
    pub log_driver: String,
    /// `log-opts.max-size`, e.g. "10m".
    pub max_size: String,
    /// `log-opts.max-file`, e.g. "3".
    pub max_file: String,
}

/// Parse existing daemon.json content. Empty content counts as `{}`.
pub fn parse(existing: &str) -> Result<Map<String, Value>, String> {
    if existing.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(existing) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("daemon.json must contain a JSON object".into()),
        Err(e) => Err(format!(
            "daemon.json is not valid JSON (line {}, column {}: {e}); fix or remove it by hand — edgefleet will not overwrite a file it cannot read",
            e.line(),
            e.column()
        )),
    }
}

/// Merge our settings into an existing object: our keys are set, every other key keeps its value and order.
pub fn merge(existing: &Map<String, Value>, s: &DaemonSettings) -> Map<String, Value> {
    let mut out = existing.clone();
    if !s.dns.is_empty() {
        out.insert(
            "dns".into(),
            Value::Array(s.dns.iter().cloned().map(Value::String).collect()),
        );
    }
    out.insert("log-driver".into(), Value::String(s.log_driver.clone()));
    let mut opts = match existing.get("log-opts") {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    if s.log_driver == "journald" || s.log_driver == "none" {
        opts.remove("max-size");
        opts.remove("max-file");
    } else {
        opts.insert("max-size".into(), Value::String(s.max_size.clone()));
        opts.insert("max-file".into(), Value::String(s.max_file.clone()));
    }
    if opts.is_empty() {
        out.remove("log-opts");
    } else {
        out.insert("log-opts".into(), Value::Object(opts));
    }
    out
}

/// Render as pretty JSON with a trailing newline.
pub fn render(m: &Map<String, Value>) -> String {
    let mut s =
        serde_json::to_string_pretty(&Value::Object(m.clone())).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// Same meaning (key order and whitespace don't matter)?
pub fn same(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
}

/// Validate a size like "10m" (Docker: a number with optional k/m/g).
pub fn valid_size(s: &str) -> bool {
    let t = s.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G']);
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) && t != "0"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> DaemonSettings {
        DaemonSettings {
            dns: vec!["10.0.0.53".into()],
            log_driver: "local".into(),
            max_size: "10m".into(),
            max_file: "3".into(),
        }
    }

    #[test]
    fn merges_keeping_other_keys_and_order() {
        let existing = parse(r#"{"registry-mirrors": ["https://m"], "data-root": "/data", "log-opts": {"mode": "non-blocking", "max-file": 5}, "z": 1.5}"#).unwrap();
        let m = merge(&existing, &s());
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "registry-mirrors",
                "data-root",
                "log-opts",
                "z",
                "dns",
                "log-driver"
            ]
        );
        assert_eq!(
            m["log-opts"],
            serde_json::json!({"mode": "non-blocking", "max-file": "3", "max-size": "10m"})
        );
        assert_eq!(m["z"], serde_json::json!(1.5));
        assert!(same(&m, &merge(&m, &s())), "idempotent");
        let r = render(&m);
        assert!(r.ends_with("}\n"));
        assert!(same(&parse(&r).unwrap(), &m));
    }

    #[test]
    fn malformed_json_is_refused_with_its_position() {
        let e = parse("{\n  \"dns\": [\"1.1.1.1\",]\n}").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse("[]").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn sizes() {
        assert!(valid_size("10m"));
        assert!(valid_size("512k"));
        assert!(!valid_size("ten"));
        assert!(!valid_size("0"));
    }
}
