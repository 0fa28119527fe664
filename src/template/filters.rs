//! The Ansible filters minijinja lacks, plus Ansible's versions of the ones whose semantics differ.
//!
//! Owns every filter added to the environment by [`register`], and the chain helper used by the undefined
//! rewrite ([`super::rewrite`]). Each filter follows ansible-core 2.19's behaviour (checked against
//! it; expected values in the tests come from real runs) and is also registered under `ansible.builtin.<name>`.
//!
//! Rules every filter keeps: never put an input *value* into an error message (inputs may be secrets: name
//! the filter, the type, the pattern or the argument instead); undefined inputs fail with minijinja's own
//! "`x` is undefined" error. It must not read variables or inventories; only `lookup('file')` reads files.

use base64::Engine;
use minijinja::value::{Kwargs, Rest, StringInput, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::Value as J;

use super::values::{is_missing, Missing};
use super::{pyre, pyyaml, rewrite};
use crate::pycompat;

/// Add our filters, tests and functions to `env`.
pub fn register(env: &mut Environment<'static>) {
    macro_rules! filter {
        ($name:literal, $f:expr) => {
            env.add_filter($name, $f);
            env.add_filter(concat!("ansible.builtin.", $name), $f);
        };
    }
    // Jinja's own, replaced to understand the chained-undefined marker.
    env.add_filter("default", default);
    env.add_filter("d", default);
    // Jinja filters Ansible (or Jinja2 itself) defines differently from minijinja.
    env.add_filter("int", int);
    env.add_filter("float", float);
    filter!("bool", bool_filter);
    filter!("mandatory", mandatory);
    filter!("to_json", to_json);
    filter!("to_nice_json", to_nice_json);
    filter!("from_json", from_json);
    filter!("to_yaml", to_yaml);
    filter!("to_nice_yaml", to_nice_yaml);
    filter!("from_yaml", from_yaml);
    filter!("from_yaml_all", from_yaml_all);
    filter!("b64encode", b64encode);
    filter!("b64decode", b64decode);
    filter!("regex_replace", regex_replace);
    filter!("regex_search", regex_search);
    filter!("regex_findall", regex_findall);
    filter!("regex_escape", regex_escape);
    filter!("basename", basename);
    filter!("dirname", dirname);
    filter!("splitext", splitext);
    filter!("path_join", path_join);
    filter!("combine", combine);
    filter!("dict2items", dict2items);
    filter!("items2dict", items2dict);
    filter!("ternary", ternary);
    filter!("quote", quote);
    filter!("hash", hash);
    filter!("checksum", checksum);
    filter!("sha1", checksum);
    filter!("md5", md5);
    filter!("flatten", flatten);
    filter!("union", union);
    filter!("intersect", intersect);
    filter!("difference", difference);
    filter!("symmetric_difference", symmetric_difference);
    filter!("zip", zip);
    filter!("zip_longest", zip_longest);
    filter!("type_debug", type_debug);
    filter!("extract", extract);
    env.add_function(rewrite::CHAIN_FN, chain);
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `__ef_chain(path, base, *keys)`: look `keys` up one after the other; a missing link gives [`Missing`].
fn chain(path: String, base: &Value, keys: Rest<Value>) -> Value {
    let missing = || Value::from_object(Missing { path: path.clone() });
    if is_missing(base) {
        return missing();
    }
    let mut cur = base.clone();
    for k in keys.iter() {
        if cur.is_none() {
            return missing();
        }
        cur = match cur.get_item(k) {
            Ok(v) if !v.is_undefined() => v,
            _ => return missing(),
        };
    }
    cur
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

/// Jinja's `default(default_value='', boolean=False)`; also accepts the chained-undefined marker.
/// Jinja2 docs: `{{ my_variable|default('my_variable is not defined') }}`.
fn default(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    // `Rest` (not `Option<Value>`) so that an explicit `default(none)` gives none, not ''.
    if args.len() > 2 {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let other = match args.first() {
        Some(o) => o.clone(),
        None => kwargs
            .get::<Option<Value>>("default_value")?
            .unwrap_or(Value::from("")),
    };
    let boolean = match args.get(1) {
        Some(b) => b.is_true(),
        None => kwargs.get::<Option<bool>>("boolean")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    if is_missing(value) || (boolean && !value.is_true()) {
        Ok(other)
    } else {
        Ok(value.clone())
    }
}

/// Ansible's `mandatory(msg=None)`: fail when undefined, naming the variable (or with `msg`).
fn mandatory(
    state: &State,
    value: &Value,
    msg: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let msg = match msg {
        Some(m) => Some(m),
        None => kwargs.get::<Option<String>>("msg")?,
    };
    kwargs.assert_all_used()?;
    if !is_missing(value) {
        return Ok(value.clone());
    }
    if let Some(m) = msg {
        return Err(Error::new(ErrorKind::UndefinedError, m));
    }
    match value.downcast_object_ref::<Missing>() {
        Some(m) => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("Mandatory variable '{}' not defined.", m.path),
        )),
        None => {
            // minijinja names the undefined expression itself.
            require(state, value)?;
            Err(Error::new(
                ErrorKind::UndefinedError,
                "Mandatory variable not defined.",
            ))
        }
    }
}

/// Ansible's `bool`: `yes`/`on`/`true`/`1` (any case) are true; everything else is false.
pub fn ansible_bool(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::Number => match v.as_i64() {
            Some(i) => i == 1,
            None => f64::try_from(v.clone()).map(|f| f == 1.0).unwrap_or(false),
        },
        ValueKind::String => matches!(
            v.as_str().unwrap_or("").to_lowercase().as_str(),
            "yes" | "on" | "true" | "1"
        ),
        _ => false,
    }
}

fn bool_filter(state: &State, v: &Value) -> Result<bool, Error> {
    require(state, v)?;
    Ok(ansible_bool(v))
}

/// Python's `int(s, base)` for strings (whitespace, sign, `_` between digits, `0x`/`0o`/`0b` prefixes).
fn parse_py_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = s.to_ascii_lowercase();
    let prefixed = |p: &str| lower.starts_with(p);
    let (base, digits) = match base {
        0 if prefixed("0x") => (16, &s[2..]),
        0 if prefixed("0o") => (8, &s[2..]),
        0 if prefixed("0b") => (2, &s[2..]),
        0 => {
            // Base 0 refuses leading zeros on non-zero decimals.
            if s.len() > 1
                && s.starts_with('0')
                && s.chars().any(|c| c.is_ascii_digit() && c != '0')
            {
                return None;
            }
            (10, s)
        }
        16 if prefixed("0x") => (16, &s[2..]),
        8 if prefixed("0o") => (8, &s[2..]),
        2 if prefixed("0b") => (2, &s[2..]),
        b => (b, s),
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| digits.len() != s.len())
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let v = i128::from_str_radix(&clean, base).ok()?;
    if clean.starts_with(['+', '-']) {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Python's `float(s)` for strings.
fn parse_py_float(s: &str) -> Option<f64> {
    let s = s.trim();
    let l = s.to_ascii_lowercase();
    let body = l.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        let f = if body == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if l.starts_with('-') { -f } else { f });
    }
    if s.is_empty() || s.contains("__") || s.starts_with('_') || s.ends_with('_') {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if !clean
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    clean.parse().ok()
}

/// Jinja2's `int(value, default=0, base=10)`: strings are parsed like Python's `int(s, base)`, then like
/// `int(float(s))`; anything that fails gives `default`. (Jinja2 docs: `{{ '0x4d32'|int(0, 16) }}` -> 19762.)
fn int(
    state: &State,
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    require(state, value)?;
    if base == 1 || base > 36 {
        return Err(err("int: base must be 0 or between 2 and 36"));
    }
    let from_float = |f: f64| -> Result<Value, Error> {
        if f.is_nan() {
            Ok(default.clone())
        } else if f.is_infinite() {
            Err(err("int: cannot convert float infinity to integer"))
        } else {
            Ok(Value::from(f.trunc() as i128))
        }
    };
    match value.kind() {
        ValueKind::Bool => Ok(Value::from(value.is_true() as i64)),
        ValueKind::Number => {
            if value.is_integer() {
                Ok(value.clone())
            } else {
                from_float(f64::try_from(value.clone()).unwrap_or(f64::NAN))
            }
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or("");
            if let Some(i) = parse_py_int(s, base) {
                return Ok(Value::from(i));
            }
            match parse_py_float(s) {
                Some(f) => from_float(f),
                None => Ok(default),
            }
        }
        _ => Ok(default),
    }
}

/// Jinja2's `float(value, default=0.0)`.
fn float(
    state: &State,
    value: &Value,
    default: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0.0)),
    };
    kwargs.assert_all_used()?;
    require(state, value)?;
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => Value::from(f64::try_from(value.clone()).unwrap_or(0.0)),
        ValueKind::String => parse_py_float(value.as_str().unwrap_or(""))
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

