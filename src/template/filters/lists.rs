//! Filters on lists and sets: `flatten`, `union`, `intersect`, `difference`, `symmetric_difference`, `zip`,
//! `zip_longest`, `product`, `subelements` (and [`subelements_j`], which the `subelements` lookup shares).
//!
//! Owns Ansible's list semantics (order kept, duplicates dropped by equality, strings and dicts iterated like
//! Python) and [`flatten_j`], which `combine` shares. It must not merge or reshape dicts.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Error, State, Value};
use serde_json::Value as J;

use super::{err, from_j, py_type, require, to_j};

fn is_nullish(v: &J) -> bool {
    matches!(v, J::Null) || matches!(v, J::String(s) if s == "None" || s == "null")
}

pub(super) fn flatten_j(list: &[J], levels: Option<i64>, skip_nulls: bool, out: &mut Vec<J>) {
    for e in list {
        if skip_nulls && is_nullish(e) {
            continue;
        }
        match (e, levels) {
            (J::Array(inner), None) => flatten_j(inner, None, skip_nulls, out),
            (J::Array(inner), Some(l)) if l >= 1 => flatten_j(inner, Some(l - 1), skip_nulls, out),
            _ => out.push(e.clone()),
        }
    }
}

/// `flatten(levels=None, skip_nulls=True)`.
pub(super) fn flatten(
    state: &State,
    v: &Value,
    levels: Option<i64>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get::<Option<i64>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let J::Array(list) = to_j(state, v)? else {
        return Err(err("flatten expects a list"));
    };
    let mut out = Vec::new();
    flatten_j(&list, levels, skip_nulls, &mut out);
    Ok(from_j(&J::Array(out)))
}

fn list_j(state: &State, v: &Value, what: &str) -> Result<Vec<J>, Error> {
    match to_j(state, v)? {
        J::Array(a) => Ok(a),
        J::Object(m) => Ok(m.into_iter().map(|(k, _)| J::String(k)).collect()),
        J::String(s) => Ok(s.chars().map(|c| J::String(c.to_string())).collect()),
        other => Err(err(format!(
            "{what} expects a list, got {}",
            py_type(&other)
        ))),
    }
}

fn unique_j(items: impl IntoIterator<Item = J>) -> Vec<J> {
    let mut out: Vec<J> = Vec::new();
    for x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// `union(b)`: items of both, in order, without duplicates.
pub(super) fn union(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (list_j(state, a, "union")?, list_j(state, b, "union")?);
    Ok(from_j(&J::Array(unique_j(a.into_iter().chain(b)))))
}

/// `intersect(b)`.
pub(super) fn intersect(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (
        list_j(state, a, "intersect")?,
        list_j(state, b, "intersect")?,
    );
    Ok(from_j(&J::Array(unique_j(
        a.into_iter().filter(|x| b.contains(x)),
    ))))
}

/// `difference(b)`.
pub(super) fn difference(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (
        list_j(state, a, "difference")?,
        list_j(state, b, "difference")?,
    );
    Ok(from_j(&J::Array(unique_j(
        a.into_iter().filter(|x| !b.contains(x)),
    ))))
}

/// `symmetric_difference(b)`.
pub(super) fn symmetric_difference(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (
        list_j(state, a, "symmetric_difference")?,
        list_j(state, b, "symmetric_difference")?,
    );
    let both: Vec<J> = a.iter().filter(|x| b.contains(x)).cloned().collect();
    Ok(from_j(&J::Array(unique_j(
        a.into_iter().chain(b).filter(|x| !both.contains(x)),
    ))))
}

/// `zip(*others)`: lists of items, as long as the shortest input (Ansible prints them as lists).
pub(super) fn zip(state: &State, v: &Value, others: Rest<Value>) -> Result<Value, Error> {
    let mut lists = vec![listify(state, v)?];
    for o in others.iter() {
        lists.push(listify(state, o)?);
    }
    let n = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from(
        (0..n)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    ))
}

