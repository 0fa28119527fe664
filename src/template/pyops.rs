//! Python's `%` and `-` operators where Jinja in Ansible relies on Python semantics minijinja lacks.
//!
//! Owns the two functions the rewriter (rewrite.rs) turns binary operators into: [`MOD_FN`] for every binary
//! `%` (`'%03d' % n`, `'%s-%s' % (a, b)`, `'%(k)s' % d` — Python's printf-style string formatting — and plain
//! Python modulo for numbers) and [`SUB_FN`] for a `-` next to `to_datetime`/`now()` (datetime and timedelta
//! arithmetic, see datetime.rs; numbers subtract as usual). Errors read like Python's. It must not know
//! where values come from.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

use crate::template::datetime;

/// The function a binary `%` is rewritten to call.
pub const MOD_FN: &str = "__ef_mod";
/// The function a date-arithmetic `-` is rewritten to call.
pub const SUB_FN: &str = "__ef_sub";

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's type name of a value, for error messages (never the value: it may be secret).
fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "Undefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if v.is_tuple() => "tuple",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

fn undefined_check(a: &Value, b: &Value, op: &str) -> Result<(), Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("an operand of `{op}` is undefined"),
        ));
    }
    Ok(())
}

/// `a % b`: string formatting when `a` is a string, Python's modulo for numbers.
pub fn py_mod(a: Value, b: Value) -> Result<Value, Error> {
    undefined_check(&a, &b, "%")?;
    if let Some(fmt) = a.as_str() {
        return format(fmt, &b).map(Value::from);
    }
    if let (Some(x), Some(y)) = (as_int(&a), as_int(&b)) {
        if y == 0 {
            return Err(err("integer modulo by zero"));
        }
        let mut r = x % y;
        if r != 0 && (r < 0) != (y < 0) {
            r += y;
        }
        return Ok(int_value(r));
    }
    match (as_float(&a), as_float(&b)) {
        (Some(x), Some(y)) => {
            if y == 0.0 {
                return Err(err("float modulo by zero"));
            }
            let mut r = x % y;
            if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r += y;
            } else if r == 0.0 {
                r = 0.0f64.copysign(y);
            }
            Ok(Value::from(r))
        }
        _ => Err(err(format!(
            "unsupported operand type(s) for %: '{}' and '{}'",
            type_name(&a),
            type_name(&b)
        ))),
    }
}

/// `a - b`: datetimes and timedeltas as Python subtracts them, numbers as usual.
pub fn py_sub(a: Value, b: Value) -> Result<Value, Error> {
    undefined_check(&a, &b, "-")?;
    if let Some(v) = datetime::sub(&a, &b)? {
        return Ok(v);
    }
    if let (Some(x), Some(y)) = (as_int(&a), as_int(&b)) {
        return x
            .checked_sub(y)
            .map(int_value)
            .ok_or_else(|| err("integer overflow in `-`"));
    }
    match (as_float(&a), as_float(&b)) {
        (Some(x), Some(y)) => Ok(Value::from(x - y)),
        _ => Err(err(format!(
            "unsupported operand type(s) for -: '{}' and '{}'",
            type_name(&a),
            type_name(&b)
        ))),
    }
}

fn int_value(i: i128) -> Value {
    match i64::try_from(i) {
        Ok(i) => Value::from(i),
        Err(_) => Value::from(i),
    }
}

