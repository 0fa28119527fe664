//! The run ID: one per `edgefleet play` run, shared by everything that names the run (the device locks' owner
//! records, and the run journal).
//!
//! Shape: `YYYYMMDDTHHMMSS.mmmZ-xxxxxxxx` — the UTC start time to the millisecond, then 32 random bits in hex.
//! IDs sort by start time as plain strings (`--resume last` takes the greatest), are safe as file names and in
//! shell words (only `[0-9.A-Z-a-f]`), and two runs started in the same millisecond differ with near certainty. A leaf: it imports nothing of ours.

use std::fmt;

/// A run's ID (see the module doc for the shape).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    /// A new ID for a run starting now.
    pub fn generate() -> Self {
        Self::at(time::OffsetDateTime::now_utc(), rand::random::<u32>())
    }

    /// The ID of a run started at `t` with random part `r` (for tests and for [`RunId::generate`]).
    pub fn at(t: time::OffsetDateTime, r: u32) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        RunId(format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{r:08x}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ))
    }

    /// Parse an ID given back by the user (`--resume ID`); `None` unless it has the shape above.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let ok = b.len() == 29
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'T'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'.'
            && b[16..19].iter().all(u8::is_ascii_digit)
            && b[19] == b'Z'
            && b[20] == b'-'
            && b[21..]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        ok.then(|| RunId(s.to_string()))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_start_time_and_parse_back() {
        let a = RunId::at(
            time::macros::datetime!(2026-12-03 09:05:07.042 UTC),
            0xffff_ffff,
        );
        let b = RunId::at(time::macros::datetime!(2026-12-03 10:00:00 +02:00), 0);
        assert_eq!(a.as_str(), "20261203T090507.042Z-ffffffff");
        // 10:00 at +02:00 is 08:00 UTC: earlier than a.
        assert_eq!(b.as_str(), "20261203T080000.000Z-00000000");
        assert!(b < a);
        assert_eq!(RunId::parse(a.as_str()), Some(a.clone()));
        let g = RunId::generate();
        assert_eq!(RunId::parse(g.as_str()), Some(g));
        for bad in [
            "",
            "20261203T090507.042Z",
            "20261203T090507Z-ffffffff",
            "20261203T090507.042Z-FFFFFFFF",
            "20261203 090507.042Z-ffffffff",
            "20261203T090507.042Z-ffffffff; rm",
            "../x",
            "last",
        ] {
            assert_eq!(RunId::parse(bad), None, "{bad:?}");
        }
    }
}
