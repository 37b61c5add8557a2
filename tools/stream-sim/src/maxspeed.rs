//! Max-speed mode, for throughput benchmarks of a client.
//!
//! At start-up, `seconds` of every configured stream and partition (from the
//! clock start) are generated and gzip-compressed once, into parts of about
//! 64 KB of input each ended by a sync flush. A realtime connection then gets
//! those bytes as fast as the socket takes them (no clock, no pacing, no
//! per-connection compression) and a clean end, so the simulator is never the
//! bottleneck of the client's benchmark. The content is the same as realtime
//! data of that range, so `truth` still describes it. Recovery is unchanged.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::SimConfig;
use crate::connection::Tx;
use crate::generator::Generator;
use crate::gzip::GzStream;
use crate::server::{ConnGuard, Server, ServerError};
use crate::stream::StreamKind;

/// Input bytes per sync-flushed part.
const PART_INPUT: usize = 64 * 1024;

/// One stream partition's pre-compressed body.
#[derive(Default)]
pub struct Body {
    pub parts: Vec<Bytes>,
    pub activities: u64,
    pub raw_bytes: u64,
    pub gzip_bytes: u64,
}

/// Pre-generated, pre-compressed content, by (kind, label, partition).
#[derive(Default)]
pub struct Prepared {
    pub bodies: HashMap<(StreamKind, String, u32), Arc<Body>>,
}

impl Prepared {
    /// Generate and compress `seconds` of every configured stream partition.
    pub fn build(cfg: &SimConfig, seconds: u32) -> std::io::Result<Prepared> {
        let mut out = Prepared::default();
        let from = cfg.clock.start_ms();
        let to = from + i64::from(seconds) * 1000;
        for spec in &cfg.streams {
            let gen = Generator::new(cfg.seed, spec);
            for p in spec.partition_numbers() {
                let mut gz = GzStream::new();
                let mut body = Body::default();
                let mut pending = 0usize;
                let filter = if p == 0 { None } else { Some(p) };
                for a in gen.range(from, to, filter) {
                    gz.write(&a.line)?;
                    gz.write(b"\r\n")?;
                    pending += a.line.len() + 2;
                    body.activities += 1;
                    body.raw_bytes += a.line.len() as u64 + 2;
                    if pending >= PART_INPUT {
                        let b = gz.flush()?;
                        body.gzip_bytes += b.len() as u64;
                        body.parts.push(b);
                        pending = 0;
                    }
                }
                let b = gz.finish()?;
                body.gzip_bytes += b.len() as u64;
                body.parts.push(b);
                out.bodies.insert((spec.kind, spec.label.clone(), p), Arc::new(body));
            }
        }
        Ok(out)
    }
}

pub(crate) async fn serve(prepared: Arc<Prepared>, partition: u32, tx: Tx, guard: ConnGuard) {
    let key = (guard.stream.spec.kind, guard.stream.spec.label.clone(), partition);
    let Some(body) = prepared.bodies.get(&key).cloned() else {
        // Not pre-generated (a stream made on demand): an empty, valid body.
        if let Ok(b) = GzStream::new().finish() {
            let _ = tx.send(Ok(b)).await;
        }
        return;
    };
    for p in body.parts.iter() {
        if tx.send(Ok(p.clone())).await.is_err() {
            return;
        }
    }
}

/// Start a server in max-speed mode.
pub async fn start(cfg: SimConfig, listen: SocketAddr, seconds: u32) -> Result<Server, ServerError> {
    let t = Instant::now();
    let c = cfg.clone();
    let prepared = tokio::task::spawn_blocking(move || Prepared::build(&c, seconds))
        .await
        .map_err(|e| ServerError::Io(std::io::Error::other(e)))??;
    let total: u64 = prepared.bodies.values().map(|b| b.activities).sum();
    tracing::info!(seconds, activities = total, took_ms = t.elapsed().as_millis() as u64, "max-speed content ready");
    Server::start_with(cfg, listen, Some(Arc::new(prepared))).await
}

/// What a discarding client measured.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub activities: u64,
    pub raw_bytes: u64,
    pub wire_bytes: u64,
    pub elapsed: Duration,
}

impl BenchResult {
    pub fn activities_per_sec(&self) -> f64 {
        self.activities as f64 / self.elapsed.as_secs_f64()
    }
    pub fn raw_mb_per_sec(&self) -> f64 {
        self.raw_bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
    pub fn wire_mb_per_sec(&self) -> f64 {
        self.wire_bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// Read one partition's whole max-speed body over plain TCP and discard it
/// (no decompression: this measures the simulator, not a client).
pub fn discard_client(addr: SocketAddr, path: &str, user: &str, password: &str) -> std::io::Result<u64> {
    use base64::Engine;
    let mut s = TcpStream::connect(addr)?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// Benchmark: pre-generate `seconds` of the first configured stream, serve it
/// at max speed on loopback, and read every partition at once with
/// discarding clients. Returns the totals and the wall time of the reads.
pub async fn bench(cfg: SimConfig, seconds: u32) -> std::io::Result<BenchResult> {
    let mut cfg = cfg;
    cfg.streams.truncate(1);
    let spec = cfg.streams.first().cloned().ok_or_else(|| std::io::Error::other("no stream configured"))?;
    cfg.rate_limit = u32::MAX;
    cfg.user = "bench".into();
    cfg.password = "bench".into();
    let c = cfg.clone();
    let prepared =
        tokio::task::spawn_blocking(move || Prepared::build(&c, seconds)).await.map_err(std::io::Error::other)??;
    let activities: u64 = prepared.bodies.values().map(|b| b.activities).sum();
    let raw_bytes: u64 = prepared.bodies.values().map(|b| b.raw_bytes).sum();
    let server =
        Server::start_with(cfg, "127.0.0.1:0".parse().map_err(std::io::Error::other)?, Some(Arc::new(prepared)))
            .await
            .map_err(std::io::Error::other)?;
    let addr = server.addr();
    let base = format!("/stream/{}/accounts/bench/publishers/twitter/{}.json", spec.kind, spec.label);
    let t = Instant::now();
    let handles: Vec<_> = spec
        .partition_numbers()
        .into_iter()
        .map(|p| {
            let path = if p == 0 { base.clone() } else { format!("{base}?partition={p}") };
            tokio::task::spawn_blocking(move || discard_client(addr, &path, "bench", "bench"))
        })
        .collect();
    let mut wire_bytes = 0;
    for h in handles {
        wire_bytes += h.await.map_err(std::io::Error::other)??;
    }
    let elapsed = t.elapsed();
    server.shutdown().await;
    Ok(BenchResult { activities, raw_bytes, wire_bytes, elapsed })
}
