//! Memory of the archiver at a given rate: does its RSS stay bounded and
//! flat whatever the stream's volume?
//!
//! For each rate (Posts per second of wall time), this starts stream-sim in
//! process serving a Decahose at that rate, and the release `gapless
//! archive` binary (`CARGO_BIN_EXE_gapless`: cargo builds it for benchmarks,
//! in the bench profile) as a child process against it. Every 250 ms it
//! reads the child's `VmRSS` from `/proc/PID/status`; at the end it stops the
//! archiver with SIGTERM (it commits and records coverage exactly) and
//! checks the archive against stream-sim's truth.
//!
//! Two modes, by rate:
//! - **paced** (rates below `--max-speed-from`, default 20,000): stream-sim
//!   with a scaled clock (speed 1 by default: stream time is wall time, from
//!   10:00 UTC, where the simulator's daily cycle is at its mean) generates,
//!   compresses and sends the stream as it happens, for `--seconds`. Paced
//!   generation needs about a core per 50,000 Posts/s, so on a two-core
//!   machine shared with the archiver it cannot reach 60,000.
//! - **max-speed** (rates from `--max-speed-from` up): stream-sim's
//!   max-speed mode (`tools/stream-sim/src/maxspeed.rs`) pre-generates
//!   `--burst-seconds` (default 35) of the stream at that rate, from 10:00
//!   UTC, compressed, in this process (so not in the archiver's RSS), and
//!   serves it as fast as the archiver reads. The archiver's clock starts
//!   50 s after the burst's start, with `--since` at its start: its first
//!   connection backfills a minute, reads the whole burst (all of it in the
//!   past, all claimable) at its top speed, which is a harder memory test
//!   than the nominal rate. The run lasts until the archiver has stored
//!   every activity of the burst (from its admin API's
//!   `gapless_stored_total`); the thirds are thirds of that time. Recovery
//!   is off (the live edge after the burst is an ever-growing hole whose
//!   Recovery would have stream-sim generate at full speed, competing for
//!   the cores); a connection that ends is re-served the whole burst
//!   (duplicates), which ends the run no later.
//!
//! ```sh
//! cargo bench --bench memory -- [--rates 600,6000,60000] [--seconds 150] [--speed 1] [--seed 1]
//!                               [--max-speed-from 20000] [--burst-seconds 35]
//! ```
//!
//! The table, one row per rate:
//! - `mode`: paced or max-speed;
//! - `run`: wall seconds sampled (max-speed: until the burst was stored);
//! - `peak`: the highest RSS (the kernel's `VmHWM`, or the highest sample);
//! - `at 2/3`: the RSS at the end of the second third of the run;
//! - `final`: the last sample before SIGTERM;
//! - `growth`: the highest RSS of the last third over the highest of the
//!   second third, in percent (flat: within 15%);
//! - `activities/s`: paced, what stream-sim actually sent per wall second
//!   over the last third (a fresh archive's first connection backfills a
//!   minute, so the first part of a run is a catch-up faster than the rate;
//!   below the rate, the simulator or the archiver could not keep up: the
//!   row says so); max-speed, the activities of the burst over the run's
//!   wall time (the archiver's start included): what the archiver achieved;
//! - `CPU`: seconds of CPU used by the archiver, and by this process
//!   (stream-sim generating and compressing, or serving the pre-generated
//!   burst), over the run;
//! - `stored`: activities in the archive;
//! - `complete`: no hole in the coverage map over the checked span, and the
//!   archive equals the truth there, activity by activity and byte by byte
//!   (paced: from 5 s after the start to 15 s before the stop, since the
//!   connection's start and the latency allowance at the end are not owed;
//!   max-speed: the coverage from 5 s into the burst to 5 s before its end,
//!   the archive over the whole burst); `minutes`: whole minutes of the
//!   checked span that are full.
//!
//! It runs for real on this machine's two cores, beside stream-sim: keep
//! runs short on a shared machine.

mod child;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::{counters, cpu_secs, free_port, sigterm, status_kb, unix_now, Counters};

