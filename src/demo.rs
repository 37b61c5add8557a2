//! `gapless demo`: the whole story in under a minute, with nothing to set
//! up. stream-sim runs in process on loopback with a scaled clock and a
//! fault script (a stall with no heartbeats, a 90-second disconnect, a
//! 25-minute outage, a 503 storm, activities missing from realtime); the
//! archiver archives it into a temporary directory, showing coverage fill
//! in; at the end the archive is checked against stream-sim's ground truth,
//! activity by activity and byte by byte ([`verify`]).

pub mod verify;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use gapless_storage::coverage::{Coverage, CoverageMap, Overlay};
use gapless_storage::Minute;

use crate::archiver::{self, Options};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::StreamMetrics;

/// Stream minutes the demo runs.
const MINUTES: i64 = 80;

const FAULTS: &str = r#"
# Partition 1 goes silent: no bytes, no heartbeats. Liveness must see it.
[[fault]]
at = "+4m"
duration = "50s"
kind = "stall"
stream = "sample10/prod"
partition = 1

# A 90-second disconnect of both partitions: Backfill closes it.
[[fault]]
at = "+9m"
duration = "90s"
kind = "drop"
stream = "sample10/prod"

# A 25-minute outage: the connections are cut, and every reconnect gets a
# 503: far beyond Backfill; Recovery must fill it.
[[fault]]
at = "+15m"
duration = "10s"
kind = "drop"
stream = "sample10/prod"

[[fault]]
at = "+15m"
duration = "25m"
kind = "unavailable"
stream = "sample10/prod"

# A 503 storm on one partition, after its connection is cut.
[[fault]]
at = "+47m"
duration = "10s"
kind = "drop"
stream = "sample10/prod"
partition = 2

[[fault]]
at = "+47m"
duration = "3m"
kind = "unavailable"
stream = "sample10/prod"
partition = 2

# Two minutes of activities that realtime never delivers: only Recovery has them.
[[fault]]
at = "+55m"
duration = "2m"
kind = "drop_realtime"
stream = "sample10/prod"

