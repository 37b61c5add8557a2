//! A real S3-compatible server for tests: moto's standalone server (PyPI
//! `moto[s3]`, which `.ci/run` installs), started once per test process on
//! a free loopback port, with the `AWS_*` variables pointed at it.
//!
//! Without moto, [`server`] returns `None` and the test says it skipped,
//! unless `GAPLESS_REQUIRE_S3=1` (CI sets it): then it panics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The access key id the test server is given (moto accepts any).
pub const ACCESS_KEY_ID: &str = "gapless-test";
/// The secret access key the test server is given: tests check that it
/// never shows up in argv, logs or messages.
pub const SECRET_ACCESS_KEY: &str = "gapless-test-secret-Zq7v";

/// The running server.
pub struct Server {
    pub addr: SocketAddr,
    child: Mutex<Child>,
}

impl Server {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a bucket (a fresh name per test keeps tests apart).
    pub fn create_bucket(&self, name: &str) {
        let status =
            request(self.addr, "PUT", &format!("/{name}")).unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        assert!(
            status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200"),
            "create bucket {name}: {status}"
        );
    }

    /// A new bucket with a name no other test of this process uses (a
    /// bucket per test keeps tests apart).
    pub fn fresh_bucket(&self) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!("t{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.create_bucket(&name);
        name
    }

    /// Stops the server (tests of a bucket that is away).
    pub fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The server of this test process, started on first use; `None` if moto
/// is not installed and `GAPLESS_REQUIRE_S3` is not set.
pub fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER.get_or_init(start).as_ref()
}

fn start() -> Option<Server> {
    let required = std::env::var("GAPLESS_REQUIRE_S3").is_ok_and(|v| v == "1");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_moto = Command::new(&python)
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_moto {
        assert!(!required, "GAPLESS_REQUIRE_S3=1 but moto is not installed (pip install 'moto[s3]' flask flask-cors)");
        eprintln!("moto is not installed: S3 tests skipped (pip install 'moto[s3]' flask flask-cors)");
        return None;
    }
    let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    // moto's own main, in a Python that exits once this process is gone
    // (a static is never dropped, so the server must watch its parent).
    let script = format!(
        "import os, sys, threading, time\n\
         parent = os.getppid()\n\
         def watch():\n    while os.getppid() == parent: time.sleep(0.5)\n    os._exit(0)\n\
         threading.Thread(target=watch, daemon=True).start()\n\
         sys.argv = ['moto.server', '-H', '127.0.0.1', '-p', '{port}']\n\
         from moto.server import main\n\
         main()\n",
        port = addr.port()
    );
    let child = Command::new(&python)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto.server");
    let started = Instant::now();
    while request(addr, "GET", "/").is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "moto.server did not answer on {addr} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY-free in edition 2021: set once, before any client reads them.
    std::env::set_var("AWS_ENDPOINT", format!("http://{addr}"));
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
    Some(Server { addr, child: Mutex::new(child) })
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One plain HTTP request; the status line of the answer.
fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}