use gapless::demo::verify;
use gapless_storage::coverage::{Coverage, CoverageMap};
use gapless_storage::reader::RangeReader;
use gapless_storage::Minute;

const START: &str = "2026-03-01T10:00:00Z";
/// A max-speed run that has not stored its burst by then is stopped.
const MAX_SPEED_TIMEOUT_SECS: f64 = 900.0;
/// A max-speed run whose archiver stored nothing new for this long is
/// stopped.
const NO_PROGRESS_SECS: f64 = 60.0;

struct Args {
    rates: Vec<f64>,
    seconds: f64,
    speed: f64,
    seed: u64,
    /// Rates from this one up run in max-speed mode.
    max_speed_from: f64,
    /// Seconds of stream pre-generated for a max-speed run.
    burst_seconds: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        rates: vec![600.0, 6000.0, 60000.0],
        seconds: 150.0,
        speed: 1.0,
        seed: 1,
        max_speed_from: 20_000.0,
        burst_seconds: 35,
    };
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
            "--max-speed-from" => {
                a.max_speed_from = value("--max-speed-from")?.parse().map_err(|e| format!("--max-speed-from: {e}"))?
            }
            "--burst-seconds" => {
                a.burst_seconds = value("--burst-seconds")?.parse().map_err(|e| format!("--burst-seconds: {e}"))?
            }
            // cargo bench passes --bench; a filter or other flags mean nothing here.
            _ => {}
        }
    }
    if a.seconds < 25.0 || a.speed <= 0.0 || a.rates.iter().any(|r| *r <= 0.0) {
        return Err("--seconds must be at least 25 (a span must be left to check), --speed and --rates positive".into());
    }
    // The archiver's clock starts 50 s into the burst and backfills one
    // minute: the burst must be claimable at once (50 s - 13 s allowance).
    if !(15..=35).contains(&a.burst_seconds) {
        return Err("--burst-seconds must be 15 to 35 (a span must be left to check, and all of it claimable)".into());
    }
    Ok(a)
}

/// One RSS sample: wall seconds since the archiver started, kB.
type Sample = (f64, u64);

struct Row {
    rate: f64,
    max_speed: bool,
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

fn peak_between(samples: &[Sample], from: f64, to: f64) -> u64 {
    samples.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, kb)| *kb).max().unwrap_or(0)
}