fn json_opts(
    kwargs: &Kwargs,
    indent: Option<usize>,
    sort_keys: bool,
) -> Result<pycompat::DumpOptions, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        Some(v) if v.is_none() => None,
        Some(v) => Some(usize::try_from(v).map_err(|_| err("to_json: indent must be a number"))?),
        None => indent,
    };
    let sort_keys = kwargs
        .get::<Option<bool>>("sort_keys")?
        .unwrap_or(sort_keys);
    let mut o = pycompat::DumpOptions::python(indent, sort_keys);
    if let Some(a) = kwargs.get::<Option<bool>>("ensure_ascii")? {
        o.ensure_ascii = a;
    }
    if let Some(sep) = kwargs.get::<Option<Vec<String>>>("separators")? {
        if sep.len() != 2 {
            return Err(err("to_json: separators must be a pair"));
        }
        o.item_separator = sep[0].clone();
        o.key_separator = sep[1].clone();
    }
    Ok(o)
}

/// `to_json(**json.dumps options)`: Python's `json.dumps` output (`ensure_ascii`, `", "` separators).
fn to_json(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let o = json_opts(&kwargs, None, false)?;
    kwargs.assert_all_used()?;
    Ok(pycompat::dumps(&to_j(state, v)?, &o))
}

/// `to_nice_json(indent=4, sort_keys=True)`.
fn to_nice_json(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let mut o = json_opts(&kwargs, Some(4), true)?;
    o.item_separator = ",".into();
    o.key_separator = ": ".into();
    kwargs.assert_all_used()?;
    Ok(pycompat::dumps(&to_j(state, v)?, &o))
}

