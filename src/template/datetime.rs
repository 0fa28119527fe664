//! Python's naive `datetime` and `timedelta` for templates: Ansible's `to_datetime` filter and `now()`.
//!
//! Owns the two value types playbooks do date arithmetic with: `(b | to_datetime - a | to_datetime).days`,
//! `.seconds`, `.total_seconds()`, `.strftime(...)`, `.year`, comparisons, and how they print (`str()`:
//! `2026-03-15 12:30:45`, `73 days, 2:30:45`). Subtraction reaches [`sub`] through the rewriter (minijinja
//! has no operator hooks for objects). Parsing follows Python's `strptime` for the directives playbooks use;
//! anything else is an error naming the directive. It must not read variables.

use std::cmp::Ordering;
use std::sync::Arc;

use minijinja::value::{from_args, DynObject, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A naive datetime: microseconds since 1970-01-01 00:00:00 (no time zone, as Python's `strptime` gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(i64);

/// A duration in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeDelta(i64);

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The broken-down fields of a datetime.
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
    /// Monday = 0.
    weekday: u32,
    /// 1-based.
    yday: u32,
}

impl DateTime {
    fn new(
        year: i64,
        month: u32,
        day: u32,
        h: u32,
        mi: u32,
        s: u32,
        us: u32,
    ) -> Result<Self, String> {
        if !(1..=9999).contains(&year) {
            return Err(format!("year {year} is out of range"));
        }
        if !(1..=12).contains(&month) {
            return Err("month must be in 1..12".into());
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err("day is out of range for month".into());
        }
        if h > 23 || mi > 59 || s > 59 {
            return Err("time is out of range".into());
        }
        let days = days_from_civil(year, month, day);
        Ok(DateTime(
            days * MICROS_PER_DAY
                + (h as i64 * 3600 + mi as i64 * 60 + s as i64) * MICROS_PER_SEC
                + us as i64,
        ))
    }

    fn fields(&self) -> Fields {
        let days = self.0.div_euclid(MICROS_PER_DAY);
        let rest = self.0.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = rest / MICROS_PER_SEC;
        Fields {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
            micro: (rest % MICROS_PER_SEC) as u32,
            // 1970-01-01 was a Thursday (3).
            weekday: (days + 3).rem_euclid(7) as u32,
            yday: (days - days_from_civil(year, 1, 1) + 1) as u32,
        }
    }

    /// Python's `str()`: `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    fn isoformat(&self, sep: &str) -> String {
        let f = self.fields();
        let mut s = format!(
            "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
            f.year, f.month, f.day, f.hour, f.minute, f.second
        );
        if f.micro != 0 {
            s.push_str(&format!(".{:06}", f.micro));
        }
        s
    }

    fn strftime(&self, fmt: &str) -> Result<String, Error> {
        let f = self.fields();
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(d) = chars.next() else {
                out.push('%');
                break;
            };
            let hour12 = if f.hour.is_multiple_of(12) {
                12
            } else {
                f.hour % 12
            };
            match d {
                'Y' => out.push_str(&format!("{:04}", f.year)),
                'y' => out.push_str(&format!("{:02}", f.year % 100)),
                'm' => out.push_str(&format!("{:02}", f.month)),
                'd' => out.push_str(&format!("{:02}", f.day)),
                'e' => out.push_str(&format!("{:2}", f.day)),
                'H' => out.push_str(&format!("{:02}", f.hour)),
                'I' => out.push_str(&format!("{hour12:02}")),
                'M' => out.push_str(&format!("{:02}", f.minute)),
                'S' => out.push_str(&format!("{:02}", f.second)),
                'f' => out.push_str(&format!("{:06}", f.micro)),
                'j' => out.push_str(&format!("{:03}", f.yday)),
                'p' => out.push_str(if f.hour < 12 { "AM" } else { "PM" }),
                'A' => out.push_str(DAYS[f.weekday as usize]),
                'a' => out.push_str(&DAYS[f.weekday as usize][..3]),
                'B' => out.push_str(MONTHS[f.month as usize - 1]),
                'b' | 'h' => out.push_str(&MONTHS[f.month as usize - 1][..3]),
                'w' => out.push_str(&((f.weekday + 1) % 7).to_string()),
                'u' => out.push_str(&(f.weekday + 1).to_string()),
                'F' => out.push_str(&format!("{:04}-{:02}-{:02}", f.year, f.month, f.day)),
                'T' => out.push_str(&format!("{:02}:{:02}:{:02}", f.hour, f.minute, f.second)),
                'D' => out.push_str(&format!(
                    "{:02}/{:02}/{:02}",
                    f.month,
                    f.day,
                    f.year % 100
                )),
                's' => out.push_str(&self.0.div_euclid(MICROS_PER_SEC).to_string()),
                // A naive datetime has no zone: Python prints nothing.
                'z' | 'Z' => {}
                '%' => out.push('%'),
                other => {
                    return Err(err(format!(
                        "strftime: the directive %{other} is not supported; use %Y %m %d %H %M %S %f %j %a %A %b %B %p %I %y"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Python's `datetime.strptime(text, fmt)` for the common directives.
    fn strptime(text: &str, fmt: &str) -> Result<DateTime, String> {
        let mismatch = || format!("time data '{text}' does not match format '{fmt}'");
        let t: Vec<char> = text.chars().collect();
        let mut i = 0usize;
        let (mut year, mut month, mut day) = (1900i64, 1u32, 1u32);
        let (mut hour, mut minute, mut second, mut micro) = (0u32, 0u32, 0u32, 0u32);
        let mut pm: Option<bool> = None;
        let num = |i: &mut usize, max: usize| -> Option<u32> {
            let start = *i;
            while *i < t.len() && *i - start < max && t[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i == start {
                return None;
            }
            t[start..*i].iter().collect::<String>().parse().ok()
        };
        let name = |i: &mut usize, names: &[&str]| -> Option<u32> {
            let rest: String = t[*i..].iter().collect::<String>().to_lowercase();
            // Full names first, then three-letter abbreviations.
            for (n, full) in names.iter().enumerate() {
                for cand in [full.to_lowercase(), full[..3].to_lowercase()] {
                    if rest.starts_with(&cand) {
                        *i += cand.chars().count();
                        return Some(n as u32);
                    }
                }
            }
            None
        };
        let mut f = fmt.chars().peekable();
        while let Some(c) = f.next() {
            if c.is_whitespace() {
                // Whitespace in the format matches any run of whitespace (also none).
                while i < t.len() && t[i].is_whitespace() {
                    i += 1;
                }
                continue;
            }
            if c != '%' {
                if t.get(i) != Some(&c) {
                    return Err(mismatch());
                }
                i += 1;
                continue;
            }
            let d = f
                .next()
                .ok_or_else(|| format!("stray % in format '{fmt}'"))?;
            match d {
                'Y' => year = num(&mut i, 4).ok_or_else(mismatch)? as i64,
                'y' => {
                    let y = num(&mut i, 2).ok_or_else(mismatch)? as i64;
                    year = if y < 69 { 2000 + y } else { 1900 + y };
                }
                'm' => month = num(&mut i, 2).ok_or_else(mismatch)?,
                'd' => day = num(&mut i, 2).ok_or_else(mismatch)?,
                'H' => hour = num(&mut i, 2).ok_or_else(mismatch)?,
                'I' => hour = num(&mut i, 2).ok_or_else(mismatch)?,
                'M' => minute = num(&mut i, 2).ok_or_else(mismatch)?,
                'S' => second = num(&mut i, 2).ok_or_else(mismatch)?,
                'f' => {
                    let start = i;
                    let v = num(&mut i, 6).ok_or_else(mismatch)?;
                    micro = v * 10u32.pow(6 - (i - start) as u32);
                }
                'j' => {
                    let _ = num(&mut i, 3).ok_or_else(mismatch)?;
                }
                'b' | 'B' | 'h' => month = name(&mut i, &MONTHS).ok_or_else(mismatch)? + 1,
                'a' | 'A' => {
                    name(&mut i, &DAYS).ok_or_else(mismatch)?;
                }
                'p' => {
                    let rest: String = t[i..].iter().take(2).collect::<String>().to_uppercase();
                    pm = match rest.as_str() {
                        "AM" => Some(false),
                        "PM" => Some(true),
                        _ => return Err(mismatch()),
                    };
                    i += 2;
                }
                '%' => {
                    if t.get(i) != Some(&'%') {
                        return Err(mismatch());
                    }
                    i += 1;
                }
                other => {
                    return Err(format!(
                        "to_datetime: the directive %{other} is not supported; use %Y %m %d %H %M %S %f %b %B %a %A %p %I %y"
                    ))
                }
            }
        }
        if i != t.len() {
            return Err(format!(
                "unconverted data remains: {}",
                t[i..].iter().collect::<String>()
            ));
        }
        if let Some(pm) = pm {
            hour = hour % 12 + if pm { 12 } else { 0 };
        }
        DateTime::new(year, month, day, hour, minute, second, micro)
    }
}

impl TimeDelta {
    fn days(&self) -> i64 {
        self.0.div_euclid(MICROS_PER_DAY)
    }
    fn seconds(&self) -> i64 {
        self.0.rem_euclid(MICROS_PER_DAY) / MICROS_PER_SEC
    }
    fn micros(&self) -> i64 {
        self.0.rem_euclid(MICROS_PER_SEC)
    }

    /// Python's `str()`: `[D day[s], ]H:MM:SS[.ffffff]`.
    fn display(&self) -> String {
        let (d, s, us) = (self.days(), self.seconds(), self.micros());
        let mut out = String::new();
        if d != 0 {
            let plural = if d.abs() == 1 { "" } else { "s" };
            out.push_str(&format!("{d} day{plural}, "));
        }
        out.push_str(&format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60));
        if us != 0 {
            out.push_str(&format!(".{us:06}"));
        }
        out
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let f = self.fields();
        Some(Value::from(match key.as_str()? {
            "year" => f.year,
            "month" => f.month as i64,
            "day" => f.day as i64,
            "hour" => f.hour as i64,
            "minute" => f.minute as i64,
            "second" => f.second as i64,
            "microsecond" => f.micro as i64,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (&str,) = from_args(args)?;
                self.strftime(fmt).map(Value::from)
            }
            "isoformat" => {
                let (sep,): (Option<&str>,) = from_args(args)?;
                Ok(Value::from(self.isoformat(sep.unwrap_or("T"))))
            }
            "weekday" => Ok(Value::from(self.fields().weekday)),
            "isoweekday" => Ok(Value::from(self.fields().weekday + 1)),
            "date" => Ok(Value::from(self.strftime("%Y-%m-%d")?)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("datetime has no method {method}"),
            )),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        other.downcast_ref::<DateTime>().map(|o| self.0.cmp(&o.0))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

impl Object for TimeDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "days" => self.days(),
            "seconds" => self.seconds(),
            "microseconds" => self.micros(),
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => {
                let () = from_args(args)?;
                Ok(Value::from(self.0 as f64 / MICROS_PER_SEC as f64))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("timedelta has no method {method}"),
            )),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        other.downcast_ref::<TimeDelta>().map(|o| self.0.cmp(&o.0))
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.0 != 0
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `x | to_datetime(format='%Y-%m-%d %H:%M:%S')`.
pub fn to_datetime(value: &Value, format: Option<&str>) -> Result<Value, Error> {
    if value.downcast_object_ref::<DateTime>().is_some() {
        return Ok(value.clone());
    }
    let Some(text) = value.as_str() else {
        return Err(err("to_datetime expects a string"));
    };
    let fmt = format.unwrap_or("%Y-%m-%d %H:%M:%S");
    DateTime::strptime(text, fmt)
        .map(Value::from_object)
        .map_err(|e| err(format!("to_datetime: {e}")))
}

/// `now(utc=false, fmt=None)`: the controller's local (or UTC) time as a naive datetime, or formatted.
pub fn now(kwargs: Kwargs) -> Result<Value, Error> {
    let utc = kwargs.get::<Option<bool>>("utc")?.unwrap_or(false);
    let fmt = kwargs.get::<Option<String>>("fmt")?;
    kwargs.assert_all_used()?;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| err("the system clock is before 1970"))?;
    let secs = since.as_secs() as i64;
    let offset = if utc { 0 } else { local_offset(secs) };
    let dt = DateTime((secs + offset) * MICROS_PER_SEC + since.subsec_micros() as i64);
    match fmt {
        Some(f) => dt.strftime(&f).map(Value::from),
        None => Ok(Value::from_object(dt)),
    }
}

/// Seconds east of UTC of the local time zone at `secs`.
fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r only writes into `tm`, which lives for the call.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

/// `a - b` for datetimes and timedeltas; `None` when neither is one (the caller subtracts numbers).
pub fn sub(a: &Value, b: &Value) -> Result<Option<Value>, Error> {
    let (da, db) = (
        a.downcast_object_ref::<DateTime>(),
        b.downcast_object_ref::<DateTime>(),
    );
    let (ta, tb) = (
        a.downcast_object_ref::<TimeDelta>(),
        b.downcast_object_ref::<TimeDelta>(),
    );
    Ok(Some(match (da, db, ta, tb) {
        (Some(x), Some(y), _, _) => Value::from_object(TimeDelta(x.0 - y.0)),
        (Some(x), None, _, Some(d)) => Value::from_object(DateTime(x.0 - d.0)),
        (None, None, Some(x), Some(y)) => Value::from_object(TimeDelta(x.0 - y.0)),
        (None, None, None, None) => return Ok(None),
        _ => {
            return Err(err(
                "unsupported operand types for -: a datetime needs a datetime or timedelta",
            ))
        }
    }))
}

/// Python's `str()` of a datetime or timedelta value, `None` for other values.
pub fn display(v: &Value) -> Option<String> {
    if let Some(d) = v.downcast_object_ref::<DateTime>() {
        return Some(d.isoformat(" "));
    }
    v.downcast_object_ref::<TimeDelta>().map(TimeDelta::display)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::strptime(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn parse_print_and_subtract_like_python() {
        // Checked with CPython 3.11.
        let a = dt("2026-01-01 10:00:00");
        let b = dt("2026-03-15 12:30:45");
        let d = TimeDelta(b.0 - a.0);
        assert_eq!((d.days(), d.seconds()), (73, 9045));
        assert_eq!(d.display(), "73 days, 2:30:45");
        assert_eq!(TimeDelta(a.0 - b.0).display(), "-74 days, 21:29:15");
        assert_eq!(b.isoformat(" "), "2026-03-15 12:30:45");
        assert_eq!(
            b.strftime("%d.%m.%Y %a %b %j").unwrap(),
            "15.03.2026 Sun Mar 074"
        );
        let c = DateTime::strptime("20260315", "%Y%m%d").unwrap();
        assert_eq!(c.isoformat("T"), "2026-03-15T00:00:00");
        let e = DateTime::strptime("Mar 5 2024 1:02:03 PM", "%b %d %Y %I:%M:%S %p").unwrap();
        assert_eq!(e.isoformat(" "), "2024-03-05 13:02:03");
        assert_eq!(dt("1969-12-31 23:59:59").fields().weekday, 2);
        assert!(DateTime::strptime("2026-02-30 00:00:00", "%Y-%m-%d %H:%M:%S").is_err());
        assert!(DateTime::strptime("2026-01-01", "%Y-%m-%d %H").is_err());
        assert!(DateTime::strptime("2026-01-01 x", "%Y-%m-%d").is_err());
    }
}
