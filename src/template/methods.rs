//! Python methods templates call on strings and lists, beyond minijinja-contrib's pycompat set, and Python's
//! `dict()` constructor.
//!
//! Owns [`unknown_method`] (installed as the environment's unknown-method callback: `rsplit`, `zfill`, `index`,
//! `partition`, `rpartition`, `center`, `ljust`, `rjust`, `swapcase`, `isdigit`, then pycompat's methods) and
//! [`dict`] (`dict(pairs)`, `dict(mapping)`, `dict(**kw)`, as in Python: `dict(keys | zip(values))`). Each
//! follows CPython's semantics; errors name the method, never the value.

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn arg_str(args: &[Value], i: usize) -> Option<String> {
    args.get(i).filter(|v| !v.is_none()).map(|v| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    })
}

fn arg_int(args: &[Value], i: usize, method: &str) -> Result<Option<i64>, Error> {
    match args.get(i) {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => i64::try_from(v.clone())
            .map(Some)
            .map_err(|_| err(format!("{method}: expected an integer argument"))),
    }
}

/// The unknown-method callback: our methods first, then minijinja-contrib's pycompat.
pub fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        if let Some(r) = string_method(s, method, args)? {
            return Ok(r);
        }
    } else if value.kind() == ValueKind::Seq && method == "index" {
        let needle = args
            .first()
            .ok_or_else(|| err("index: expected one argument"))?;
        let pos = value
            .try_iter()?
            .position(|x| &x == needle)
            .ok_or_else(|| err("list.index(x): x not in list"))?;
        return Ok(Value::from(pos));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    Ok(Some(match method {
        "rsplit" => {
            let sep = arg_str(args, 0);
            let max = arg_int(args, 1, "rsplit")?.unwrap_or(-1);
            let parts: Vec<String> = match &sep {
                Some(sep) if sep.is_empty() => return Err(err("rsplit: empty separator")),
                Some(sep) => {
                    if max < 0 {
                        s.split(sep.as_str()).map(str::to_string).collect()
                    } else {
                        let mut v: Vec<String> = s
                            .rsplitn(max as usize + 1, sep.as_str())
                            .map(str::to_string)
                            .collect();
                        v.reverse();
                        v
                    }
                }
                None => {
                    let words: Vec<&str> = s.split_whitespace().collect();
                    if max < 0 || words.len() <= max as usize + 1 {
                        words.into_iter().map(str::to_string).collect()
                    } else {
                        // The leftmost part keeps its inner whitespace, like Python.
                        let mut rest = s.trim_end();
                        let mut tail = Vec::new();
                        for _ in 0..max {
                            let i = rest.rfind(char::is_whitespace).unwrap_or(0);
                            tail.push(rest[i..].trim_start().to_string());
                            rest = rest[..i].trim_end();
                        }
                        tail.push(rest.trim_start().to_string());
                        tail.reverse();
                        tail
                    }
                }
            };
            Value::from(parts)
        }
        "zfill" => {
            let width = arg_int(args, 0, "zfill")?.unwrap_or(0).max(0) as usize;
            let n = s.chars().count();
            if n >= width {
                Value::from(s)
            } else {
                let pad = "0".repeat(width - n);
                match s.chars().next() {
                    Some(c @ ('+' | '-')) => Value::from(format!("{c}{pad}{}", &s[1..])),
                    _ => Value::from(format!("{pad}{s}")),
                }
            }
        }
        "index" | "rindex" => {
            let sub =
                arg_str(args, 0).ok_or_else(|| err(format!("{method}: expected a substring")))?;
            let found = if method == "index" {
                s.find(&sub)
            } else {
                s.rfind(&sub)
            };
            let b = found.ok_or_else(|| err(format!("str.{method}: substring not found")))?;
            Value::from(s[..b].chars().count())
        }
        "partition" | "rpartition" => {
            let sep =
                arg_str(args, 0).ok_or_else(|| err(format!("{method}: expected a separator")))?;
            let split = if method == "partition" {
                s.split_once(sep.as_str())
            } else {
                s.rsplit_once(sep.as_str())
            };
            let t = match split {
                Some((a, b)) => vec![a.to_string(), sep.clone(), b.to_string()],
                None if method == "partition" => vec![s.to_string(), String::new(), String::new()],
                None => vec![String::new(), String::new(), s.to_string()],
            };
            Value::from(t)
        }
        "center" | "ljust" | "rjust" => {
            let width = arg_int(args, 0, method)?.unwrap_or(0).max(0) as usize;
            let fill = arg_str(args, 1).unwrap_or_else(|| " ".into());
            let Some(f) = fill.chars().next().filter(|_| fill.chars().count() == 1) else {
                return Err(err(format!(
                    "{method}: the fill character must be exactly one character long"
                )));
            };
            let n = s.chars().count();
            if n >= width {
                Value::from(s)
            } else {
                let total = width - n;
                let (left, right) = match method {
                    "ljust" => (0, total),
                    "rjust" => (total, 0),
                    // CPython: the extra space goes left when the width is odd and the padding is odd.
                    _ => {
                        let left = total / 2 + (total & width & 1);
                        (left, total - left)
                    }
                };
                let fs = f.to_string();
                Value::from(format!("{}{s}{}", fs.repeat(left), fs.repeat(right)))
            }
        }
        "swapcase" => Value::from(
            s.chars()
                .map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<String>()
                    } else {
                        c.to_uppercase().collect::<String>()
                    }
                })
                .collect::<String>(),
        ),
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        _ => return Ok(None),
    }))
}

