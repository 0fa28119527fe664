//! The Ansible Jinja *tests* (`x is version('1.5', '>=')`, `result is failed`, `path is file`, ...).
//!
//! Owns every test added to the environment (also registered as `ansible.builtin.<name>`), following
//! ansible-core 2.19's plugins/test/{core,files,mathstuff}.py. `defined`/`undefined` are replaced so that the
//! chained-undefined rewrite works (`x.y is defined` with `x` undefined is false, not an error). File tests look
//! at the *controller's* filesystem, as in Ansible. Error messages never include the tested value.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::values::{is_missing, module_bool};
use super::{pyre, version};

/// Add the tests to `env`.
pub fn register(env: &mut Environment<'static>) {
    macro_rules! test {
        ($name:literal, $f:expr) => {
            env.add_test($name, $f);
            env.add_test(concat!("ansible.builtin.", $name), $f);
        };
    }
    test!("defined", defined);
    test!("undefined", undefined);
    test!("version", version_test);
    test!("version_compare", version_test);
    test!("match", match_test);
    test!("search", search_test);
    test!("regex", regex_test);
    test!("truthy", truthy);
    test!("falsy", falsy);
    test!("failed", failed);
    test!("failure", failed);
    test!("succeeded", succeeded);
    test!("success", succeeded);
    test!("successful", succeeded);
    test!("changed", changed);
    test!("change", changed);
    test!("skipped", skipped);
    test!("skip", skipped);
    test!("unreachable", unreachable);
    test!("reachable", reachable);
    test!("contains", contains);
    test!("subset", subset);
    test!("issubset", subset);
    test!("superset", superset);
    test!("issuperset", superset);
    test!("any", any);
    test!("all", all);
    test!("nan", nan);
    test!("isnan", nan);
    test!("file", is_file);
    test!("is_file", is_file);
    test!("directory", is_dir);
    test!("is_dir", is_dir);
    test!("exists", exists);
    test!("link", is_link);
    test!("is_link", is_link);
    test!("link_exists", link_exists);
    test!("abs", is_abs);
    test!("is_abs", is_abs);
    test!("same_file", same_file);
    test!("is_same_file", same_file);
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn defined(v: &Value) -> bool {
    !is_missing(v)
}

fn undefined(v: &Value) -> bool {
    is_missing(v)
}

fn need(state: &State, v: &Value) -> Result<(), Error> {
    if is_missing(v) {
        // Reuse minijinja's error (it names the undefined expression).
        minijinja::value::StringInput::new(state, v)?;
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the tested value is undefined",
        ));
    }
    Ok(())
}

fn text(state: &State, v: &Value) -> Result<String, Error> {
    need(state, v)?;
    Ok(v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string()))
}

/// `version(version, operator='eq', strict=None, version_type=None)`.
/// Ansible docs: `{{ ansible_facts['distribution_version'] is version('12.04', '>=') }}`.
fn version_test(
    state: &State,
    v: &Value,
    other: Value,
    operator: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let operator = match operator {
        Some(o) => o,
        None => kwargs
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".into()),
    };
    let strict = kwargs.get::<Option<bool>>("strict")?;
    let vtype = kwargs.get::<Option<String>>("version_type")?;
    kwargs.assert_all_used()?;
    let vtype = match (strict, vtype) {
        (Some(_), Some(_)) => {
            return Err(err(
                "version: cannot specify both 'strict' and 'version_type'",
            ))
        }
        (Some(true), None) => "strict".to_string(),
        (_, Some(t)) => t,
        _ => "loose".to_string(),
    };
    let a = text(state, v)?;
    let b = text(state, &other)?;
    version::compare(&a, &b, &operator, &vtype).map_err(|m| err(format!("version: {m}")))
}

fn regex_common(
    state: &State,
    v: &Value,
    pattern: &str,
    kwargs: &Kwargs,
    default_type: &str,
) -> Result<bool, Error> {
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    let match_type = kwargs
        .get::<Option<String>>("match_type")?
        .unwrap_or_else(|| default_type.to_string());
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let wrapped = match match_type.as_str() {
        "search" => pattern.to_string(),
        "match" => format!(r"\A(?:{pattern})"),
        "fullmatch" => format!(r"\A(?:{pattern})\Z"),
        other => {
            return Err(err(format!(
                "regex: match_type must be search, match or fullmatch, not {other:?}"
            )))
        }
    };
    let re = pyre::compile(&wrapped, ignorecase, multiline)
        .map_err(|m| err(format!("regex test: {m}")))?;
    Ok(re.is_match(&s))
}

/// `match(pattern, ignorecase=False, multiline=False)`: Python `re.match` (anchored at the start).
fn match_test(state: &State, v: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_common(state, v, &pattern, &kwargs, "match")
}

/// `search(pattern, ...)`: Python `re.search`.
fn search_test(state: &State, v: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_common(state, v, &pattern, &kwargs, "search")
}

/// `regex(pattern, ignorecase=False, multiline=False, match_type='search')`.
fn regex_test(state: &State, v: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_common(state, v, &pattern, &kwargs, "search")
}

