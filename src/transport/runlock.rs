//! The per-device run lock: what a run asks for ([`RunLock`]), the device script that takes the lock and then
//! holds it for as long as its SSH channel lives, and the parser of the script's one-line answer.
//!
//! How it works: when a run that may change devices (`play`, not `--check`) connects to a device, the SSH
//! transport opens one extra session channel on the same connection and runs [`RunLock::cmd`] there. The
//! script opens the lock file on fd 9, takes a kernel `flock` on it, writes the owner record beside it, prints
//! `EF-LOCK-HELD`, then reads its stdin with the shell's own `read` until end of file (no extra process: on a
//! fleet, every process the lock adds is paid on every device of every run): the lock lives exactly as long as
//! that shell, which lives exactly as long as the channel (sshd closes its stdin when the connection drops, the
//! shell ends, the kernel drops the lock). A killed controller therefore never leaves a stale lock behind.
//!
//! Where: `/run/lock/edgefleet.lock` when `/run/lock` is writable by the login user (Debian, Ubuntu and
//! Raspberry Pi OS make it 1777, so every login user of the device shares one lock), else `$HOME/.edgefleet.lock`
//! (then the lock only excludes runs logging in as the same user). The lock file is opened read-only when it
//! exists (a `flock` needs no write access, and `fs.protected_regular` forbids opening another user's file in a
//! sticky directory with `O_CREAT`).
//!
//! The owner record, `<lock>.owner`, is one line: `RUN_ID<TAB>USER@HOST<TAB>SINCE<TAB>PID` (the controller's
//! user, host name, UTC start time and process ID). It is informative only: when runs log in as different
//! non-root users and `fs.protected_regular` keeps one from replacing the other's record, the record can name
//! an earlier run (root replaces any record). A run that finds the lock taken waits up to
//! [`RunLock::wait`] (polling once a second: busybox `flock` has no `-w`), then answers with the holder's record.
//! A run that finds its own run ID in the record shares the lock (two inventory names for one device in one run
//! must not wait for each other). Without `flock(1)` on the device the run fails closed: no lock, no changes.
//!
//! It must not open channels or know about russh (that is `ssh.rs`); it only builds the command and reads the
//! answer.

use std::time::Duration;

use super::{Cmd, TransportError};

/// The device script. Arguments: `$1` run ID, `$2` owner record line, `$3` seconds to wait.
const SCRIPT: &str = r#"run=$1 rec=$2 wait=$3
command -v flock >/dev/null 2>&1 || { echo EF-LOCK-NOFLOCK; exit 0; }
if [ -d /run/lock ] && [ -w /run/lock ]; then L=/run/lock/edgefleet.lock
elif [ -n "${HOME:-}" ] && [ -d "$HOME" ] && [ -w "$HOME" ]; then L=$HOME/.edgefleet.lock
else echo 'EF-LOCK-ERROR	neither /run/lock nor $HOME is writable by the login user'; exit 0; fi
O=$L.owner
umask 0
[ -e "$L" ] || { true >>"$L"; } 2>/dev/null
[ -r "$L" ] || { echo "EF-LOCK-ERROR	cannot open $L"; exit 0; }
exec 9<"$L"
n=0 w=
until flock -n 9; do
  r=; IFS= read -r r <"$O" 2>/dev/null
  case $r in "$run	"*) echo "EF-LOCK-SHARED	$L"; while read -r _; do :; done; exit 0;; esac
  if [ "$n" -ge "$wait" ]; then echo "EF-LOCK-BUSY	$L	$r"; exit 0; fi
  n=$((n+1))
  if [ -z "$w" ]; then if flock --help 2>&1 | grep -q -e --timeout; then w=y; else w=n; fi; fi
  if [ "$w" = y ]; then flock -w 1 9 && break; else sleep 1; fi
done
{ printf '%s\n' "$rec" >"$O"; } 2>/dev/null || { rm -f "$O"; printf '%s\n' "$rec" >"$O"; } 2>/dev/null
echo "EF-LOCK-HELD	$L"
while read -r _; do :; done
"#;

/// The default `--lock-timeout`, in seconds: long enough to ride out a short overlap (a scheduled run that
/// started while an operator's run was finishing), short enough that an operator is not left waiting on a
/// device held by a long run. Schedules that would rather wait give a longer one.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 30;

