//! Size filters: `human_readable` and `human_to_bytes`, following ansible-core 2.19's
//! `module_utils/common/text/formatters.py` (binary multiples, `%.2f` rendering, the same unit checks).
//!
//! Owns only the conversions; errors name the filter and the unit, never the value.

use minijinja::value::Kwargs;
use minijinja::{Error, State, Value};

use super::{err, text};

/// Suffix and multiple, largest first (Ansible's SIZE_RANGES sorted by size).
const RANGES: [(char, f64); 9] = [
    ('Y', 1208925819614629174706176.0),
    ('Z', 1180591620717411303424.0),
    ('E', 1152921504606846976.0),
    ('P', 1125899906842624.0),
    ('T', 1099511627776.0),
    ('G', 1073741824.0),
    ('M', 1048576.0),
    ('K', 1024.0),
    ('B', 1.0),
];

/// The long names of each unit (byte, bit), for `human_to_bytes`'s multi-letter units.
fn long_names(k: char) -> (&'static str, &'static str) {
    match k {
        'B' => ("byte", "bit"),
        'K' => ("kilobyte", "kilobit"),
        'M' => ("megabyte", "megabit"),
        'G' => ("gigabyte", "gigabit"),
        'T' => ("terabyte", "terabit"),
        'P' => ("petabyte", "petabit"),
        'E' => ("exabyte", "exabit"),
        'Z' => ("zettabyte", "zettabit"),
        _ => ("yottabyte", "yottabit"),
    }
}

/// `human_readable(isbits=False, unit=None)`: `1536 -> "1.50 KB"`, `0 -> "0.00 Bytes"`.
pub(super) fn human_readable(state: &State, v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let isbits = kwargs.get::<Option<bool>>("isbits")?.unwrap_or(false);
    let unit = kwargs.get::<Option<String>>("unit")?;
    kwargs.assert_all_used()?;
    let size: f64 = match f64::try_from(v.clone()) {
        Ok(f) => f,
        Err(_) => text(state, v)?
            .trim()
            .parse()
            .map_err(|_| err("human_readable: the value is not a number"))?,
    };
    let base = if isbits { "bits" } else { "Bytes" };
    let want = unit
        .as_deref()
        .and_then(|u| u.chars().next())
        .map(|c| c.to_ascii_uppercase());
    let mut pick = RANGES[RANGES.len() - 1];
    for r in RANGES {
        pick = r;
        if (want.is_none() && size >= r.1) || want == Some(r.0) {
            break;
        }
    }
    let suffix = if pick.1 != 1.0 {
        format!("{}{}", pick.0, &base[..1])
    } else {
        base.to_string()
    };
    Ok(Value::from(format!("{:.2} {suffix}", size / pick.1)))
}

/// `human_to_bytes(default_unit=None, isbits=False)`: `"1.5G" -> 1610612736`.
pub(super) fn human_to_bytes(
    state: &State,
    v: &Value,
    default_unit: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default_unit = match default_unit {
        Some(u) => Some(u),
        None => kwargs.get::<Option<String>>("default_unit")?,
    };
    let isbits = kwargs.get::<Option<bool>>("isbits")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let re = regex::Regex::new(r"^([0-9]*\.?[0-9]+)(?:\s*([A-Za-z]+))?\s*$")
        .map_err(|e| err(e.to_string()))?;
    let caps = re.captures(&s).ok_or_else(|| {
        err("human_to_bytes: cannot interpret the value as a size (e.g. 10M, 1.5 GB)")
    })?;
    let num: f64 = caps[1]
        .parse()
        .map_err(|_| err("human_to_bytes: the number part is not a number"))?;
    let Some(unit) = caps.get(2).map(|m| m.as_str().to_string()).or(default_unit) else {
        return Ok(Value::from(py_round(num)));
    };
    let key = unit
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('?');
    let Some(&(_, limit)) = RANGES.iter().find(|r| r.0 == key) else {
        return Err(err(format!(
            "human_to_bytes: unknown unit {unit:?}; the suffix must be one of Y, Z, E, P, T, G, M, K, B"
        )));
    };
    if unit.chars().count() > 1 {
        let (byte_name, bit_name) = long_names(key);
        let (long, short) = if isbits {
            (bit_name, format!("{key}b"))
        } else {
            (byte_name, format!("{key}B"))
        };
        let short = if key == 'B' {
            if isbits {
                "b".to_string()
            } else {
                "B".to_string()
            }
        } else {
            short
        };
        if unit.to_lowercase() != long && unit != short {
            return Err(err(format!(
                "human_to_bytes: unit {unit:?} is not valid here (expect {short} or {})",
                if key == 'B' {
                    long.to_string()
                } else {
                    key.to_string()
                }
            )));
        }
    }
    Ok(Value::from(py_round(num * limit)))
}

/// Python's `int(round(x))`: halves to even.
fn py_round(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{e, r};

    /// Expected values from ansible-core 2.19.
    #[test]
    fn like_ansible() {
        assert_eq!(r("{{ 0 | human_readable }}"), "0.00 Bytes");
        assert_eq!(r("{{ 1536 | human_readable }}"), "1.50 KB");
        assert_eq!(
            r("{{ 1073741824 | human_readable(unit='M') }}"),
            "1024.00 MB"
        );
        assert_eq!(r("{{ 8000 | human_readable(isbits=True) }}"), "7.81 Kb");
        assert_eq!(r("{{ '1.5G' | human_to_bytes }}"), "1610612736");
        assert_eq!(r("{{ '2 MB' | human_to_bytes }}"), "2097152");
        assert_eq!(r("{{ '4' | human_to_bytes(default_unit='K') }}"), "4096");
        assert_eq!(r("{{ '1Mb' | human_to_bytes(isbits=True) }}"), "1048576");
        assert!(e("{{ '1Mb' | human_to_bytes }}").contains("not valid"));
        assert!(e("{{ 'lots' | human_to_bytes }}").contains("cannot interpret"));
    }
}