fn truthy_impl(state: &State, v: &Value, kwargs: &Kwargs) -> Result<bool, Error> {
    let convert = kwargs.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    need(state, v)?;
    if convert {
        if let Ok(j) = serde_json::to_value(v) {
            if let Some(b) = module_bool(&j) {
                return Ok(b);
            }
        }
    }
    Ok(v.is_true())
}

/// `truthy(convert_bool=False)`: Python truthiness.
fn truthy(state: &State, v: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    truthy_impl(state, v, &kwargs)
}

/// `falsy(convert_bool=False)`.
fn falsy(state: &State, v: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    truthy_impl(state, v, &kwargs).map(|b| !b)
}

fn result_key(state: &State, v: &Value, test: &str, key: &str) -> Result<bool, Error> {
    need(state, v)?;
    if v.kind() != ValueKind::Map {
        return Err(err(format!(
            "The '{test}' test expects a dictionary (a registered result), got {}",
            v.kind()
        )));
    }
    Ok(v.get_item(&Value::from(key))?.is_true())
}

/// `failed`: the registered result has a true `failed` key.
fn failed(state: &State, v: &Value) -> Result<bool, Error> {
    result_key(state, v, "failed", "failed")
}

fn succeeded(state: &State, v: &Value) -> Result<bool, Error> {
    result_key(state, v, "succeeded", "failed").map(|b| !b)
}

fn skipped(state: &State, v: &Value) -> Result<bool, Error> {
    result_key(state, v, "skipped", "skipped")
}

fn unreachable(state: &State, v: &Value) -> Result<bool, Error> {
    result_key(state, v, "unreachable", "unreachable")
}

fn reachable(state: &State, v: &Value) -> Result<bool, Error> {
    result_key(state, v, "reachable", "unreachable").map(|b| !b)
}