/// Python's `dict()`: from a mapping, from an iterable of pairs, and/or from keyword arguments.
pub fn dict(_state: &State, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    if args.len() > 1 {
        return Err(err(format!(
            "dict expected at most 1 argument, got {}",
            args.len()
        )));
    }
    let mut pairs: Vec<(Value, Value)> = Vec::new();
    if let Some(v) = args.first() {
        if v.kind() == ValueKind::Map {
            for k in v.try_iter()? {
                let x = v.get_item(&k)?;
                pairs.push((k, x));
            }
        } else {
            for (i, p) in v.try_iter()?.enumerate() {
                let kv: Vec<Value> = p
                    .try_iter()
                    .map_err(|_| err(format!("dict: sequence element #{i} is not a pair")))?
                    .collect();
                if kv.len() != 2 {
                    return Err(err(format!(
                        "dict: sequence element #{i} has length {}; 2 is required",
                        kv.len()
                    )));
                }
                pairs.push((kv[0].clone(), kv[1].clone()));
            }
        }
    }
    for k in kwargs.args() {
        pairs.push((Value::from(k), kwargs.get::<Value>(k)?));
    }
    // Later keys win, keeping the first position (Python's dict).
    let mut out: indexmap::IndexMap<Value, Value> = indexmap::IndexMap::new();
    for (k, v) in pairs {
        out.insert(k, v);
    }
    Ok(Value::from_pairs(out.into_iter().collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use crate::template::Templar;

    fn r(t: &str) -> String {
        Templar::new()
            .render_str(t, &Default::default(), "test")
            .unwrap_or_else(|e| panic!("{t}: {}", e.message))
    }

    /// Expected values from Python 3.
    #[test]
    fn like_python() {
        assert_eq!(
            r("{{ '/a/b/c.tar.gz'.rsplit('/', 1) }}"),
            "['/a/b', 'c.tar.gz']"
        );
        assert_eq!(r("{{ 'a b  c'.rsplit(None, 1) }}"), "['a b', 'c']");
        assert_eq!(r("{{ '7'.zfill(3) }} {{ '-5'.zfill(4) }}"), "007 -005");
        assert_eq!(
            r("{{ ['a', 'b'].index('b') }} {{ 'xyz'.index('z') }}"),
            "1 2"
        );
        assert_eq!(
            r("{{ 'x'.center(5, '*') }}|{{ 'ab'.center(5) }}|"),
            "**x**|  ab |"
        );
        assert_eq!(r("{{ 'k=v=w'.partition('=') }}"), "['k', '=', 'v=w']");
        assert_eq!(
            r("{{ dict(['a', 'b'] | zip([1, 2])) }}"),
            "{'a': 1, 'b': 2}"
        );
        assert_eq!(
            r("{{ dict(x=1) }} {{ dict({'a': 1}, b=2) }}"),
            "{'x': 1} {'a': 1, 'b': 2}"
        );
        assert_eq!(r("{{ 'abc'.upper() }}"), "ABC");
    }
}
