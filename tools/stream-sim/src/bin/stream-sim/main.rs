//! The `stream-sim` binary: `serve`, `truth` and `bench`. The simulator
//! lives in the library; this file maps flags onto it, and `bench.rs` is the
//! discarding client that `bench` measures it with.

mod bench;

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use gapless_time::Dur;
use stream_sim::clock::{run_start_ms, Clock};
use stream_sim::compliant::{compliant_truth, CompliantQuery, Withheld};
use stream_sim::config::{SimConfig, DEFAULT_PASSWORD, DEFAULT_USER};
use stream_sim::faults::FaultPlan;
use stream_sim::generator::Generator;
use stream_sim::stream::parse_stream_name;

#[derive(Parser)]
#[command(name = "stream-sim", version, about = "A Gnip-compatible stream server with ground truth and faults")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct ClockArgs {
    /// Stream time at the clock origin (e.g. 2026-03-01T12:00:00Z, 2026-03-01T12:00,
    /// now-1h); default: wall time at the origin.
    #[arg(long, value_parser = gapless_time::parse_time)]
    clock_start: Option<DateTime<Utc>>,
    /// Stream seconds per wall second (a positive number).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    clock_speed: f64,
    /// Unix time (seconds, fractions allowed) at which stream time equals --clock-start; default: now.
    #[arg(long)]
    clock_origin: Option<f64>,
}

impl ClockArgs {
    fn clock(&self) -> Result<Clock> {
        Clock::scaled(self.clock_start, self.clock_speed, self.clock_origin).context("--clock-speed")
    }
}

/// `--clock-speed`: a number the clock takes (positive and finite), checked
/// when the flags are read, so that a bad one is a usage error.
fn parse_speed(s: &str) -> std::result::Result<f64, String> {
    let speed: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    Clock::scaled(None, speed, Some(0.0)).map(|_| speed).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the streams over HTTP.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        clock: ClockArgs,
        /// Fault script (TOML).
        #[arg(long)]
        faults: Option<std::path::PathBuf>,
        /// Server config (TOML): streams, limits, pace.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Average activities per second of stream time for every stream
        /// (default per kind: sample10 600, firehose 6000, powertrack 50, likes 150).
        #[arg(long)]
        rate: Option<f64>,
        /// Recovery pace: archive seconds replayed per stream second (0 = unlimited).
        #[arg(long)]
        recovery_pace: Option<f64>,
        /// Max-speed mode: pre-generate this span of stream time (e.g. 60s, 5m; a bare number is
        /// seconds) of every partition from the clock start and serve it as fast as the socket takes.
        #[arg(long, value_name = "DURATION", alias = "max-speed-seconds")]
        max_speed: Option<Dur>,
    },
    /// Measure max-speed serving into discarding clients on loopback.
    Bench {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// KIND/LABEL of the stream to serve.
        #[arg(long, default_value = "sample10/prod")]
        stream: String,
        /// Stream time to pre-generate (e.g. 60s, 5m; a bare number is seconds).
        #[arg(long, value_name = "DURATION", default_value = "60s", alias = "seconds")]
        span: Dur,
        #[arg(long)]
        rate: Option<f64>,
        #[command(flatten)]
        clock: ClockArgs,
    },
    /// Print every activity of a range as `KIND KEY`, in time order (with
    /// --compliant: what a compliant export of it contains).
    Truth {
        /// Add each activity's fingerprint: `KIND KEY LEN HASH` (the length
        /// and FNV-1a 64 of its exact bytes, without `\r\n`).
        #[arg(long)]
        fingerprints: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// KIND/LABEL, e.g. sample10/prod.
        #[arg(long)]
        stream: String,
        /// Start of the range (e.g. 2026-03-01T12:00:00Z, 2026-03-01, now-1h).
        #[arg(long)]
        from: String,
        /// End of the range (excluded).
        #[arg(long)]
        to: String,
        #[arg(long)]
        partition: Option<u32>,
        /// Same meaning as for serve.
        #[arg(long)]
        rate: Option<f64>,
        /// Same as serve's --config (stream rates and partitions matter).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Print what a compliant export of the range must contain (the
        /// compliance policy applied; fingerprints are of the compliant bytes).
        #[arg(long)]
        compliant: bool,
        /// With --compliant: start of the activity time whose compliance messages the ledger holds
        /// (default: --from).
        #[arg(long, requires = "compliant")]
        ledger_from: Option<String>,
        /// With --compliant: end of the ledger range, excluded (default: --to).
        #[arg(long, requires = "compliant")]
        ledger_to: Option<String>,
        /// With --compliant: withheld records are left out (drop) or kept with
        /// `withheld_in_countries` set (keep).
        #[arg(long, requires = "compliant", default_value_t = Withheld::Drop)]
        withheld: Withheld,
    },
}

