//! Config problems and how they are worded: [`ConfigProblem`] (a dotted key plus what to do), and
//! [`from_value`], which deserializes the model and turns serde's errors into problems that name the key,
//! with a "did you mean" for unknown keys (the device would silently ignore them).
//!
//! It must not know the rules of 1.5 (that is `validate`'s) nor the tables' keys (that is the model's
//! `fields_of`). Pure: no I/O.

use serde_json::Value;

use super::model::{fields_of, SuperConfig};

/// One problem with a config, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key, e.g. `provisioning.attestation.method`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

pub(super) fn p(key: &str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Deserialize a config from JSON-like data (module arguments, or a parsed TOML file), with a precise error
/// for unknown keys and wrong types.
pub fn from_value(v: &Value) -> Result<SuperConfig, ConfigProblem> {
    let de = v.clone();
    serde_path_to_error::deserialize::<_, SuperConfig>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        describe_serde_error(&path, &inner)
    })
}

/// Deserialize a part of the config (a table the model keeps as JSON because the device accepts it in several
/// shapes) as `T`, with errors that name the key under `prefix`.
pub(super) fn deserialize_at<T: serde::de::DeserializeOwned>(
    prefix: &str,
    v: &Value,
) -> Result<T, ConfigProblem> {
    serde_path_to_error::deserialize::<_, T>(v.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let path = match path.as_str() {
            "." | "" => prefix.to_string(),
            p => format!("{prefix}.{p}"),
        };
        describe_serde_error(&path, &inner)
    })
}

fn describe_serde_error(path: &str, inner: &str) -> ConfigProblem {
    // Paths look like `edge_ca.crt` for unknown fields (the unknown key is the last segment) and
    // `agent.config` for missing fields.
    let path = if path == "." { "" } else { path };
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let table = path
            .strip_suffix(field)
            .map(|t| t.trim_end_matches('.'))
            .unwrap_or(path)
            .to_string();
        let candidates = fields_of(&table);
        let hint = crate::diag::did_you_mean(field, candidates.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let where_ = if table.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{table}]")
        };
        return p(
            &if table.is_empty() { field.to_string() } else { format!("{table}.{field}") },
            format!(
                "unknown key `{field}` {where_}{hint}. The device would silently ignore it (iotedge config apply does not report unknown keys)"
            ),
        );
    }
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let key = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return p(&key, "is required");
    }
    p(path, inner.to_string())
}

/// A problem list.
pub type Problems = Vec<ConfigProblem>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iotedge::config::testing::base;
    use serde_json::json;

    #[test]
    fn unknown_keys_are_errors_with_suggestions() {
        let mut v = base();
        v["hostnme"] = json!("x");
        let e = from_value(&v).unwrap_err();
        assert_eq!(e.key, "hostnme");
        assert!(e.message.contains("did you mean `hostname`"), "{e}");
        let mut v = base();
        v["edge_ca"] = json!({"crt": "file:///a", "pk": "file:///b"});
        let e = from_value(&v).unwrap_err();
        assert_eq!(e.key, "edge_ca.crt");
        assert!(e.message.contains("did you mean `cert`"), "{e}");
        assert!(e.message.contains("in [edge_ca]"), "{e}");
        let mut v = base();
        v["agent"]["config"]["imag"] = json!("x");
        let e = from_value(&v).unwrap_err();
        assert!(
            e.message.contains("did you mean `image`") || e.key.contains("image"),
            "{e}"
        );
    }
}
