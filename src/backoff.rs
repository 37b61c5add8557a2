//! Reconnect policy, by cause.
//!
//! The enterprise documents ask for different waits for different
//! failures, and the public clients that ignore this reconnect in tight
//! loops and get their accounts throttled. Here:
//! - network errors (refused, reset, stalled, cut): linear from 250 ms, up
//!   by 250 ms each time, to 16 s;
//! - HTTP 5xx: exponential from 5 s, doubling, to 320 s;
//! - HTTP 429: exponential from 60 s, doubling, to 320 s... and the shared
//!   connection limiter (see `limiter.rs`) keeps the rate honest as well;
//! - 401, 403, 404, 406 and other 4xx: fatal for the stream, loudly: a retry
//!   cannot fix credentials or a URL.
//!
//! Every wait gets ±20% jitter, so that redundant connections do not
//! reconnect in lockstep. A connection that stayed up for a while (stable)
//! resets the counters. Durations are in stream time.

use std::time::Duration;

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Refused, reset, timed out, stalled, corrupt body: try again soon.
    Network,
    /// 5xx from the server.
    Server(u16),
    /// 429: too many connections or requests.
    RateLimited,
    /// 4xx other than 429: retrying will not help.
    Fatal(u16),
    /// The server said so: `Forced Disconnect` (another connection took our
    /// place), or a clean end of a realtime stream.
    Disconnected,
}

impl Cause {
    pub fn of_status(status: u16) -> Cause {
        match status {
            429 => Cause::RateLimited,
            500..=599 => Cause::Server(status),
            _ => Cause::Fatal(status),
        }
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Cause::Network => "network",
            Cause::Server(_) => "server_error",
            Cause::RateLimited => "rate_limited",
            Cause::Fatal(_) => "fatal",
            Cause::Disconnected => "disconnected",
        }
    }
}

/// The state of one connection's reconnect policy.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    network: u32,
    server: u32,
    rate: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(seed: u64) -> Backoff {
        Backoff { seed: seed | 1, ..Backoff::default() }
    }

    /// The wait before the next attempt after `cause`, or `None` if the
    /// stream must stop.
    pub fn next(&mut self, cause: &Cause) -> Option<Duration> {
        let base = match cause {
            Cause::Fatal(_) => return None,
            Cause::Network | Cause::Disconnected => {
                self.network = (self.network + 1).min(64);
                Duration::from_millis(250 * self.network as u64).min(Duration::from_secs(16))
            }
            Cause::Server(_) => {
                self.server = (self.server + 1).min(16);
                (Duration::from_secs(5) * 2u32.saturating_pow(self.server - 1)).min(Duration::from_secs(320))
            }
            Cause::RateLimited => {
                self.rate = (self.rate + 1).min(16);
                (Duration::from_secs(60) * 2u32.saturating_pow(self.rate - 1)).min(Duration::from_secs(320))
            }
        };
        Some(self.jitter(base))
    }

    /// After a stable connection: start over.
    pub fn reset(&mut self) {
        self.network = 0;
        self.server = 0;
        self.rate = 0;
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // xorshift64: no dependency, and repeatable per seed in tests.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let f = 0.8 + (self.seed % 4001) as f64 / 10_000.0; // 0.8 ..= 1.2
        d.mul_f64(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, base_ms: u64) -> bool {
        let ms = d.as_millis() as u64;
        ms >= base_ms * 8 / 10 && ms <= base_ms * 12 / 10 + 1
    }

    #[test]
    fn network_errors_back_off_linearly_to_16_s() {
        let mut b = Backoff::new(7);
        let waits: Vec<Duration> = (0..70).map(|_| b.next(&Cause::Network).unwrap()).collect();
        assert!(within(waits[0], 250) && within(waits[1], 500) && within(waits[3], 1000));
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(16_000 * 12 / 10 + 1)));
        assert!(within(waits[69], 16_000));
    }

    #[test]
    fn server_errors_back_off_exponentially_from_5_s_to_320_s() {
        let mut b = Backoff::new(7);
        let waits: Vec<Duration> = (0..9).map(|_| b.next(&Cause::Server(503)).unwrap()).collect();
        for (w, base) in waits.iter().zip([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 320_000, 320_000]) {
            assert!(within(*w, base), "{w:?} vs {base}");
        }
    }

    #[test]
    fn rate_limits_start_at_a_minute_and_fatal_statuses_stop() {
        let mut b = Backoff::new(7);
        assert!(within(b.next(&Cause::RateLimited).unwrap(), 60_000));
        assert!(within(b.next(&Cause::RateLimited).unwrap(), 120_000));
        for s in [401, 403, 404, 406] {
            assert_eq!(b.next(&Cause::of_status(s)), None);
        }
        b.reset();
        assert!(within(b.next(&Cause::RateLimited).unwrap(), 60_000));
    }
}