fn as_int(v: &Value) -> Option<i128> {
    match v.kind() {
        ValueKind::Number if v.is_integer() => i128::try_from(v.clone()).ok(),
        ValueKind::Bool => Some(v.is_true() as i128),
        _ => None,
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v.kind() {
        ValueKind::Number => f64::try_from(v.clone()).ok(),
        ValueKind::Bool => Some(v.is_true() as i64 as f64),
        _ => None,
    }
}

/// Python's `str()` of a value.
fn py_str(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if let Some(s) = datetime::display(v) {
        return s;
    }
    match crate::template::to_json(v) {
        Ok(j) => crate::pycompat::str_value(&j),
        Err(_) => v.to_string(),
    }
}

/// Python's `repr()` of a value.
fn py_repr(v: &Value) -> String {
    if let Some(s) = datetime::display(v) {
        return s;
    }
    match crate::template::to_json(v) {
        Ok(j) => crate::pycompat::repr_value(&j),
        Err(_) => v.to_string(),
    }
}

/// One conversion specifier.
#[derive(Default)]
struct Spec {
    key: Option<String>,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
    conv: char,
}

/// Python's printf-style formatting: `fmt % args`.
pub fn format(fmt: &str, args: &Value) -> Result<String, Error> {
    let positional: Vec<Value> = if args.is_tuple() {
        args.try_iter()?.collect()
    } else {
        vec![args.clone()]
    };
    let is_map = args.kind() == ValueKind::Map;
    let mut next = 0usize;
    let mut used_key = false;
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let take = |next: &mut usize| -> Result<Value, Error> {
        let v = positional
            .get(*next)
            .cloned()
            .ok_or_else(|| err("not enough arguments for format string"))?;
        *next += 1;
        Ok(v)
    };
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        if chars.get(i) == Some(&'(') {
            let close = chars[i..]
                .iter()
                .position(|c| *c == ')')
                .ok_or_else(|| err("incomplete format key"))?;
            spec.key = Some(chars[i + 1..i + close].iter().collect());
            i += close + 1;
        }
        while let Some(c) = chars.get(i) {
            match c {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        if chars.get(i) == Some(&'*') {
            let w = take(&mut next)?;
            let w = as_int(&w).ok_or_else(|| err("* wants int"))?;
            if w < 0 {
                spec.left = true;
            }
            spec.width = w.unsigned_abs() as usize;
            i += 1;
        } else {
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                spec.width = spec.width * 10 + d as usize;
                i += 1;
            }
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            if chars.get(i) == Some(&'*') {
                let p = take(&mut next)?;
                spec.precision =
                    Some(as_int(&p).ok_or_else(|| err("* wants int"))?.max(0) as usize);
                i += 1;
            } else {
                let mut p = 0usize;
                while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    p = p * 10 + d as usize;
                    i += 1;
                }
                spec.precision = Some(p);
            }
        }
        while matches!(chars.get(i), Some('h' | 'l' | 'L')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(err("incomplete format"));
        };
        i += 1;
        spec.conv = conv;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let value = match &spec.key {
            Some(k) => {
                if !is_map {
                    return Err(err("format requires a mapping"));
                }
                used_key = true;
                let v = args.get_attr(k)?;
                if v.is_undefined() {
                    return Err(Error::new(
                        ErrorKind::UndefinedError,
                        format!("format key '{k}' is not in the mapping"),
                    ));
                }
                v
            }
            None => take(&mut next)?,
        };
        out.push_str(&convert(&spec, &value)?);
    }
    // Python: leftover arguments are an error unless the argument is a mapping (or list) used as one.
    let _ = used_key;
    if next < positional.len()
        && (args.is_tuple() || !matches!(args.kind(), ValueKind::Map | ValueKind::Seq))
    {
        return Err(err("not all arguments converted during string formatting"));
    }
    Ok(out)
}

