//! The connection limiter: at most N connection requests per window per
//! stream (the service allows 10 per 60 s), shared by every partition,
//! redundant connection and recovery job of the stream, so that no
//! combination of them can trip the service's own limit. Stream time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::clock::Clock;

#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Mutex<VecDeque<i64>>>,
    max: usize,
    window_ms: i64,
    clock: Clock,
}

impl Limiter {
    pub fn new(max: usize, window: Duration, clock: Clock) -> Limiter {
        Limiter {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            max: max.max(1),
            window_ms: window.as_millis() as i64,
            clock,
        }
    }

    /// Waits until a connection request is allowed, and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait_ms = {
                let mut q = self.inner.lock().await;
                let now = self.clock.now_ms();
                while q.front().is_some_and(|t| *t <= now - self.window_ms) {
                    q.pop_front();
                }
                if q.len() < self.max {
                    q.push_back(now);
                    return;
                }
                q.front().map_or(0, |t| t + self.window_ms - now).max(1)
            };
            self.clock.sleep(Duration::from_millis(wait_ms as u64 + 5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_than_max_per_window() {
        // 600x: a 60 s window lasts 100 ms of wall time.
        let clock = Clock::scaled(None, 600.0, None).unwrap();
        let l = Limiter::new(10, Duration::from_secs(60), clock);
        let t0 = clock.now_ms();
        let mut times = Vec::new();
        for _ in 0..25 {
            l.acquire().await;
            times.push(clock.now_ms() - t0);
        }
        for (i, t) in times.iter().enumerate().skip(10) {
            assert!(t - times[i - 10] >= 60_000, "{i}: {times:?}");
        }
    }
}
