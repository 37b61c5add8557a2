//! Max-speed mode (being written).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::SimConfig;
use crate::connection::Tx;
use crate::server::{ConnGuard, Server, ServerError};

/// Pre-generated, pre-compressed content.
pub struct Prepared {
    pub parts: Vec<Bytes>,
}

pub(crate) async fn serve(prepared: Arc<Prepared>, _partition: u32, tx: Tx, _guard: ConnGuard) {
    for p in prepared.parts.iter() {
        if tx.send(Ok(p.clone())).await.is_err() {
            return;
        }
    }
}

pub async fn start(cfg: SimConfig, listen: SocketAddr, _seconds: u32) -> Result<Server, ServerError> {
    Server::start(cfg, listen).await
}
