//! The scalar values of the super config and their rules, with the real error texts: URLs (`url::Url`), key
//! locations (`PreloadedKeyLocation`), connection strings, base64 keys, `cloud_timeout_sec` (>= 70),
//! `expiry_days` (> 0), humantime durations, whole-day recurrences and `HH:MM` times.
//!
//! Each rule is a plain parser plus the serde deserializer the config types name in `deserialize_with`; the
//! message a rule fails with is what `toml` reports inside its "TOML parse error" text. It must not know the
//! config's tables (`identity`, `edge`, `mod`) and must NOT import anything from `crate::iotedge`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected};
use serde::Deserialize;

/// A URL as `url::Url` accepts it (enough of the WHATWG rules for config values: scheme required, special
/// schemes need a host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url(pub String);

impl Url {
    /// Parse like `url::Url::parse`, with its error texts for the cases that matter here.
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        let Some(colon) = s.find(':') else {
            return Err("relative URL without a base".into());
        };
        let scheme = &s[..colon];
        let valid_scheme = scheme
            .chars()
            .next()
            .map(|c| c.is_ascii_alphabetic())
            .unwrap_or(false)
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.');
        if !valid_scheme {
            return Err("relative URL without a base".into());
        }
        let rest = &s[colon + 1..];
        let scheme_l = scheme.to_ascii_lowercase();
        if matches!(scheme_l.as_str(), "http" | "https" | "ws" | "wss" | "ftp") {
            let after = rest.trim_start_matches(['/', '\\']);
            let host = after
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('@')
                .next()
                .unwrap_or("");
            let host_only = if host.starts_with('[') {
                host
            } else {
                host.split(':').next().unwrap_or("")
            };
            if host_only.is_empty() {
                return Err("empty host".into());
            }
            if let Some(port) = host
                .strip_prefix(host_only)
                .and_then(|p| p.strip_prefix(':'))
            {
                if !port.is_empty() && port.parse::<u16>().is_err() {
                    return Err("invalid port number".into());
                }
            }
        }
        Ok(Url(format!("{scheme_l}:{rest}")))
    }

    /// The scheme, lowercased.
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }

    /// For a `file:` URL, the path (`file:///a/b` -> `/a/b`, percent-decoding `%20` style escapes).
    pub fn file_path(&self) -> Option<String> {
        if self.scheme() != "file" {
            return None;
        }
        let rest = &self.0[5..];
        let path = if let Some(r) = rest.strip_prefix("//") {
            // file://host/path: only an empty host or localhost names a local path.
            let (host, path) = match r.find('/') {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, "/"),
            };
            if !host.is_empty() && host != "localhost" {
                return None;
            }
            path
        } else {
            rest
        };
        if !path.starts_with('/') {
            return None;
        }
        Some(percent_decode(path))
    }

    /// The URL as written (normalised scheme).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Url;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string representing an URL")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Url, E> {
                Url::parse(s).map_err(|e| E::custom(format!("{e}: {s:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// A key location (`aziot_keys_common::PreloadedKeyLocation`): `file:` or `pkcs11:` URIs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A key file.
    Filesystem {
        /// Absolute path on the device.
        path: String,
    },
    /// A PKCS#11 object.
    Pkcs11 {
        /// The URI as written.
        uri: String,
    },
}

impl KeyLocation {
    /// Parse like `PreloadedKeyLocation::from_str`, with its error texts.
    pub fn parse(s: &str) -> Result<KeyLocation, String> {
        let Some(i) = s.find(':') else {
            return Err("missing scheme".into());
        };
        match &s[..i] {
            "file" => {
                let u = Url::parse(s)?;
                let path = u
                    .file_path()
                    .ok_or_else(|| "cannot convert to file path".to_string())?;
                Ok(KeyLocation::Filesystem { path })
            }
            "pkcs11" => Ok(KeyLocation::Pkcs11 { uri: s.to_string() }),
            _ => Err("unrecognized scheme".into()),
        }
    }

    /// The location as a URI string (as written to keyd's config).
    pub fn uri(&self) -> String {
        match self {
            KeyLocation::Filesystem { path } => format!("file://{path}"),
            KeyLocation::Pkcs11 { uri } => uri.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for KeyLocation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyLocation, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = KeyLocation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("preloaded key location URI")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyLocation, E> {
                KeyLocation::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

pub(super) fn default_cloud_timeout() -> u64 {
    70
}
pub(super) fn default_cloud_retries() -> u32 {
    1
}

pub(super) fn deserialize_cloud_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v: u64 = Deserialize::deserialize(d)?;
    if v < 70 {
        return Err(de::Error::custom(
            "cloud_timeout_sec must be at least 70 seconds",
        ));
    }
    Ok(v)
}

pub(super) fn deserialize_expiry_days<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    let v: Option<u32> = Deserialize::deserialize(d)?;
    if v == Some(0) {
        return Err(de::Error::custom("expiry_days must be greater than 0"));
    }
    Ok(v)
}

/// A connection string whose parts were validated.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    /// `HostName`.
    pub hostname: String,
    /// `DeviceId`.
    pub device_id: String,
    /// The decoded `SharedAccessKey`.
    pub key: Vec<u8>,
}

/// Parse a connection string like aziotctl's `parse_manual_connection_string`.
pub fn parse_connection_string(s: &str) -> Result<ConnectionString, String> {
    let mut hostname = None;
    let mut device_id = None;
    let mut key = None;
    for section in s.split(';') {
        let mut parts = section.split('=');
        match parts.next().unwrap_or("") {
            "HostName" => hostname = parts.next(),
            "DeviceId" => device_id = parts.next(),
            // A base64 key may end with '=' padding: keep everything after the first '='.
            "SharedAccessKey" => key = section.split_once('=').map(|(_, v)| v),
            _ => {}
        }
    }
    let hostname = hostname.ok_or(r#"required parameter "HostName" is missing"#)?;
    let device_id = device_id.ok_or(r#"required parameter "DeviceId" is missing"#)?;
    let key = key.ok_or(r#"required parameter "SharedAccessKey" is missing"#)?;
    let key = decode_base64(key).map_err(|e| {
        format!(
            r#"connection string's "SharedAccessKey" parameter could not be decoded from base64: {e}"#
        )
    })?;
    Ok(ConnectionString {
        hostname: hostname.to_string(),
        device_id: device_id.to_string(),
        key,
    })
}

/// Decode base64 like the device does: standard alphabet, padding optional.
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).map_err(|e| e.to_string())
}

impl<'de> Deserialize<'de> for ConnectionString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ConnectionString, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ConnectionString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("connection string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ConnectionString, E> {
                parse_connection_string(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

pub(super) fn deserialize_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("base64-encoded byte array")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
            decode_base64(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V)
}

struct HumantimeVisitor;

impl de::Visitor<'_> for HumantimeVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

pub(super) fn deserialize_humantime<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(HumantimeVisitor)
}

pub(super) fn deserialize_recurrence<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Duration, D::Error> {
    const DAY_NANOS: u128 = 86_400 * 1_000_000_000;
    let r = d.deserialize_str(HumantimeVisitor)?;
    if r.as_nanos() % DAY_NANOS != 0 {
        return Err(de::Error::invalid_value(
            Unexpected::Other(&format!("{r:?}")),
            &"duration that is a multiple of days",
        ));
    }
    Ok(r)
}

pub(super) fn deserialize_hhmm<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = String::deserialize(d)?;
    parse_hhmm(&v).map_err(de::Error::custom)
}

/// Parse `HH:MM` like chrono's `NaiveTime::parse_from_str(v, "%H:%M")`, with chrono's error texts.
pub fn parse_hhmm(v: &str) -> Result<u64, &'static str> {
    fn num(s: &[u8], i: &mut usize) -> Result<u32, &'static str> {
        if *i >= s.len() {
            return Err("premature end of input");
        }
        let start = *i;
        while *i < s.len() && *i - start < 2 && s[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return Err("input contains invalid characters");
        }
        std::str::from_utf8(&s[start..*i])
            .ok()
            .and_then(|x| x.parse().ok())
            .ok_or("input contains invalid characters")
    }
    let s = v.as_bytes();
    let mut i = 0;
    let h = num(s, &mut i)?;
    if i >= s.len() {
        return Err("premature end of input");
    }
    if s[i] != b':' {
        return Err("input contains invalid characters");
    }
    i += 1;
    let m = num(s, &mut i)?;
    if h > 23 || m > 59 {
        return Err("input is out of range");
    }
    if i != s.len() {
        return Err("trailing input");
    }
    Ok(u64::from(h * 60 + m))
}

/// Parse a duration like `humantime::parse_duration` (`1d`, `7d`, `12h 30m`, `10s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("value was empty".into());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
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
        if start == i {
            return Err(format!("expected number at {start}"));
        }
        let n: u128 = s[start..i]
            .parse()
            .map_err(|_| "number is too large".to_string())?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[us..i];
        let nanos: u128 = match unit {
            "nsec" | "ns" => 1,
            "usec" | "us" => 1_000,
            "msec" | "ms" => 1_000_000,
            "seconds" | "second" | "sec" | "s" => 1_000_000_000,
            "minutes" | "minute" | "min" | "m" => 60_000_000_000,
            "hours" | "hour" | "hr" | "h" => 3_600_000_000_000,
            "days" | "day" | "d" => 86_400_000_000_000,
            "weeks" | "week" | "w" => 604_800_000_000_000,
            "months" | "month" | "M" => 2_630_016_000_000_000,
            "years" | "year" | "y" => 31_557_600_000_000_000,
            "" => return Err("time unit needed, for example 10sec or 10ms".into()),
            other => {
                return Err(format!(
                    "unknown time unit {other:?}, supported units: ns, us, ms, sec, min, hours, days, weeks, months, years (and few variations)"
                ))
            }
        };
        total = total
            .checked_add(n.checked_mul(nanos).ok_or("number is too large")?)
            .ok_or("number is too large")?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "number is too large")?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_locations() {
        assert_eq!(
            Url::parse("/var/aziot/x.pem").unwrap_err(),
            "relative URL without a base"
        );
        assert_eq!(
            Url::parse("file:///var/aziot/certs/a%20b.pem")
                .unwrap()
                .file_path()
                .unwrap(),
            "/var/aziot/certs/a b.pem"
        );
        assert_eq!(Url::parse("https://").unwrap_err(), "empty host");
        assert_eq!(KeyLocation::parse("/k.pem").unwrap_err(), "missing scheme");
        assert_eq!(
            KeyLocation::parse("https://vault/k").unwrap_err(),
            "unrecognized scheme"
        );
        assert!(matches!(
            KeyLocation::parse("pkcs11:token=t;object=o").unwrap(),
            KeyLocation::Pkcs11 { .. }
        ));
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("3x")
            .unwrap_err()
            .contains("unknown time unit"));
        assert_eq!(parse_hhmm("00:00"), Ok(0));
        assert_eq!(parse_hhmm("23:59"), Ok(23 * 60 + 59));
        assert_eq!(parse_hhmm("9:05"), Ok(9 * 60 + 5));
        assert_eq!(parse_hhmm("24:00"), Err("input is out of range"));
        assert_eq!(parse_hhmm("12"), Err("premature end of input"));
        assert_eq!(parse_hhmm("12:30:00"), Err("trailing input"));
        assert_eq!(parse_hhmm("noon"), Err("input contains invalid characters"));
    }

    #[test]
    fn connection_string_parts() {
        assert_eq!(
            parse_connection_string("HostName=h;DeviceId=d").unwrap_err(),
            r#"required parameter "SharedAccessKey" is missing"#
        );
        let cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=QUJD").unwrap();
        assert_eq!(cs.key, b"ABC");
        let cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=QUI=").unwrap();
        assert_eq!(cs.key, b"AB");
    }
}
