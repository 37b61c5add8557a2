//! Memory of the archiver at a given rate: does its RSS stay bounded and
//! flat whatever the stream's volume?
//!
//! For each rate (Posts per second of wall time), this starts stream-sim in
//! process with a scaled clock (speed 1 by default: stream time is wall
//! time, from 10:00 UTC, where the simulator's daily cycle is at its mean)
//! serving a Decahose at that rate, and the release `gapless archive` binary
//! (`CARGO_BIN_EXE_gapless`: cargo builds it for benchmarks, in the bench
//! profile) as a child process against it. Every 250 ms it reads the
//! child's `VmRSS` from `/proc/PID/status`; after `--seconds` it stops the
//! archiver with SIGTERM (it commits and records coverage exactly) and
//! checks the archive against stream-sim's truth.
//!
//! ```sh
//! cargo bench --bench memory -- [--rates 600,6000,60000] [--seconds 150] [--speed 1] [--seed 1]
//! ```
//!
//! The table, one row per rate:
//! - `peak`: the highest RSS (the kernel's `VmHWM`, or the highest sample);
//! - `at 2/3`: the RSS at the end of the second third of the run;
//! - `final`: the last sample before SIGTERM;
//! - `growth`: the highest RSS of the last third over the highest of the
//!   second third, in percent (flat: within 15%);
//! - `sent/s`: what stream-sim actually sent per wall second over the last
//!   third (a fresh archive's first connection backfills a minute, so the
//!   first part of a run is a catch-up faster than the rate; below the
//!   rate, the simulator or the archiver could not keep up: the row says
//!   so);
//! - `CPU`: seconds of CPU used by the archiver, and by this process
//!   (stream-sim generating and compressing), over the run;
//! - `stored`: activities in the archive;
//! - `complete`: over the checked span (from 5 s after the start to 15 s
//!   before the stop: the connection's start and the latency allowance at
//!   the end are not owed), no hole in the coverage map, and the archive
//!   equals the truth, activity by activity and byte by byte; `minutes`:
//!   whole minutes of that span that are full.
//!
//! It runs for real on this machine's two cores, beside stream-sim: keep
//! runs short on a shared machine.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gapless::demo::verify;
use gapless_storage::coverage::{Coverage, CoverageMap};
use gapless_storage::reader::RangeReader;
use gapless_storage::Minute;

const START: &str = "2026-03-01T10:00:00Z";

