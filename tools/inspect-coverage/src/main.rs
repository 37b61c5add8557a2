//! `inspect-coverage`: the coverage of a gapless archive, for people
//! (heatmap and summary), for programs (`--json`), for monitoring (the
//! exit status) and as an image (`--svg`). See the README.
//!
//! With `--data` alone it works whether or not the archiver runs: it opens
//! the coverage store read-only, or, while an archiver holds it, asks that
//! archiver at the URL it left in the data directory (`gapless-client`).
//! `--data s3://BUCKET/PREFIX` reads an archive in a bucket, with no
//! archiver anywhere: the coverage of its sites (their union) is fetched
//! into a temporary data directory and reported as a local one's; segments
//! only with `--verify-segments`; only the window's days, and with no
//! window given only the last day's unless it holds no data
//! (`from_bucket`).

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use gapless_client::bucket::{bucket_url, fetch, newest_end, Replica, Want};
use gapless_client::exit::{Exit, Usage};
use gapless_client::open::{locate, open_coverage, Archiver, Source};
use gapless_client::segments::newest_segment_end;
use gapless_report::query::{Query, DEFAULT_PENDING_SECS, DEFAULT_RECOVERY_WINDOW_SECS, DEFAULT_SUSPECT_RATIO};
use gapless_storage::Minute;
use gapless_time::{parse_duration_secs, parse_time_ms};
use inspect_coverage::render::{render, Style};
use inspect_coverage::{svg, verify, VERSION};

/// The grammar of `T` and `DURATION` (gapless-time's, as everywhere).
const GRAMMAR: &str = "Times (UTC): RFC 3339 (2017-07-18T23:25:04Z), 2017-07-18T23:25, 2017-07-18T23, 2017-07-18, \
@UNIXSECONDS, now, now-6h (or -6h), now+1h. Durations: 90 (seconds), 250ms, 45s, 30m, 6h, 5d, 1w, 1h30m, 1.5h.";

