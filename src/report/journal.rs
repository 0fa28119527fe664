//! The run journal: an append-only record of a `play` run, one file per run in
//! `$XDG_STATE_HOME/edgefleet/runs/<RUN-ID>` (default `~/.local/state/edgefleet/runs/`), so that a run killed
//! at any point (even `kill -9`) can be resumed on exactly the devices that did not finish ok.
//!
//! Format (JSON lines): a header line ([`JournalHeader`]: the run's playbooks, inventory, limit, check mode, the
//! devices it set out to work on, and its command line with `-e` values left out), then one [`JournalEntry`]
//! per device as it finishes, then a [`RunEnd`] line when the run ends normally. Each line is written with one
//! `write` and fsynced before the event goes on to the other outputs, so a device reported finished on stdout is
//! on disk. A device is ok for a resume only if its line says `ok`: started-but-unfinished devices (no line)
//! and every failure are not. A last line cut short by a crash (no newline) is ignored, as if never written.
//!
//! Owns the writer ([`JournalSink`], an [`EventSink`] fed `TaskResult`/`HostFinished`/`RunFinished`), the
//! reader ([`Journal::read`], [`open`]), the run id ([`new_run_id`]) and Ansible-style retry files. It never
//! decides what to run: `commands/` turns a journal into a `--limit`.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Event, EventSink, HostStatus, TaskStatus};

/// The journal format version written in every header.
pub const JOURNAL_FORMAT: u32 = 1;

/// A new run id: the UTC start time to the millisecond, then 6 random hex digits (`20261203T151904.123Z-3fa91c`).
/// Ids sort by start time as strings, which is how `--resume last` finds the latest run; the random part keeps
/// two runs started in the same millisecond (two controllers sharing a state dir) apart. Also the id other
/// features (locks) name a run by.
pub fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    let stamp = now
        .format(fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("{stamp}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Is `s` shaped like a run id (and so safe as a file name)?
pub fn is_run_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Now, as RFC 3339 UTC.
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Where run journals live: `$XDG_STATE_HOME/edgefleet/runs` (an absolute `XDG_STATE_HOME` only, as the XDG
/// spec says), else `$HOME/.local/state/edgefleet/runs`.
pub fn runs_dir() -> Result<PathBuf, String> {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
        let p = PathBuf::from(x);
        if p.is_absolute() {
            return Ok(p.join("edgefleet/runs"));
        }
    }
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h).join(".local/state/edgefleet/runs")),
        _ => Err(
            "cannot tell where to keep the run journal: neither XDG_STATE_HOME (absolute) nor HOME is set"
                .into(),
        ),
    }
}

/// The first line of a journal: what the run was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// Format version ([`JOURNAL_FORMAT`]).
    pub edgefleet_journal: u32,
    /// The run id (also the file name).
    pub run_id: String,
    /// Start time, RFC 3339 UTC.
    pub started: String,
    /// The playbooks, as absolute paths.
    pub playbooks: Vec<PathBuf>,
    /// The inventory sources, as absolute paths where they exist.
    pub inventory: Vec<PathBuf>,
    /// `--limit`, as given.
    #[serde(default)]
    pub limit: Option<String>,
    /// Check mode?
    #[serde(default)]
    pub check: bool,
    /// Every device the run set out to work on, in play order.
    pub hosts: Vec<String>,
    /// The command line, with the values of `-e` left out (they may hold secrets) and secrets masked.
    #[serde(default)]
    pub argv: Vec<String>,
}

/// One device finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Device.
    pub host: String,
    /// ok | failed | unreachable | interrupted.
    pub status: String,
    /// Did a task change (in check mode: would it change) something?
    #[serde(default)]
    pub changed: bool,
    /// Why it did not finish ok (secrets masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time on the device, ms.
    #[serde(default)]
    pub duration_ms: u64,
    /// When it finished, RFC 3339 UTC.
    #[serde(default)]
    pub finished: String,
}

/// The last line of a run that ended (not killed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEnd {
    /// When, RFC 3339 UTC.
    pub run_finished: String,
    /// Total wall time, ms.
    pub duration_ms: u64,
    /// Interrupted by Ctrl-C?
    pub interrupted: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Entry(JournalEntry),
    End(RunEnd),
}

fn status_name(s: HostStatus) -> &'static str {
    match s {
        HostStatus::Ok => "ok",
        HostStatus::Failed => "failed",
        HostStatus::Unreachable => "unreachable",
        HostStatus::Interrupted => "interrupted",
    }
}

