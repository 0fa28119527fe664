//! How IoT Edge 1.5 reads the scalar values of its super config, as plain checks: URLs (the `url` 2.4 crate
//! the device is built with), key locations (`file:` URLs that name a local path, or PKCS#11 URIs with a slot
//! id or token), base64 keys, renewal policies (`80%`, `90min`, `3day`), humantime durations (`1d`, `48h`,
//! `90min`) and chrono `%H:%M` times.
//!
//! Each check returns the reason a value is refused (worded for an operator), or the parsed value. It must not
//! know the config's tables (that is `validate`'s) and must not import the lab's simulator. Pure: no I/O.

use std::time::Duration;

/// Why a string is not a URL, as the device's `url` crate says it (`relative URL without a base`, ...).
pub(super) fn url_error(s: &str) -> Option<String> {
    url_24::Url::parse(s).err().map(|e| e.to_string())
}

/// Why a string is not a key location (`file:` path or `pkcs11:` URI), as the device says it.
pub(super) fn key_location_error(s: &str) -> Option<String> {
    let Some(i) = s.find(':') else {
        return Some("missing scheme".into());
    };
    match &s[..i] {
        "file" => match url_24::Url::parse(s) {
            Err(e) => Some(e.to_string()),
            Ok(u) => u
                .to_file_path()
                .err()
                .map(|()| "cannot convert to file path".to_string()),
        },
        "pkcs11" => pkcs11_error(&s[i + 1..]),
        _ => Some("unrecognized scheme".into()),
    }
}

/// A PKCS#11 URI (after `pkcs11:`) needs a numeric `slot-id` or a `token` label.
fn pkcs11_error(rest: &str) -> Option<String> {
    let path = rest.split('?').next().unwrap_or_default();
    let (mut slot, mut token) = (false, false);
    for comp in path.split(';') {
        let (k, v) = comp.split_once('=').unwrap_or((comp, ""));
        match k {
            "slot-id" => {
                if v.parse::<u64>().is_err() {
                    return Some(format!("slot-id `{v}` is not a number"));
                }
                slot = true;
            }
            "token" => token = true,
            _ => {}
        }
    }
    (!slot && !token).then(|| "the URI has neither a slot-id nor a token".to_string())
}

/// The local path of a `file:` URL, if it names one.
pub(super) fn file_path(s: &str) -> Option<String> {
    let u = url_24::Url::parse(s).ok()?;
    if u.scheme() != "file" {
        return None;
    }
    u.to_file_path()
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The scheme of a URL (lowercased), if it is one.
pub(super) fn url_scheme(s: &str) -> Option<String> {
    url_24::Url::parse(s).ok().map(|u| u.scheme().to_string())
}

/// Decode base64 as the device does: standard alphabet, padding optional.
pub(super) fn base64_error(s: &str) -> Option<String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).err().map(|e| e.to_string())
}

/// Why a renewal policy (`threshold`, `retry`) is refused: `N%` with 0 < N < 100, `Nmin` or `Nday`, N > 0.
pub(super) fn policy_error(s: &str) -> Option<&'static str> {
    let (num, unit) = if let Some(n) = s.strip_suffix('%') {
        (n, "%")
    } else if let Some(n) = s.strip_suffix("min") {
        (n, "min")
    } else if let Some(n) = s.strip_suffix("day") {
        (n, "day")
    } else if s.is_empty() {
        return Some("is empty");
    } else {
        return Some("has no unit: use N% (of the lifetime), Nmin or Nday");
    };
    match num.parse::<i64>() {
        Err(_) => Some("is not a number followed by %, min or day"),
        Ok(n) if n <= 0 => Some("must be positive"),
        Ok(n) if unit == "%" && n >= 100 => Some("must be a percentage below 100"),
        Ok(_) => None,
    }
}

/// Parse a duration like the `humantime` crate (`1d`, `2days`, `48h`, `1h 30m`, `90min`).
pub(super) fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let (mut i, mut total) = (0usize, 0u128);
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: u128 = s.get(start..i)?.parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let nanos: u128 = match s.get(us..i)? {
            "nanos" | "nsec" | "ns" => 1,
            "usec" | "us" => 1_000,
            "millis" | "msec" | "ms" => 1_000_000,
            "seconds" | "second" | "secs" | "sec" | "s" => 1_000_000_000,
            "minutes" | "minute" | "mins" | "min" | "m" => 60_000_000_000,
            "hours" | "hour" | "hrs" | "hr" | "h" => 3_600_000_000_000,
            "days" | "day" | "d" => 86_400_000_000_000,
            "weeks" | "week" | "w" => 604_800_000_000_000,
            "months" | "month" | "M" => 2_630_016_000_000_000,
            "years" | "year" | "y" => 31_557_600_000_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(nanos)?)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Is this `H:MM` / `HH:MM` a time of day (chrono's `%H:%M`)?
pub(super) fn is_hhmm(s: &str) -> bool {
    let Some((h, m)) = s.split_once(':') else {
        return false;
    };
    let digits = |x: &str, max: u32| {
        (1..=2).contains(&x.len())
            && x.bytes().all(|c| c.is_ascii_digit())
            && x.parse::<u32>().map(|v| v <= max).unwrap_or(false)
    };
    digits(h, 23) && digits(m, 59)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_the_device_reads_them() {
        assert_eq!(
            url_error("/etc/x.pem").as_deref(),
            Some("relative URL without a base")
        );
        assert_eq!(url_error("file:/x.pem"), None);
        assert_eq!(url_error("https://"), Some("empty host".into()));
        assert_eq!(key_location_error("/k"), Some("missing scheme".into()));
        assert_eq!(
            key_location_error("https://v/k"),
            Some("unrecognized scheme".into())
        );
        assert_eq!(
            key_location_error("file://var/k"),
            Some("cannot convert to file path".into())
        );
        assert!(key_location_error("pkcs11:object=k").is_some());
        assert!(key_location_error("pkcs11:slot-id=x;object=k").is_some());
        assert_eq!(
            key_location_error("pkcs11:token=t;object=k?pin-value=1"),
            None
        );
        assert_eq!(file_path("file:///a%20b"), Some("/a b".into()));
        assert_eq!(policy_error("80%"), None);
        assert_eq!(policy_error("3day"), None);
        assert!(policy_error("3days").is_some());
        assert!(policy_error("100%").is_some());
        assert!(policy_error("0%").is_some());
        assert!(policy_error("80").is_some());
        assert_eq!(duration("2days"), Some(Duration::from_secs(172_800)));
        assert_eq!(duration("90min"), Some(Duration::from_secs(5_400)));
        assert_eq!(duration("1x"), None);
        assert!(is_hhmm("3:30") && is_hhmm("23:59"));
        assert!(!is_hhmm("25:00") && !is_hhmm("03:30:00") && !is_hhmm("noon"));
    }
}
