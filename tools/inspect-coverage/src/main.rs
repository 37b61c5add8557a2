//! `inspect-coverage`: the coverage of a gapless archive, for people
//! (heatmap and summary), for programs (`--json`), for monitoring (the
//! exit status) and as an image (`--svg`). See the README.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use inspect_coverage::open::{newest_segment_end, open_coverage, OpenError};
use inspect_coverage::query::{Query, DEFAULT_PENDING_SECS, DEFAULT_RECOVERY_WINDOW_SECS, DEFAULT_SUSPECT_RATIO};
use inspect_coverage::render::{render, Style};
use inspect_coverage::time::{now_ms, parse_duration, parse_time_ms};
use inspect_coverage::{admin, build, svg, verify, VERSION};

/// Exit status for errors (bad arguments, unreadable store, ...).
const EXIT_ERROR: u8 = 3;
/// Exit status when the store is held by the running archiver and no
/// `--admin` was given.
const EXIT_LOCKED: u8 = 4;

#[derive(Parser)]
#[command(
    name = "inspect-coverage",
    version,
    about = "Shows which minutes a gapless archive provably holds: heatmap, holes, jobs, lost minutes, audit",
    after_help = "Exit status: 0 complete, 1 recoverable holes, 2 lost data, 3 error, 4 store in use by the archiver (use --admin).\n\
Times: RFC 3339, 2017-07-18T23:25, 2017-07-18, @UNIXSECONDS, now, now-6h. Durations: 90, 45s, 30m, 6h, 5d, 1h30m."
)]
struct Cli {
    /// The archive's data directory (read while the archiver is stopped).
    #[arg(long, value_name = "DIR", required_unless_present = "admin")]
    data: Option<PathBuf>,
    /// Ask the running archiver's admin API instead of opening the store.
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// Streams to show (repeat or comma-separate); default: all.
    #[arg(long, value_name = "LABEL", value_delimiter = ',')]
    stream: Vec<String>,
    /// Start of the window (default: 24 hours before --to).
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// End of the window (default: now, or the end of the newest data when
    /// there is none in the last 24 hours).
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Print the report as JSON (schema gapless.coverage/1) instead of the terminal view.
    #[arg(long)]
    json: bool,
    /// Also write the heatmap as an SVG image.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Summary only, no heatmap.
    #[arg(long)]
    summary: bool,
    /// Partition rows under every hour (default: under hours not full).
    #[arg(long)]
    all_partitions: bool,
    /// Also count the records in every minute's segment and compare them
    /// with the `stored` counter (reads frame headers; needs --data; safe
    /// while the archiver runs).
    #[arg(long, requires = "data")]
    verify_segments: bool,
    /// Judge as of this time (default: now).
    #[arg(long, value_name = "T")]
    now: Option<String>,
    /// Minutes ending within this of now are pending (too recent to judge).
    #[arg(long, value_name = "DURATION")]
    pending: Option<String>,
    /// Holes older than this can no longer be recovered (default 5d).
    #[arg(long, value_name = "DURATION")]
    recovery_window: Option<String>,
    /// A full minute with fewer stored activities than this share of its
    /// neighbours' median is suspect.
    #[arg(long, value_name = "RATIO", default_value_t = DEFAULT_SUSPECT_RATIO)]
    suspect_ratio: f64,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`| head`): end quietly, as a SIGPIPE would.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(141)
        }
        Err(e) => {
            let locked = e.downcast_ref::<OpenError>().is_some_and(|o| matches!(o, OpenError::Locked(_)));
            eprintln!("inspect-coverage: error: {e:#}");
            ExitCode::from(if locked { EXIT_LOCKED } else { EXIT_ERROR })
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    let wall_ms = now_ms();
    let now_ms = match &cli.now {
        Some(t) => parse_time_ms(t, wall_ms).context("--now")?,
        None => wall_ms,
    };
    let mut q = Query::new(0, 0);
    q.streams = cli.stream.clone();
    q.pending_secs = match &cli.pending {
        Some(d) => parse_duration(d).context("--pending")?,
        None => DEFAULT_PENDING_SECS,
    };
    q.recovery_window_secs = match &cli.recovery_window {
        Some(d) => parse_duration(d).context("--recovery-window")?,
        None => DEFAULT_RECOVERY_WINDOW_SECS,
    };
    q.suspect_ratio = cli.suspect_ratio;
    if !(0.0..=1.0).contains(&q.suspect_ratio) {
        bail!("--suspect-ratio must be between 0 and 1");
    }
    if cli.now.is_some() {
        q.now_secs = Some(now_ms.div_euclid(1000));
    }
    let to_given = cli.to.as_deref().map(|t| parse_time_ms(t, now_ms).context("--to")).transpose()?;
    let from_given = cli.from.as_deref().map(|t| parse_time_ms(t, now_ms).context("--from")).transpose()?;
    let mut to_ms = to_given.unwrap_or(now_ms);
    if to_given.is_none() && from_given.is_none() && cli.admin.is_none() {
        // No window given: the last 24 hours, or the 24 hours up to the
        // newest data when there is none in the last 24 hours.
        if let Some(newest) = cli.data.as_deref().and_then(newest_segment_end) {
            if newest * 1000 < now_ms - 86_400_000 {
                to_ms = (newest + 3599).div_euclid(3600) * 3600 * 1000;
            }
        }
    }
    let from_ms = from_given.unwrap_or(to_ms - 86_400_000);
    if from_ms >= to_ms {
        bail!("--from must be before --to");
    }
    q.from_secs = from_ms.div_euclid(1000);
    q.to_secs = (to_ms + 999).div_euclid(1000);
    if (q.to_secs - q.from_secs) > 400 * 86_400 {
        bail!("the window is longer than 400 days; narrow it with --from and --to");
    }

    let mut report = match (&cli.data, &cli.admin) {
        // No window given: the archiver picks it, by its own clock (which
        // may run scaled, as in the demo).
        (_, Some(url)) if to_given.is_none() && from_given.is_none() => admin::fetch_report_server_window(url, &q)?,
        (_, Some(url)) => admin::fetch_report(url, &q)?,
        (Some(data), None) => {
            let map = open_coverage(data)?;
            let r = build::build(&map, &q, "store", VERSION)?;
            drop(map); // let go of the store as early as possible
            r
        }
        (None, None) => unreachable!("clap requires --data or --admin"),
    };

    if let (true, Some(data)) = (cli.verify_segments, &cli.data) {
        verify::verify(&mut report, data)?;
    }
    if report.streams.is_empty() {
        bail!("no stream is registered in the coverage map: nothing has been archived with coverage here (`gapless import` claims none)");
    }
    if let Some(path) = &cli.svg {
        std::fs::write(path, svg::render(&report)).with_context(|| format!("write {}", path.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if cli.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let color = match cli.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        let style = Style { color, all_partitions: cli.all_partitions, summary_only: cli.summary };
        out.write_all(render(&report, style).as_bytes())?;
    }
    out.flush()?;
    Ok(report.exit_code.clamp(0, 2) as u8)
}