struct Writer {
    file: File,
    changed: HashSet<String>,
    error: Option<String>,
}

impl Writer {
    /// One line, one write, then fsync; the first error is kept for [`JournalSink::finish`].
    fn line(&mut self, value: &impl Serialize) {
        if self.error.is_some() {
            return;
        }
        let r = serde_json::to_string(value)
            .map_err(io::Error::other)
            .and_then(|s| {
                let mut s = crate::redact::redact(&s).into_owned();
                s.push('\n');
                self.file.write_all(s.as_bytes())?;
                self.file.sync_data()
            });
        if let Err(e) = r {
            self.error = Some(e.to_string());
        }
    }
}

/// The journal writer: an [`EventSink`] that appends a line per finished device and fsyncs it before
/// returning (put it first in a [`Tee`](super::Tee), so that what the other outputs report finished is on disk).
pub struct JournalSink {
    path: PathBuf,
    inner: Mutex<Writer>,
}

impl JournalSink {
    /// Create `dir/<header.run_id>` (the directory too, mode 0700; the file 0600), write and fsync the header
    /// (`started` is set to now when empty).
    /// Fails if a journal of that id exists.
    pub fn create(dir: &Path, header: &JournalHeader) -> Result<JournalSink, String> {
        if !is_run_id(&header.run_id) {
            return Err(format!("internal error: bad run id {:?}", header.run_id));
        }
        let ctx = |what: &str, p: &Path, e: io::Error| {
            format!(
                "cannot {what} the run journal {}: {e} (check the permissions of the state directory, or set XDG_STATE_HOME)",
                p.display()
            )
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ctx("create the directory of", dir, e))?;
        let path = dir.join(&header.run_id);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ctx("create", &path, e))?;
        let mut w = Writer {
            file,
            changed: HashSet::new(),
            error: None,
        };
        let mut header = header.clone();
        if header.started.is_empty() {
            header.started = now_rfc3339();
        }
        w.line(&header);
        if let Some(e) = w.error.take() {
            return Err(ctx("write", &path, io::Error::other(e)));
        }
        // The new directory entry must survive a crash too.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(JournalSink {
            path,
            inner: Mutex::new(w),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first write error, if any (the run's outcome stands; the caller warns that resume will not work).
    pub fn finish(&self) -> Result<(), String> {
        match self.inner.lock() {
            Ok(w) => match &w.error {
                Some(e) => Err(format!(
                    "the run journal {} is incomplete (a resume would re-run finished devices): {e}",
                    self.path.display()
                )),
                None => Ok(()),
            },
            Err(_) => Err("internal error: the run journal's lock is poisoned".into()),
        }
    }
}

impl EventSink for JournalSink {
    fn emit(&self, ev: Event) {
        let Ok(mut w) = self.inner.lock() else {
            return;
        };
        match ev {
            Event::TaskResult {
                host,
                status: TaskStatus::Changed,
                ..
            } => {
                w.changed.insert(host);
            }
            Event::HostFinished {
                host,
                status,
                duration,
                error,
                ..
            } => {
                let changed = w.changed.contains(&host);
                w.line(&JournalEntry {
                    host,
                    status: status_name(status).into(),
                    changed,
                    error,
                    duration_ms: duration.as_millis() as u64,
                    finished: now_rfc3339(),
                });
            }
            Event::RunFinished {
                duration,
                interrupted,
            } => w.line(&RunEnd {
                run_finished: now_rfc3339(),
                duration_ms: duration.as_millis() as u64,
                interrupted,
            }),
            _ => {}
        }
    }
}

/// A journal, read back.
#[derive(Debug, Clone)]
pub struct Journal {
    /// The file.
    pub path: PathBuf,
    /// What the run was.
    pub header: JournalHeader,
    /// Devices that finished, in order (a device appears at most once per run).
    pub entries: Vec<JournalEntry>,
    /// How the run ended, if it did (None: killed, or still running).
    pub end: Option<RunEnd>,
}

impl Journal {
    /// Read a journal. Every problem names the file and line and says what to do.
    pub fn read(path: &Path) -> Result<Journal, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the run journal {}: {e}", path.display()))?;
        Journal::parse(&text, path)
    }

