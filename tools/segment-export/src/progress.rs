//! A progress bar on stderr, drawn only when stderr is a terminal (quiet
//! when piped or redirected), at most 10 times a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    total: u64,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// `total`: the number of steps (minutes). `wanted`: false turns it off.
    pub fn new(total: u64, wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            total: total.max(1),
            start: Instant::now(),
            last: None,
        }
    }

    /// Shows `done` of `total` steps, with `records` and `bytes` so far.
    pub fn update(&mut self, done: u64, records: u64, bytes: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < Duration::from_millis(100)) && done < self.total {
            return;
        }
        self.last = Some(now);
        let frac = (done as f64 / self.total as f64).clamp(0.0, 1.0);
        let width = 30;
        let filled = (frac * width as f64).round() as usize;
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let eta = if frac > 0.0 { secs / frac - secs } else { 0.0 };
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[2K[{}{}] {:>5.1}%  {done}/{} minutes  {records} records  {:.1} MB/s  eta {:.0}s",
            "#".repeat(filled),
            "-".repeat(width - filled),
            100.0 * frac,
            self.total,
            bytes as f64 / 1e6 / secs,
            eta
        );
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