fn from_json(state: &State, v: &Value) -> Result<Value, Error> {
    let s = text(state, v)?;
    let j: J = serde_json::from_str(&s).map_err(|e| {
        err(format!(
            "from_json: the input is not valid JSON (line {}, column {}: {})",
            e.line(),
            e.column(),
            json_error_kind(&e)
        ))
    })?;
    Ok(from_j(&j))
}

/// serde_json's message without the part that could quote the input.
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Eof => "unexpected end of input",
    }
}

fn yaml_opts(
    kwargs: &Kwargs,
    indent: usize,
    flow: Option<bool>,
) -> Result<pyyaml::YamlOptions, Error> {
    let mut o = pyyaml::YamlOptions {
        indent: kwargs.get::<Option<usize>>("indent")?.unwrap_or(indent),
        default_flow_style: flow,
        ..Default::default()
    };
    if let Some(v) = kwargs.get::<Option<Value>>("default_flow_style")? {
        o.default_flow_style = if v.is_none() { None } else { Some(v.is_true()) };
    }
    if let Some(w) = kwargs.get::<Option<usize>>("width")? {
        o.width = w;
    }
    if let Some(s) = kwargs.get::<Option<bool>>("sort_keys")? {
        o.sort_keys = s;
    }
    if let Some(s) = kwargs.get::<Option<bool>>("explicit_start")? {
        o.explicit_start = s;
    }
    // Accepted for compatibility; we always emit Unicode as is, like Ansible.
    let _ = kwargs.get::<Option<bool>>("allow_unicode")?;
    Ok(o)
}

/// `to_yaml`: PyYAML `yaml.dump` (flow style for collections of scalars).
fn to_yaml(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let o = yaml_opts(&kwargs, 2, None)?;
    kwargs.assert_all_used()?;
    Ok(pyyaml::dump(&to_j(state, v)?, &o))
}

/// `to_nice_yaml(indent=4)`: block style.
fn to_nice_yaml(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let o = yaml_opts(&kwargs, 4, Some(false))?;
    kwargs.assert_all_used()?;
    Ok(pyyaml::dump(&to_j(state, v)?, &o))
}

fn parse_yaml(s: &str) -> Result<J, Error> {
    crate::yaml::parse_value(s, std::path::Path::new("<from_yaml>")).map_err(|d| {
        // The diagnostic's snippet would quote the input: keep position and message only.
        err(format!(
            "from_yaml: the input is not valid YAML (line {}, column {}: {})",
            d.line, d.col, d.message
        ))
    })
}

fn from_yaml(state: &State, v: &Value) -> Result<Value, Error> {
    require(state, v)?;
    if v.is_none() {
        return Ok(Value::from(()));
    }
    match v.as_str() {
        Some(s) => Ok(from_j(&parse_yaml(s)?)),
        None => Ok(v.clone()),
    }
}

fn from_yaml_all(state: &State, v: &Value) -> Result<Value, Error> {
    require(state, v)?;
    if v.is_none() {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let Some(s) = v.as_str() else {
        return Ok(v.clone());
    };
    // Split on document markers at the start of a line.
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in s.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            if !cur.trim().is_empty() {
                docs.push(from_j(&parse_yaml(&cur)?));
            }
            cur.clear();
            if let Some(rest) = t.strip_prefix("--- ") {
                cur.push_str(rest);
                cur.push('\n');
            }
            continue;
        }
        cur.push_str(line);
    }
    if !cur.trim().is_empty() {
        docs.push(from_j(&parse_yaml(&cur)?));
    }
    Ok(Value::from(docs))
}

