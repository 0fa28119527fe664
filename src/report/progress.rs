//! The live terminal display (indicatif): one overall line with a bar, device counts, rate and ETA; below it
//! a bounded set of lines for the devices in flight (longest-running first, so stragglers and stuck devices
//! surface as the run tails off), each with its current task and elapsed times; above it, printed the moment
//! they happen, the lines worth seeing (failures, unreachable devices, warnings, diffs, `-v` task lines).
//!
//! Owns the frame layout and the terminal budget: the display never uses more than half the screen's rows, and
//! every line is cut to the screen's width so nothing wraps. It is redrawn from a ticker at a fixed rate, never
//! per event, so 1000 devices × 20 events cost the same to draw as 10. Lines above the bars go through
//! `ProgressBar::suspend`, so they never interleave with a half-drawn frame. It must not read events itself:
//! the reporter hub hands it finished [`Frame`]s.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::fleet::{Counts, InFlight};
use super::term::{fit, human_duration, Paint, Stream};

/// How often the display is redrawn.
pub const TICK: Duration = Duration::from_millis(100);
/// The most device lines ever shown, however tall the terminal.
pub const MAX_DEVICE_LINES: usize = 20;

/// How many in-flight device lines fit a terminal with `rows` rows: the whole display (overall line, device
/// lines, "more" line) stays within half the screen, so lines printed above remain readable.
pub fn device_lines_for(rows: u16) -> usize {
    (usize::from(rows) / 2)
        .saturating_sub(2)
        .min(MAX_DEVICE_LINES)
}

/// Everything one redraw shows.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// Lines to print above the display (already redacted).
    pub above: Vec<String>,
    /// Fleet counters.
    pub counts: Counts,
    /// Devices in flight to show (already bounded).
    pub in_flight: Vec<InFlight>,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Tick number (for the spinner).
    pub tick: u64,
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Lay out the display's lines for a terminal of `cols` columns. Pure: tests call it directly.
pub fn layout(f: &Frame, cols: u16, paint: Paint) -> Vec<String> {
    let cols = usize::from(cols).max(20) - 1;
    let c = &f.counts;
    let total = c.total.max(c.finished).max(1);
    let rate = if f.elapsed.as_secs_f64() > 0.5 {
        c.finished as f64 / f.elapsed.as_secs_f64()
    } else {
        0.0
    };
    let eta = if rate > 0.0 && c.finished < total {
        format!(
            "  ETA {}",
            human_duration(Duration::from_secs_f64((total - c.finished) as f64 / rate))
        )
    } else {
        String::new()
    };
    let failed = format!("{} failed", c.failed);
    let unreach = format!("{} unreachable", c.unreachable);
    // Most important first: a narrow terminal cuts the tail (elapsed, rate) before the counts.
    let text = format!(
        "{}/{} devices  {} changed, {}, {}{eta}  {:.1}/s  {}",
        c.finished,
        c.total,
        c.changed,
        if c.failed > 0 {
            paint.red(&failed)
        } else {
            failed
        },
        if c.unreachable > 0 {
            paint.red(&unreach)
        } else {
            unreach
        },
        rate,
        human_duration(f.elapsed),
    );
    // The bar takes the room the text leaves (10 to 30 columns).
    let width = cols
        .saturating_sub(super::term::width(&text) + 5)
        .clamp(10, 30);
    let filled = c.finished * width / total;
    let bar = format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled));
    let text = if f.in_flight.is_empty() && c.in_flight > 0 {
        // No room for device lines: at least say how many are running.
        format!("{text}  ({} in flight)", c.in_flight)
    } else {
        text
    };
    let head = format!(
        "{} {bar} {text}",
        paint.cyan(SPINNER[(f.tick as usize) % SPINNER.len()]),
    );
    let mut lines = vec![fit(&head, cols)];
    let w = f
        .in_flight
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0)
        .min(32);
    for d in &f.in_flight {
        let name = fit(&d.name, w);
        let line = format!(
            "  {name:<w$}  {:>7}  {} {}",
            human_duration(d.elapsed),
            d.doing,
            paint.dim(&format!("({})", human_duration(d.doing_for)))
        );
        lines.push(fit(&line, cols));
    }
    let hidden = c.in_flight.saturating_sub(f.in_flight.len());
    if hidden > 0 && !f.in_flight.is_empty() {
        lines.push(fit(
            &paint.dim(&format!("  ... and {hidden} more in flight")),
            cols,
        ));
    }
    lines
}