/// `changed`: the `changed` key, or any changed item of a loop's `results`.
fn changed(state: &State, v: &Value) -> Result<bool, Error> {
    need(state, v)?;
    if v.kind() != ValueKind::Map {
        return Err(err(format!(
            "The 'changed' test expects a dictionary (a registered result), got {}",
            v.kind()
        )));
    }
    let c = v.get_item(&Value::from("changed"))?;
    if !c.is_undefined() {
        return Ok(c.is_true());
    }
    let results = v.get_item(&Value::from("results"))?;
    if results.kind() == ValueKind::Seq {
        for r in results.try_iter()? {
            if r.kind() == ValueKind::Map && r.get_item(&Value::from("changed"))?.is_true() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Python's `value in seq`.
fn contains_value(seq: &Value, value: &Value) -> Result<bool, Error> {
    match seq.kind() {
        ValueKind::String => Ok(match value.as_str() {
            Some(s) => seq.as_str().unwrap_or("").contains(s),
            None => return Err(err("'in <string>' requires a string as left operand")),
        }),
        ValueKind::Map => Ok(!seq.get_item(value)?.is_undefined()),
        _ => Ok(seq.try_iter()?.any(|x| &x == value)),
    }
}

/// `contains(value)`: `value in seq` (for `selectattr('x', 'contains', 'y')`).
fn contains(state: &State, seq: &Value, value: &Value) -> Result<bool, Error> {
    need(state, seq)?;
    contains_value(seq, value)
}

/// `subset(b)`: every item of the list is in `b`.
fn subset(state: &State, a: &Value, b: &Value) -> Result<bool, Error> {
    need(state, a)?;
    need(state, b)?;
    for x in a.try_iter()? {
        if !contains_value(b, &x)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `superset(b)`.
fn superset(state: &State, a: &Value, b: &Value) -> Result<bool, Error> {
    subset(state, b, a)
}

fn any(state: &State, v: &Value) -> Result<bool, Error> {
    need(state, v)?;
    Ok(v.try_iter()?.any(|x| x.is_true()))
}

fn all(state: &State, v: &Value) -> Result<bool, Error> {
    need(state, v)?;
    Ok(v.try_iter()?.all(|x| x.is_true()))
}

fn nan(v: &Value) -> bool {
    v.kind() == ValueKind::Number && f64::try_from(v.clone()).is_ok_and(f64::is_nan)
}

fn path(state: &State, v: &Value) -> Result<std::path::PathBuf, Error> {
    Ok(std::path::PathBuf::from(text(state, v)?))
}

fn is_file(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(path(state, v)?.is_file())
}

fn is_dir(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(path(state, v)?.is_dir())
}

fn exists(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(path(state, v)?.exists())
}

fn is_link(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(path(state, v)?.is_symlink())
}

fn link_exists(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(std::fs::symlink_metadata(path(state, v)?).is_ok())
}

fn is_abs(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(path(state, v)?.is_absolute())
}

fn same_file(state: &State, a: &Value, b: &Value) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt;
    let (pa, pb) = (path(state, a)?, path(state, b)?);
    let (ma, mb) = (
        std::fs::metadata(&pa).map_err(|e| err(format!("same_file: {}: {e}", pa.display())))?,
        std::fs::metadata(&pb).map_err(|e| err(format!("same_file: {}: {e}", pb.display())))?,
    );
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

#[cfg(test)]
mod tests {
    use crate::template::Templar;
    use serde_json::json;

    fn c(expr: &str, vars: serde_json::Value) -> bool {
        Templar::new()
            .eval_condition(expr, vars.as_object().unwrap(), "test")
            .unwrap_or_else(|e| panic!("{expr}: {}", e.message))
    }

    fn ce(expr: &str) -> String {
        Templar::new()
            .eval_condition(expr, &Default::default(), "test")
            .unwrap_err()
            .message
    }

    #[test]
    fn version_tests() {
        // Ansible docs: `ansible_facts['distribution_version'] is version('12.04', '>=')`.
        assert!(c("v is version('12.04', '>=')", json!({"v": "22.04"})));
        assert!(c("'1.5.0' is version('1.5.0', '>=')", json!({})));
        assert!(c("'1.10' is version('1.9', '>')", json!({})));
        assert!(!c("'1.5.0' is version('1.5', 'eq')", json!({})));
        assert!(c("'1.5.0' is version('1.5', '==', strict=true)", json!({})));
        assert!(c(
            "'1.0.0-beta' is version('1.0.0', '<', version_type='semver')",
            json!({})
        ));
        assert!(c("'2.0' is version_compare('1.0', 'ne')", json!({})));
        assert!(c("'1.2.3' is version('1.2.3')", json!({})));
        assert!(c(
            "'1.5.1' is ansible.builtin.version('1.5.0', operator='gt')",
            json!({})
        ));
        assert!(ce("'v1.5' is version('1.5', 'eq')").contains("cannot compare"));
        assert!(
            ce("'1.0' is version('1.0', 'eq', strict=true, version_type='loose')").contains("both")
        );
    }

    #[test]
    fn regex_tests() {
        // Ansible docs: url is match('https://example.com/users/.*/resources'), search('users').
        let v = json!({"url": "https://example.com/users/foo/resources/bar"});
        assert!(c(
            "url is match('https://example.com/users/.*/resources')",
            v.clone()
        ));
        assert!(c("url is search('users/.*/resources/.*')", v.clone()));
        assert!(c("url is search('USERS', ignorecase=true)", v.clone()));
        assert!(!c("url is match('example')", v.clone()));
        assert!(c("url is regex('example.com/\\\\w+/foo')", v.clone()));
        assert!(!c("url is regex('bar', match_type='match')", v.clone()));
        assert!(c(
            "'abc' is regex('abc', match_type='fullmatch')",
            json!({})
        ));
        assert!(!c(
            "'abcd' is regex('abc', match_type='fullmatch')",
            json!({})
        ));
        assert!(c(
            "'a\\nb' is match('^b', multiline=true) == false",
            json!({})
        ));
    }

    #[test]
    fn truthiness_and_results() {
        assert!(c("'x' is truthy and '' is falsy and 0 is falsy", json!({})));
        assert!(c(
            "'no' is truthy and 'no' is falsy(convert_bool=true)",
            json!({})
        ));
        let ok = json!({"r": {"changed": true, "failed": false, "rc": 0}});
        assert!(c(
            "r is changed and r is succeeded and r is not failed and r is not skipped",
            ok
        ));
        let bad = json!({"r": {"changed": false, "failed": true, "rc": 2}});
        assert!(c(
            "r is failed and r is not success and r is not change",
            bad
        ));
        let looped = json!({"r": {"results": [{"changed": false}, {"changed": true}]}});
        assert!(c("r is changed", looped));
        assert!(c(
            "{'skipped': true} is skipped and {} is reachable",
            json!({})
        ));
        assert!(ce("'x' is failed").contains("expects a dictionary"));
    }

    #[test]
    fn sets_and_defined() {
        assert!(c(
            "[1, 2] is subset([1, 2, 3]) and [1, 2, 3] is superset([3])",
            json!({})
        ));
        assert!(c(
            "[1, 2] is contains(2) and 'abc' is contains('b') and {'k': 1} is contains('k')",
            json!({})
        ));
        assert!(c("[0, 1] is any and not ([0, 1] is all)", json!({})));
        assert!(c(
            "x is undefined and x.y is not defined and x.y.z is undefined",
            json!({})
        ));
        assert!(c(
            "a.b is defined and a.c is undefined and a.b.c is undefined",
            json!({"a": {"b": 1}})
        ));
    }

    #[test]
    fn file_tests() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.txt");
        std::fs::write(&f, "x").unwrap();
        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let v = json!({"d": dir.path(), "f": f, "l": l, "n": dir.path().join("nope")});
        assert!(c(
            "f is file and d is directory and f is exists and d is not file",
            v.clone()
        ));
        assert!(c(
            "l is link and l is link_exists and n is not exists and f is abs",
            v.clone()
        ));
        assert!(c("f is same_file(l) and 'rel/x' is not abs", v));
    }
}
