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

/// The base URL the server printed on stderr.
async fn listening(child: &mut Child) -> String {
    let stderr = child.0.stderr.take().unwrap();
    tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("stream-sim listening on ") {
                return url.to_string();
            }
        }
        panic!("no listening line");
    })
    .await
    .unwrap()
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
    let base = listening(&mut child).await;
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

/// A clock speed the clock cannot run at, or a span not in the duration
/// grammar, is a usage error naming the flag, before anything is served: not
/// a silent speed of 1.
#[test]
fn a_bad_clock_speed_or_span_is_a_usage_error() {
    let cases = [
        ("serve", "--clock-speed=0"),
        ("serve", "--clock-speed=-2"),
        ("serve", "--clock-speed=NaN"),
        ("bench", "--clock-speed=inf"),
        ("serve", "--clock-speed=fast"),
        ("serve", "--max-speed=5 parsecs"),
        ("serve", "--max-speed=-1m"),
    ];
    for (cmd, flag) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stream-sim"));
        command.args([cmd, flag]);
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
            assert!(std::time::Instant::now() < deadline, "{cmd} {flag} did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut err).expect("read");
        assert_eq!(status.code(), Some(2), "{cmd} {flag}: {err}");
        let name = flag.split('=').next().unwrap_or(flag);
        assert!(err.contains(name), "{err}");
    }
}

/// `serve --max-speed DURATION` serves exactly that span of stream time
/// from the clock start, then ends the body.
#[tokio::test]
async fn serve_max_speed_takes_a_duration() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_stream-sim"))
            .args(["serve", "--listen", "127.0.0.1:0", "--rate", "20", "--max-speed", "2500ms"])
            .args(["--clock-start", "2026-03-01T00:00:00Z"])
            .env("RUST_LOG", "stream_sim=warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stream-sim"),
    );
    let base = listening(&mut child).await;
    let url = format!("{base}/stream/sample10/accounts/acme/publishers/twitter/prod.json?partition=1");
    let r = reqwest::Client::new().get(&url).basic_auth("sim", Some("sim")).send().await.unwrap();
    let (items, end) = Reader::new(r).collect(Duration::from_secs(30)).await;
    assert_eq!(end, Item::End);
    let got: Vec<String> = common::lines_of(&items).iter().map(|l| common::key_of(l).0).collect();
    let mut spec = stream_sim::StreamSpec::new(stream_sim::StreamKind::Sample10, "prod");
    spec.rate = 20.0;
    let start = 1_772_323_200_000;
    let want = stream_sim::truth::truth_lines(&stream_sim::Generator::new(1, &spec), start, start + 2500, Some(1));
    assert!(!want.is_empty());
    assert_eq!(got, want);
}
