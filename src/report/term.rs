//! Terminal facts and text styling for the human renderers: is a stream a terminal, should colour be used,
//! how wide and tall is the screen, and how to paint or shorten a line.
//!
//! Owns the colour decision (`--color`, `NO_COLOR`, `TERM=dumb`) and the few ANSI styles the renderers use.
//! Colour is decoration only: every styled word is also a word (`FAILED`, `changed`), never just a hue. It must
//! not write anything itself.

use std::io::IsTerminal;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// On a terminal without NO_COLOR.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Which standard stream human output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Is this stream a terminal?
    pub fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    /// The `console` terminal for this stream (buffered; indicatif flushes it after each draw).
    pub fn term(self) -> console::Term {
        match self {
            Stream::Stdout => console::Term::buffered_stdout(),
            Stream::Stderr => console::Term::buffered_stderr(),
        }
    }

    /// (rows, columns) of the terminal behind this stream; a 24×80 guess when it is not a terminal.
    pub fn size(self) -> (u16, u16) {
        let t = match self {
            Stream::Stdout => console::Term::stdout(),
            Stream::Stderr => console::Term::stderr(),
        };
        t.size_checked().unwrap_or((24, 80))
    }
}

/// Is `TERM` unset-or-`dumb` (a terminal that cannot move the cursor)?
pub fn term_is_dumb() -> bool {
    matches!(std::env::var("TERM").as_deref(), Ok("dumb"))
}

/// Is `NO_COLOR` set to a non-empty value (<https://no-color.org>)?
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Decide whether to use colour on `stream` for `--color mode`.
pub fn use_color(mode: ColorMode, stream: Stream) -> bool {
    decide_color(mode, stream.is_terminal(), no_color_env(), term_is_dumb())
}

/// The colour decision as a pure function: `always` and `never` win; `auto` means a terminal, no `NO_COLOR`,
/// and a `TERM` that is not `dumb`.
pub fn decide_color(mode: ColorMode, is_tty: bool, no_color: bool, dumb: bool) -> bool {
    match mode {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto => is_tty && !no_color && !dumb,
    }
}

/// Paints text with ANSI styles when colour is on; a no-op otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paint {
    /// Colour on?
    pub color: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.color && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    /// Red (failures).
    pub fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    /// Bold red (unreachable, fatal).
    pub fn bold_red(&self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    /// Yellow (changed).
    pub fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    /// Green (ok).
    pub fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    /// Cyan (skipped, informational).
    pub fn cyan(&self, s: &str) -> String {
        self.wrap("36", s)
    }
    /// Magenta (warnings).
    pub fn magenta(&self, s: &str) -> String {
        self.wrap("35", s)
    }
    /// Bold (headings).
    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    /// Dim (secondary detail).
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// Shorten `s` to at most `width` display columns (ANSI codes do not count), ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    console::truncate_str(s, width, "…").into_owned()
}

/// Display width of `s` (ANSI codes do not count).
pub fn width(s: &str) -> usize {
    console::measure_text_width(s)
}

/// A duration for humans: `850ms`, `12.3s`, `4m05s`, `1h02m`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = d.as_secs() / 60;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

/// The first line of `s` (empty for empty input).
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn colour_decision() {
        assert!(decide_color(ColorMode::Always, false, true, true));
        assert!(!decide_color(ColorMode::Never, true, false, false));
        assert!(decide_color(ColorMode::Auto, true, false, false));
        assert!(!decide_color(ColorMode::Auto, false, false, false));
        assert!(!decide_color(ColorMode::Auto, true, true, false));
        assert!(!decide_color(ColorMode::Auto, true, false, true));
    }

    #[test]
    fn paint_is_plain_without_colour() {
        let p = Paint { color: false };
        assert_eq!(p.red("FAILED"), "FAILED");
        let p = Paint { color: true };
        assert_eq!(p.red("FAILED"), "\x1b[31mFAILED\x1b[0m");
        assert_eq!(width(&p.red("FAILED")), 6);
    }

    #[test]
    fn fit_cuts_by_columns() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        let p = Paint { color: true };
        assert_eq!(width(&fit(&p.red("abcdefgh"), 5)), 5);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
    }
}
