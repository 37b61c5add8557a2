//! Progress on stderr. On a terminal, a bar redrawn in place (`\r`), at
//! most 10 times a second, cleared at the end. Elsewhere (a file, a pipe,
//! a CI log), plain lines, one per step: a line whenever another
//! hundredth of the minutes is done (so at most about 100 lines, and one
//! per minute for short exports), never a carriage return or an escape.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Off,
    /// A bar redrawn in place.
    Bar,
    /// One line per step.
    Lines,
}

pub struct Progress {
    mode: Mode,
    total: u64,
    start: Instant,
    last: Option<Instant>,
    /// Lines mode: the hundredths done at the last line.
    last_step: Option<u64>,
}

impl Progress {
    /// `total`: the number of steps (minutes). `wanted`: false turns it off.
    pub fn new(total: u64, wanted: bool) -> Progress {
        let mode = match (wanted, std::io::stderr().is_terminal()) {
            (false, _) => Mode::Off,
            (true, true) => Mode::Bar,
            (true, false) => Mode::Lines,
        };
        Progress { mode, total: total.max(1), start: Instant::now(), last: None, last_step: None }
    }

    /// Shows `done` of `total` steps, with `records` and `bytes` so far.
    pub fn update(&mut self, done: u64, records: u64, bytes: u64) {
        let frac = (done as f64 / self.total as f64).clamp(0.0, 1.0);
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = bytes as f64 / 1e6 / secs;
        match self.mode {
            Mode::Off => {}
            Mode::Lines => {
                let step = done.min(self.total) * 100 / self.total;
                if self.last_step == Some(step) {
                    return;
                }
                self.last_step = Some(step);
                let _ = writeln!(
                    std::io::stderr(),
                    "segment-export: {:>5.1}%  {done}/{} minutes  {records} records  {rate:.1} MB/s",
                    100.0 * frac,
                    self.total,
                );
            }
            Mode::Bar => {
                let now = Instant::now();
                if self.last.is_some_and(|l| now - l < Duration::from_millis(100)) && done < self.total {
                    return;
                }
                self.last = Some(now);
                let width = 30;
                let filled = (frac * width as f64).round() as usize;
                let eta = if frac > 0.0 { secs / frac - secs } else { 0.0 };
                let _ = write!(
                    std::io::stderr(),
                    "\r\x1b[2K[{}{}] {:>5.1}%  {done}/{} minutes  {records} records  {rate:.1} MB/s  eta {eta:.0}s",
                    "#".repeat(filled),
                    "-".repeat(width - filled),
                    100.0 * frac,
                    self.total,
                );
            }
        }
    }

    /// Clears the bar (lines stay).
    pub fn finish(&mut self) {
        if self.mode == Mode::Bar {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