    /// Parse a journal's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Journal, String> {
        let corrupt = |line: usize, why: String| {
            format!(
                "{}:{line}: the run journal is corrupt ({why}); it cannot be resumed: run the playbooks again without --resume",
                path.display()
            )
        };
        // A crash can cut the last write short: a last line without its newline was never completed.
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        let mut lines = complete.lines().enumerate();
        let header: JournalHeader = match lines.next() {
            Some((_, l)) => {
                serde_json::from_str(l).map_err(|e| corrupt(1, format!("bad header: {e}")))?
            }
            None => return Err(corrupt(1, "it is empty".into())),
        };
        if header.edgefleet_journal != JOURNAL_FORMAT {
            return Err(corrupt(
                1,
                format!(
                    "format {} is not {JOURNAL_FORMAT}, the one this edgefleet reads",
                    header.edgefleet_journal
                ),
            ));
        }
        let mut entries = Vec::new();
        let mut end = None;
        for (i, l) in lines {
            if l.trim().is_empty() {
                continue;
            }
            if end.is_some() {
                return Err(corrupt(i + 1, "a line after the run's end".into()));
            }
            match serde_json::from_str::<Line>(l) {
                Ok(Line::Entry(e)) => entries.push(e),
                Ok(Line::End(e)) => end = Some(e),
                Err(e) => return Err(corrupt(i + 1, format!("not a journal line: {e}"))),
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            header,
            entries,
            end,
        })
    }

    /// The devices of the run that did not finish ok (failed, unreachable, interrupted, started but not
    /// finished, or never started), in the run's order.
    pub fn not_ok(&self) -> Vec<String> {
        let ok: HashSet<&str> = self
            .entries
            .iter()
            .filter(|e| e.status == "ok")
            .map(|e| e.host.as_str())
            .collect();
        let mut out: Vec<String> = self
            .header
            .hosts
            .iter()
            .filter(|h| !ok.contains(h.as_str()))
            .cloned()
            .collect();
        // A device that finished not ok but is missing from the header (it cannot be, but fail closed).
        for e in &self.entries {
            if !ok.contains(e.host.as_str()) && !out.contains(&e.host) {
                out.push(e.host.clone());
            }
        }
        out
    }
}

/// The journal `which` names in `dir`: `last` (the latest run), a run id, or a path to a journal file.
pub fn open(dir: &Path, which: &str) -> Result<Journal, String> {
    let path = if which == "last" {
        latest(dir)?
    } else if which.contains('/') {
        PathBuf::from(which)
    } else if is_run_id(which) {
        dir.join(which)
    } else {
        return Err(format!(
            "--resume {which:?}: expected `last`, a run id (a file name in {}) or a journal path",
            dir.display()
        ));
    };
    if !path.is_file() {
        return Err(format!(
            "no run journal {}: `ls {}` lists the runs that can be resumed",
            path.display(),
            dir.display()
        ));
    }
    Journal::read(&path)
}

/// The latest journal in `dir` (run ids sort by start time).
fn latest(dir: &Path) -> Result<PathBuf, String> {
    let none = || {
        format!(
            "no run to resume: {} holds no run journal (every `edgefleet play` run writes one there)",
            dir.display()
        )
    };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(none()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    rd.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_run_id(n) && !n.ends_with(".retry"))
        .max()
        .map(|n| dir.join(n))
        .ok_or_else(none)
}

/// Write an Ansible-style retry file (one host per line) atomically; returns its path (`<journal>.retry`).
pub fn write_retry(journal: &Journal) -> Result<PathBuf, String> {
    let mut name = journal.path.as_os_str().to_owned();
    name.push(".retry");
    let path = PathBuf::from(name);
    let mut text = String::new();
    for h in journal.not_ok() {
        text.push_str(&h);
        text.push('\n');
    }
    write_atomic(&path, text.as_bytes())
        .map_err(|e| format!("cannot write the retry file {}: {e}", path.display()))?;
    Ok(path)
}