fn run_one(rt: &tokio::runtime::Runtime, args: &Args, rate: f64) -> Result<Row, Box<dyn std::error::Error>> {
    let max_speed = rate >= args.max_speed_from;
    let start: chrono::DateTime<chrono::Utc> = START.parse()?;
    let burst_ms = i64::from(args.burst_seconds) * 1000;
    // The sim's rate is per second of stream time; max-speed serves
    // stream time as fast as it is read.
    let speed = if max_speed { 1.0 } else { args.speed };
    let stream_rate = rate / speed;
    let origin = unix_now() + 1.0;
    let mut cfg = stream_sim::SimConfig::new(args.seed).with_rate(stream_rate);
    cfg.clock = stream_sim::Clock::scaled(Some(start), speed, Some(origin))?;
    let mut spec = stream_sim::StreamSpec::new(stream_sim::StreamKind::Sample10, "prod");
    spec.rate = stream_rate;
    cfg.streams = vec![spec.clone()];
    cfg.recovery_pace = 0.0;
    let gen = stream_sim::Generator::new(args.seed, &spec);
    let listen = "127.0.0.1:0".parse()?;
    let (sim, burst) = if max_speed {
        cfg.rate_limit = u32::MAX;
        let t = Instant::now();
        eprintln!("  pre-generating {} s of stream at {rate} Posts/s ...", args.burst_seconds);
        let sim = rt.block_on(stream_sim::maxspeed::start(
            cfg,
            listen,
            std::time::Duration::from_secs(u64::from(args.burst_seconds)),
        ))?;
        eprintln!(
            "  served from this process's memory: RSS {}",
            mb(status_kb(std::process::id(), "VmRSS:").unwrap_or(0))
        );
        let truth = verify::truth(&gen, start.timestamp_millis(), start.timestamp_millis() + burst_ms);
        eprintln!(
            "  {} activities ready in {:.0} s (with their truth: this process's RSS {})",
            truth.len(),
            t.elapsed().as_secs_f64(),
            mb(status_kb(std::process::id(), "VmRSS:").unwrap_or(0))
        );
        (sim, Some(truth))
    } else {
        (rt.block_on(stream_sim::Server::start(cfg, listen))?, None)
    };
    let addr = sim.addr();

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("creds"), "sim:sim")?;
    let config = dir.path().join("gapless.toml");
    let admin = free_port()?;
    // Max-speed: the admin API says when the burst is stored; Recovery off
    // (see the module doc).
    let (admin_line, recovery_line) = if max_speed {
        (format!("admin = \"{admin}\"\n"), "recovery = { enabled = false }\n")
    } else {
        (String::new(), "")
    };
    std::fs::write(
        &config,
        format!(
            r#"{admin_line}credentials = {{ file = "creds" }}
[[stream]]
label = "decahose"
kind = "decahose"
url = "http://{addr}/stream/sample10/accounts/bench/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "5s" }}
{recovery_line}"#
        ),
    )?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_gapless"));
    command.arg("archive").arg("--config").arg(&config).arg("--data").arg(&data);
    let (clock_start, clock_origin) = if max_speed {
        // All of the burst in the past and claimable; the first connection
        // backfills one minute, to 10 s before the burst.
        command.arg("--since").arg(start.to_rfc3339());
        (start + chrono::Duration::seconds(50), unix_now())
    } else {
        (start, origin)
    };
    let mut child = command
        .arg("--clock-start")
        .arg(clock_start.to_rfc3339())
        .arg("--clock-speed")
        .arg(speed.to_string())
        .arg("--clock-origin")
        .arg(format!("{clock_origin:.6}"))
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
    // Max-speed: the whole burst stored, when; or a stop for lack of
    // progress (the row then says so).
    let burst_len = burst.as_ref().map_or(0, |t| t.len() as u64);
    let (mut stored_seen, mut progress_at) = (0u64, 0.0f64);
    let mut last_counters = Counters::default();
    let mut unfinished = None;
    let limit = if max_speed { MAX_SPEED_TIMEOUT_SECS } else { args.seconds };
    while t0.elapsed().as_secs_f64() < limit {
        std::thread::sleep(Duration::from_millis(250));
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        let t = t0.elapsed().as_secs_f64();
        if let Some(kb) = status_kb(pid, "VmRSS:") {
            samples.push((t, kb));
        }
        if max_speed {
            if let Some(c) = counters(admin) {
                last_counters = c;
            }
            let n = last_counters.stored;
            if n >= burst_len {
                break;
            }
            if n > stored_seen {
                (stored_seen, progress_at) = (n, t);
            } else if t - progress_at > NO_PROGRESS_SECS {
                unfinished = Some(format!("stopped: nothing stored for {NO_PROGRESS_SECS} s, {n} of {burst_len}; "));
                break;
            }
        } else if sent_at_two_thirds.is_none() && t >= 2.0 * args.seconds / 3.0 {
            sent_at_two_thirds = Some((t, sim.activities_sent(stream_sim::StreamKind::Sample10, "prod")));
        }
    }
    let cpu_archiver = cpu_secs(&pid.to_string());
    let cpu_sim = cpu_secs("self") - cpu0;
    let hwm = status_kb(pid, "VmHWM:").unwrap_or(0);
    let wall = t0.elapsed().as_secs_f64();
    if max_speed && unfinished.is_none() && wall >= limit {
        unfinished = Some(format!("stopped: the burst was not stored within {limit} s; "));
    }
    let stop_ms = start.timestamp_millis() + ((unix_now() - origin) * speed * 1000.0) as i64;
    let sent = sim.activities_sent(stream_sim::StreamKind::Sample10, "prod");
    let stopping = Instant::now();
    if exited.is_none() {
        sigterm(&mut child);
    }
    let exit_secs = stopping.elapsed().as_secs_f64();
    rt.block_on(sim.shutdown());
    let warnings = log.join().unwrap_or_default();
    if let Some(status) = exited {
        return Err(format!("gapless exited early ({status}): {}", warnings.join("\n")).into());
    }

    let run = if max_speed { wall } else { args.seconds };
    let third = run / 3.0;
    let at_two_thirds_kb = samples.iter().rev().find(|(t, _)| *t <= 2.0 * third).map(|(_, kb)| *kb).unwrap_or(0);
    let second = peak_between(&samples, third, 2.0 * third);
    let last = peak_between(&samples, 2.0 * third, f64::MAX);
    let growth_pct = if second > 0 { (last as f64 / second as f64 - 1.0) * 100.0 } else { f64::NAN };

    // The checked span of coverage: paced, from 5 s of stream time after
    // the start to 15 s before the stop; max-speed, 5 s inside the burst.
    let (from_ms, to_ms) = if max_speed {
        (start.timestamp_millis() + 5_000, start.timestamp_millis() + burst_ms - 5_000)
    } else {
        (start.timestamp_millis() + 5_000, stop_ms - 15_000)
    };
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
    // The archive against the truth: max-speed, the whole burst (all of it
    // was delivered); paced, the checked span.
    let diff = match &burst {
        Some(truth) => verify::compare(
            truth,
            &verify::read_archive(&data, "decahose", start.timestamp_millis(), start.timestamp_millis() + burst_ms)?,
        ),
        None => verify::compare(
            &verify::truth(&gen, from_ms, to_ms),
            &verify::read_archive(&data, "decahose", from_ms, to_ms)?,
        ),
    };
    let stored = count_stored(&data)?;
    let mut note = unfinished.unwrap_or_default();
    if max_speed {
        // Copies read again after a connection ended mid-burst (the whole
        // burst is served again) cost the archiver time, not memory.
        note.push_str(&format!(
            "at the end of the run: {} duplicates dropped, {} reconnects; exit after SIGTERM {exit_secs:.0} s; ",
            last_counters.duplicates, last_counters.reconnects
        ));
    }
    if !holes.is_empty() {
        note.push_str(&format!("holes {:?}; ", holes.iter().take(3).collect::<Vec<_>>()));
    }
    if !diff.is_exact() {
        note.push_str(&format!("{diff}; "));
    }
    let sent_per_sec = if max_speed {
        burst_len as f64 / wall.max(1e-9)
    } else {
        sent_at_two_thirds.map_or(0.0, |(t, n)| (sent - n) as f64 / (wall - t).max(1e-9))
    };
    if !max_speed && sent_per_sec < 0.9 * rate {
        note.push_str("below the rate in the last third: stream-sim or the archiver did not keep up; ");
    }
    Ok(Row {
        rate,
        max_speed,
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
        "gapless archive (release, {}) against stream-sim; paced below {} Posts/s: {} s per rate, clock speed {}; max-speed from there: bursts of {} s of stream",
        env!("CARGO_BIN_EXE_gapless"),
        args.max_speed_from,
        args.seconds,
        args.speed,
        args.burst_seconds
    );
    let mut rows = Vec::new();
    for &rate in &args.rates {
        if rate >= args.max_speed_from {
            eprintln!("rate {rate} Posts/s: max-speed, a burst of {} s of stream ...", args.burst_seconds);
        } else {
            eprintln!("rate {rate} Posts/s: paced, running {} s ...", args.seconds);
        }
        match run_one(&rt, &args, rate) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("rate {rate}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!();
    println!("| Posts/s | mode | run | peak RSS | RSS at 2/3 | final RSS | growth (last vs second third) | activities/s (paced: sent, last third; max-speed: stored, whole run) | CPU archiver / sim | stored | complete | full minutes |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {:.0} | {} | {:.0} s | {} | {} | {} | {:+.1}% | {:.0} | {:.0} s / {:.0} s | {} | {} | {}/{} |",
            r.rate,
            if r.max_speed { "max-speed" } else { "paced" },
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
