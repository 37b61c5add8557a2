//! The `stream-sim serve` binary as a real client sees it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Item, Reader};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_binary_with_env_credentials_and_clock_flags() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_stream-sim"))
            .args(["serve", "--listen", "127.0.0.1:0", "--seed", "3", "--rate", "5"])
            // The clock flags take the one time grammar (here its short form).
            .args(["--clock-start", "2026-03-01T00:00", "--clock-speed", "10"])
            .env("STREAM_SIM_USER", "alice")
            .env("STREAM_SIM_PASSWORD", "secret")
            .env("RUST_LOG", "stream_sim=warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stream-sim"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("stream-sim listening on ") {
                return url.to_string();
            }
        }
        panic!("no listening line");
    })
    .await
    .unwrap();
    let url = format!("{base}/stream/sample10/accounts/acme/publishers/twitter/prod.json?partition=2");
    let c = reqwest::Client::new();
    assert_eq!(c.get(&url).basic_auth("sim", Some("sim")).send().await.unwrap().status(), 401);
    let r = c.get(&url).basic_auth("alice", Some("secret")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut rd = Reader::new(r);
    loop {
        match rd.next(Duration::from_secs(10)).await {
            Item::Line(l, _) => {
                let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
                // Stream time from the clock flags: March 2026.
                let ts: i64 = v["timestamp_ms"].as_str().map(|t| t.parse().unwrap()).unwrap_or(0);
                if ts > 0 {
                    assert!((1_772_323_200_000..1_772_323_200_000 + 600_000).contains(&ts), "{ts}");
                    break;
                }
            }
            Item::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A clock speed the clock cannot run at is a usage error naming the flag,
/// before anything is served: not a silent speed of 1.
#[test]
fn a_bad_clock_speed_is_a_usage_error() {
    for (cmd, speed) in [("serve", "0"), ("serve", "-2"), ("serve", "NaN"), ("bench", "inf"), ("serve", "fast")] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stream-sim"));
        command.arg(cmd).arg(format!("--clock-speed={speed}"));
        if cmd == "serve" {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = Child(
            command
                .env("RUST_LOG", "off")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn stream-sim"),
        );
        // A server that accepted the speed would run until killed.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "{cmd} --clock-speed {speed} did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut err).expect("read");
        assert_eq!(status.code(), Some(2), "{cmd} --clock-speed {speed}: {err}");
        assert!(err.contains("--clock-speed"), "{err}");
    }
}