fn pad(spec: &Spec, body: String, numeric: bool) -> String {
    let len = body.chars().count();
    if len >= spec.width {
        return body;
    }
    let fill = spec.width - len;
    if spec.left {
        format!("{body}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        // Zeros go after the sign and any 0x prefix.
        let sign_len = body
            .char_indices()
            .take_while(|(_, c)| matches!(c, '+' | '-' | ' '))
            .count();
        let (sign, rest) = body.split_at(sign_len);
        let (prefix, digits) = match rest.get(..2) {
            Some("0x" | "0X" | "0o") => rest.split_at(2),
            _ => ("", rest),
        };
        format!("{sign}{prefix}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn convert(spec: &Spec, v: &Value) -> Result<String, Error> {
    match spec.conv {
        's' | 'r' | 'a' => {
            let mut s = if spec.conv == 's' {
                py_str(v)
            } else {
                py_repr(v)
            };
            if let Some(p) = spec.precision {
                s = s.chars().take(p).collect();
            }
            Ok(pad(spec, s, false))
        }
        'd' | 'i' | 'u' => {
            let n = match (as_int(v), as_float(v)) {
                (Some(n), _) => n,
                (None, Some(f)) if f.is_finite() => f.trunc() as i128,
                (None, Some(_)) => {
                    return Err(err("cannot convert float infinity or NaN to integer"))
                }
                _ => {
                    return Err(err(format!(
                        "%{} format: a real number is required, not {}",
                        spec.conv,
                        type_name(v)
                    )))
                }
            };
            let mut digits = n.unsigned_abs().to_string();
            if let Some(p) = spec.precision {
                if digits.len() < p {
                    digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                }
            }
            Ok(pad(spec, format!("{}{digits}", sign(spec, n < 0)), true))
        }
        'x' | 'X' | 'o' => {
            let n = as_int(v).ok_or_else(|| {
                err(format!(
                    "%{} format: an integer is required, not {}",
                    spec.conv,
                    type_name(v)
                ))
            })?;
            let a = n.unsigned_abs();
            let (digits, prefix) = match spec.conv {
                'x' => (format!("{a:x}"), "0x"),
                'X' => (format!("{a:X}"), "0X"),
                _ => (format!("{a:o}"), "0o"),
            };
            let prefix = if spec.alt { prefix } else { "" };
            Ok(pad(
                spec,
                format!("{}{prefix}{digits}", sign(spec, n < 0)),
                true,
            ))
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let f = as_float(v)
                .ok_or_else(|| err(format!("must be real number, not {}", type_name(v))))?;
            let body = float_format(f, spec);
            Ok(pad(spec, body, f.is_finite()))
        }
        'c' => {
            let c = match (as_int(v), v.as_str()) {
                (Some(n), _) => u32::try_from(n)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| err("%c arg not in range(0x110000)"))?,
                (None, Some(s)) if s.chars().count() == 1 => s.chars().next().unwrap_or(' '),
                _ => return Err(err("%c requires an int or a unicode character")),
            };
            Ok(pad(spec, c.to_string(), false))
        }
        other => Err(err(format!("unsupported format character '{other}'"))),
    }
}

/// `%e`/`%f`/`%g` of a float, with Python's exponent spelling (`e+04`) and `%g`'s trimming.
fn float_format(f: f64, spec: &Spec) -> String {
    let upper = spec.conv.is_ascii_uppercase();
    let s = sign(spec, f.is_sign_negative());
    if !f.is_finite() {
        let t = if f.is_nan() { "nan" } else { "inf" };
        let t = if upper {
            t.to_uppercase()
        } else {
            t.to_string()
        };
        let s = if f.is_nan() { sign(spec, false) } else { s };
        return format!("{s}{t}");
    }
    let a = f.abs();
    let p = spec.precision.unwrap_or(6);
    let body = match spec.conv.to_ascii_lowercase() {
        'f' => format!("{a:.p$}"),
        'e' => exp_format(a, p),
        _ => {
            let p = p.max(1);
            // The exponent after rounding to p significant digits decides the style.
            let e = exp_format(a, p - 1);
            let x: i32 = e
                .rsplit('e')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let mut t = if x < -4 || x >= p as i32 {
                e
            } else {
                format!("{a:.*}", (p as i32 - 1 - x).max(0) as usize)
            };
            if !spec.alt {
                t = trim_zeros(&t);
            }
            t
        }
    };
    let body = if spec.alt && !body.contains('.') && spec.conv.eq_ignore_ascii_case(&'f') {
        format!("{body}.")
    } else {
        body
    };
    let body = if upper { body.to_uppercase() } else { body };
    format!("{s}{body}")
}

fn exp_format(a: f64, p: usize) -> String {
    let r = format!("{a:.p$e}");
    let (m, x) = r.split_once('e').unwrap_or((&r, "0"));
    let x: i32 = x.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
}

/// `%g` drops trailing zeros of the mantissa (and a bare point).
fn trim_zeros(t: &str) -> String {
    let (m, e) = match t.find('e') {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let m = if m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    format!("{m}{e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: Value) -> String {
        format(fmt, &args).unwrap()
    }

    fn tuple(v: Vec<Value>) -> Value {
        Value::from(minijinja::value::Tuple::from(v))
    }

    #[test]
    fn like_python_printf() {
        // Expected strings checked with CPython 3.11.
        assert_eq!(f("%03d", Value::from(7)), "007");
        assert_eq!(f("%s-%s", tuple(vec!["a".into(), 7.into()])), "a-7");
        assert_eq!(f("%.2f", Value::from(0.4567)), "0.46");
        assert_eq!(
            f("%5s|%-5s|", tuple(vec!["r".into(), "l".into()])),
            "    r|l    |"
        );
        assert_eq!(
            f(
                "%x %o %e",
                tuple(vec![255.into(), 8.into(), 12345.678.into()])
            ),
            "ff 10 1.234568e+04"
        );
        assert_eq!(
            f(
                "%#x %X %+d % d",
                tuple(vec![255.into(), 255.into(), 3.into(), 3.into()])
            ),
            "0xff FF +3  3"
        );
        assert_eq!(
            f(
                "%g %g %g %g",
                tuple(vec![
                    0.0001.into(),
                    1e-5.into(),
                    123456789.0.into(),
                    2.5.into()
                ])
            ),
            "0.0001 1e-05 1.23457e+08 2.5"
        );
        assert_eq!(f("%d%%", Value::from(3.9)), "3%");
        assert_eq!(f("%-6.2f|", Value::from(-1.005)), "-1.00 |");
        assert_eq!(f("%08.3f", Value::from(-4.56789)), "-004.568");
        assert_eq!(f("%s", Value::from(vec![1, 2])), "[1, 2]");
        assert_eq!(
            f(
                "%f %.0f %.0f %g %g %.3g %#g %e",
                Value::from(minijinja::value::Tuple::from(vec![
                    Value::from(-0.0),
                    0.5.into(),
                    1.5.into(),
                    100000.0.into(),
                    1e16.into(),
                    0.0001234.into(),
                    1.0.into(),
                    0.into(),
                ]))
            ),
            "-0.000000 0 2 100000 1e+16 0.000123 1.00000 0.000000e+00"
        );
        assert_eq!(f("%r", Value::from("it")), "'it'");
        let m = Value::from(minijinja::value::Serde(
            serde_json::json!({"a": "k", "b": 3}),
        ));
        assert_eq!(f("%(a)s=%(b)d", m), "k=3");
        assert!(format("%s %s", &Value::from(1)).is_err());
        assert!(format("%d", &Value::from("x")).is_err());
        assert!(format("x", &tuple(vec![1.into()])).is_err());
    }

    #[test]
    fn modulo_like_python() {
        assert_eq!(
            py_mod(Value::from(-7), Value::from(3)).unwrap(),
            Value::from(2)
        );
        assert_eq!(
            py_mod(Value::from(7), Value::from(-3)).unwrap(),
            Value::from(-2)
        );
        assert_eq!(
            py_mod(Value::from(7.5), Value::from(2)).unwrap(),
            Value::from(1.5)
        );
        assert!(py_mod(Value::from(1), Value::from(0)).is_err());
        assert_eq!(
            py_sub(Value::from(5), Value::from(7)).unwrap(),
            Value::from(-2)
        );
    }
}