fn b64_engine(urlsafe: bool) -> base64::engine::GeneralPurpose {
    if urlsafe {
        base64::engine::general_purpose::URL_SAFE
    } else {
        base64::engine::general_purpose::STANDARD
    }
}

/// `b64encode(encoding='utf-8', urlsafe=False)`.
fn b64encode(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let urlsafe = kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
    let encoding = kwargs
        .get::<Option<String>>("encoding")?
        .unwrap_or_else(|| "utf-8".into());
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let bytes = encode_text(&s, &encoding)?;
    Ok(b64_engine(urlsafe).encode(bytes))
}

fn encode_text(s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(s.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()),
        "ascii" if s.is_ascii() => Ok(s.as_bytes().to_vec()),
        "ascii" => Err(err("b64encode: the text is not ASCII")),
        other => Err(err(format!(
            "b64encode: unsupported encoding {other:?} (use utf-8, utf-16-le or ascii)"
        ))),
    }
}

/// `b64decode(encoding='utf-8', urlsafe=False)`; like Python, characters outside the alphabet are ignored.
fn b64decode(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let urlsafe = kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
    let encoding = kwargs
        .get::<Option<String>>("encoding")?
        .unwrap_or_else(|| "utf-8".into());
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let (a, b) = if urlsafe { ('-', '_') } else { ('+', '/') };
    let clean: String = s
        .chars()
        .filter(|&c| c.is_ascii_alphanumeric() || c == a || c == b || c == '=')
        .collect();
    let bytes = b64_engine(urlsafe)
        .decode(clean.as_bytes())
        .map_err(|_| err("b64decode: the input is not valid base64 (check its padding)"))?;
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" | "ascii" => String::from_utf8(bytes)
            .map_err(|_| err("b64decode: the decoded bytes are not UTF-8 text")),
        "utf-16-le" | "utf-16le" => {
            if bytes.len() % 2 != 0 {
                return Err(err("b64decode: odd number of bytes for utf-16-le"));
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units)
                .map_err(|_| err("b64decode: the decoded bytes are not UTF-16 text"))
        }
        other => Err(err(format!("b64decode: unsupported encoding {other:?}"))),
    }
}

fn flag(kwargs: &Kwargs, name: &str) -> Result<bool, Error> {
    Ok(kwargs
        .get::<Option<Value>>(name)?
        .is_some_and(|v| v.is_true()))
}

/// `regex_replace(pattern, replacement='', ignorecase=False, multiline=False, count=0, mandatory_count=0)`.
/// Ansible docs: `'ansible' | regex_replace('^a.*i(.*)$', 'a\\1')` -> `able`.
fn regex_replace(
    state: &State,
    v: &Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let pattern = pattern.unwrap_or_default();
    let replacement = match replacement {
        Some(r) => r,
        None => kwargs
            .get::<Option<String>>("replacement")?
            .unwrap_or_default(),
    };
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory_count = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let re = pyre::compile(&pattern, ignorecase, multiline)
        .map_err(|m| err(format!("regex_replace: {m}")))?;
    let parts = pyre::parse_replacement(&replacement, &re)
        .map_err(|m| err(format!("regex_replace: {m}")))?;
    let (out, n) = pyre::subn(&re, &parts, &s, count);
    if mandatory_count != 0 && mandatory_count != n {
        return Err(err(format!(
            "regex_replace: the pattern should match {mandatory_count} times, but matches {n} times"
        )));
    }
    Ok(out)
}

/// `regex_search(regex, *groups, ignorecase=False, multiline=False)`: the match, the listed groups
/// (`'\\1'`, `'\\g<name>'`) as a list, or none when nothing matches.
fn regex_search(
    state: &State,
    v: &Value,
    regex: String,
    args: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    enum G {
        I(usize),
        N(String),
    }
    let mut groups = Vec::new();
    for a in args.iter() {
        if let Some(rest) = a.strip_prefix("\\g<") {
            let name = rest.split('>').next().unwrap_or("").to_string();
            groups.push(match name.parse::<usize>() {
                Ok(i) => G::I(i),
                Err(_) => G::N(name),
            });
        } else if let Some(rest) = a.strip_prefix('\\') {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            groups.push(G::I(digits.parse().map_err(|_| {
                err("regex_search: group arguments look like '\\1' or '\\g<name>'")
            })?));
        } else {
            return Err(err(
                "regex_search: group arguments look like '\\1' or '\\g<name>'",
            ));
        }
    }
    let s = text(state, v)?;
    let re = pyre::compile(&regex, ignorecase, multiline)
        .map_err(|m| err(format!("regex_search: {m}")))?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map(|m| m.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups {
        let m = match &g {
            G::I(i) if *i < re.captures_len() => caps.get(*i),
            G::N(n) if re.capture_names().flatten().any(|x| x == n) => caps.name(n),
            G::I(i) => return Err(err(format!("regex_search: the pattern has no group {i}"))),
            G::N(n) => {
                return Err(err(format!(
                    "regex_search: the pattern has no group named {n:?}"
                )))
            }
        };
        out.push(
            m.map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::from(())),
        );
    }
    Ok(Value::from(out))
}

