//! The scalar values of the super config and their rules, with the device's error texts: URLs (`url` 2.4, the
//! crate the 1.5 CLI is built with), key locations (`aziot_keys_common::PreloadedKeyLocation` with its PKCS#11
//! URI parser), connection strings, base64 keys, `cloud_timeout_sec` (>= 70), `expiry_days` (> 0), renewal
//! policies (`cert_renewal::Policy`), watchdog `max_retries`, `min_tls_version`, the TPM `auth_key_index`,
//! humantime durations, whole-day recurrences and chrono `%H:%M` times.
//!
//! Each rule is a plain parser plus the serde deserializer the config types name in `deserialize_with`; the
//! message a rule fails with is what `toml` reports inside its "TOML parse error" text. Warnings the device
//! prints on stderr while parsing (plain-HTTP EST URLs) are collected with [`take_warnings`]. It must not know
//! the config's tables (`identity`, `edge`, `docker`, `mod`) and must NOT import anything from `crate::iotedge`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected};
use serde::Deserialize;

thread_local! {
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The warnings printed (on stderr, by the device) while the last config was parsed, in order.
pub fn take_warnings() -> Vec<String> {
    WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

fn warn(msg: String) {
    WARNINGS.with(|w| w.borrow_mut().push(msg));
}

/// A URL as `url::Url` 2.4 parses it (the device's crate, so its texts: `relative URL without a base`,
/// `empty host`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url(pub url_24::Url);

impl Url {
    /// Parse like `url::Url::parse`; `Err` is the url crate's message.
    pub fn parse(s: &str) -> Result<Url, String> {
        url_24::Url::parse(s).map(Url).map_err(|e| e.to_string())
    }

    /// The scheme, lowercased.
    pub fn scheme(&self) -> &str {
        self.0.scheme()
    }

    /// For a `file:` URL naming a local path (no host, or `localhost`), the decoded path.
    pub fn file_path(&self) -> Option<String> {
        if self.scheme() != "file" {
            return None;
        }
        self.0
            .to_file_path()
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// The URL in its normalised form (what the device writes back into the service configs).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        url_24::Url::deserialize(d).map(Url)
    }
}

/// A PKCS#11 URI as aziot's `pkcs11::Uri` parses it (slot id or token label required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `slot-id=N` (wins over `token`).
    pub slot_id: Option<u64>,
    /// `token=LABEL`.
    pub token: Option<String>,
    /// `object=LABEL`.
    pub object: Option<String>,
    /// `?pin-value=PIN`.
    pub pin: Option<String>,
}

impl Pkcs11Uri {
    /// Parse like `pkcs11::Uri::from_str`, with its error texts.
    pub fn parse(s: &str) -> Result<Pkcs11Uri, String> {
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or("URI does not have pkcs11 scheme")?;
        let mut parts = rest.split('?');
        let path = parts.next().unwrap_or_default();
        let query = parts.next().unwrap_or_default();
        let mut uri = Pkcs11Uri {
            slot_id: None,
            token: None,
            object: None,
            pin: None,
        };
        for comp in path.split(';') {
            let (k, v) = comp.split_once('=').unwrap_or((comp, ""));
            let value = || {
                String::from_utf8(percent_decode(v)).map_err(|_| {
                    format!(
                        "URI component with key [{:?}] is not valid UTF-8",
                        k.as_bytes()
                    )
                })
            };
            match percent_decode(k).as_slice() {
                b"object" => uri.object = Some(value()?),
                b"slot-id" => {
                    let v = value()?;
                    uri.slot_id = Some(v.parse::<u64>().map_err(|_| {
                        format!("pin-value path component has malformed value [{v}]")
                    })?);
                }
                b"token" => uri.token = Some(value()?),
                _ => {}
            }
        }
        for comp in query.split('&') {
            let (k, v) = comp.split_once('=').unwrap_or((comp, ""));
            if percent_decode(k) == b"pin-value" {
                uri.pin = Some(String::from_utf8(percent_decode(v)).map_err(|_| {
                    format!(
                        "URI component with key [{:?}] is not valid UTF-8",
                        k.as_bytes()
                    )
                })?);
            }
        }
        if uri.slot_id.is_none() && uri.token.is_none() {
            return Err("URI has neither [slot-id] nor [token] components".into());
        }
        Ok(uri)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        match (&self.slot_id, &self.token) {
            (Some(id), _) => write!(f, "slot-id={}", percent_encode(&id.to_string()))?,
            (None, Some(t)) => write!(f, "token={}", percent_encode(t))?,
            (None, None) => {}
        }
        if let Some(o) = &self.object {
            write!(f, ";object={}", percent_encode(o))?;
        }
        if let Some(p) = &self.pin {
            write!(f, "?pin-value={}", percent_encode(p))?;
        }
        Ok(())
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

/// A key location (`aziot_keys_common::PreloadedKeyLocation`): `file:` or `pkcs11:` URIs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A key file.
    Filesystem {
        /// Absolute path on the device.
        path: PathBuf,
    },
    /// A PKCS#11 object.
    Pkcs11 {
        /// The parsed URI.
        uri: Pkcs11Uri,
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
                let u = url_24::Url::parse(s).map_err(|e| e.to_string())?;
                let path = u
                    .to_file_path()
                    .map_err(|()| "cannot convert to file path".to_string())?;
                Ok(KeyLocation::Filesystem { path })
            }
            "pkcs11" => Ok(KeyLocation::Pkcs11 {
                uri: Pkcs11Uri::parse(s)?,
            }),
            _ => Err("unrecognized scheme".into()),
        }
    }

    /// The location as a URI string (as the device writes it into keyd's config).
    pub fn uri(&self) -> String {
        match self {
            KeyLocation::Filesystem { path } => url_24::Url::from_file_path(path)
                .map(|u| u.to_string())
                .unwrap_or_else(|()| format!("file://{}", path.display())),
            KeyLocation::Pkcs11 { uri } => uri.to_string(),
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

/// aziotcertd's `deserialize_url_map_check_https`: a map of URLs, warning (on stderr) about plain HTTP.
pub(super) fn deserialize_url_map_check_https<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Url>, D::Error> {
    let map = BTreeMap::<String, Url>::deserialize(d)?;
    for url in map.values() {
        warn_http(url);
    }
    Ok(map)
}

/// The same check for a single optional EST URL.
pub(super) fn deserialize_url_check_https<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Url>, D::Error> {
    let url = Option::<Url>::deserialize(d)?;
    if let Some(u) = &url {
        warn_http(u);
    }
    Ok(url)
}

fn warn_http(url: &Url) {
    if url.scheme() == "http" {
        warn(format!(
            "Warning: EST server URL {:?} is configured with unencrypted HTTP, which may expose device to man-in-the-middle attacks. To clear this warning, configure HTTPS for your EST server and update the URL.",
            url.as_str()
        ));
    }
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

/// Parse a connection string like aziotctl's `parse_manual_connection_string` (sections split on `;`, each
/// on `=`: the value is the text up to the next `=`, so base64 padding never matters).
pub fn parse_connection_string(s: &str) -> Result<ConnectionString, String> {
    let mut hostname = None;
    let mut device_id = None;
    let mut key = None;
    for section in s.split(';') {
        let mut parts = section.split('=');
        match parts.next().unwrap_or("") {
            "HostName" => hostname = parts.next(),
            "DeviceId" => device_id = parts.next(),
            "SharedAccessKey" => key = parts.next(),
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

/// A certificate renewal policy (`cert_renewal::Policy`): `N%` (0 < N < 100), `Nmin` or `Nday`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Percentage of the lifetime.
    Percentage(i64),
    /// Seconds before expiry.
    Time(i64),
}

impl Policy {
    /// Parse like the device, with its texts.
    pub fn parse(s: &str) -> Result<Policy, &'static str> {
        let mut policy = s.to_string();
        let last = policy.pop().ok_or("policy not specified")?;
        let mut unit = last.to_string();
        if last == 'n' || last == 'y' {
            for _ in 0..2 {
                let c = policy.pop().ok_or("bad units for policy")?;
                unit.insert(0, c);
            }
        }
        let value: i64 = policy
            .parse()
            .map_err(|_| "policy could not be parsed as number")?;
        if value <= 0 {
            return Err("renewal policy values must be positive");
        }
        match unit.as_str() {
            "%" if value >= 100 => Err("lifetime percentage must be less than 100"),
            "%" => Ok(Policy::Percentage(value)),
            "min" => Ok(Policy::Time(value * 60)),
            "day" => Ok(Policy::Time(value * 86_400)),
            _ => Err("bad units for policy"),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Percentage(p) => write!(f, "{p}%"),
            Policy::Time(t) if t % 86_400 == 0 => write!(f, "{}day", t / 86_400),
            Policy::Time(t) => write!(f, "{}min", t / 60),
        }
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
        let s = String::deserialize(d)?;
        Policy::parse(&s).map_err(de::Error::custom)
    }
}

/// `[watchdog] max_retries`: `"infinite"` (any case) or a u32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MaxRetries {
    /// Retry forever (the default).
    #[default]
    Infinite,
    /// At most this many retries.
    Num(u32),
}

impl<'de> Deserialize<'de> for MaxRetries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MaxRetries, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = MaxRetries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""infinite" or u32"#)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MaxRetries, E> {
                if s.eq_ignore_ascii_case("infinite") {
                    Ok(MaxRetries::Infinite)
                } else {
                    Err(E::invalid_value(Unexpected::Str(s), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaxRetries, E> {
                u32::try_from(v).map(MaxRetries::Num).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaxRetries, E> {
                u32::try_from(v).map(MaxRetries::Num).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[listen] min_tls_version`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MinTlsVersion {
    /// TLS 1.0 (the default).
    #[default]
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
}

impl MinTlsVersion {
    /// How edged's config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MinTlsVersion::Tls10 => "tls1.0",
            MinTlsVersion::Tls11 => "tls1.1",
            MinTlsVersion::Tls12 => "tls1.2",
        }
    }
}

impl<'de> Deserialize<'de> for MinTlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MinTlsVersion, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = MinTlsVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"one of "tls1.0", "tls1.1", "tls1.2""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MinTlsVersion, E> {
                match v.to_lowercase().as_str() {
                    "tls" | "tls1" | "tls10" | "tls1.0" | "tls1_0" | "tlsv10" => {
                        Ok(MinTlsVersion::Tls10)
                    }
                    "tls11" | "tls1.1" | "tls1_1" | "tlsv11" => Ok(MinTlsVersion::Tls11),
                    "tls12" | "tls1.2" | "tls1_2" | "tlsv12" => Ok(MinTlsVersion::Tls12),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_str(V)
    }
}

pub(super) fn default_auth_key_index() -> u32 {
    0x00_01_00
}

/// aziot-tpmd's `persistent_index`: a u32 no larger than 0x7F_FF_FF.
pub(super) fn deserialize_persistent_index<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > 0x7F_FF_FF {
        return Err(de::Error::invalid_value(
            Unexpected::Unsigned(u64::from(v)),
            &"integer in range 0x00_00_00..=0x7F_FF_FF",
        ));
    }
    Ok(v)
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
            "nanos" | "nsec" | "ns" => 1,
            "usec" | "us" => 1_000,
            "millis" | "msec" | "ms" => 1_000_000,
            "seconds" | "second" | "secs" | "sec" | "s" => 1_000_000_000,
            "minutes" | "minute" | "min" | "mins" | "m" => 60_000_000_000,
            "hours" | "hour" | "hr" | "hrs" | "h" => 3_600_000_000_000,
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
        assert_eq!(
            KeyLocation::parse("file://var/k.pem").unwrap_err(),
            "cannot convert to file path"
        );
        assert_eq!(
            KeyLocation::parse("pkcs11:object=k").unwrap_err(),
            "URI has neither [slot-id] nor [token] components"
        );
        assert_eq!(
            KeyLocation::parse("pkcs11:slot-id=abc;object=k").unwrap_err(),
            "pin-value path component has malformed value [abc]"
        );
        let k = KeyLocation::parse("pkcs11:token=my%20token;object=o?pin-value=1234").unwrap();
        assert_eq!(k.uri(), "pkcs11:token=my%20token;object=o?pin-value=1234");
        assert_eq!(
            KeyLocation::parse("file:///var/a%20b.pem").unwrap().uri(),
            "file:///var/a%20b.pem"
        );
    }

    #[test]
    fn policies_retries_and_tls() {
        assert_eq!(Policy::parse("80%"), Ok(Policy::Percentage(80)));
        assert_eq!(Policy::parse("10day"), Ok(Policy::Time(864_000)));
        assert_eq!(Policy::parse("90min"), Ok(Policy::Time(5_400)));
        assert_eq!(Policy::parse(""), Err("policy not specified"));
        assert_eq!(Policy::parse("80"), Err("bad units for policy"));
        assert_eq!(
            Policy::parse("0%"),
            Err("renewal policy values must be positive")
        );
        assert_eq!(
            Policy::parse("3days"),
            Err("policy could not be parsed as number")
        );
        assert_eq!(
            Policy::parse("100%"),
            Err("lifetime percentage must be less than 100")
        );
        assert_eq!(Policy::Time(864_000).to_string(), "10day");
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
