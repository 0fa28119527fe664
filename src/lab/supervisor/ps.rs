//! The `ps` hook: while enabled, record every process seen in each device (pid + args, attributed to the
//! device by mount namespace) into `devices/NAME/ps.log`, from kernel exec events and periodic /proc scans.
//!
//! It must not start or stop device processes.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::lab::ns::{self};

use super::shared::{log, Shared};

/// The `ps` hook's log writer: each process of a device seen for the first time (pid + args) is appended to
/// `devices/NAME/ps.log` as `<unix_ms> <pid> <args>`.
struct PsLog {
    seen: HashSet<(i32, String)>,
    index: std::collections::HashMap<u64, usize>,
    files: Vec<PathBuf>,
}

impl PsLog {
    fn record(&mut self, pid: i32, ino: u64) {
        let Some(&i) = self.index.get(&ino) else {
            return;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return;
        };
        let args = String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if args.is_empty() || !self.seen.insert((pid, args.clone())) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.files[i])
        {
            let _ = writeln!(f, "{now} {pid} {args}");
        }
    }
}

/// While enabled, record every device's processes: from kernel exec events as they happen (the proc connector,
/// so short-lived processes are caught) and from a periodic scan of /proc (which also catches processes that
/// were already running).
pub(super) async fn ps_sampler(sh: Arc<Shared>, devs: Vec<(u64, PathBuf)>) {
    let mut rx = sh.ps.subscribe();
    let inodes: HashSet<u64> = devs.iter().map(|(ino, _)| *ino).collect();
    let pslog = Arc::new(Mutex::new(PsLog {
        seen: HashSet::new(),
        index: devs
            .iter()
            .enumerate()
            .map(|(i, (ino, _))| (*ino, i))
            .collect(),
        files: devs.into_iter().map(|(_, p)| p).collect(),
    }));
    let enabled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut events_started = false;
    loop {
        let every = *rx.borrow_and_update();
        enabled.store(every.is_some(), std::sync::atomic::Ordering::SeqCst);
        let Some(every) = every else {
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        if !events_started {
            events_started = true;
            match crate::lab::procmon::ExecEvents::subscribe() {
                Ok(ev) => {
                    let (pslog, enabled) = (pslog.clone(), enabled.clone());
                    let _ = std::thread::Builder::new()
                        .name("lab-exec-events".into())
                        .spawn(move || loop {
                            let Ok(pids) = ev.next_execs() else { continue };
                            if !enabled.load(std::sync::atomic::Ordering::SeqCst) {
                                continue;
                            }
                            for pid in pids {
                                if let Ok(ino) = ns::mnt_ns_of(pid) {
                                    if let Ok(mut l) = pslog.lock() {
                                        l.record(pid, ino);
                                    }
                                }
                            }
                        });
                }
                Err(e) => log(format!(
                    "ps hook: no exec events ({e}); sampling /proc only"
                )),
            }
        }
        let (inodes, l) = (inodes.clone(), pslog.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for (pid, ino) in ns::pids_in(&inodes) {
                if let Ok(mut l) = l.lock() {
                    l.record(pid, ino);
                }
            }
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            r = rx.changed() => if r.is_err() { return },
        }
    }
}
