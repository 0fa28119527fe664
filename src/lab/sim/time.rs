//! Time formatting for the simulators: the exact timestamp shapes each real program prints (UTC).
//!
//! Owns civil-date conversion and the formats of journalctl, systemctl, docker (RFC 3339 with nanoseconds) and
//! chrono's `Display`, plus the "Up 2 minutes" humanisation of `iotedge list`/`docker ps`. It must not read the
//! clock itself: callers pass milliseconds since the epoch, so output is reproducible in tests.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Milliseconds.
    pub millis: u32,
    /// Days since 1970-01-01 (for the weekday).
    pub days: i64,
}

/// Convert milliseconds since the epoch to a civil UTC time (Howard Hinnant's days-to-civil).
pub fn civil(ms: i64) -> Civil {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Civil {
        year: if m <= 2 { y + 1 } else { y },
        month: m,
        day: d,
        hour: (sod / 3600) as u32,
        minute: ((sod % 3600) / 60) as u32,
        second: (sod % 60) as u32,
        millis,
        days,
    }
}

/// `2024-01-02T03:04:05.123000000Z` (docker's `Created`/`StartedAt`).
pub fn rfc3339_nanos(ms: u64) -> String {
    let c = civil(ms as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}000000Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// `2024-01-02T03:04:05Z`.
pub fn rfc3339(ms: u64) -> String {
    let c = civil(ms as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `Jan 02 03:04:05` (journalctl's short format).
pub fn journal_ts(ms: u64) -> String {
    let c = civil(ms as i64);
    format!(
        "{} {:02} {:02}:{:02}:{:02}",
        MONTHS[(c.month - 1) as usize],
        c.day,
        c.hour,
        c.minute,
        c.second
    )
}

/// `Tue 2024-01-02 03:04:05 UTC` (systemctl status).
pub fn systemd_ts(ms: u64) -> String {
    let c = civil(ms as i64);
    format!(
        "{} {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        DAYS[c.days.rem_euclid(7) as usize],
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second
    )
}

/// `2024-01-02 03:04:05 UTC` (chrono's `DateTime<Utc>` Display, used in check messages).
pub fn chrono_display(secs: i64) -> String {
    let c = civil(secs * 1000);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `2024-01-02 03:04:05 +0000 UTC` (docker's `CreatedAt` in `ps`/`images` templates).
pub fn docker_created_at(ms: u64) -> String {
    let c = civil(ms as i64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// A rough human duration: `3 seconds`, `About a minute`-free forms as `iotedge list` prints them.
pub fn humanize(elapsed_ms: u64) -> String {
    let s = elapsed_ms / 1000;
    if s <= 20 {
        return if s == 1 {
            "1 second".into()
        } else {
            format!("{s} seconds")
        };
    }
    if s < 45 {
        return "seconds".into();
    }
    if s < 90 {
        return "a minute".into();
    }
    let m = (s + 30) / 60;
    if m < 45 {
        return format!("{m} minutes");
    }
    if m < 90 {
        return "an hour".into();
    }
    let h = (m + 30) / 60;
    if h < 22 {
        return format!("{h} hours");
    }
    if h < 36 {
        return "a day".into();
    }
    format!("{} days", (h + 12) / 24)
}

/// Docker's `docker ps` humanisation (`Less than a second`, `2 minutes`, `About an hour`).
pub fn docker_human(elapsed_ms: u64) -> String {
    let s = elapsed_ms / 1000;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if s / 3600 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", s / 3600)
    } else {
        format!("{} days", s / 86400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2024-01-02T03:04:05.678Z is a Tuesday.
        let ms = 1_704_164_645_678;
        assert_eq!(rfc3339_nanos(ms), "2024-01-02T03:04:05.678000000Z");
        assert_eq!(journal_ts(ms), "Jan 02 03:04:05");
        assert_eq!(systemd_ts(ms), "Tue 2024-01-02 03:04:05 UTC");
        assert_eq!(chrono_display(1_704_164_645), "2024-01-02 03:04:05 UTC");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // A leap day.
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn humanized() {
        assert_eq!(humanize(3_000), "3 seconds");
        assert_eq!(humanize(120_000), "2 minutes");
        assert_eq!(docker_human(500), "Less than a second");
        assert_eq!(docker_human(7_200_000), "2 hours");
    }
}