# Duplicate bursts: dedup must hold.
[[fault]]
at = "+60m"
duration = "1m"
kind = "duplicate"
stream = "sample10/prod"
"#;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Stream seconds per wall second.
    #[arg(long, default_value_t = 100.0)]
    pub speed: f64,
    /// Decahose Posts per second of stream time (the simulator generates
    /// every one at `speed` times that rate, on the same two cores).
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Keep the archive here instead of a temporary directory.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<bool> {
    let wall = Instant::now();
    let origin = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64() + 0.5;
    let start: chrono::DateTime<chrono::Utc> = "2026-03-01T12:00:00Z".parse()?;
    let start_ms = start.timestamp_millis();

    // One clock for both sides, so that they agree on the stream time.
    let clock = Clock::scaled(Some(start), args.speed, Some(origin)).context("--speed")?;
    let mut sim_cfg = stream_sim::SimConfig::new(args.seed).with_rate(args.rate);
    sim_cfg.clock = clock;
    let mut decahose = stream_sim::StreamSpec::new(stream_sim::StreamKind::Sample10, "prod");
    decahose.rate = args.rate;
    let mut likes = stream_sim::StreamSpec::new(stream_sim::StreamKind::Likes, "prod");
    likes.rate = args.rate / 4.0;
    sim_cfg.streams = vec![decahose.clone(), likes.clone()];
    sim_cfg.recovery_pace = 0.0;
    sim_cfg.faults =
        stream_sim::faults::FaultPlan::from_toml(FAULTS, start_ms, args.seed).context("demo fault script")?;
    let sim = stream_sim::Server::start(sim_cfg, "127.0.0.1:0".parse()?).await.context("start stream-sim")?;
    let addr = sim.addr();

    let tmp = tempfile::tempdir()?;
    let data = args.data.clone().unwrap_or_else(|| tmp.path().join("data"));
    std::fs::write(tmp.path().join("credentials"), "sim:sim")?;
    let config_text = format!(
        r#"
credentials = {{ file = "credentials" }}
admin = "127.0.0.1:0"
[[stream]]
label = "decahose"
kind = "decahose"
url = "http://{addr}/stream/sample10/accounts/demo/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "5s" }}
[[stream]]
label = "likes"
kind = "likes"
url = "http://{addr}/stream/likes/accounts/demo/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "10s" }}
"#
    );
    let mut config = Config::parse(&config_text, tmp.path())?;
    config.data = data.clone();

    println!(
        "gapless demo: stream-sim on {addr}, {}x speed, {} Posts/s, archive in {}",
        args.speed,
        args.rate,
        data.display()
    );
    println!("faults: stall (no heartbeats) at +4m, 90 s disconnect at +9m, 25 min outage at +15m, 503 storm at +47m,");
    println!("        2 min of activities missing from realtime at +55m, duplicate bursts at +60m\n");
    while clock.now_ms() < start_ms {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = archiver::start(Options { config, clock, since_secs: None, fs: None }).await?;
    if let Some(a) = running.admin {
        println!("admin API: http://{a}/status  /coverage  /metrics\n");
    }
    let end_ms = start_ms + MINUTES * 60_000;
    let m = running.metrics.streams.first().cloned().context("no stream")?;
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut progress = Progress::new(stdout, tty);
    while clock.now_ms() < end_ms {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = clock.now_ms();
        progress.show((now - start_ms) / 60_000, || {
            let holes = m.holes.lock().map(|h| h.len()).unwrap_or(0);
            let jobs = m.jobs.lock().map(|j| j.len()).unwrap_or(0);
            format!(
                "decahose: {:>7} stored {:>6} dup  {} connected  holes {:>2}  recovery jobs {}  {}",
                StreamMetrics::get(&m.stored),
                StreamMetrics::get(&m.duplicates),
                m.connected(),
                holes,
                jobs,
                bar(&m, start_ms, now),
            )
        });
    }
    progress.finish();
    running.stop().await?;
    sim.shutdown().await;

    // Verify: the archive against the ground truth.
    let pending = 3 * 60;
    let (from, to) = (Minute::of_ms(start_ms).0 + 1, Minute::of_ms(end_ms).0 - pending / 60);
    println!("\nverification, {} to {} ({} minutes):", Minute(from), Minute(to), to - from);
    let mut all_ok = true;
    for (label, spec) in [("decahose", &decahose), ("likes", &likes)] {
        let gen = stream_sim::Generator::new(args.seed, spec);
        let truth = verify::truth(&gen, from * 60_000, to * 60_000);
        let archived = verify::read_archive(&data, label, from * 60_000, to * 60_000)?;
        let diff = verify::compare(&truth, &archived);
        let map = CoverageMap::open(&data.join("coverage"))?;
        let states = map.minute_states(label, Minute(from)..Minute(to), i64::MAX / 4, 0)?;
        let full = states.iter().filter(|s| s.coverage == Coverage::Full).count();
        let lost = states.iter().filter(|s| s.overlay == Some(Overlay::Lost)).count();
        let holes = map.holes(label, from * 60..to * 60)?;
        let ok = diff.is_exact() && full == states.len();
        all_ok &= ok;
        println!(
            "  {label:<9} {}  minutes full {full}/{}  holes left {}  lost minutes {lost}  {}",
            diff.summary(),
            states.len(),
            holes.len(),
            if ok { "OK" } else { "NOT COMPLETE" }
        );
        if !diff.is_exact() {
            println!("            {diff}");
        }
    }
    println!(
        "\n{} in {:.1} s of wall time",
        if all_ok { "complete: every minute full, archive equals ground truth byte for byte" } else { "INCOMPLETE" },
        wall.elapsed().as_secs_f64()
    );
    if args.data.is_none() {
        println!("(the archive was in a temporary directory; keep it with --data DIR)");
    }
    Ok(all_ok)
}

/// Progress of the run: on a terminal, one line redrawn in place; piped
/// (a file, a CI log), one line per stream minute, never a carriage return.
struct Progress<W: Write> {
    out: W,
    tty: bool,
    shown: Option<i64>,
}

impl<W: Write> Progress<W> {
    fn new(out: W, tty: bool) -> Progress<W> {
        Progress { out, tty, shown: None }
    }

    /// Shows the state at stream minute `minute` (`line` is built only
    /// when it is shown).
    fn show(&mut self, minute: i64, line: impl FnOnce() -> String) {
        if !self.tty && self.shown == Some(minute) {
            return;
        }
        self.shown = Some(minute);
        let line = format!("+{minute:>2}m  {}", line());
        let _ = if self.tty { write!(self.out, "\r{line}   ") } else { writeln!(self.out, "{line}") };
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
        if self.tty {
            let _ = writeln!(self.out);
        }
    }
}

/// The last 40 minutes of decahose coverage as a bar: █ full, ▒ partial,
/// · none, as of the planner's last pass.
fn bar(m: &StreamMetrics, start_ms: i64, now_ms: i64) -> String {
    let holes = m.holes.lock().map(|h| h.clone()).unwrap_or_default();
    let now_min = (now_ms - start_ms) / 60_000;
    (now_min.saturating_sub(40).max(0)..now_min)
        .map(|i| {
            let (s, e) = ((start_ms / 1000) + i * 60, (start_ms / 1000) + i * 60 + 60);
            let missing: i64 = holes.iter().map(|(hs, he)| (he.min(&e) - hs.max(&s)).max(0)).sum();
            match missing {
                0 => '█',
                60 => '·',
                _ => '▒',
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn progress_off_a_terminal_is_one_line_per_minute() {
        let mut p = Progress::new(Vec::new(), false);
        for minute in [0, 0, 0, 1, 1, 2] {
            p.show(minute, || format!("state at {minute}"));
        }
        p.finish();
        let text = String::from_utf8(p.out).expect("utf-8");
        assert!(!text.contains('\r'), "{text:?}");
        assert_eq!(text.lines().collect::<Vec<_>>(), ["+ 0m  state at 0", "+ 1m  state at 1", "+ 2m  state at 2"]);

        let mut p = Progress::new(Vec::new(), true);
        p.show(0, || "a".into());
        p.show(0, || "b".into());
        p.finish();
        let text = String::from_utf8(p.out).expect("utf-8");
        assert_eq!(text.matches('\r').count(), 2, "redrawn in place on a terminal: {text:?}");
        assert_eq!(text.lines().count(), 1);
    }
}
