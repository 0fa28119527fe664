//! Filters on dicts: `combine` (Ansible's `merge_hash` with `recursive` and `list_merge`), `dict2items`,
//! `items2dict`, and `extract` (look an item up in a container).
//!
//! Errors name the filter and the types involved, never the values. It must not do list/set algebra (the
//! `lists` family does).

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, State, Value};
use serde_json::Value as J;

use super::lists::flatten_j;
use super::{err, from_j, py_type, require, to_j};

/// Ansible's `merge_hash(x, y, recursive, list_merge)` (utils/vars.py): `y` wins.
fn merge_hash(x: &J, y: &J, recursive: bool, list_merge: &str) -> Result<J, Error> {
    let (J::Object(xm), J::Object(ym)) = (x, y) else {
        return Err(err(format!(
            "combine: expected dicts but got a {} and a {}",
            py_type(x),
            py_type(y)
        )));
    };
    if xm.is_empty() || x == y {
        return Ok(y.clone());
    }
    if ym.is_empty() {
        return Ok(x.clone());
    }
    let mut out = xm.clone();
    for (k, yv) in ym {
        let Some(xv) = out.get(k) else {
            out.insert(k.clone(), yv.clone());
            continue;
        };
        let merged = match (xv, yv) {
            (J::Object(_), J::Object(_)) if recursive => merge_hash(xv, yv, recursive, list_merge)?,
            (J::Array(xa), J::Array(ya)) => match list_merge {
                "replace" => yv.clone(),
                "keep" => xv.clone(),
                "append" => J::Array(xa.iter().chain(ya).cloned().collect()),
                "prepend" => J::Array(ya.iter().chain(xa).cloned().collect()),
                "append_rp" => J::Array(
                    xa.iter()
                        .filter(|z| !ya.contains(z))
                        .chain(ya)
                        .cloned()
                        .collect(),
                ),
                _ => J::Array(
                    ya.iter()
                        .chain(xa.iter().filter(|z| !ya.contains(z)))
                        .cloned()
                        .collect(),
                ),
            },
            _ => yv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Ok(J::Object(out))
}

/// `combine(*dicts, recursive=False, list_merge='replace')`; `[d1, d2] | combine` works too.
/// Ansible docs: `{'a':1, 'b':2} | combine({'b':3})` -> `{'a':1, 'b':3}`.
pub(super) fn combine(
    state: &State,
    v: &Value,
    rest: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".into());
    kwargs.assert_all_used()?;
    if !matches!(
        list_merge.as_str(),
        "replace" | "keep" | "append" | "prepend" | "append_rp" | "prepend_rp"
    ) {
        return Err(err(
            "combine: list_merge must be one of replace, keep, append, prepend, append_rp, prepend_rp",
        ));
    }
    let mut terms = vec![to_j(state, v)?];
    for r in rest.iter() {
        terms.push(to_j(state, r)?);
    }
    let mut dicts = Vec::new();
    flatten_j(&terms, Some(1), true, &mut dicts);
    let Some(mut result) = dicts.pop() else {
        return Ok(from_j(&J::Object(Default::default())));
    };
    while let Some(d) = dicts.pop() {
        result = merge_hash(&d, &result, recursive, &list_merge)?;
    }
    if !result.is_object() {
        return Err(err(format!(
            "combine: expected dicts but got a {}",
            py_type(&result)
        )));
    }
    Ok(from_j(&result))
}

/// `dict2items(key_name='key', value_name='value')`.
pub(super) fn dict2items(state: &State, v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let kn = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let vn = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kwargs.assert_all_used()?;
    let J::Object(m) = to_j(state, v)? else {
        return Err(err(format!(
            "dict2items requires a dictionary, got {} instead",
            v.kind()
        )));
    };
    let items: Vec<J> = m
        .into_iter()
        .map(|(k, x)| {
            let mut o = serde_json::Map::new();
            o.insert(kn.clone(), J::String(k));
            o.insert(vn.clone(), x);
            J::Object(o)
        })
        .collect();
    Ok(from_j(&J::Array(items)))
}

/// `items2dict(key_name='key', value_name='value')`.
pub(super) fn items2dict(state: &State, v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let kn = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let vn = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kwargs.assert_all_used()?;
    require(state, v)?;
    if v.kind() != ValueKind::Seq {
        return Err(err(format!(
            "items2dict requires a list, got {} instead",
            v.kind()
        )));
    }
    let mut out = Vec::new();
    for (i, item) in v.try_iter()?.enumerate() {
        if item.kind() != ValueKind::Map {
            return Err(err(format!(
                "items2dict requires a list of dictionaries (item {i} is a {})",
                item.kind()
            )));
        }
        let key = item.get_item(&Value::from(kn.as_str()))?;
        let val = item.get_item(&Value::from(vn.as_str()))?;
        if key.is_undefined() || val.is_undefined() {
            return Err(err(format!(
                "items2dict requires each dictionary in the list to contain the keys '{kn}' and '{vn}' (item {i} does not)"
            )));
        }
        out.push((key, val));
    }
    Ok(Value::from_pairs(out))
}

/// `extract(container, morekeys=None)`: `container[item][morekey]...`
/// (Ansible docs: `[0,2] | map('extract', ['x','y','z'])` -> `['x','z']`).
pub(super) fn extract(
    state: &State,
    item: &Value,
    container: &Value,
    morekeys: Option<Value>,
) -> Result<Value, Error> {
    require(state, item)?;
    require(state, container)?;
    let mut keys = vec![item.clone()];
    match morekeys {
        None => {}
        Some(m) if m.kind() == ValueKind::Seq => keys.extend(m.try_iter()?),
        Some(m) => keys.push(m),
    }
    let mut cur = container.clone();
    for k in keys {
        if cur.is_undefined() {
            break;
        }
        cur = cur.get_item(&k)?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use crate::template::filters::testing::{e, r};

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn dicts_and_combine() {
        assert_eq!(
            r("{{ {'a':1,'b':2} | dict2items }}|{{ [{'key':'a','value':1}] | items2dict }}|{{ [{'k':'a','v':1}] | items2dict(key_name='k', value_name='v') }}|{{ {'a':1} | dict2items(key_name='k', value_name='v') }}"),
            "[{'key': 'a', 'value': 1}, {'key': 'b', 'value': 2}]|{'a': 1}|{'a': 1}|[{'k': 'a', 'v': 1}]"
        );
        assert_eq!(
            r("{{ {'a':1,'b':{'x':1}} | combine({'b':{'y':2}}) }}|{{ {'a':1,'b':{'x':1}} | combine({'b':{'y':2}}, recursive=true) }}|{{ {'a':[1,2]} | combine({'a':[3]}, list_merge='append') }}|{{ {'a':[1,2]} | combine({'a':[2,3]}, list_merge='append_rp') }}|{{ {'a':[1,2]} | combine({'a':[3]}, list_merge='prepend') }}|{{ {'a':[1,2]} | combine({'a':[2,3]}, list_merge='prepend_rp') }}|{{ {'a':[1,2]} | combine({'a':[3]}, list_merge='keep') }}|{{ {'a':1} | combine({'b':2}, {'a':3}) }}|{{ [{'a':1},{'b':2}] | combine }}"),
            "{'a': 1, 'b': {'y': 2}}|{'a': 1, 'b': {'x': 1, 'y': 2}}|{'a': [1, 2, 3]}|{'a': [1, 2, 3]}|{'a': [3, 1, 2]}|{'a': [2, 3, 1]}|{'a': [1, 2]}|{'a': 3, 'b': 2}|{'a': 1, 'b': 2}"
        );
        assert!(e("{{ {'a': 1} | combine([1]) }}").contains("expected dicts"));
        assert!(e("{{ {'a': 1} | dict2items | items2dict(key_name='nope') }}").contains("'nope'"));
        assert!(e("{{ [1] | dict2items }}").contains("requires a dictionary"));
    }

    #[test]
    fn extract_like_ansible() {
        assert_eq!(
            r("{{ [0, 2] | map('extract', ['x', 'y', 'z']) | list }}"),
            "['x', 'z']"
        );
        assert_eq!(
            r("{{ ['a'] | map('extract', {'a': {'b': 5}}, 'b') | list }}"),
            "[5]"
        );
    }
}