#[derive(Parser)]
#[command(
    name = "inspect-coverage",
    version,
    about = "Shows which minutes a gapless archive provably holds: heatmap, holes, jobs, lost minutes, audit",
    after_help = format!("{}\n{GRAMMAR}", Exit::HELP)
)]
struct Cli {
    /// The archive's data directory. While an archiver holds it, the tool
    /// asks that archiver (at the URL in DIR/admin.url). Or the archive in
    /// a bucket, s3://BUCKET/PREFIX (credentials and endpoint from the
    /// AWS_* environment variables).
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

const DAY_MS: i64 = 86_400_000;

/// The end of the window when none is given: now (the window is the last
/// 24 hours), or, when the archive's newest data ends (`newest`, Unix
/// seconds) more than a day ago, the end of that data's hour.
fn default_to(newest: Option<i64>, now_ms: i64) -> i64 {
    match newest {
        Some(n) if n * 1000 < now_ms - DAY_MS => (n + 3599).div_euclid(3600) * 3600 * 1000,
        _ => now_ms,
    }
}

/// The minutes that `[from_ms, to_ms)` touches (at least one).
fn span(from_ms: i64, to_ms: i64) -> Range<Minute> {
    Minute::of_ms(from_ms)..Minute(Minute::of_ms(to_ms.max(from_ms + 1) - 1).0 + 1)
}

/// What the report needs of the archive in the bucket at `url`: the
/// coverage of the window's days (`window`, ms), with segments for
/// `--verify-segments`. With no window given, the last 24 hours' days
/// first: when they hold data, the default window is theirs; only when
/// they hold none is every day's coverage fetched, to find the newest
/// data (and then, for `--verify-segments`, the segments of its day).
fn from_bucket(url: &str, cli: &Cli, window: Option<(i64, i64)>, now_ms: i64) -> Result<Replica> {
    let stream = match cli.stream.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    let want = |minutes, segments| Want { stream: stream.clone(), minutes, segments };
    let segments = cli.verify_segments;
    if let Some((from, to)) = window {
        return Ok(fetch(url, &want(Some(span(from, to)), segments))?);
    }
    let newest = |r: &Replica| newest_end(&open_coverage(r.root())?);
    let recent = fetch(url, &want(Some(span(now_ms - DAY_MS, now_ms)), segments))?;
    if newest(&recent)?.is_some_and(|n| n * 1000 >= now_ms - DAY_MS) {
        return Ok(recent);
    }
    drop(recent);
    let all = fetch(url, &want(None, false))?;
    if !segments {
        return Ok(all);
    }
    let to = default_to(newest(&all)?, now_ms);
    drop(all);
    Ok(fetch(url, &want(Some(span(to - DAY_MS, to)), true))?)
}

fn main() -> ExitCode {
    gapless_client::exit::run_tool("inspect-coverage", run)
}

fn run(cli: Cli) -> Result<Exit> {
    let wall_ms = gapless_client::now_ms();
    let now_ms = match &cli.now {
        Some(t) => parse_time_ms(t, wall_ms).context("--now")?,
        None => wall_ms,
    };
    let mut q = Query::new(0, 0);
    q.streams = cli.stream.clone();
    q.pending_secs = match &cli.pending {
        Some(d) => parse_duration_secs(d).context("--pending")?,
        None => DEFAULT_PENDING_SECS,
    };
    q.recovery_window_secs = match &cli.recovery_window {
        Some(d) => parse_duration_secs(d).context("--recovery-window")?,
        None => DEFAULT_RECOVERY_WINDOW_SECS,
    };
    q.suspect_ratio = cli.suspect_ratio;
    if !(0.0..=1.0).contains(&q.suspect_ratio) {
        return Err(Usage("--suspect-ratio must be between 0 and 1".into()).into());
    }
    if cli.now.is_some() {
        q.now_secs = Some(now_ms.div_euclid(1000));
    }
    let to_given = cli.to.as_deref().map(|t| parse_time_ms(t, now_ms).context("--to")).transpose()?;
    let from_given = cli.from.as_deref().map(|t| parse_time_ms(t, now_ms).context("--from")).transpose()?;
    let window_given = to_given.is_some() || from_given.is_some();

    // An archive in a bucket: what the report needs of it, in a temporary
    // data directory that lives until the end (`replica`).
    let bucket = cli.data.as_deref().and_then(bucket_url);
    let replica = match bucket {
        Some(url) if cli.admin.is_none() || cli.verify_segments => {
            let window = window_given.then(|| {
                let to = to_given.unwrap_or(now_ms);
                (from_given.unwrap_or(to - DAY_MS), to)
            });
            Some(from_bucket(url, &cli, window, now_ms)?)
        }
        _ => None,
    };
    let data: Option<&Path> = replica.as_ref().map(|r| r.root()).or(cli.data.as_deref());

    // The store, or the archiver that holds it (named, or found).
    let source = match (&cli.admin, data) {
        (Some(url), _) => Source::Archiver(Archiver { url: url.clone(), found_in: None }),
        (None, Some(data)) => locate(data)?,
        (None, None) => return Err(Usage("give --data DIR or --admin URL".into()).into()),
    };

    let mut to_ms = to_given.unwrap_or(now_ms);
    if let (false, Source::Store(map), Some(data)) = (window_given, &source, data) {
        // From a bucket, the newest minute its manifests cover or count.
        let newest = if bucket.is_some() { newest_end(map)? } else { newest_segment_end(data)? };
        to_ms = default_to(newest, now_ms);
    }
    let from_ms = from_given.unwrap_or(to_ms - DAY_MS);
    if from_ms >= to_ms {
        return Err(Usage("--from must be before --to".into()).into());
    }
    q.from_secs = from_ms.div_euclid(1000);
    q.to_secs = (to_ms + 999).div_euclid(1000);
    if (q.to_secs - q.from_secs) > 400 * 86_400 {
        return Err(Usage("the window is longer than 400 days; narrow it with --from and --to".into()).into());
    }

    // No window given to an archiver: it picks it, by its own clock (which
    // may run scaled, as in the demo).
    let mut report = source.report(&q, !window_given, VERSION)?;
    drop(source); // let go of the store as early as possible

    if let (true, Some(data)) = (cli.verify_segments, data) {
        verify::verify(&mut report, data)?;
    }
    if report.streams.is_empty() {
        return Err(gapless_client::Error::NoStream(
            "no stream is registered in the coverage map: nothing has been archived with coverage here \
             (`gapless import` claims none)"
                .into(),
        )
        .into());
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
    Ok(Exit::of_verdict(report.exit_code))
}