/// A time on the command line, in the project's one grammar
/// ([`gapless_time`]; `now` is wall time), as Unix milliseconds.
fn parse_time_ms(s: &str) -> Result<i64> {
    Ok(gapless_time::parse_time(s)?.timestamp_millis())
}

fn load_config(seed: u64, config: Option<&std::path::Path>, rate: Option<f64>) -> Result<SimConfig> {
    let mut cfg = SimConfig::new(seed);
    if let Some(r) = rate {
        cfg = cfg.with_rate(r);
    }
    if let Some(path) = config {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        cfg.apply_file(&text)?;
    }
    Ok(cfg)
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "stream_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve { listen, seed, clock, faults, config, rate, recovery_pace, max_speed } => {
            let mut cfg = load_config(seed, config.as_deref(), rate)?;
            cfg.clock = clock.clock()?;
            cfg.user = std::env::var("STREAM_SIM_USER").unwrap_or_else(|_| DEFAULT_USER.to_string());
            cfg.password = std::env::var("STREAM_SIM_PASSWORD").unwrap_or_else(|_| DEFAULT_PASSWORD.to_string());
            if let Some(p) = recovery_pace {
                cfg.recovery_pace = p;
            }
            if let Some(path) = faults {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                cfg.faults = FaultPlan::from_toml(&text, run_start_ms(&cfg.clock), seed)?;
            }
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                let server = match max_speed {
                    Some(span) => stream_sim::maxspeed::start(cfg, listen, span.as_duration()).await?,
                    None => stream_sim::Server::start(cfg, listen).await?,
                };
                eprintln!("stream-sim listening on http://{}", server.addr());
                shutdown_signal().await;
                server.shutdown().await;
                Ok::<(), anyhow::Error>(())
            })?;
        }
        Cmd::Bench { seed, stream, span, rate, clock } => {
            let (kind, label) =
                parse_stream_name(&stream).with_context(|| format!("--stream {stream:?}: KIND/LABEL expected"))?;
            let mut cfg = load_config(seed, None, rate)?;
            cfg.clock = clock.clock()?;
            let spec = cfg.spec_for(kind, &label).with_context(|| format!("stream {stream} is not served"))?;
            cfg.streams = vec![spec];
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let r = rt.block_on(bench::bench(cfg, span.as_duration()))?;
            println!(
                "{} activities, {:.1} MB raw, {:.1} MB gzip on the wire, in {:.3} s: {:.0} activities/s, {:.1} MB/s raw, {:.1} MB/s wire",
                r.activities,
                r.raw_bytes as f64 / 1e6,
                r.wire_bytes as f64 / 1e6,
                r.elapsed.as_secs_f64(),
                r.activities_per_sec(),
                r.raw_mb_per_sec(),
                r.wire_mb_per_sec()
            );
        }
        Cmd::Truth {
            seed,
            stream,
            from,
            to,
            partition,
            rate,
            config,
            fingerprints,
            compliant,
            ledger_from,
            ledger_to,
            withheld,
        } => {
            let (kind, label) =
                parse_stream_name(&stream).with_context(|| format!("--stream {stream:?}: KIND/LABEL expected"))?;
            let cfg = load_config(seed, config.as_deref(), rate)?;
            let spec = cfg.spec_for(kind, &label).with_context(|| format!("stream {stream} is not served"))?;
            let from_ms = parse_time_ms(&from).context("--from")?;
            let to_ms = parse_time_ms(&to).context("--to")?;
            if let Some(p) = partition {
                if spec.partitions == 0 || p == 0 || p > spec.partitions {
                    bail!("--partition {p}: {stream} has {} partitions", spec.partitions);
                }
            }
            let gen = Generator::new(seed, &spec);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if compliant {
                let ledger_from_ms = match ledger_from {
                    Some(t) => parse_time_ms(&t).context("--ledger-from")?,
                    None => from_ms,
                };
                let ledger_to_ms = match ledger_to {
                    Some(t) => parse_time_ms(&t).context("--ledger-to")?,
                    None => to_ms,
                };
                let q = CompliantQuery { from_ms, to_ms, ledger_from_ms, ledger_to_ms, partition, withheld };
                let truth = compliant_truth(&gen, &q);
                for e in &truth.entries {
                    if fingerprints {
                        writeln!(out, "{} {}", e.truth_line(), e.fingerprint)?;
                    } else {
                        writeln!(out, "{}", e.truth_line())?;
                    }
                }
                let c = truth.counts;
                eprintln!(
                    "compliant: kept {} (compliance messages {}, withheld marked {}, geo scrubbed {}); left out: deleted {}, unliked {}, withheld {}",
                    c.kept, c.messages, c.withheld_marked, c.geo_scrubbed, c.deleted, c.unliked, c.withheld_dropped
                );
            } else {
                stream_sim::truth::write_truth_with(&gen, from_ms, to_ms, partition, fingerprints, &mut out)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}
