//! `stream-sim bench`: serve pre-generated content in max-speed mode on
//! loopback and read every partition at once with discarding clients (raw
//! TCP, no decompression), to measure the simulator rather than a client.
//! It lives in the binary: the library serves, it does not benchmark.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use stream_sim::maxspeed::Prepared;
use stream_sim::SimConfig;

/// What a discarding client measured.
#[derive(Debug, Clone)]
pub(crate) struct BenchResult {
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
fn discard_client(addr: SocketAddr, path: &str, user: &str, password: &str) -> std::io::Result<u64> {
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

/// Benchmark: pre-generate `span` of stream time of the first configured stream, serve it
/// at max speed on loopback, and read every partition at once with
/// discarding clients. Returns the totals and the wall time of the reads.
pub(crate) async fn bench(cfg: SimConfig, span: std::time::Duration) -> std::io::Result<BenchResult> {
    let mut cfg = cfg;
    cfg.streams.truncate(1);
    let spec = cfg.streams.first().cloned().ok_or_else(|| std::io::Error::other("no stream configured"))?;
    cfg.rate_limit = u32::MAX;
    cfg.user = "bench".into();
    cfg.password = "bench".into();
    let c = cfg.clone();
    let prepared =
        tokio::task::spawn_blocking(move || Prepared::build(&c, span)).await.map_err(std::io::Error::other)??;
    let activities: u64 = prepared.bodies.values().map(|b| b.activities).sum();
    let raw_bytes: u64 = prepared.bodies.values().map(|b| b.raw_bytes).sum();
    let listen = "127.0.0.1:0".parse().map_err(std::io::Error::other)?;
    let server = stream_sim::maxspeed::start_prepared(cfg, listen, prepared).await.map_err(std::io::Error::other)?;
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
