//! Values shared by the filters and the tests: the chained-undefined marker and Ansible's boolean spellings.

use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr};
use minijinja::Value;
use serde_json::Value as J;

/// What `x.y` evaluated to when some link of the chain was missing (see [`super::rewrite`]). Only ever passed
/// straight to `default`/`d`/`mandatory` or the `defined`/`undefined` tests.
#[derive(Debug)]
pub(crate) struct Missing {
    pub(crate) path: String,
}

impl Object for Missing {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn is_true(self: &Arc<Self>) -> bool {
        false
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<undefined {}>", self.path)
    }
}

/// Is `v` undefined (plain or a missing chain)?
pub(crate) fn is_missing(v: &Value) -> bool {
    v.is_undefined() || v.downcast_object_ref::<Missing>().is_some()
}

/// Ansible's module-argument boolean (`module_utils` `boolean()`): also accepts `y`/`t`/`n`/`f`.
/// `None` when the value is not boolean-like.
pub fn module_bool(v: &J) -> Option<bool> {
    match v {
        J::Bool(b) => Some(*b),
        J::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        J::String(s) => match s.to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
