//! A transport wrapper that reports every remote command as an [`Event::Exec`] (for `--log` and `-vvv`).
//!
//! Owns only the observation; commands are passed through unchanged. Stdin is described by size, never shown.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::report::StatsSnapshot;
use crate::report::{Event, SharedSink};
use crate::transport::{Exec, Output, SharedTransport, Transport, TransportError};

/// Wraps a transport and emits one event per exec.
pub struct Logged {
    inner: SharedTransport,
    sink: SharedSink,
}

impl Logged {
    /// Wrap `inner`.
    pub fn wrap(inner: SharedTransport, sink: SharedSink) -> SharedTransport {
        Arc::new(Logged { inner, sink })
    }
}

#[async_trait]
impl Transport for Logged {
    fn host(&self) -> &str {
        self.inner.host()
    }

    async fn exec(&self, req: Exec) -> Result<Output, TransportError> {
        let command = crate::redact::redact(&req.cmd.to_shell()).into_owned();
        let stdin = match &req.stdin {
            Some(s) if s.secret => format!("<secret, {} bytes>", s.data.len()),
            Some(s) => format!("<{} bytes>", s.data.len()),
            None => String::new(),
        };
        let start = Instant::now();
        let r = self.inner.exec(req).await;
        let status = match &r {
            Ok(o) => o.status.to_string(),
            Err(e) => crate::redact::redact(&e.to_string()).into_owned(),
        };
        self.sink.emit(Event::Exec {
            host: self.inner.host().to_string(),
            command,
            stdin,
            status,
            duration: start.elapsed(),
        });
        r
    }

    async fn locked(&self) -> Result<(), TransportError> {
        self.inner.locked().await
    }

    fn stats(&self) -> StatsSnapshot {
        self.inner.stats()
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
