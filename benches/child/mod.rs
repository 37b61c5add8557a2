//! The release `gapless` binary as a child process beside stream-sim, for
//! the benches that run the archiver for real (`memory`, `realtime`): its
//! CPU and memory from `/proc`, its counters from the admin API, a clean
//! stop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
pub fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which is in parentheses): state is
    // the 3rd field, utime the 14th, stime the 15th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

pub fn sigterm(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("gapless did not exit within 120 s of SIGTERM; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// A free loopback port for the archiver's admin API (bound and released:
/// nothing else on this machine is expected to take it in between).
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Counters of the archiver's admin API (`/metrics`).
#[derive(Clone, Copy, Default)]
pub struct Counters {
    pub stored: u64,
    pub duplicates: u64,
    pub reconnects: u64,
}

/// The body of `GET path` from the archiver's admin API, if it answers
/// 200 (its bodies have a length, never chunks).
pub fn get(admin: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The archiver's counters, if its admin API answers.
pub fn counters(admin: SocketAddr) -> Option<Counters> {
    let text = get(admin, "/metrics")?;
    // Summed over the series of a name (one stream; reconnects by cause).
    let sum = |name: &str| -> Option<u64> {
        text.lines()
            .filter(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()))
            .sum()
    };
    Some(Counters {
        stored: sum("gapless_stored_total{")?,
        duplicates: sum("gapless_duplicates_total{")?,
        reconnects: sum("gapless_reconnects_total{")?,
    })
}