/// `regex_findall(regex, multiline=False, ignorecase=False)`: Python's `re.findall` shape.
fn regex_findall(state: &State, v: &Value, regex: String, kwargs: Kwargs) -> Result<Value, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let re = pyre::compile(&regex, ignorecase, multiline)
        .map_err(|m| err(format!("regex_findall: {m}")))?;
    let ngroups = re.captures_len() - 1;
    let out: Vec<Value> = pyre::py_captures(&re, &s)
        .into_iter()
        .map(|c| {
            let g = |i: usize| Value::from(c.get(i).map(|m| m.as_str()).unwrap_or(""));
            match ngroups {
                0 => g(0),
                1 => g(1),
                n => Value::from((1..=n).map(g).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(out))
}

/// `regex_escape(re_type='python')`.
fn regex_escape(state: &State, v: &Value, re_type: Option<String>) -> Result<String, Error> {
    let s = text(state, v)?;
    match re_type.as_deref().unwrap_or("python") {
        "python" => Ok(pyre::escape(&s)),
        "posix_basic" => Ok(s
            .chars()
            .flat_map(|c| {
                let esc = matches!(c, ']' | '.' | '[' | '^' | '$' | '*' | '\\');
                esc.then_some('\\').into_iter().chain(std::iter::once(c))
            })
            .collect()),
        other => Err(err(format!(
            "regex_escape: regex type {other:?} is not supported"
        ))),
    }
}

/// `os.path.basename`.
fn basename(state: &State, v: &Value) -> Result<String, Error> {
    let s = text(state, v)?;
    Ok(s.rsplit('/').next().unwrap_or("").to_string())
}

/// `os.path.dirname` (trailing slashes of the head stripped unless it is all slashes).
fn dirname(state: &State, v: &Value) -> Result<String, Error> {
    let s = text(state, v)?;
    let head = match s.rfind('/') {
        Some(i) => &s[..=i],
        None => "",
    };
    let trimmed = head.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        head.to_string()
    } else {
        trimmed.to_string()
    })
}

/// `os.path.splitext` as a two-item list.
fn splitext(state: &State, v: &Value) -> Result<Value, Error> {
    let s = text(state, v)?;
    let base_start = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let base = &s[base_start..];
    let lead_dots = base.len() - base.trim_start_matches('.').len();
    let (root, ext) = match base.rfind('.') {
        Some(i) if i >= lead_dots => (&s[..base_start + i], &s[base_start + i..]),
        _ => (s.as_str(), ""),
    };
    Ok(Value::from(vec![Value::from(root), Value::from(ext)]))
}

/// `path_join`: `os.path.join` of a list (or a single string).
fn path_join(state: &State, v: &Value) -> Result<String, Error> {
    require(state, v)?;
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    for p in v.try_iter()? {
        let p = text(state, &p)?;
        if p.starts_with('/') || out.is_empty() {
            out = p;
        } else {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(&p);
        }
    }
    Ok(out)
}

fn is_nullish(v: &J) -> bool {
    matches!(v, J::Null) || matches!(v, J::String(s) if s == "None" || s == "null")
}

