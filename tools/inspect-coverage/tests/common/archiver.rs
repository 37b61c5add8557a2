//! The real archiver (the `gapless` library, in this test process) against
//! stream-sim on loopback, for the tools' tests of "works while the
//! archiver runs". The tools run as child processes, so the archiver's
//! hold on the coverage store is another process's, as in production.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gapless::archiver::{Options, Running};
use gapless::clock::Clock;
use gapless::config::Config;
use stream_sim::{Server, SimConfig, StreamKind, StreamSpec};

pub struct Live {
    pub dir: tempfile::TempDir,
    running: Option<Running>,
    sim: Option<Server>,
    rt: tokio::runtime::Runtime,
}

impl Live {
    /// stream-sim serving a Decahose of `rate` Posts/s, and the archiver
    /// archiving it into a tempdir with its admin API on a free port.
    pub fn start(rate: f64) -> Live {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (sim, running) = rt.block_on(async {
            let mut cfg = SimConfig::new(11).with_rate(rate);
            let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
            spec.rate = rate;
            cfg.streams = vec![spec];
            let sim = Server::start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
            std::fs::write(dir.path().join("creds"), "sim:sim").unwrap();
            let text = format!(
                r#"
admin = "127.0.0.1:0"
credentials = {{ file = "creds" }}
[[stream]]
label = "decahose"
kind = "decahose"
url = "http://{}/stream/sample10/accounts/acme/publishers/twitter/prod.json"
"#,
                sim.addr()
            );
            let mut config = Config::parse(&text, dir.path()).unwrap();
            config.data = dir.path().join("data");
            let running =
                gapless::archiver::start(Options { config, clock: Clock::system(), since_secs: None, fs: None })
                    .await
                    .unwrap();
            (sim, running)
        });
        Live { dir, running: Some(running), sim: Some(sim), rt }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Waits (generously: a loaded machine) until the archiver has stored
    /// `n` activities.
    pub fn until_stored(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let running = self.running.as_ref().unwrap();
        while running.metrics.streams.iter().map(|m| m.stored.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>()
            < n
        {
            assert!(Instant::now() < deadline, "the archiver stored fewer than {n} activities in 120 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the archiver as SIGTERM would (commit, record coverage).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.stop()).unwrap();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = self.rt.block_on(r.stop());
        }
        if let Some(s) = self.sim.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}
