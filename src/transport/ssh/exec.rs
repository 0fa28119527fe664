//! Running commands on an SSH connection: a new session channel per command, sent once the run lock is held
//! (`lock`; at most
//! [`SshOptions::max_channels`](super::SshOptions) in flight), stdin streamed with flow control while stdout and
//! stderr are collected (an [`Upload`]'s file ranges read in bounded chunks as the window opens, under its
//! run-wide gate), the exit status or signal, per-command timeouts (the remote process gets KILL and the
//! channel is closed), and one transparent reconnect when the connection dropped between commands. It never
//! re-runs a command that may have started, and must not connect or authenticate itself (`SshTransport::handle`
//! does).

use std::sync::Arc;

use async_trait::async_trait;
use russh::client;
use russh::{ChannelMsg, Disconnect, Sig};

use super::SshTransport;
use crate::report::StatsSnapshot;
use crate::transport::{
    become_error, frame, unframe, Exec, ExitStatus, Output, Transport, TransportError, Upload,
};

fn signal_name(s: &Sig) -> String {
    match s {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(c) => return c.clone(),
    }
    .to_string()
}

impl SshTransport {
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, TransportError> {
        let mut retried = false;
        loop {
            let h = self.handle().await?;
            match h.channel_open_session().await {
                Ok(ch) => return Ok(ch),
                Err(russh::Error::ChannelOpenFailure(f)) => {
                    return Err(TransportError::Other(format!(
                        "{} refused a new session channel ({f:?}): is sshd's MaxSessions below {}?",
                        self.target.addr(),
                        self.shared.opts.max_channels
                    )))
                }
                Err(e) if !retried => {
                    // Nothing has run yet: the connection dropped between commands. Reconnect once.
                    self.shared.warn_once(
                        format!("reconnect:{}", self.name),
                        Some(&self.name),
                        format!("the connection was lost between commands ({e}); reconnected"),
                    );
                    retried = true;
                    let mut g = self.conn.lock().await;
                    if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, &h)) {
                        *g = None;
                    }
                }
                Err(e) => {
                    return Err(TransportError::Disconnected(format!(
                        "{}: cannot open a channel after reconnecting: {e}",
                        self.target.addr()
                    )))
                }
            }
        }
    }

    async fn run(&self, req: &Exec) -> Result<Output, TransportError> {
        let (line, stdin) = frame(req);
        // An upload waits for its run-wide slot before it opens a channel, and holds it until the command ended.
        let _upload_slot = match &req.upload {
            Some(u) => u.permit().await,
            None => None,
        };
        // The command's channel opens while the run lock is still being taken; nothing runs before it is held.
        let (ch, locked) = tokio::join!(self.open_channel(), self.lock_gate());
        locked?;
        let ch = ch?;
        let streamed = req.upload.as_ref().map_or(0, |u| u.len()) as usize;
        self.stats
            .count_exec(line.len() + stdin.as_ref().map_or(0, |s| s.len()) + streamed);
        ch.exec(true, line.into_bytes()).await.map_err(|e| {
            TransportError::Disconnected(format!("sending the command failed: {e}"))
        })?;
        let (mut read, write) = ch.split();
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut status = ExitStatus::Unknown;
        let mut closed = false;
        let mut refused = false;
        let mut upload_error: Option<TransportError> = None;
        let io = async {
            let writer = async {
                if let Some(data) = stdin {
                    write.data_bytes(data).await?;
                }
                if let Some(u) = &req.upload {
                    stream_upload(&write, u, &mut upload_error).await?;
                }
                write.eof().await
            };
            tokio::pin!(writer);
            let mut writer_done = false;
            loop {
                tokio::select! {
                    msg = read.wait() => match msg {
                        Some(ChannelMsg::Data { data }) => stdout.extend_from_slice(&data),
                        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.extend_from_slice(&data),
                        Some(ChannelMsg::ExitStatus { exit_status }) => status = ExitStatus::Code(exit_status),
                        Some(ChannelMsg::ExitSignal { signal_name: sig, .. }) => status = ExitStatus::Signal(signal_name(&sig)),
                        Some(ChannelMsg::Failure) => refused = true,
                        Some(ChannelMsg::Close) => { closed = true; break; }
                        None => break,
                        Some(_) => {}
                    },
                    _ = &mut writer, if !writer_done => { writer_done = true; }
                }
            }
        };
        let timed_out = match req.timeout {
            Some(t) => tokio::time::timeout(t, io).await.is_err(),
            None => {
                io.await;
                false
            }
        };
        if timed_out {
            let _ = write.signal(Sig::KILL).await;
            let _ = write.close().await;
            return Err(TransportError::Timeout(req.timeout.unwrap_or_default()));
        }
        self.stats.count_received(stdout.len() + stderr.len());
        if let Some(e) = upload_error {
            // The command saw a short stdin (and said so); the local cause is what the operator must fix.
            return Err(e);
        }
        if refused && status == ExitStatus::Unknown {
            return Err(TransportError::Other(format!(
                "{} refused to run the command (exec request denied)",
                self.target.addr()
            )));
        }
        if !closed && status == ExitStatus::Unknown {
            return Err(TransportError::Disconnected(format!(
                "{} dropped the connection while the command ran; it may or may not have completed",
                self.target.addr()
            )));
        }
        unframe(&mut stdout);
        unframe(&mut stderr);
        if req.become_.is_some() && !status.success() {
            if let Some(e) = become_error(&String::from_utf8_lossy(&stderr)) {
                return Err(e);
            }
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Send an upload's file ranges in order, each read in bounded chunks under the channel's flow control. A local
/// read error stops the stream (the remote command then sees a short stdin) and is kept for the caller.
async fn stream_upload(
    write: &russh::ChannelWriteHalf<client::Msg>,
    upload: &Upload,
    error: &mut Option<TransportError>,
) -> Result<(), russh::Error> {
    for piece in &upload.pieces {
        match piece.open().await {
            Ok(r) => write.data(r).await?,
            Err(e) => {
                *error = Some(e);
                break;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: Exec) -> Result<Output, TransportError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| TransportError::Other("transport closed".into()))?;
        self.run(&req).await
    }

    async fn locked(&self) -> Result<(), TransportError> {
        self.lock_gate().await
    }

    fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    async fn close(&self) {
        self.slots.close();
        if let Some(h) = self.conn.lock().await.take() {
            let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_are_openssh_names() {
        assert_eq!(signal_name(&Sig::TERM), "TERM");
        assert_eq!(signal_name(&Sig::Custom("XCPU".into())), "XCPU");
    }
}
