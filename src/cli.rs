//! The command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// gapless archives X/Twitter enterprise streams and proves, minute by
/// minute, that the archive is complete.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole story in under a minute: a simulated Decahose with faults,
    /// archived, repaired, and checked against ground truth.
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoArgs),
    /// Archive the configured streams until SIGINT/SIGTERM, keeping the
    /// archive complete inside the recovery window.
    Archive {
        /// The configuration file (see examples/sim.toml).
        #[arg(long)]
        config: PathBuf,
        /// The data directory (overrides the configuration's).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Owe coverage from this time, not only from the first start: the
        /// planner recovers the history inside the window. RFC 3339
        /// (`2026-03-01T10:00:00Z`), `2026-03-01`, `@UNIXSECONDS`, or
        /// relative (`now-6h`, `-2d`).
        #[arg(long, value_parser = gapless_time::parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        clock: crate::clock::ClockArgs,
    },
    /// Import existing NDJSON archives (plain, .gz or .zst; native or
    /// Activity Streams format) into a stream of the store. Deduplicates;
    /// claims no coverage.
    Import {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The stream label to file the activities under.
        #[arg(long)]
        stream: String,
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Report what the archive applied of the streams' compliance events
    /// (deletes, user deletes, protections, suspensions, withholdings,
    /// scrub_geo, unlikes), what is still to be purged from disk, and what
    /// could not be applied. Works while an archiver runs.
    Compliance {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
        /// JSON (schema gapless.compliance-report/1) instead of text.
        #[arg(long)]
        json: bool,
        /// The archiver's `[compliance] purge_after`, to say when pending
        /// purges become due (90, 45s, 30m, 6h, 5d, ...).
        #[arg(long, default_value = "24h", value_parser = |s: &str| gapless_time::parse_duration_secs(s).map_err(|e| e.to_string()))]
        purge_after: i64,
        /// Take the purge delay from the archiver's configuration file
        /// (`[compliance]`) instead of --purge-after.
        #[arg(long, conflicts_with = "purge_after")]
        config: Option<PathBuf>,
    },
    /// Check every checksum of every segment; repair what does not verify
    /// (its minute's coverage withdrawn first, so that the archiver
    /// recovers it; damaged bytes kept aside). Stop the archiver first.
    /// Exit status: 0 all verified, 1 damage repaired, 2 damage not
    /// repaired.
    Verify {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
}

fn init_logs(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo draws its own progress; its logs only say what went wrong.
    #[cfg(feature = "demo")]
    let default = if matches!(cli.command, Command::Demo(_)) { "error" } else { "info" };
    #[cfg(not(feature = "demo"))]
    let default = "info";
    init_logs(cli.log_json, default);
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the runtime")?;
            if rt.block_on(crate::demo::run(args))? {
                Ok(())
            } else {
                anyhow::bail!("the archive is not complete")
            }
        }
        Command::Archive { config, data, since, clock } => {
            let mut config = crate::config::Config::load(&config)?;
            if let Some(d) = data {
                config.data = d;
            }
            let clock = clock.clock()?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the runtime")?;
            rt.block_on(crate::archiver::run(crate::archiver::Options {
                config,
                clock,
                since_secs: since.map(|t| t.timestamp()),
                fs: None,
            }))
        }
        Command::Import { data, stream, files } => {
            let summary = crate::import::import(&data, &stream, &files)
                .with_context(|| format!("import into stream {stream:?} of {}", data.display()))?;
            println!("{summary}");
            Ok(())
        }
        Command::Compliance { data, stream, json, purge_after, config } => {
            let after = match config {
                Some(path) => match crate::config::Config::load(&path)?.purge {
                    Some(p) => p.after,
                    None => anyhow::bail!("{}: [compliance] purge = false: nothing is purged", path.display()),
                },
                None => std::time::Duration::from_secs(purge_after.max(0) as u64),
            };
            let now_ms = chrono::Utc::now().timestamp_millis();
            let report = crate::compliance::report(&data, stream.as_deref(), after, now_ms)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.text());
            }
            Ok(())
        }
        Command::Verify { data, stream } => {
            let report = crate::verify::verify(&data, stream.as_deref())?;
            println!("{report}");
            match report.exit_code() {
                0 => Ok(()),
                code => std::process::exit(code),
            }
        }
    }
}
