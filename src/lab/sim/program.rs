//! What the dispatcher (`sim::run_program`) gives a simulated program: [`Io`], its captured stdout and stderr,
//! and [`Spawn`], the way it starts another program as a real one would start a child process (`iotedge` runs
//! `systemctl` and `journalctl`).
//!
//! A leaf of the simulator: it knows no program. Programs never import each other; a program that needs
//! another one spawns it through the [`Spawn`] it was given, so the call is logged in `invocations.log` and
//! counted like a real child process.

use super::state::{State, StateError};

/// Captured output of a simulated program (written to the real stdout/stderr when it finishes).
#[derive(Debug, Default, Clone)]
pub struct Io {
    /// Standard output.
    pub out: String,
    /// Standard error.
    pub err: String,
}

impl Io {
    /// Append to stdout.
    pub fn out(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
    }

    /// Append a line to stdout.
    pub fn outln(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    /// Append a line to stderr.
    pub fn errln(&mut self, s: impl AsRef<str>) {
        self.err.push_str(s.as_ref());
        self.err.push('\n');
    }
}

/// Run a simulated program as a child of the calling one: `(program, args)` -> (exit code, its output). The
/// invocation is logged in `invocations.log` first, as a real child process would be.
pub type Spawn = fn(&mut State, &str, &[String]) -> Result<(i32, Io), StateError>;

/// [`Spawn`] with string-slice arguments.
pub fn spawn_child(
    st: &mut State,
    spawn: Spawn,
    program: &str,
    args: &[&str],
) -> Result<(i32, Io), StateError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    spawn(st, program, &args)
}