fn flatten_j(list: &[J], levels: Option<i64>, skip_nulls: bool, out: &mut Vec<J>) {
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
fn flatten(state: &State, v: &Value, levels: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
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

/// `combine(*dicts, recursive=False, list_merge='replace')`; `[d1, d2] | combine` works too.
/// Ansible docs: `{'a':1, 'b':2} | combine({'b':3})` -> `{'a':1, 'b':3}`.
fn combine(state: &State, v: &Value, rest: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
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
fn dict2items(state: &State, v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
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
fn items2dict(state: &State, v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
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

/// `ternary(true_val, false_val, none_val=None)`.
fn ternary(
    state: &State,
    v: &Value,
    t: Value,
    f: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    require(state, v)?;
    if v.is_none() {
        if let Some(n) = none_val.filter(|n| !n.is_none()) {
            return Ok(n);
        }
    }
    Ok(if v.is_true() { t } else { f })
}

/// Python's `shlex.quote` (None quotes as `''`).
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

fn quote(state: &State, v: &Value) -> Result<String, Error> {
    require(state, v)?;
    if v.is_none() {
        return Ok("''".into());
    }
    Ok(shell_quote(&text(state, v)?))
}

/// Hex digest of `data` with a hashlib algorithm name.
pub fn hexdigest(data: &[u8], algo: &str) -> Option<String> {
    use sha2::Digest;
    Some(match algo {
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "md5" => format!("{:x}", md5::compute(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// `hash(hashtype='sha1')`: md5, sha1, sha224, sha256, sha384, sha512.
fn hash(state: &State, v: &Value, algo: Option<String>) -> Result<String, Error> {
    let algo = algo.unwrap_or_else(|| "sha1".into());
    let s = text(state, v)?;
    hexdigest(s.as_bytes(), &algo).ok_or_else(|| {
        err("hash: unsupported hash type (use md5, sha1, sha224, sha256, sha384 or sha512)")
    })
}

fn checksum(state: &State, v: &Value) -> Result<String, Error> {
    hash(state, v, Some("sha1".into()))
}

fn md5(state: &State, v: &Value) -> Result<String, Error> {
    hash(state, v, Some("md5".into()))
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
fn union(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (list_j(state, a, "union")?, list_j(state, b, "union")?);
    Ok(from_j(&J::Array(unique_j(a.into_iter().chain(b)))))
}

/// `intersect(b)`.
fn intersect(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (
        list_j(state, a, "intersect")?,
        list_j(state, b, "intersect")?,
    );
    Ok(from_j(&J::Array(unique_j(
        a.into_iter().filter(|x| b.contains(x)),
    ))))
}

/// `difference(b)`.
fn difference(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (
        list_j(state, a, "difference")?,
        list_j(state, b, "difference")?,
    );
    Ok(from_j(&J::Array(unique_j(
        a.into_iter().filter(|x| !b.contains(x)),
    ))))
}

/// `symmetric_difference(b)`.
fn symmetric_difference(state: &State, a: &Value, b: &Value) -> Result<Value, Error> {
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
fn zip(state: &State, v: &Value, others: Rest<Value>) -> Result<Value, Error> {
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
fn zip_longest(
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

/// `type_debug`: the Python type name Ansible would print.
fn type_debug(v: &Value) -> &'static str {
    if is_missing(v) {
        return "AnsibleUndefined";
    }
    match v.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// `extract(container, morekeys=None)`: `container[item][morekey]...`
/// (Ansible docs: `[0,2] | map('extract', ['x','y','z'])` -> `['x','z']`).
fn extract(
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
    use crate::template::Templar;
    use serde_json::json;

    fn r(t: &str) -> String {
        r_with(t, json!({}))
    }

    fn r_with(t: &str, vars: J) -> String {
        Templar::new()
            .render_str(t, vars.as_object().unwrap(), "test")
            .unwrap_or_else(|e| panic!("{t}: {}", e.message))
    }

    fn e(t: &str) -> String {
        Templar::new()
            .render_str(t, &Default::default(), "test")
            .unwrap_err()
            .message
    }

    use super::J;

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn default_and_mandatory() {
        assert_eq!(r("{{ x | d('q') }}"), "q");
        assert_eq!(r("{{ '' | d('q', true) }}"), "q");
        assert_eq!(r("{{ 0 | d('q', true) }}"), "q");
        assert_eq!(r("{{ none | d('q') }}"), "");
        assert_eq!(r("{{ none | d('q', true) }}"), "q");
        assert_eq!(r("{{ x | default(boolean=true) }}"), "");
        assert_eq!(r("{{ x | default(none) is none }}"), "True");
        assert!(e("{{ x | mandatory }}").contains("Mandatory variable 'x' not defined."));
        assert!(e("{{ x.y | mandatory }}").contains("Mandatory variable 'x.y' not defined."));
        assert!(e("{{ x | mandatory('need x') }}").contains("need x"));
        assert_eq!(r_with("{{ a.k | mandatory }}", json!({"a": {"k": 1}})), "1");
    }

    #[test]
    fn bool_like_ansible_filter() {
        // 'yes'|bool ... ' yes '|bool on ansible-core 2.19:
        assert_eq!(
            r("{{ 'yes'|bool }}|{{ 'Y'|bool }}|{{ 't'|bool }}|{{ 'on'|bool }}|{{ '1'|bool }}|{{ 1|bool }}|{{ 2|bool }}|{{ 0|bool }}|{{ 'no'|bool }}|{{ ''|bool }}|{{ none|bool }}|{{ 1.0|bool }}|{{ 'TRUE'|bool }}|{{ ' yes '|bool }}"),
            "True|False|False|True|True|True|False|False|False|False|False|True|True|False"
        );
        assert_eq!(
            crate::template::values::module_bool(&json!("y")),
            Some(true)
        );
        assert_eq!(crate::template::values::module_bool(&json!("maybe")), None);
    }

    #[test]
    fn int_and_float_like_jinja() {
        assert_eq!(
            r("{{ 'x'|int }}|{{ '42'|int }}|{{ '0x1F'|int(base=16) }}|{{ '1F'|int(0, 16) }}|{{ '3.7'|int }}|{{ 3.7|int }}|{{ -3.7|int }}|{{ true|int }}|{{ none|int }}|{{ 'x'|int(5) }}|{{ '0b101'|int(0, 2) }}|{{ '0755'|int(base=8) }}|{{ ' 42 '|int }}|{{ '1_000'|int }}|{{ '+5'|int }}|{{ '1e3'|int }}"),
            "0|42|31|31|3|3|-3|1|0|5|5|493|42|1000|5|1000"
        );
        // Jinja2 docs: {{ '0x4d32'|int(0, 16) }} -> 19762.
        assert_eq!(r("{{ '0x4d32'|int(0, 16) }}"), "19762");
        assert_eq!(
            r("{{ '1.5'|float }}|{{ 'x'|float }}|{{ 'x'|float(2.5) }}|{{ 3|float }}"),
            "1.5|0.0|2.5|3.0"
        );
    }

    #[test]
    fn json_yaml_roundtrips() {
        let v = json!({"d": {"z": 1, "a": [1, 2], "e": {}, "u": "é"}});
        assert_eq!(
            r_with("{{ d | to_json }}", v.clone()),
            r#"{"z": 1, "a": [1, 2], "e": {}, "u": "\u00e9"}"#
        );
        assert_eq!(
            r_with("{{ d | to_nice_json }}", v.clone()),
            "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"e\": {},\n    \"u\": \"\\u00e9\",\n    \"z\": 1\n}"
        );
        assert_eq!(
            r_with(
                "{{ d | to_json(sort_keys=true, ensure_ascii=false) }}",
                v.clone()
            ),
            r#"{"a": [1, 2], "e": {}, "u": "é", "z": 1}"#
        );
        assert_eq!(
            r_with("{{ d | to_yaml }}", v.clone()),
            "a: [1, 2]\ne: {}\nu: é\nz: 1\n"
        );
        assert_eq!(
            r_with("{{ d | to_nice_yaml(indent=2) }}", v.clone()),
            "a:\n- 1\n- 2\ne: {}\nu: é\nz: 1\n"
        );
        assert_eq!(r("{{ ('{\"a\": [1, 2]}' | from_json).a[1] }}"), "2");
        assert_eq!(
            r("{{ ('a: 1\nb: [x, yes]' | from_yaml).b }}"),
            "['x', True]"
        );
        assert_eq!(
            r("{{ ('a: 1\n---\nb: 2\n' | from_yaml_all) | length }}"),
            "2"
        );
        // Round trip through our own loader.
        assert_eq!(
            r_with("{{ (d | to_nice_yaml | from_yaml) == d }}", v.clone()),
            "True"
        );
        assert_eq!(r_with("{{ (d | to_yaml | from_yaml) == d }}", v), "True");
        assert!(e("{{ 'hunter2-not-json' | from_json }}").contains("not valid JSON"));
        assert!(!e("{{ 'hunter2-not-json' | from_json }}").contains("hunter2"));
    }

    #[test]
    fn base64_paths_quote_hash() {
        assert_eq!(
            r("{{ 'hello' | b64encode }}|{{ 'aGVsbG8=' | b64decode }}|{{ 'é' | b64encode }}"),
            "aGVsbG8=|hello|w6k="
        );
        assert_eq!(r("{{ 'aGVs\nbG8=' | b64decode }}"), "hello");
        assert!(e("{{ 'aGVsbG8' | b64decode }}").contains("not valid base64"));
        assert_eq!(
            r("{{ '/etc/aziot/config.toml' | basename }}|{{ '/etc/aziot/config.toml' | dirname }}|{{ '/etc/aziot/' | basename }}|{{ '/etc/aziot/' | dirname }}|{{ 'file' | dirname }}|{{ '/' | dirname }}|{{ 'a/b.tar.gz' | splitext }}|{{ '.bashrc' | splitext }}|{{ 'x' | splitext }}"),
            "config.toml|/etc/aziot||/etc/aziot||/|['a/b.tar', '.gz']|['.bashrc', '']|['x', '']"
        );
        assert_eq!(
            r("{{ ['/etc', 'aziot', 'config.toml'] | path_join }}|{{ ['a', '/b'] | path_join }}"),
            "/etc/aziot/config.toml|/b"
        );
        assert_eq!(
            r(
                r#"{{ 'a b' | quote }}|{{ "it's" | quote }}|{{ 'abc' | quote }}|{{ '' | quote }}|{{ 'a@b%+=:,./-_' | quote }}|{{ 5 | quote }}|{{ none | quote }}"#
            ),
            r#"'a b'|'it'"'"'s'|abc|''|a@b%+=:,./-_|5|''"#
        );
        assert_eq!(
            r("{{ 'hello' | hash }}|{{ 'hello' | hash('md5') }}|{{ 'hello' | hash('sha256') }}|{{ 'hello' | checksum }}"),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d|5d41402abc4b2a76b9719d911017c592|2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824|aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
        assert_eq!(r("{{ 'hello' | hash('sha512') }}"), "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043");
        assert!(e("{{ 'x' | hash('whirlpool') }}").contains("unsupported hash type"));
    }

    #[test]
    fn ternary_dicts_combine() {
        assert_eq!(r("{{ true | ternary('a','b') }}|{{ false | ternary('a','b') }}|{{ none | ternary('a','b','c') }}|{{ none | ternary('a','b') }}|{{ '' | ternary('a','b') }}"), "a|b|c|b|b");
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
    fn regex_filters() {
        // Ansible docs examples (as written in YAML double quotes, i.e. one backslash reaches Jinja).
        assert_eq!(
            r(r"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\1') }}"),
            "able"
        );
        assert_eq!(
            r(r"{{ 'foobar' | regex_replace('^f.*o(.*)$', '\1') }}"),
            "bar"
        );
        assert_eq!(
            r(
                r"{{ 'localhost:80' | regex_replace('^(?P<host>.+):(?P<port>\d+)$', '\g<host>, \g<port>') }}"
            ),
            "localhost, 80"
        );
        assert_eq!(
            r("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"),
            "AxC"
        );
        assert_eq!(r("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"), "bba");
        assert!(
            e("{{ 'aaa' | regex_replace('a', 'b', mandatory_count=2) }}")
                .contains("should match 2 times, but matches 3")
        );
        assert_eq!(
            r("{{ 'server1/database42' | regex_search('database[0-9]+') }}"),
            "database42"
        );
        assert_eq!(
            r("{{ 'ansible' | regex_search('foobar') is none }}"),
            "True"
        );
        assert_eq!(
            r(
                r"{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\1', '\2') }}"
            ),
            "['1', '42']"
        );
        assert_eq!(
            r(r"{{ 'ab' | regex_search('(?P<x>b)', '\g<x>') }}"),
            "['b']"
        );
        assert_eq!(
            r(
                "{{ text | regex_findall('^.ar$', multiline=True, ignorecase=True) }}"
                    .replace("text", "'CAR\ntar\nfoo\nbar\n'")
                    .as_str()
            ),
            "['CAR', 'tar', 'bar']"
        );
        assert_eq!(r("{{ 'a1b22' | regex_findall('[0-9]+') }}|{{ 'a1b2' | regex_findall('([a-z])([0-9])') }}"), "['1', '22']|[['a', '1'], ['b', '2']]");
        assert_eq!(r("{{ '1.2*' | regex_escape }}"), r"1\.2\*");
        assert!(e("{{ 'x' | regex_replace('(a)\\1', '') }}").contains("backreference"));
    }

    #[test]
    fn list_filters() {
        assert_eq!(
            r("{{ [1,[2,[3,[4]]]] | flatten }}|{{ [1,[2,[3,[4]]]] | flatten(levels=1) }}|{{ [1,none,[2]] | flatten }}|{{ [1,2,2,'a','A'] | unique }}|{{ [1,2] | union([2,3]) }}|{{ [1,2,3] | intersect([2,3,4]) }}|{{ [1,2,3] | difference([2]) }}|{{ [1,2] | symmetric_difference([2,3]) }}|{{ [1,2] | zip(['a','b']) | list }}|{{ [1,2,3] | zip(['a']) | list }}|{{ [1] | zip_longest(['a','b'], fillvalue='x') | list }}"),
            "[1, 2, 3, 4]|[1, 2, [3, [4]]]|[1, 2]|[1, 2, 'a']|[1, 2, 3]|[2, 3]|[1, 3]|[1, 3]|[[1, 'a'], [2, 'b']]|[[1, 'a']]|[[1, 'a'], ['x', 'b']]"
        );
        assert_eq!(
            r("{{ 1 | type_debug }}|{{ 'a' | type_debug }}|{{ [1] | type_debug }}|{{ {} | type_debug }}|{{ none | type_debug }}|{{ 1.5 | type_debug }}|{{ true | type_debug }}"),
            "int|str|list|dict|NoneType|float|bool"
        );
        assert_eq!(
            r("{{ [0, 2] | map('extract', ['x', 'y', 'z']) | list }}"),
            "['x', 'z']"
        );
        assert_eq!(
            r("{{ ['a'] | map('extract', {'a': {'b': 5}}, 'b') | list }}"),
            "[5]"
        );
        assert_eq!(r("{{ 'x' | ansible.builtin.to_json }}"), "\"x\"");
    }
}