/// Write a file atomically: a temp file in the same directory, fsynced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let r = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StatsSnapshot;
    use std::time::Duration;

    fn header(id: &str, hosts: &[&str]) -> JournalHeader {
        JournalHeader {
            edgefleet_journal: JOURNAL_FORMAT,
            run_id: id.into(),
            started: now_rfc3339(),
            playbooks: vec!["/p/site.yml".into()],
            inventory: vec!["/p/inv.yml".into()],
            limit: None,
            check: false,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            argv: vec!["edgefleet".into(), "play".into()],
        }
    }

    fn finished(host: &str, status: HostStatus) -> Event {
        Event::HostFinished {
            host: host.into(),
            status,
            stats: StatsSnapshot::default(),
            duration: Duration::from_millis(5),
            error: (status != HostStatus::Ok).then(|| "boom".to_string()),
        }
    }

    #[test]
    fn run_ids_sort_by_time_and_are_file_names() {
        let a = new_run_id();
        std::thread::sleep(Duration::from_millis(2));
        let b = new_run_id();
        assert!(a < b, "{a} {b}");
        assert!(is_run_id(&a) && is_run_id(&b));
        assert!(!is_run_id("../x") && !is_run_id("last") && !is_run_id(""));
        assert_eq!(a.len(), "20261203T151904.123Z-3fa91c".len(), "{a}");
    }

    #[test]
    fn a_journal_round_trips_and_names_the_devices_to_resume() {
        let dir = tempfile::tempdir().unwrap();
        let id = new_run_id();
        let sink =
            JournalSink::create(dir.path(), &header(&id, &["a", "b", "c", "d", "e"])).unwrap();
        sink.emit(Event::TaskResult {
            host: "a".into(),
            task: "t".into(),
            module: "copy".into(),
            status: TaskStatus::Changed,
            handler: false,
            msg: None,
            diff: None,
            duration: Duration::ZERO,
            item: None,
            applies_config: false,
        });
        sink.emit(finished("a", HostStatus::Ok));
        sink.emit(finished("b", HostStatus::Failed));
        sink.emit(finished("c", HostStatus::Unreachable));
        sink.emit(finished("d", HostStatus::Ok));
        sink.emit(finished("x", HostStatus::Failed)); // not in the header: still named
                                                      // "e" started but never finished (killed).
        sink.finish().unwrap();
        let j = open(dir.path(), "last").unwrap();
        assert_eq!(j.header.run_id, id);
        assert_eq!(j.entries.len(), 5);
        assert!(j.entries[0].changed && !j.entries[3].changed);
        assert_eq!(j.entries[1].error.as_deref(), Some("boom"));
        assert!(j.end.is_none());
        assert_eq!(j.not_ok(), ["b", "c", "e", "x"]);
        // A torn last line (a crash mid-write) is ignored; the run ended normally after that.
        let mut text = std::fs::read_to_string(sink.path()).unwrap();
        text.push_str("{\"host\":\"e\",\"sta");
        let j2 = Journal::parse(&text, sink.path()).unwrap();
        assert_eq!(j2.not_ok(), ["b", "c", "e", "x"]);
        sink.emit(Event::RunFinished {
            duration: Duration::from_secs(1),
            interrupted: false,
        });
        let j3 = open(dir.path(), &id).unwrap();
        assert_eq!(j3.end.as_ref().map(|e| e.duration_ms), Some(1000));
        let retry = write_retry(&j3).unwrap();
        assert_eq!(std::fs::read_to_string(retry).unwrap(), "b\nc\ne\nx\n");
        // The retry file is not a journal: `last` still finds the journal.
        assert_eq!(open(dir.path(), "last").unwrap().header.run_id, id);
    }

    #[test]
    fn missing_and_corrupt_journals_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path(), "last").unwrap_err();
        assert!(e.contains("no run to resume"), "{e}");
        let e = open(dir.path(), "20260101T000000.000Z-000000").unwrap_err();
        assert!(e.contains("no run journal"), "{e}");
        let e = open(dir.path(), "x y").unwrap_err();
        assert!(e.contains("expected `last`"), "{e}");
        let p = dir.path().join("20260101T000000.000Z-000001");
        std::fs::write(&p, "not json\n").unwrap();
        let e = open(dir.path(), "last").unwrap_err();
        assert!(e.contains(":1: the run journal is corrupt"), "{e}");
        let mut text =
            serde_json::to_string(&header("20260101T000000.000Z-000001", &["a"])).unwrap();
        text.push_str("\n{\"host\":1}\n");
        std::fs::write(&p, text).unwrap();
        let e = open(dir.path(), "last").unwrap_err();
        assert!(e.contains(":2: the run journal is corrupt"), "{e}");
        std::fs::write(&p, "").unwrap();
        assert!(open(dir.path(), "last").unwrap_err().contains("empty"));
    }

    #[test]
    fn an_existing_journal_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let h = header("20260101T000000.000Z-000002", &["a"]);
        JournalSink::create(dir.path(), &h).unwrap();
        assert!(JournalSink::create(dir.path(), &h).is_err());
    }
}
