//! Holding the run lock on an SSH connection: one extra session channel per connection runs the lock script of
//! `transport::runlock` and stays open, its stdin never closed, for as long as the connection lives. When the
//! connection drops (a killed controller, a network fault, the end of the run), sshd closes the script's stdin,
//! its `cat` ends and the kernel releases the lock.
//!
//! The channel is opened as soon as the connection is authenticated and is not waited for there: the
//! executor's first command waits for the answer in [`SshTransport::lock_gate`], so the lock's round trips
//! overlap the executor's own work between connecting and its first command. After a reconnect the lock is
//! taken again on the new connection before any command runs; a lock that ends while its connection is up (its
//! holder process was killed) fails every later command of the run on that device (fail closed).
//!
//! It must not parse the script's answer itself (`runlock` does) or run ordinary commands (`exec`).

use std::sync::Arc;

use russh::ChannelMsg;
use tokio::sync::watch;

use super::{Conn, SshTransport};
use crate::transport::runlock::{find_answer, RunLock};
use crate::transport::{frame, Exec, TransportError};

/// Where a connection's lock stands.
#[derive(Debug, Clone)]
pub(super) enum LockState {
    /// The script has not answered yet.
    Pending,
    /// This run holds it (or shares it with another connection of the same run).
    Held,
    /// Not held: why.
    Failed(TransportError),
}

/// The lock of one connection: its state, and the task that keeps the channel open (aborted on drop).
pub(super) struct Hold {
    conn: Arc<Conn>,
    state: watch::Receiver<LockState>,
    task: tokio::task::AbortHandle,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hold {
    /// Open the lock channel on `conn` and start taking the lock; returns at once.
    pub(super) fn start(conn: Arc<Conn>, lock: RunLock, host: String, addr: String) -> Hold {
        let (tx, rx) = watch::channel(LockState::Pending);
        let held_on = conn.clone();
        let task = tokio::spawn(async move {
            let end = hold(&conn, &lock, &host, &addr, &tx).await;
            let _ = tx.send(LockState::Failed(end));
        })
        .abort_handle();
        Hold {
            conn: held_on,
            state: rx,
            task,
        }
    }

    fn is_for(&self, conn: &Arc<Conn>) -> bool {
        Arc::ptr_eq(&self.conn, conn)
    }
}

/// Take the lock, then keep its channel open until it ends; returns why it is no longer held.
async fn hold(
    conn: &Conn,
    lock: &RunLock,
    host: &str,
    addr: &str,
    tx: &watch::Sender<LockState>,
) -> TransportError {
    let ch = match conn.channel_open_session().await {
        Ok(c) => c,
        Err(e) => {
            return TransportError::Locked(format!(
                "cannot open a channel for the run lock on {addr}: {e}; nothing was done on {host}"
            ))
        }
    };
    let (line, _) = frame(&Exec::new(lock.cmd()));
    if let Err(e) = ch.exec(true, line.into_bytes()).await {
        return TransportError::Disconnected(format!("{addr}: starting the run lock failed: {e}"));
    }
    // The write half stays alive (no EOF) for as long as this task runs: the script's `cat` holds the lock
    // until its stdin ends.
    let (mut read, _write) = ch.split();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let wait_answer = async {
        loop {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    stdout.extend_from_slice(&data);
                    if let Some(a) = find_answer(&stdout) {
                        return Some(a);
                    }
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    if stderr.len() < 4096 {
                        stderr.extend_from_slice(&data);
                    }
                }
                Some(ChannelMsg::Close) | None => return None,
                Some(_) => {}
            }
        }
    };
    let answer = match tokio::time::timeout(lock.answer_deadline(), wait_answer).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            let mut err = stderr.clone();
            crate::transport::unframe(&mut err);
            let err = String::from_utf8_lossy(&err);
            return TransportError::Locked(format!(
                "the run lock script on {host} ended without an answer ({}); nothing was done there",
                err.trim()
                    .lines()
                    .last()
                    .unwrap_or("the connection closed")
            ));
        }
        Err(_) => {
            return TransportError::Locked(format!(
                "the run lock script on {host} did not answer within {}s; nothing was done there",
                lock.answer_deadline().as_secs()
            ))
        }
    };
    if let Err(e) = lock.outcome(host, &answer) {
        return e;
    }
    let _ = tx.send(LockState::Held);
    // Held: wait for the channel to end.
    loop {
        match read.wait().await {
            Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => break,
            Some(ChannelMsg::ExitStatus { .. }) | Some(ChannelMsg::ExitSignal { .. }) => break,
            Some(_) => {}
        }
    }
    TransportError::Locked(format!(
        "the run lock on {host} ended while the run was still using the device (its holder process on the \
         device was killed, or the connection dropped); no further change is made there"
    ))
}

impl SshTransport {
    /// Start taking the lock on `conn` when the run asks for one.
    pub(super) fn start_lock(&self, conn: &Arc<Conn>) -> Option<Hold> {
        let lock = self.shared.opts.run_lock.clone()?;
        Some(Hold::start(
            conn.clone(),
            lock,
            self.name.clone(),
            self.target.addr(),
        ))
    }

    /// Wait until the current connection holds the run lock (taking it again after a reconnect); `Ok` at once
    /// when the run takes no lock.
    pub(super) async fn lock_gate(&self) -> Result<(), TransportError> {
        if self.shared.opts.run_lock.is_none() {
            return Ok(());
        }
        let h = self.handle().await?;
        let mut rx = {
            let mut g = self.lock.lock().await;
            match &*g {
                Some(hold) if hold.is_for(&h) => hold.state.clone(),
                _ => {
                    *g = self.start_lock(&h);
                    match &*g {
                        Some(hold) => hold.state.clone(),
                        None => return Ok(()),
                    }
                }
            }
        };
        let state = rx
            .wait_for(|s| !matches!(s, LockState::Pending))
            .await
            .map(|s| s.clone())
            .unwrap_or_else(|_| {
                LockState::Failed(TransportError::Disconnected(format!(
                    "{}: the connection closed while taking the run lock",
                    self.target.addr()
                )))
            });
        match state {
            LockState::Held | LockState::Pending => Ok(()),
            LockState::Failed(e) => Err(e),
        }
    }
}