/// The longest `--lock-timeout` accepted, in seconds (a day: a longer wait is a stuck schedule, not a plan).
pub const MAX_LOCK_WAIT_SECS: u64 = 86_400;

/// What a run asks for: its identity (written as the owner record) and how long to wait for a busy lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLock {
    /// The run ID.
    pub run_id: String,
    /// `USER@HOST` of the controller.
    pub owner: String,
    /// When the run started, UTC, RFC 3339 (seconds).
    pub since: String,
    /// The controller's process ID.
    pub pid: u32,
    /// How long to wait for a lock another run holds (whole seconds count).
    pub wait: Duration,
}

/// The owner record of a lock, as another run wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its run ID.
    pub run_id: String,
    /// Its `USER@HOST`.
    pub owner: String,
    /// Its start time.
    pub since: String,
    /// Its controller's process ID.
    pub pid: String,
}

/// The lock script's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// This run holds the lock (at this path).
    Held(String),
    /// Another connection of this same run holds it.
    Shared(String),
    /// Another run held it for the whole wait; its owner record when readable.
    Busy {
        /// The lock file.
        path: String,
        /// The holder, if its record could be read.
        owner: Option<Owner>,
    },
    /// The device has no `flock(1)`.
    NoFlock,
    /// The lock file could not be opened (why).
    Error(String),
}

/// A field of the owner record: no tabs, newlines or other control characters (the record is one line).
fn field(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn controller_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        return u;
    }
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into the buffers we pass.
    let uid = unsafe { libc::geteuid() };
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
    if rc == 0 && !res.is_null() && !pw.pw_name.is_null() {
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        if let Ok(n) = name.to_str() {
            if !n.is_empty() {
                return n.to_string();
            }
        }
    }
    format!("uid{uid}")
}

fn controller_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl RunLock {
    /// The lock of run `run_id` started now by this process, waiting up to `wait` for a busy lock.
    pub fn new(run_id: &str, wait: Duration) -> Self {
        let t = time::OffsetDateTime::now_utc();
        RunLock {
            run_id: field(run_id),
            owner: field(&format!("{}@{}", controller_user(), controller_host())),
            since: format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            pid: std::process::id(),
            wait,
        }
    }

    /// The owner record line this run writes.
    pub fn record(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.run_id, self.owner, self.since, self.pid
        )
    }

    /// The command that takes and then holds the lock (every argument quoted).
    pub fn cmd(&self) -> Cmd {
        Cmd::shell(SCRIPT)
            .arg("edgefleet-lock")
            .arg(self.run_id.clone())
            .arg(self.record())
            .arg(self.wait.as_secs().to_string())
    }

    /// How long the controller waits for the script's answer once the channel is open: the device-side wait
    /// plus a margin for a slow device (the script polls once a second, so it answers within about `wait`).
    pub fn answer_deadline(&self) -> Duration {
        self.wait + Duration::from_secs(30)
    }

    /// What `answer` means for the run on `host`: Ok when the run may change the device.
    pub fn outcome(&self, host: &str, answer: &Answer) -> Result<(), TransportError> {
        match answer {
            Answer::Held(_) | Answer::Shared(_) => Ok(()),
            Answer::Busy { path, owner } => {
                let who = match owner {
                    Some(o) => format!(
                        "locked by run {} ({} since {}, pid {})",
                        o.run_id, o.owner, o.since, o.pid
                    ),
                    None => format!("locked by another run (no owner record beside {path})"),
                };
                Err(TransportError::Locked(format!(
                    "{who}; gave up after waiting {}s (--lock-timeout); nothing was done on {host}",
                    self.wait.as_secs()
                )))
            }
            Answer::NoFlock => Err(TransportError::Locked(format!(
                "{host} has no flock(1): edgefleet cannot lock it against other runs, so it changes nothing \
                 there (install util-linux, or a busybox with the flock applet)"
            ))),
            Answer::Error(why) => Err(TransportError::Locked(format!(
                "cannot take the run lock on {host}: {why}; nothing was done there"
            ))),
        }
    }
}

