//! Max-speed mode, for throughput benchmarks of a client.
//!
//! At start-up, a `span` of stream time of every configured stream and partition (from the
//! clock start) are generated and gzip-compressed once ([`Prepared`]). A
//! realtime connection then gets those bytes as fast as the socket takes them
//! (no clock, no pacing, no per-connection compression) and a clean end, so
//! the simulator is never the bottleneck of the client's benchmark. The
//! content is the same as realtime data of that range, so `truth` still
//! describes it. Recovery is unchanged.
//!
//! `stream-sim bench` (the binary) measures this mode with discarding
//! clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::prepared::{Body, Prepared};

use crate::config::SimConfig;
use crate::server::{Server, ServerError};

/// Start a server in max-speed mode, serving `span` of stream time.
pub async fn start(cfg: SimConfig, listen: SocketAddr, span: Duration) -> Result<Server, ServerError> {
    let t = Instant::now();
    let c = cfg.clone();
    let prepared = tokio::task::spawn_blocking(move || Prepared::build(&c, span))
        .await
        .map_err(|e| ServerError::Io(std::io::Error::other(e)))??;
    let total: u64 = prepared.bodies.values().map(|b| b.activities).sum();
    tracing::info!(span = %gapless_time::Dur(span), activities = total, took_ms = t.elapsed().as_millis() as u64, "max-speed content ready");
    start_prepared(cfg, listen, prepared).await
}

/// Start a server in max-speed mode with content already prepared.
pub async fn start_prepared(cfg: SimConfig, listen: SocketAddr, prepared: Prepared) -> Result<Server, ServerError> {
    Server::start_with(cfg, listen, Some(Arc::new(prepared))).await
}
