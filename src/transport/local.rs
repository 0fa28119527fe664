//! The `local` transport: `ansible_connection: local` and `delegate_to: localhost`.
//!
//! Runs the same framed command line the SSH transport sends, through `/bin/sh -c` on the controller, so every
//! module behaves identically on both (an [`Upload`](super::Upload) is copied into the child's stdin in bounded
//! chunks after the stdin bytes). It must not be used for devices: it spawns one process per command.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{frame, unframe, Exec, ExitStatus, Output, Stats, Transport, TransportError};
use crate::report::StatsSnapshot;

/// Runs commands on the controller.
pub struct LocalTransport {
    host: String,
    stats: Stats,
}

impl LocalTransport {
    /// A local transport for the inventory host `host`.
    pub fn new(host: impl Into<String>) -> Self {
        let t = LocalTransport {
            host: host.into(),
            stats: Stats::default(),
        };
        t.stats
            .connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        t
    }
}

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec(&self, req: Exec) -> Result<Output, TransportError> {
        let (line, stdin) = frame(&req);
        let _upload_slot = match &req.upload {
            Some(u) => u.permit().await,
            None => None,
        };
        let streamed = req.upload.as_ref().map_or(0, |u| u.len()) as usize;
        self.stats
            .count_exec(line.len() + stdin.as_ref().map_or(0, |s| s.len()) + streamed);
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal stops edgefleet starting new work, but must not
            // kill the commands in flight (atomic writes finish or roll back).
            .process_group(0)
            .spawn()
            .map_err(|e| TransportError::Other(format!("cannot start /bin/sh: {e}")))?;
        let mut upload_error = None;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // Write in the background so a command that does not read its stdin cannot deadlock us. An upload's
            // ranges follow, copied in bounded chunks (never held whole).
            let upload = req.upload.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            upload_error = Some(rx);
            tokio::spawn(async move {
                let mut err = None;
                if pipe.write_all(&data).await.is_ok() {
                    for piece in upload.iter().flat_map(|u| u.pieces.iter()) {
                        match piece.open().await {
                            Ok(mut r) => {
                                if tokio::io::copy(&mut r, &mut pipe).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        }
                    }
                }
                let _ = pipe.shutdown().await;
                let _ = tx.send(err);
            });
        }
        let wait = child.wait_with_output();
        let out = match req.timeout {
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .map_err(|_| TransportError::Timeout(t))?,
            None => wait.await,
        }
        .map_err(|e| TransportError::Other(format!("local command failed: {e}")))?;
        let status = match out.status.code() {
            Some(c) => ExitStatus::Code(c as u32),
            None => {
                use std::os::unix::process::ExitStatusExt;
                match out.status.signal() {
                    Some(s) => ExitStatus::Signal(signal_name(s)),
                    None => ExitStatus::Unknown,
                }
            }
        };
        if let Some(rx) = upload_error {
            if let Ok(Some(e)) = rx.await {
                return Err(e);
            }
        }
        let (mut stdout, mut stderr) = (out.stdout, out.stderr);
        self.stats.count_received(stdout.len() + stderr.len());
        unframe(&mut stdout);
        unframe(&mut stderr);
        if req.become_.is_some() && !status.success() {
            if let Some(e) = super::become_error(&String::from_utf8_lossy(&stderr)) {
                return Err(e);
            }
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    async fn close(&self) {}
}

/// The conventional name of a signal number ("TERM" for 15).
pub fn signal_name(sig: i32) -> String {
    match sig {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        6 => "ABRT",
        9 => "KILL",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return sig.to_string(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Cmd;

    #[tokio::test]
    async fn runs_with_stdin_and_status() {
        let t = LocalTransport::new("localhost");
        let out = t
            .exec(Exec::new(Cmd::shell("cat; echo err >&2; exit 3")).stdin("hello"))
            .await
            .unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status, ExitStatus::Code(3));
        assert_eq!(t.stats().execs, 1);
    }

    #[tokio::test]
    async fn uploads_stream_file_ranges_under_the_gate() {
        use crate::transport::{FileRange, Upload};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, b"0123456789abcdef").unwrap();
        let lock = dir.path().join("lock").display().to_string();
        let gate = Arc::new(tokio::sync::Semaphore::new(1));
        let upload = Upload {
            pieces: vec![
                FileRange {
                    path: src.clone(),
                    offset: 10,
                    len: 6,
                },
                FileRange {
                    path: src.clone(),
                    offset: 0,
                    len: 2,
                },
            ],
            gate: Some(gate),
        };
        // Each command holds `lock` while it runs: a second one inside the gate at the same time fails.
        let cmd = || {
            Exec::new(
                Cmd::new("mkdir")
                    .arg(lock.as_str())
                    .raw("|| exit 9; printf pre; cat; sleep 0.2; rmdir")
                    .arg(lock.as_str()),
            )
            .stdin("<")
            .upload(upload.clone())
        };
        let t = Arc::new(LocalTransport::new("localhost"));
        let (a, b) = tokio::join!(t.exec(cmd()), t.exec(cmd()));
        for o in [a.unwrap(), b.unwrap()] {
            assert_eq!(o.status, ExitStatus::Code(0), "{}", o.stderr_str());
            assert_eq!(o.stdout, b"pre<abcdef01");
        }
        // A range past the end of the file is an error naming the file, not a short stdin.
        let short = Upload {
            pieces: vec![FileRange {
                path: src.clone(),
                offset: 12,
                len: 10,
            }],
            gate: None,
        };
        let e = t
            .exec(Exec::new(Cmd::new("cat")).upload(short))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("src.bin") && e.to_string().contains("too short"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let t = LocalTransport::new("localhost");
        let e = t
            .exec(
                Exec::new(Cmd::shell("sleep 5"))
                    .timeout(Some(std::time::Duration::from_millis(100))),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, TransportError::Timeout(_)));
    }

    #[tokio::test]
    async fn signal_is_reported() {
        let t = LocalTransport::new("localhost");
        let out = t
            .exec(Exec::new(Cmd::shell("kill -KILL $$")))
            .await
            .unwrap();
        // Depending on the shell, the signal arrives as a signal or as 128+N.
        assert!(
            out.status == ExitStatus::Signal("KILL".into()) || out.status == ExitStatus::Code(137),
            "{:?}",
            out.status
        );
    }
}