struct Args {
    rates: Vec<f64>,
    seconds: f64,
    speed: f64,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { rates: vec![600.0, 6000.0, 60000.0], seconds: 150.0, speed: 1.0, seed: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--rates" => {
                a.rates = value("--rates")?
                    .split(',')
                    .map(|r| r.trim().parse::<f64>().map_err(|e| format!("--rates {r}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => a.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--speed" => a.speed = value("--speed")?.parse().map_err(|e| format!("--speed: {e}"))?,
            "--seed" => a.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            // cargo bench passes --bench; a filter or other flags mean nothing here.
            _ => {}
        }
    }
    if a.seconds < 25.0 || a.speed <= 0.0 || a.rates.iter().any(|r| *r <= 0.0) {
        return Err("--seconds must be at least 25 (a span must be left to check), --speed and --rates positive".into());
    }
    Ok(a)
}

/// One RSS sample: wall seconds since the archiver started, kB.
type Sample = (f64, u64);

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which is in parentheses): state is
    // the 3rd field, utime the 14th, stime the 15th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

struct Row {
    rate: f64,
    seconds: f64,
    peak_kb: u64,
    at_two_thirds_kb: u64,
    final_kb: u64,
    growth_pct: f64,
    sent_per_sec: f64,
    cpu_archiver: f64,
    cpu_sim: f64,
    stored: usize,
    complete: bool,
    minutes: (usize, usize),
    note: String,
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn peak_between(samples: &[Sample], from: f64, to: f64) -> u64 {
    samples.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, kb)| *kb).max().unwrap_or(0)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn sigterm(child: &mut Child) {
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

fn run_one(rt: &tokio::runtime::Runtime, args: &Args, rate: f64) -> Result<Row, Box<dyn std::error::Error>> {
    let start: chrono::DateTime<chrono::Utc> = START.parse()?;
    // The sim's rate is per second of stream time.
    let stream_rate = rate / args.speed;
    let origin = unix_now() + 1.0;
    let mut cfg = stream_sim::SimConfig::new(args.seed).with_rate(stream_rate);
    cfg.clock = stream_sim::Clock::scaled(Some(start), args.speed, Some(origin));
    let mut spec = stream_sim::StreamSpec::new(stream_sim::StreamKind::Sample10, "prod");
    spec.rate = stream_rate;
    cfg.streams = vec![spec.clone()];
    cfg.recovery_pace = 0.0;
    let sim = rt.block_on(stream_sim::Server::start(cfg, "127.0.0.1:0".parse()?))?;
    let addr = sim.addr();

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("creds"), "sim:sim")?;
    let config = dir.path().join("gapless.toml");
    std::fs::write(
        &config,
        format!(
            r#"credentials = {{ file = "creds" }}
[[stream]]
label = "decahose"
kind = "decahose"
url = "http://{addr}/stream/sample10/accounts/bench/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "5s" }}
"#
        ),
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gapless"))
        .arg("archive")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .arg("--clock-start")
        .arg(start.to_rfc3339())
        .arg("--clock-speed")
        .arg(args.speed.to_string())
        .arg("--clock-origin")
        .arg(format!("{origin:.6}"))
        .env("RUST_LOG", "gapless=warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    // Keep the archiver's warnings, and do not let its pipe fill up.
    let stderr = child.stderr.take();
    let log = std::thread::spawn(move || {
        let mut warnings = Vec::new();
        if let Some(s) = stderr {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                if warnings.len() < 20 {
                    warnings.push(line);
                }
            }
        }
        warnings
    });

    let t0 = Instant::now();
    let cpu0 = cpu_secs("self");
    let mut samples: Vec<Sample> = Vec::new();
    let mut sent_at_two_thirds = None;
    let mut exited = None;
    while t0.elapsed().as_secs_f64() < args.seconds {
        std::thread::sleep(Duration::from_millis(250));
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        let t = t0.elapsed().as_secs_f64();
        if let Some(kb) = status_kb(pid, "VmRSS:") {
            samples.push((t, kb));
        }
        if sent_at_two_thirds.is_none() && t >= 2.0 * args.seconds / 3.0 {
            sent_at_two_thirds = Some((t, sim.activities_sent(stream_sim::StreamKind::Sample10, "prod")));
        }
    }
    let cpu_archiver = cpu_secs(&pid.to_string());
    let cpu_sim = cpu_secs("self") - cpu0;
    let hwm = status_kb(pid, "VmHWM:").unwrap_or(0);
    let wall = t0.elapsed().as_secs_f64();
    let stop_ms = start.timestamp_millis() + ((unix_now() - origin) * args.speed * 1000.0) as i64;
    let sent = sim.activities_sent(stream_sim::StreamKind::Sample10, "prod");
    if exited.is_none() {
        sigterm(&mut child);
    }
    rt.block_on(sim.shutdown());
    let warnings = log.join().unwrap_or_default();
    if let Some(status) = exited {
        return Err(format!("gapless exited early ({status}): {}", warnings.join("\n")).into());
    }

    let third = args.seconds / 3.0;
    let at_two_thirds_kb = samples.iter().rev().find(|(t, _)| *t <= 2.0 * third).map(|(_, kb)| *kb).unwrap_or(0);
    let second = peak_between(&samples, third, 2.0 * third);
    let last = peak_between(&samples, 2.0 * third, f64::MAX);
    let growth_pct = if second > 0 { (last as f64 / second as f64 - 1.0) * 100.0 } else { f64::NAN };

    // The checked span: from 5 s of stream time after the start to 15 s
    // before the stop.
    let (from_ms, to_ms) = (start.timestamp_millis() + 5_000, stop_ms - 15_000);
    let (from_ms, to_ms) = (from_ms - from_ms.rem_euclid(1000), to_ms - to_ms.rem_euclid(1000));
    let map = CoverageMap::open(&data.join("coverage"))?;
    let holes = map.holes("decahose", from_ms / 1000..to_ms / 1000)?;
    let (first_min, end_min) = (Minute::of_ms(from_ms + 59_999), Minute::of_ms(to_ms));
    let states = if first_min.0 < end_min.0 {
        map.minute_states("decahose", first_min..end_min, i64::MAX / 4, 0)?
    } else {
        Vec::new()
    };
    let full = states.iter().filter(|s| s.coverage == Coverage::Full).count();
    drop(map);
    let gen = stream_sim::Generator::new(args.seed, &spec);
    let diff = verify::compare(
        &verify::truth(&gen, from_ms, to_ms),
        &verify::read_archive(&data, "decahose", from_ms, to_ms)?,
    );
    let stored = count_stored(&data)?;
    let mut note = String::new();
    if !holes.is_empty() {
        note.push_str(&format!("holes {:?}; ", holes.iter().take(3).collect::<Vec<_>>()));
    }
    if !diff.is_exact() {
        note.push_str(&format!("{diff}; "));
    }
    let sent_per_sec = sent_at_two_thirds.map_or(0.0, |(t, n)| (sent - n) as f64 / (wall - t).max(1e-9));
    if sent_per_sec < 0.9 * rate {
        note.push_str("below the rate in the last third: stream-sim or the archiver did not keep up; ");
    }
    Ok(Row {
        rate,
        seconds: wall,
        peak_kb: hwm.max(samples.iter().map(|(_, kb)| *kb).max().unwrap_or(0)),
        at_two_thirds_kb,
        final_kb: samples.last().map(|(_, kb)| *kb).unwrap_or(0),
        growth_pct,
        sent_per_sec,
        cpu_archiver,
        cpu_sim,
        stored,
        complete: holes.is_empty() && diff.is_exact(),
        minutes: (full, states.len()),
        note,
    })
}

fn count_stored(data: &Path) -> gapless_storage::Result<usize> {
    let mut n = 0;
    for batch in RangeReader::new(data, "decahose", 0..i64::MAX / 4) {
        n += batch?.len();
    }
    Ok(n)
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("memory: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("memory: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "gapless archive (release, {}) against stream-sim, {} s per rate, clock speed {}",
        env!("CARGO_BIN_EXE_gapless"),
        args.seconds,
        args.speed
    );
    let mut rows = Vec::new();
    for &rate in &args.rates {
        eprintln!("rate {rate} Posts/s: running {} s ...", args.seconds);
        match run_one(&rt, &args, rate) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("rate {rate}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!();
    println!("| Posts/s | run | peak RSS | RSS at 2/3 | final RSS | growth (last vs second third) | sent/s (last third) | CPU archiver / sim | stored | complete | full minutes |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {:.0} | {:.0} s | {} | {} | {} | {:+.1}% | {:.0} | {:.0} s / {:.0} s | {} | {} | {}/{} |",
            r.rate,
            r.seconds,
            mb(r.peak_kb),
            mb(r.at_two_thirds_kb),
            mb(r.final_kb),
            r.growth_pct,
            r.sent_per_sec,
            r.cpu_archiver,
            r.cpu_sim,
            r.stored,
            if r.complete { "yes" } else { "NO" },
            r.minutes.0,
            r.minutes.1
        );
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("{:.0} Posts/s: {}", r.rate, r.note);
    }
}
