//! The `docker` CLI's printer: `--format` templates over listings (`table` alignment under the header, Go
//! template errors with their exit codes), single-object templates, Go's `json.MarshalIndent` layout, and
//! Docker's human sizes.
//!
//! It must not read or change device state: callers hand it rows and values.

use serde_json::Value;

use crate::lab::sim::gotmpl::{self, Template};
use crate::lab::sim::program::Io;
use crate::lab::sim::state::StateError;

/// `--format` output of a listing: the template parsed (exit 64 if it does not), each row rendered (exit 1 on
/// the first that fails), and a `table` format aligned under its header, as the docker CLI prints them.
pub(super) fn print_rows(
    io: &mut Io,
    format: &str,
    header: impl Fn(&Template) -> String,
    rows: impl IntoIterator<Item = Value>,
) -> i32 {
    let t = match Template::parse(format) {
        Ok(t) => t,
        Err(e) => {
            io.errln(e.0);
            return 64;
        }
    };
    let mut lines = Vec::new();
    if t.table {
        lines.push(header(&t));
    }
    for row in rows {
        match t.render(&row) {
            Ok(s) => lines.push(s),
            Err(e) => {
                io.errln(e.0);
                return 1;
            }
        }
    }
    if t.table {
        io.out(gotmpl::tabwrite(&lines, 3, 10));
    } else {
        for l in &lines {
            io.outln(l);
        }
    }
    0
}

pub(super) fn render_one(format: &str, data: &Value, io: &mut Io) -> Result<i32, StateError> {
    match Template::parse(format).and_then(|t| t.render(data)) {
        Ok(s) => {
            io.outln(s);
            Ok(0)
        }
        Err(e) => {
            io.errln(e.0);
            Ok(64)
        }
    }
}

/// JSON with Go's `json.MarshalIndent(v, "", "    ")` layout.
pub(super) fn go_indent(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Docker's `units.HumanSize` (decimal, 3 significant digits).
pub(super) fn human_size(size: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{:.3}", v);
    let digits_before = s.find('.').unwrap_or(s.len());
    let keep = 3_usize.saturating_sub(digits_before);
    let mut out = format!("{:.*}", keep, v);
    if out.contains('.') {
        out = out.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{out}{}", units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(180_000_000), "180MB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(0), "0B");
    }
}
