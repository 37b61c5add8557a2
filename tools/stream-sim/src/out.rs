//! The sending half of a connection, shared by realtime, Recovery and
//! max-speed connections: lines go into one gzip member, each flush is sent
//! down the channel that feeds the HTTP response body ([`crate::http`]), and
//! a fault can cut the body or drip it slowly.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::gzip::GzStream;

/// Frames of a response body; an `Err` cuts the connection.
pub(crate) type Frames = Result<Bytes, std::io::Error>;

/// Where a connection task sends its frames.
pub(crate) type Tx = mpsc::Sender<Frames>;

/// Real-time tick: a quarter of the heartbeat interval in stream time,
/// clamped to [1 ms, 50 ms] of wall time.
pub(crate) fn tick(clock: &Clock, heartbeat_ms: i64) -> Duration {
    clock.wall_ms(heartbeat_ms / 4).clamp(Duration::from_millis(1), Duration::from_millis(50))
}

/// Why the sending side stopped.
pub(crate) enum Stop {
    /// The client went away.
    Gone,
}

/// The sending half of a connection: gzip, faults on bytes, the channel.
pub(crate) struct Out {
    pub gz: GzStream,
    pub tx: Tx,
    pub sent_bytes: u64,
}

impl Out {
    pub fn new(tx: Tx) -> Self {
        Out { gz: GzStream::new(), tx, sent_bytes: 0 }
    }

    /// Write raw payload bytes into the compressor (not sent yet).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        self.gz.write(bytes).map_err(|_| Stop::Gone)
    }

    /// Flush the compressor and send what it produced; in slow-drip mode in
    /// 64-byte pieces with pauses.
    pub async fn flush(&mut self, slow: bool) -> Result<(), Stop> {
        let bytes = self.gz.flush().map_err(|_| Stop::Gone)?;
        self.send(bytes, slow).await
    }

    pub async fn send(&mut self, bytes: Bytes, slow: bool) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.sent_bytes += bytes.len() as u64;
        if slow {
            let mut rest = bytes;
            while !rest.is_empty() {
                let piece = rest.split_to(rest.len().min(64));
                self.tx.send(Ok(piece)).await.map_err(|_| Stop::Gone)?;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok(())
        } else {
            self.tx.send(Ok(bytes)).await.map_err(|_| Stop::Gone)
        }
    }

    /// Cut the connection: hyper closes the socket without ending the body.
    pub async fn abort(self, why: &str) {
        let _ = self.tx.send(Err(std::io::Error::other(why.to_string()))).await;
    }

    /// End the gzip member and close cleanly.
    pub async fn finish(self) {
        let Out { gz, tx, .. } = self;
        if let Ok(b) = gz.finish() {
            let _ = tx.send(Ok(b)).await;
        }
    }
}
