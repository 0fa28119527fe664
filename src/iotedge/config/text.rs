//! The super config as text: deterministic TOML rendering (with the "managed by edgefleet" header), TOML
//! parsing into JSON-like data, and comparison by meaning (comments, order and whitespace don't count).
//!
//! Parsing uses the TOML 1.0 parser IoT Edge 1.5 is built with (`toml` 0.7.6): a file is TOML when the device
//! says so, and TOML 1.1 additions (`\e`, `\xHH`, times without seconds, newlines and trailing commas in
//! inline tables) are refused as the device refuses them.
//!
//! It must not validate. Pure: no I/O.

use serde_json::Value;

use super::model::SuperConfig;

/// Render deterministically as TOML, with a header saying who manages the file.
pub fn render(c: &SuperConfig) -> Result<String, String> {
    let body = toml::to_string(c).map_err(|e| format!("cannot render config.toml: {e}"))?;
    Ok(format!(
        "# Managed by edgefleet. Local edits are replaced on the next run.\n# IoT Edge 1.5 configuration: apply with `iotedge config apply`.\n\n{body}"
    ))
}

/// Parse TOML text into JSON-like data (for semantic comparison and for validating `src:` templates).
pub fn parse_toml(text: &str) -> Result<Value, String> {
    let t: toml_07::Table = toml_07::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(t).map_err(|e| e.to_string())
}

/// Do two config.toml texts mean the same thing (comments, order and whitespace don't count)?
pub fn same_meaning(a: &str, b: &str) -> bool {
    match (parse_toml(a), parse_toml(b)) {
        (Ok(x), Ok(y)) => json_eq_unordered(&x, &y),
        _ => false,
    }
}

fn json_eq_unordered(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).map(|w| json_eq_unordered(v, w)).unwrap_or(false))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_eq_unordered(v, w))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_comparison_ignores_comments_order_and_whitespace() {
        let a = "hostname = \"a\"\n[provisioning]\nsource = \"none\"\n";
        let b = "# comment\n[provisioning]\n  source   = \"none\"\n\n";
        assert!(!same_meaning(a, b));
        let b = "hostname=\"a\" # c\n\n[provisioning]\nsource = 'none'\n";
        assert!(same_meaning(a, b));
    }

    #[test]
    fn parsing_is_toml_1_0_like_the_device() {
        assert!(parse_toml("a = \"\\e[1m\"\n").is_err());
        assert!(parse_toml("a = { b = 1, }\n").is_err());
        assert!(parse_toml("a = 07:30\n").is_err());
        assert!(parse_toml("a = 07:30:00\n").is_ok());
    }
}