/// `zip_longest(*others, fillvalue=None)`.
pub(super) fn zip_longest(
    state: &State,
    v: &Value,
    others: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let fill = kwargs
        .get::<Option<Value>>("fillvalue")?
        .unwrap_or(Value::from(()));
    kwargs.assert_all_used()?;
    let mut lists = vec![listify(state, v)?];
    for o in others.iter() {
        lists.push(listify(state, o)?);
    }
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..n)
            .map(|i| {
                Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

fn listify(state: &State, v: &Value) -> Result<Vec<Value>, Error> {
    require(state, v)?;
    Ok(v.try_iter()?.collect())
}

/// `product(*others, repeat=1)`: itertools.product, as a list of lists.
pub(super) fn product(
    state: &State,
    v: &Value,
    others: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let repeat = kwargs.get::<Option<i64>>("repeat")?.unwrap_or(1).max(0) as usize;
    kwargs.assert_all_used()?;
    let mut pools = vec![list_j(state, v, "product")?];
    for o in others.iter() {
        pools.push(list_j(state, o, "product")?);
    }
    let pools: Vec<Vec<J>> = (0..repeat).flat_map(|_| pools.clone()).collect();
    let mut out: Vec<Vec<J>> = vec![vec![]];
    for pool in &pools {
        let mut next = Vec::with_capacity(out.len() * pool.len());
        for prefix in &out {
            for x in pool {
                let mut p = prefix.clone();
                p.push(x.clone());
                next.push(p);
            }
        }
        out = next;
    }
    Ok(from_j(&J::Array(out.into_iter().map(J::Array).collect())))
}

/// `subelements(key_path, skip_missing=False)`: each element paired with each value of its sub-list.
pub(super) fn subelements(
    state: &State,
    v: &Value,
    path: &Value,
    skip_missing: Option<bool>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let skip_missing = match skip_missing {
        Some(b) => b,
        None => kwargs.get::<Option<bool>>("skip_missing")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let pairs = subelements_j(&to_j(state, v)?, &to_j(state, path)?, skip_missing)?;
    Ok(from_j(&J::Array(pairs)))
}

/// The pairs `subelements` (filter and lookup) produce.
pub fn subelements_j(obj: &J, path: &J, skip_missing: bool) -> Result<Vec<J>, Error> {
    let elements: Vec<J> = match obj {
        J::Object(m) => m.values().cloned().collect(),
        J::Array(a) => a.clone(),
        _ => {
            return Err(err(
                "subelements: obj must be a list of dicts or a nested dict",
            ))
        }
    };
    let keys: Vec<String> = match path {
        J::String(s) => s.split('.').map(str::to_string).collect(),
        J::Array(a) => a
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| k.to_string())
            })
            .collect(),
        _ => return Err(err("subelements: the key must be a list or a string")),
    };
    let mut out = Vec::new();
    for e in elements {
        let mut values = &e;
        let mut missing = false;
        for k in &keys {
            match values {
                J::Object(m) => match m.get(k) {
                    Some(x) => values = x,
                    None if skip_missing => {
                        missing = true;
                        break;
                    }
                    None => {
                        return Err(err(format!(
                            "subelements: could not find {k:?} key in an iterated item"
                        )))
                    }
                },
                _ => {
                    return Err(err(format!(
                        "subelements: the key {k} should point to a dictionary"
                    )))
                }
            }
        }
        if missing {
            continue;
        }
        let J::Array(list) = values else {
            return Err(err(format!(
                "subelements: the key {:?} should point to a list, got {}",
                keys.join("."),
                py_type(values)
            )));
        };
        for x in list {
            out.push(J::Array(vec![e.clone(), x.clone()]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::template::filters::testing::r;

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn list_filters() {
        assert_eq!(
            r("{{ [1,[2,[3,[4]]]] | flatten }}|{{ [1,[2,[3,[4]]]] | flatten(levels=1) }}|{{ [1,none,[2]] | flatten }}|{{ [1,2,2,'a','A'] | unique }}|{{ [1,2] | union([2,3]) }}|{{ [1,2,3] | intersect([2,3,4]) }}|{{ [1,2,3] | difference([2]) }}|{{ [1,2] | symmetric_difference([2,3]) }}|{{ [1,2] | zip(['a','b']) | list }}|{{ [1,2,3] | zip(['a']) | list }}|{{ [1] | zip_longest(['a','b'], fillvalue='x') | list }}"),
            "[1, 2, 3, 4]|[1, 2, [3, [4]]]|[1, 2]|[1, 2, 'a']|[1, 2, 3]|[2, 3]|[1, 3]|[1, 3]|[[1, 'a'], [2, 'b']]|[[1, 'a']]|[[1, 'a'], ['x', 'b']]"
        );
    }
}