/// Parse one line of the script's output; `None` when it is not an answer.
pub fn parse_line(line: &str) -> Option<Answer> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut it = line.splitn(3, '\t');
    let tag = it.next()?;
    let a = it.next().unwrap_or("").to_string();
    let rest = it.next().unwrap_or("");
    Some(match tag {
        "EF-LOCK-HELD" => Answer::Held(a),
        "EF-LOCK-SHARED" => Answer::Shared(a),
        "EF-LOCK-NOFLOCK" => Answer::NoFlock,
        "EF-LOCK-ERROR" => Answer::Error(a),
        "EF-LOCK-BUSY" => Answer::Busy {
            path: a,
            owner: parse_owner(rest),
        },
        _ => return None,
    })
}

/// Parse an owner record line; `None` when it is empty or not a record.
pub fn parse_owner(line: &str) -> Option<Owner> {
    let f: Vec<&str> = line.trim_end().split('\t').collect();
    match f.as_slice() {
        [run, owner, since, pid] if !run.is_empty() => Some(Owner {
            run_id: field(run),
            owner: field(owner),
            since: field(since),
            pid: field(pid),
        }),
        _ => None,
    }
}

/// The first answer in the script's stdout (after the frame marker, so rc-file noise cannot fake one), once a
/// whole line of it has arrived.
pub fn find_answer(stdout: &[u8]) -> Option<Answer> {
    let m = super::FRAME_MARKER.as_bytes();
    let start = stdout.windows(m.len()).position(|w| w == m)? + m.len();
    let text = String::from_utf8_lossy(&stdout[start..]);
    let complete = text.rfind('\n')?;
    text[..complete].lines().find_map(parse_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(run: &str, wait: u64) -> RunLock {
        RunLock {
            run_id: run.into(),
            owner: "ops@controller".into(),
            since: "2026-12-03T15:00:00Z".into(),
            pid: 42,
            wait: Duration::from_secs(wait),
        }
    }

    #[test]
    fn answers_parse_and_explain_themselves() {
        let l = lock("r1", 30);
        let busy = parse_line(
            "EF-LOCK-BUSY\t/run/lock/edgefleet.lock\tr0\tci@timer\t2026-12-03T14:00:00Z\t7\n",
        )
        .unwrap();
        let e = l.outcome("dev-1", &busy).unwrap_err().to_string();
        assert_eq!(
            e,
            "locked by run r0 (ci@timer since 2026-12-03T14:00:00Z, pid 7); gave up after waiting 30s \
             (--lock-timeout); nothing was done on dev-1"
        );
        let anon = parse_line("EF-LOCK-BUSY\t/run/lock/edgefleet.lock\t").unwrap();
        assert!(l
            .outcome("d", &anon)
            .unwrap_err()
            .to_string()
            .contains("no owner record beside /run/lock/edgefleet.lock"));
        assert!(l
            .outcome("d", &parse_line("EF-LOCK-NOFLOCK").unwrap())
            .is_err());
        assert_eq!(
            parse_line("EF-LOCK-HELD\t/x"),
            Some(Answer::Held("/x".into()))
        );
        assert_eq!(parse_line("hello"), None);
        // Noise before the frame marker cannot answer; a half line is not an answer yet.
        let mut out = b"EF-LOCK-HELD\t/fake\n".to_vec();
        out.extend_from_slice(crate::transport::FRAME_MARKER.as_bytes());
        out.extend_from_slice(b"EF-LOCK-BUSY\t/l\t");
        assert_eq!(find_answer(&out), None);
        out.extend_from_slice(b"\n");
        assert!(matches!(find_answer(&out), Some(Answer::Busy { .. })));
    }

    #[test]
    fn the_owner_record_is_one_line_whatever_the_environment_says() {
        let mut l = lock("r\n1", 0);
        l.run_id = field(&l.run_id);
        l.owner = field("a\tb@c\nd");
        assert_eq!(l.record(), "r?1\ta?b@c?d\t2026-12-03T15:00:00Z\t42");
        let real = RunLock::new("20261203T150000.000Z-0000abcd", Duration::from_secs(5));
        assert!(real.owner.contains('@'), "{}", real.owner);
        assert_eq!(real.pid, std::process::id());
        assert_eq!(parse_owner(&real.record()).unwrap().run_id, real.run_id);
    }
}
