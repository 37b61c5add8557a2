//! The admin API cannot be used to starve the archiver (issue 9, item 13),
//! over real loopback HTTP: a flood of clients that never finish their
//! headers neither stops the archive nor holds the API, and an address
//! other than loopback is warned about loudly. (The unit tests of
//! `src/admin.rs` cover the `/coverage` window, the header timeout, the
//! connection limit, reports built off the runtime and the accept backoff.)

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gapless::clock::Clock;
use gapless::config::Config;
use gapless::metrics::{Metrics, StreamMetrics};
use gapless_storage::coverage::CoverageMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes; `None` if it has not within `wait`.
async fn until_closed(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(wait, tcp.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_clients_neither_stops_the_archive_nor_holds_the_api() {
    let _g = serial().await;
    let h = Harness::launch(Setup::new(41, 40.0, 30.0)).await;
    let running = h.archiver().await;
    let admin = running.admin.unwrap();
    let m = running.metrics.streams[0].clone();
    h.until_minute(1.0).await;
    // More clients than the API serves at once (32): half of them send half
    // a header and wait, the others send nothing at all.
    let mut flood = Vec::new();
    for i in 0..48 {
        let mut tcp = TcpStream::connect(admin).await.unwrap();
        if i % 2 == 0 {
            tcp.write_all(b"GET /status HTTP/1.1\r\nHost: adm").await.unwrap();
        }
        flood.push(tcp);
    }
    let stored_before = StreamMetrics::get(&m.stored);
    // The server closes every one of them: past the limit at once, the
    // others when their headers are not in after 10 s. None is served.
    for (i, tcp) in flood.iter_mut().enumerate() {
        let got = until_closed(tcp, Duration::from_secs(45)).await;
        let got = got.unwrap_or_else(|| panic!("client {i} is still connected after 45 s"));
        assert!(!got.contains(" 200 "), "client {i} was served: {got}");
    }
    // Meanwhile the archive kept working...
    let stored_after = StreamMetrics::get(&m.stored);
    assert!(stored_after > stored_before, "nothing was stored while the API was flooded ({stored_before})");
    // ...and the API serves a normal request again.
    let status = reqwest::get(format!("http://{admin}/status")).await.unwrap().error_for_status().unwrap();
    let status: serde_json::Value = serde_json::from_str(&status.text().await.unwrap()).unwrap();
    assert_eq!(status["streams"][0]["label"], "decahose", "{status}");
    until_full(&h, admin, "decahose", 1, 3, Duration::from_secs(60)).await;
    running.stop().await.unwrap();
    h.assert_complete("decahose", 1, 3);
}

/// A tracing writer into a buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves the admin API of an empty archive on `addr` and returns the
/// bound address and what it logged while starting.
async fn serve_logged(addr: &str) -> (SocketAddr, String, tokio::sync::watch::Sender<bool>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let coverage = Arc::new(CoverageMap::open(&dir.path().join("coverage")).unwrap());
    let config = Config::parse(
        "credentials={env='X'}\n[[stream]]\nlabel='d'\nkind='decahose'\nurl='http://x/'\n",
        std::path::Path::new("."),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    // This test's runtime has one thread: the subscriber sees what `serve` logs.
    let bound = {
        let _default = tracing::subscriber::set_default(subscriber);
        gapless::admin::serve(
            addr.parse().unwrap(),
            Arc::new(Metrics::default()),
            coverage,
            Clock::system(),
            config.streams,
            rx,
        )
        .await
        .unwrap()
    };
    let logged = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (bound, logged, tx, dir)
}

#[tokio::test(flavor = "current_thread")]
async fn listening_beyond_loopback_is_warned_about_loudly() {
    // All addresses (the test talks to it on loopback only).
    let (bound, logged, _stop, _dir) = serve_logged("0.0.0.0:0").await;
    let warning =
        logged.lines().find(|l| l.contains("ADMIN API LISTENS ON 0.0.0.0:")).unwrap_or_else(|| panic!("{logged}"));
    assert!(warning.contains("WARN") && warning.contains("no authentication"), "{warning}");
    let local = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    let status = reqwest::get(format!("http://{local}/status")).await.unwrap();
    assert_eq!(status.status(), 200);

    // On loopback: no warning.
    let (_, logged, _stop, _dir) = serve_logged("127.0.0.1:0").await;
    assert!(logged.contains("admin API"), "{logged}");
    assert!(!logged.contains("WARN"), "{logged}");
}
