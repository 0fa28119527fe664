//! ProxyJump: one SSH connection per jump host, shared by every device behind it, with a bound on the handshakes
//! in flight through it and a recent failure returned at once to the devices queued behind it (instead of each
//! of them waiting for its own timeout). A jump host is connected and authenticated like a device
//! (`Shared::open`, recursively for chains); devices behind it are reached through `direct-tcpip` channels.
//! It must not authenticate devices or run commands.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Instant;

use russh::client;
use russh::ChannelStream;
use tokio::sync::{Mutex as AsyncMutex, OwnedSemaphorePermit, Semaphore};

use super::{Attempt, Conn, Shared, Target};
use crate::transport::TransportError;

/// One connection to a jump host, shared by every device behind it.
pub(super) struct Bastion {
    target: Arc<Target>,
    conn: AsyncMutex<Option<Arc<Conn>>>,
    /// A recent failure, returned at once to the devices queued behind it.
    failed: StdMutex<Option<(Instant, TransportError)>>,
    handshakes: Arc<Semaphore>,
}

impl Shared {
    fn bastion(&self, t: &Arc<Target>) -> Arc<Bastion> {
        let mut m = self.bastions.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(t.key())
            .or_insert_with(|| {
                Arc::new(Bastion {
                    target: t.clone(),
                    conn: AsyncMutex::new(None),
                    failed: StdMutex::new(None),
                    handshakes: Arc::new(Semaphore::new(self.opts.bastion_handshakes.max(1))),
                })
            })
            .clone()
    }

    async fn bastion_conn(self: &Arc<Self>, b: &Bastion) -> Result<Arc<Conn>, TransportError> {
        let mut g = b.conn.lock().await;
        if let Some(h) = &*g {
            if !h.is_closed() {
                return Ok(h.clone());
            }
        }
        if let Some((at, e)) = b.failed.lock().ok().and_then(|f| f.clone()) {
            if at.elapsed() < b.target.connect_timeout {
                return Err(e);
            }
        }
        match self.open(&b.target).await {
            Ok(h) => {
                let h = Arc::new(h);
                *g = Some(h.clone());
                Ok(h)
            }
            Err(e) => {
                if let Ok(mut f) = b.failed.lock() {
                    *f = Some((Instant::now(), e.clone()));
                }
                Err(e)
            }
        }
    }

    /// A stream to `t` through its jump host `j` (connected on first use), and the permit that bounds the
    /// handshakes in flight through `j`: hold it until `t` is authenticated.
    pub(super) async fn tunnel(
        self: &Arc<Self>,
        j: &Arc<Target>,
        t: &Target,
    ) -> Result<(ChannelStream<client::Msg>, OwnedSemaphorePermit), Attempt> {
        let b = self.bastion(j);
        let permit = b
            .handshakes
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Attempt::Fatal(TransportError::Other("bastion closed".into())))?;
        let bh = self.bastion_conn(&b).await.map_err(|e| {
            Attempt::Fatal(TransportError::Connect {
                addr: t.addr(),
                reason: format!("through {}: {e}", j.name),
            })
        })?;
        match bh
            .channel_open_direct_tcpip(t.hostname.clone(), t.port as u32, "127.0.0.1", 0)
            .await
        {
            Ok(ch) => Ok((ch.into_stream(), permit)),
            Err(russh::Error::ChannelOpenFailure(f)) => Err(Attempt::Retry(format!(
                "{} ({}) could not open a connection to it: {f:?}",
                j.name,
                j.addr()
            ))),
            Err(e) => Err(Attempt::Retry(format!(
                "connection to {} lost: {e}",
                j.name
            ))),
        }
    }
}