/// The live display on a terminal.
pub struct Display {
    bar: ProgressBar,
    stream: Stream,
    paint: Paint,
}

impl Display {
    /// A display drawing on `stream` (even when it is not a terminal: `--progress bars` forces it).
    pub fn new(stream: Stream, paint: Paint) -> Self {
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(stream.term()), 20);
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        Display { bar, stream, paint }
    }

    /// The number of device lines the terminal has room for now.
    pub fn device_lines(&self) -> usize {
        device_lines_for(self.stream.size().0)
    }

    fn print_above(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut text = String::new();
        for l in lines {
            // Long lines wrap in the scrollback (that is fine above the display); only the display is cut.
            text.push_str(l);
            text.push('\n');
        }
        self.bar.suspend(|| match self.stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(text.as_bytes());
                let _ = o.flush();
            }
            Stream::Stderr => {
                let mut o = std::io::stderr().lock();
                let _ = o.write_all(text.as_bytes());
                let _ = o.flush();
            }
        });
    }

    /// Show one frame: print its lines above, then redraw.
    pub fn show(&self, f: &Frame) {
        self.print_above(&f.above);
        let cols = self.stream.size().1;
        // Task names come from templates: mask secrets here too.
        let text = layout(f, cols, self.paint).join("\n");
        self.bar
            .set_message(crate::redact::redact(&text).into_owned());
    }

    /// Print what is left above, and remove the display from the screen.
    pub fn close(&self, above: &[String]) {
        self.print_above(above);
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(in_flight: usize, shown: usize) -> Frame {
        Frame {
            above: vec![],
            counts: Counts {
                total: 100,
                finished: 40,
                changed: 12,
                failed: 3,
                unreachable: 1,
                in_flight,
            },
            in_flight: (0..shown)
                .map(|i| InFlight {
                    name: format!("edge-{i:03}"),
                    elapsed: Duration::from_secs(70 - i as u64),
                    doing: "Write /etc/aziot/config.toml with a very long task name that goes on"
                        .into(),
                    doing_for: Duration::from_millis(2500),
                })
                .collect(),
            elapsed: Duration::from_secs(20),
            tick: 3,
        }
    }

    #[test]
    fn budget_is_half_the_screen_at_most() {
        assert_eq!(device_lines_for(24), 10);
        assert_eq!(device_lines_for(10), 3);
        assert_eq!(device_lines_for(3), 0);
        assert_eq!(device_lines_for(200), MAX_DEVICE_LINES);
        for rows in 2..100u16 {
            // overall line + device lines + "more" line
            let d = device_lines_for(rows);
            assert!(1 + d + usize::from(d > 0) <= (usize::from(rows) / 2).max(1));
        }
    }

    #[test]
    fn layout_fits_the_width_and_counts_the_rest() {
        let l = layout(&frame(50, 8), 60, Paint { color: true });
        assert_eq!(l.len(), 1 + 8 + 1);
        assert!(l[0].contains("[####------] 40/100 devices"), "{}", l[0]);
        for line in &l {
            assert!(super::super::term::width(line) <= 59, "{line:?}");
        }
        let plain = layout(&frame(50, 8), 200, Paint::default());
        assert!(
            plain[0].ends_with("----------] 40/100 devices  12 changed, 3 failed, 1 unreachable  ETA 30.0s  2.0/s  20.0s"),
            "{}",
            plain[0]
        );
        assert!(
            plain[1].starts_with("  edge-000    1m10s  Write /etc/aziot"),
            "{}",
            plain[1]
        );
        assert_eq!(plain[9], "  ... and 42 more in flight");
    }

    #[test]
    fn no_device_lines_when_there_is_no_room() {
        let l = layout(&frame(50, 0), 80, Paint::default());
        assert_eq!(l.len(), 1);
    }
}
