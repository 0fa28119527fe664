//! The Ansible filters minijinja lacks, plus Ansible's versions of the ones whose semantics differ.
//!
//! Owns [`register`], the one place listing every filter added to the environment (each also registered under
//! `ansible.builtin.<name>`), and the helpers the filter families share (undefined checks, text and JSON
//! conversions, error constructor). The filters themselves live by family: `basics` (defaults, bool, int,
//! float, ternary, types, the undefined-rewrite chain), `serialize` (JSON/YAML), `encoding` (base64,
//! hashes), `strings` (regex, quote), `paths`, `lists` (lists and sets), `dicts`, `units` (`human_readable`,
//! `human_to_bytes`), `text` (`comment`, `wordcount`, `urlsplit`). Each filter follows
//! ansible-core 2.19's behaviour (checked against it; expected values in the tests come from real runs).
//!
//! Rules every filter keeps: never put an input *value* into an error message (inputs may be secrets: name
//! the filter, the type, the pattern or the argument instead); undefined inputs fail with minijinja's own
//! "`x` is undefined" error. It must not read variables or inventories; only `lookup('file')` reads files.

use minijinja::value::StringInput;
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::Value as J;

use super::rewrite;
use super::values::Missing;

mod basics;
mod dicts;
mod encoding;
mod lists;
mod paths;
mod serialize;
mod strings;
mod text;
mod units;

pub use basics::ansible_bool;
pub use encoding::hexdigest;
pub use lists::subelements_j;
pub use strings::shell_quote;

/// Add our filters, tests and functions to `env`.
pub fn register(env: &mut Environment<'static>) {
    macro_rules! filter {
        ($name:literal, $f:expr) => {
            env.add_filter($name, $f);
            env.add_filter(concat!("ansible.builtin.", $name), $f);
        };
    }
    // Jinja's own, replaced to understand the chained-undefined marker.
    env.add_filter("default", basics::default);
    env.add_filter("d", basics::default);
    // Jinja filters Ansible (or Jinja2 itself) defines differently from minijinja.
    env.add_filter("int", basics::int);
    env.add_filter("float", basics::float);
    filter!("bool", basics::bool_filter);
    filter!("mandatory", basics::mandatory);
    filter!("to_json", serialize::to_json);
    filter!("to_nice_json", serialize::to_nice_json);
    filter!("from_json", serialize::from_json);
    filter!("to_yaml", serialize::to_yaml);
    filter!("to_nice_yaml", serialize::to_nice_yaml);
    filter!("from_yaml", serialize::from_yaml);
    filter!("from_yaml_all", serialize::from_yaml_all);
    filter!("b64encode", encoding::b64encode);
    filter!("b64decode", encoding::b64decode);
    filter!("regex_replace", strings::regex_replace);
    filter!("regex_search", strings::regex_search);
    filter!("regex_findall", strings::regex_findall);
    filter!("regex_escape", strings::regex_escape);
    filter!("basename", paths::basename);
    filter!("dirname", paths::dirname);
    filter!("splitext", paths::splitext);
    filter!("path_join", paths::path_join);
    filter!("combine", dicts::combine);
    filter!("dict2items", dicts::dict2items);
    filter!("items2dict", dicts::items2dict);
    filter!("ternary", basics::ternary);
    filter!("quote", strings::quote);
    filter!("hash", encoding::hash);
    filter!("checksum", encoding::checksum);
    filter!("sha1", encoding::checksum);
    filter!("md5", encoding::md5);
    filter!("flatten", lists::flatten);
    filter!("union", lists::union);
    filter!("intersect", lists::intersect);
    filter!("difference", lists::difference);
    filter!("symmetric_difference", lists::symmetric_difference);
    filter!("zip", lists::zip);
    filter!("zip_longest", lists::zip_longest);
    filter!("type_debug", basics::type_debug);
    filter!("extract", dicts::extract);
    filter!("product", lists::product);
    filter!("subelements", lists::subelements);
    filter!("human_readable", units::human_readable);
    filter!("human_to_bytes", units::human_to_bytes);
    filter!("comment", text::comment);
    filter!("wordcount", text::wordcount);
    filter!("urlsplit", text::urlsplit);
    env.add_function(rewrite::CHAIN_FN, basics::chain);
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Fail like minijinja does for an undefined input (naming the variable), for filters that need a value.
fn require(state: &State, v: &Value) -> Result<(), Error> {
    if let Some(m) = v.downcast_object_ref::<Missing>() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("`{}` is undefined", m.path),
        ));
    }
    if v.is_undefined() {
        StringInput::new(state, v)?;
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    Ok(())
}

/// Python's `to_text(value, nonstring='simplerepr')`.
fn text(state: &State, v: &Value) -> Result<String, Error> {
    require(state, v)?;
    Ok(match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    })
}

/// A minijinja value as JSON (for the serializing filters).
pub(crate) fn to_j(state: &State, v: &Value) -> Result<J, Error> {
    require(state, v)?;
    serde_json::to_value(v).map_err(|e| err(format!("value cannot be serialized: {e}")))
}

fn from_j(v: &J) -> Value {
    Value::from(minijinja::value::Serde(v))
}

fn py_type(v: &J) -> &'static str {
    match v {
        J::Null => "NoneType",
        J::Bool(_) => "bool",
        J::Number(n) if n.is_f64() => "float",
        J::Number(_) => "int",
        J::String(_) => "str",
        J::Array(_) => "list",
        J::Object(_) => "dict",
    }
}

#[cfg(test)]
mod testing {
    //! Rendering helpers the family tests share.

    use serde_json::Value as J;

    use crate::template::Templar;

    pub(super) fn r(t: &str) -> String {
        r_with(t, serde_json::json!({}))
    }

    pub(super) fn r_with(t: &str, vars: J) -> String {
        Templar::new()
            .render_str(t, vars.as_object().unwrap(), "test")
            .unwrap_or_else(|e| panic!("{t}: {}", e.message))
    }

    pub(super) fn e(t: &str) -> String {
        Templar::new()
            .render_str(t, &Default::default(), "test")
            .unwrap_err()
            .message
    }
}

#[cfg(test)]
mod tests {
    use super::testing::r;

    #[test]
    fn registered_under_ansible_builtin_too() {
        assert_eq!(r("{{ 'x' | ansible.builtin.to_json }}"), "\"x\"");
    }
}
