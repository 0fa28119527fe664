//! Variables: the value type, the helpers that combine two sets of them, and secrets.
//!
//! Owns [`Vars`] (names to JSON-like values, in definition order), [`overlay`] (whole values replaced, Ansible's
//! default `hash_behaviour=replace`), [`merge_recursive`] (what `combine(recursive=True)` does), and [`secrets`]
//! (age-encrypted vars files and `src:` files). It must not read plain vars files (loaders in `inventory` and the executor hand it maps), must not render
//! templates, and must not decide precedence. Which sources apply to one host and one task, and their order
//! (role defaults up to extra vars), is the executor's: it builds those layers and documents the order
//! (`executor/layers.rs`), from inventory vars that `inventory` has already combined by group depth.

pub mod secrets;

use serde_json::{Map, Value};

/// A set of variables: names to JSON-like values, in definition order.
pub type Vars = Map<String, Value>;

/// Overlay `top` onto `base` (top wins, whole values replaced).
pub fn overlay(base: &mut Vars, top: &Vars) {
    for (k, v) in top {
        base.insert(k.clone(), v.clone());
    }
}

/// Merge maps recursively (what `combine(recursive=True)` does): nested maps merge, everything else replaces.
pub fn merge_recursive(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_recursive(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, t) => *b = t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recursive_merge() {
        let mut a = json!({"a": {"x": 1, "y": {"p": 1}}, "l": [1]});
        merge_recursive(&mut a, &json!({"a": {"y": {"q": 2}}, "l": [2]}));
        assert_eq!(a, json!({"a": {"x": 1, "y": {"p": 1, "q": 2}}, "l": [2]}));
    }
}
