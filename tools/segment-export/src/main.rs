//! `segment-export`: a time range of one stream of a gapless archive,
//! deduplicated and in time order, as NDJSON (the raw bytes as received,
//! optionally zstd-compressed) or Parquet (typed columns and the raw JSON),
//! with a manifest beside it that says what is complete. See the README.

mod fields;
mod manifest;
mod parquet_out;
mod progress;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use gapless_storage::reader::RangeReader;
use gapless_storage::{ActivityKind, Key, Minute};

use inspect_coverage::open::{open_coverage, OpenError};
use inspect_coverage::query::Query;
use inspect_coverage::schema::{Report, State};
use inspect_coverage::time::{now_ms, parse_duration, parse_time_ms, rfc3339_ms};

use crate::manifest::{CoverageInfo, Manifest};

/// Exit status when `--require-full` refuses the range.
const EXIT_REFUSED: u8 = 3;
/// Exit status for errors (including bad arguments).
const EXIT_ERROR: u8 = 1;

#[derive(Parser)]
#[command(
    name = "segment-export",
    version,
    about = "Exports a time range of a gapless archive to NDJSON or Parquet, deduplicated and in time order, with a coverage manifest",
    after_help = "Exit status: 0 exported, 1 error, 3 refused by --require-full (the range has holes or its coverage is unknown).\n\
Times: RFC 3339, 2017-07-18T23:25, 2017-07-18, @UNIXSECONDS, now, now-6h. The range is half-open: [from, to)."
)]
struct Cli {
    /// The archive's data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The stream's label.
    #[arg(long, value_name = "LABEL")]
    stream: String,
    /// Start of the range (activity time, inclusive).
    #[arg(long, value_name = "T")]
    from: String,
    /// End of the range (exclusive).
    #[arg(long, value_name = "T")]
    to: String,
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
    /// Output file (default: standard output). The manifest goes to FILE.manifest.json.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where to write the manifest (default: beside --out; none for standard output unless given).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// NDJSON compression: auto (zstd when --out ends in .zst), zstd, none.
    #[arg(long, value_enum, default_value_t = Compress::Auto)]
    compress: Compress,
    /// zstd level (NDJSON output and Parquet pages).
    #[arg(long, default_value_t = 3)]
    level: i32,
    /// Kinds to export, comma-separated: posts, deletes, likes, unlikes, compliance, activities (default: all).
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    kinds: Vec<String>,
    /// Refuse (exit 3) unless every minute of the range is full.
    #[arg(long)]
    require_full: bool,
    /// Compliance mode: drop Posts whose delete is in the archive.
    #[arg(long)]
    compliance: bool,
    /// Ask the running archiver's admin API for coverage instead of opening the store.
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// Judge coverage as of this time (default: now).
    #[arg(long, value_name = "T")]
    now: Option<String>,
    /// Minutes ending within this of now are pending (not full yet).
    #[arg(long, value_name = "DURATION")]
    pending: Option<String>,
    /// No progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Ndjson,
    Parquet,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Compress {
    Auto,
    Zstd,
    None,
}

/// An error that decides the exit status.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

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
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): end quietly, as a SIGPIPE would.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(141)
        }
        Err(e) => {
            eprintln!("segment-export: {e:#}");
            ExitCode::from(if e.downcast_ref::<Refused>().is_some() { EXIT_REFUSED } else { EXIT_ERROR })
        }
    }
}

/// Removes a file when dropped, unless its path was taken out.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Counts bytes written through it.
struct Counting<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The output file (or standard output), buffered, counting bytes.
type Out = BufWriter<Counting<Box<dyn Write + Send>>>;

enum Sink {
    Plain(Out),
    Zstd(zstd::stream::write::Encoder<'static, Out>),
    Parquet(Box<parquet_out::ParquetSink<Out>>),
}

impl Sink {
    fn push(&mut self, e: &gapless_storage::frame::Entry, raw: &[u8]) -> Result<()> {
        match self {
            Sink::Plain(w) => {
                w.write_all(raw)?;
                w.write_all(b"\n")?;
            }
            Sink::Zstd(w) => {
                w.write_all(raw)?;
                w.write_all(b"\n")?;
            }
            Sink::Parquet(p) => p.push(e, raw)?,
        }
        Ok(())
    }

    /// Finishes the output; returns the bytes written.
    fn finish(self) -> Result<u64> {
        let w = match self {
            Sink::Plain(w) => w,
            Sink::Zstd(z) => z.finish()?,
            Sink::Parquet(p) => p.finish()?,
        };
        let mut c = w.into_inner().map_err(|e| e.into_error())?;
        c.flush()?;
        Ok(c.bytes)
    }
}

fn parse_kinds(names: &[String]) -> Result<Vec<ActivityKind>> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(ActivityKind::ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        match ActivityKind::from_name(n) {
            Some(k) if !out.contains(&k) => out.push(k),
            Some(_) => {}
            None => bail!("--kinds {n:?}: use posts, deletes, likes, unlikes, compliance, activities (or all)"),
        }
    }
    Ok(out)
}

/// IDs of the Posts whose delete is in the stream's segments from
/// `from_minute` on (a delete never comes before its Post). Reads frame
/// headers only.
fn deleted_posts(data: &Path, stream: &str, from_minute: Minute) -> Result<HashSet<u64>> {
    let mut ids = HashSet::new();
    let segs = gapless_storage::store::stream_dir(data, stream).join("segments");
    let from_day = from_minute.day_dir();
    let from_stem = from_minute.file_stem();
    let Ok(days) = std::fs::read_dir(&segs) else { return Ok(ids) };
    let mut days: Vec<String> =
        days.flatten().filter_map(|d| d.file_name().into_string().ok()).filter(|d| *d >= from_day).collect();
    days.sort();
    for day in days {
        let Ok(files) = std::fs::read_dir(segs.join(&day)) else { continue };
        for f in files.flatten() {
            let name = f.file_name().into_string().unwrap_or_default();
            let Some(stem) = name.strip_suffix(".seg") else { continue };
            if stem < from_stem.as_str() {
                continue;
            }
            let frames = match gapless_storage::segment::read_headers(&f.path()) {
                Ok((_, frames)) => frames,
                Err(gapless_storage::Error::NotASegment { .. }) => continue, // being created right now
                Err(e) => return Err(e).with_context(|| format!("read {}", f.path().display())),
            };
            for fr in frames {
                for e in &fr.header.entries {
                    if let Key::PostDelete(id) = e.key {
                        ids.insert(id);
                    }
                }
            }
        }
    }
    Ok(ids)
}

/// The minutes in `[first, last]` that have a segment file, in order.
fn segment_minutes(data: &Path, stream: &str, first: Minute, last: Minute) -> Result<Vec<Minute>> {
    let segs = gapless_storage::store::stream_dir(data, stream).join("segments");
    let (first_day, last_day) = (first.day_dir(), last.day_dir());
    let (first_stem, last_stem) = (first.file_stem(), last.file_stem());
    let days = match std::fs::read_dir(&segs) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{}: no such stream in {}", stream, data.display()),
        Err(e) => return Err(e).with_context(|| format!("list {}", segs.display())),
    };
    let mut days: Vec<String> = days
        .flatten()
        .filter_map(|d| d.file_name().into_string().ok())
        .filter(|d| d.len() == 10 && *d >= first_day && *d <= last_day)
        .collect();
    days.sort();
    let mut out = Vec::new();
    for day in days {
        let dir = segs.join(&day);
        for f in std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))?.flatten() {
            let name = f.file_name().into_string().unwrap_or_default();
            let Some(stem) = name.strip_suffix(".seg") else { continue };
            if stem < first_stem.as_str() || stem > last_stem.as_str() {
                continue;
            }
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(stem, "%Y%m%dT%H%MZ") {
                out.push(Minute::of_secs(t.and_utc().timestamp()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Longest range whose coverage is reported minute by minute (as inspect-coverage).
const MAX_COVERAGE_MINUTES: i64 = 400 * 1440;

/// Coverage of the range: from the store, the archiver, or unknown.
fn coverage(cli: &Cli, q: &Query) -> Result<CoverageInfo> {
    if (q.to_secs - q.from_secs) / 60 > MAX_COVERAGE_MINUTES {
        return Ok(CoverageInfo::Unknown(
            "unknown (the range is longer than 400 days: export it in parts for per-minute coverage)".to_string(),
        ));
    }
    if let Some(url) = &cli.admin {
        return Ok(CoverageInfo::Known(Box::new(inspect_coverage::admin::fetch_report(url, q)?)));
    }
    match open_coverage(&cli.data) {
        Ok(map) => {
            if map.partitions(&cli.stream)?.is_none() {
                return Ok(CoverageInfo::Unknown(format!(
                    "unknown (stream {:?} is not in the coverage map: no coverage was ever claimed for it)",
                    cli.stream
                )));
            }
            Ok(CoverageInfo::Known(Box::new(inspect_coverage::build::build(
                &map,
                q,
                "store",
                inspect_coverage::VERSION,
            )?)))
        }
        Err(OpenError::Locked(_)) => Ok(CoverageInfo::Unknown("unknown (archiver running; use --admin)".to_string())),
        Err(e) => Err(e.into()),
    }
}

fn describe_gaps(r: &Report) -> String {
    let mut parts = Vec::new();
    for s in &r.streams {
        let not_full: Vec<&str> =
            s.minutes.iter().filter(|m| m.coverage != State::Full).map(|m| m.t.as_str()).collect();
        if not_full.is_empty() {
            continue;
        }
        let shown: Vec<&str> = not_full.iter().take(5).copied().collect();
        parts.push(format!(
            "{} of {} minutes are not full (first: {}{}); holes: {}",
            not_full.len(),
            s.minutes.len(),
            shown.join(", "),
            if not_full.len() > 5 { ", ..." } else { "" },
            s.holes
                .iter()
                .take(5)
                .map(|h| format!("{} .. {} ({})", h.start, h.end, h.state.as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    parts.join("\n")
}

fn run(cli: Cli) -> Result<()> {
    let wall = now_ms();
    let now = match &cli.now {
        Some(t) => parse_time_ms(t, wall).context("--now")?,
        None => wall,
    };
    let from_ms = parse_time_ms(&cli.from, now).context("--from")?;
    let to_ms = parse_time_ms(&cli.to, now).context("--to")?;
    if from_ms >= to_ms {
        bail!("--from must be before --to");
    }
    gapless_storage::store::check_label(&cli.stream)?;
    if !cli.data.is_dir() {
        bail!("{}: no such data directory", cli.data.display());
    }
    let kinds = parse_kinds(&cli.kinds)?;
    let compress = match (cli.format, cli.compress) {
        (Format::Parquet, Compress::Zstd) => {
            bail!("--compress applies to NDJSON; Parquet pages are always zstd-compressed")
        }
        (Format::Parquet, _) => false,
        (_, Compress::Zstd) => true,
        (_, Compress::None) => false,
        (_, Compress::Auto) => cli.out.as_ref().and_then(|p| p.extension()).is_some_and(|e| e == "zst" || e == "zstd"),
    };

    // Coverage first: --require-full refuses before anything is written.
    let mut q = Query::new(from_ms.div_euclid(1000), (to_ms + 999).div_euclid(1000));
    q.streams = vec![cli.stream.clone()];
    q.now_secs = Some(now.div_euclid(1000));
    if let Some(p) = &cli.pending {
        q.pending_secs = parse_duration(p).context("--pending")?;
    }
    let cov = coverage(&cli, &q)?;
    if cli.require_full {
        match &cov {
            CoverageInfo::Known(r) => {
                let gaps = describe_gaps(r);
                if !gaps.is_empty() {
                    return Err(
                        Refused(format!("--require-full: the range has holes, nothing exported:\n{gaps}")).into()
                    );
                }
            }
            CoverageInfo::Unknown(why) => {
                return Err(Refused(format!("--require-full: coverage is {why}; nothing exported")).into());
            }
        }
    }

    let deleted =
        if cli.compliance { Some(deleted_posts(&cli.data, &cli.stream, Minute::of_ms(from_ms))?) } else { None };

    // The output: a temporary name, renamed when complete.
    let partial = cli.out.as_ref().map(|p| {
        let mut s = p.as_os_str().to_owned();
        s.push(".partial");
        PathBuf::from(s)
    });
    let raw_out: Box<dyn Write + Send> = match &partial {
        Some(p) => Box::new(File::create(p).with_context(|| format!("create {}", p.display()))?),
        None => Box::new(std::io::stdout()),
    };
    // An export that fails leaves no half-written file behind.
    let mut cleanup = RemoveOnDrop(partial.clone());
    let buffered = BufWriter::with_capacity(1 << 20, Counting { inner: raw_out, bytes: 0 });
    let mut sink = match cli.format {
        Format::Parquet => Sink::Parquet(Box::new(parquet_out::ParquetSink::new(buffered, cli.level)?)),
        Format::Ndjson if compress => Sink::Zstd(zstd::stream::write::Encoder::new(buffered, cli.level)?),
        Format::Ndjson => Sink::Plain(buffered),
    };

    // Only the minutes that have a segment: a range of years costs a
    // directory listing, not a look-up per minute.
    let minutes = segment_minutes(&cli.data, &cli.stream, Minute::of_ms(from_ms), Minute::of_ms(to_ms - 1))?;
    let mut progress = progress::Progress::new(minutes.len() as u64, !cli.quiet);
    let mut exported: BTreeMap<i64, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut records, mut raw_bytes, mut dropped) = (0u64, 0u64, 0u64);
    let mut unverified = Vec::new();
    let mut reader = RangeReader::new(&cli.data, &cli.stream, from_ms..to_ms);
    for (done, &m) in minutes.iter().enumerate() {
        let batch = match reader.read_minute(m) {
            Ok(b) => b,
            // A segment the archiver is creating this instant has no header yet.
            Err(gapless_storage::Error::NotASegment { reason, .. }) if reason.contains("shorter than its header") => {
                continue
            }
            Err(e) => return Err(e).with_context(|| format!("read minute {m}")),
        };
        if let Some(r) = &batch.unverified {
            // Never stop silently: said on stderr and in the manifest.
            eprintln!(
                "segment-export: minute {m}: {} bytes from offset {} do not verify (damage, or a frame being written); `gapless verify` repairs damage",
                r.end - r.start,
                r.start
            );
            unverified.push((m, r.start, r.end - r.start));
        }
        let mut n = 0u64;
        for (e, b) in batch.iter() {
            if !kinds.contains(&e.kind) {
                continue;
            }
            if let (Some(d), Key::Post(id)) = (&deleted, e.key) {
                if d.contains(&id) {
                    dropped += 1;
                    continue;
                }
            }
            sink.push(e, b)?;
            n += 1;
            raw_bytes += b.len() as u64 + 1;
            *by_kind.entry(e.kind.name()).or_default() += 1;
        }
        if n > 0 {
            exported.insert(m.0, n);
        }
        records += n;
        progress.update(done as u64 + 1, records, raw_bytes);
    }
    let bytes = sink.finish()?;
    progress.finish();
    if let (Some(p), Some(out)) = (&partial, &cli.out) {
        std::fs::rename(p, out).with_context(|| format!("rename {} to {}", p.display(), out.display()))?;
    }
    cleanup.0 = None;

    let manifest_path = cli.manifest.clone().or_else(|| {
        cli.out.as_ref().map(|o| {
            let mut s = o.as_os_str().to_owned();
            s.push(".manifest.json");
            PathBuf::from(s)
        })
    });
    let manifest = Manifest::new(manifest::Args {
        data: &cli.data,
        stream: &cli.stream,
        from_ms,
        to_ms,
        format: if cli.format == Format::Parquet { "parquet" } else { "ndjson" },
        compression: match (cli.format, compress) {
            (Format::Parquet, _) => "zstd (parquet pages)",
            (_, true) => "zstd",
            _ => "none",
        },
        out: cli.out.as_deref(),
        bytes,
        kinds: &kinds,
        compliance: deleted.as_ref().map(|d| (d.len() as u64, dropped)),
        records,
        raw_bytes,
        by_kind: &by_kind,
        exported: &exported,
        coverage: &cov,
        unverified: &unverified,
    });
    match &manifest_path {
        Some(p) => {
            let text = serde_json::to_string_pretty(&manifest)?;
            std::fs::write(p, text + "\n").with_context(|| format!("write {}", p.display()))?;
        }
        None => eprintln!("segment-export: no manifest written (output is standard output; give --manifest FILE)"),
    }
    if !cli.quiet && cli.out.is_some() {
        eprintln!(
            "segment-export: {records} records ({} MB raw) from {} .. {} to {} ({} bytes){}; coverage: {}",
            raw_bytes / 1_000_000,
            rfc3339_ms(from_ms),
            rfc3339_ms(to_ms),
            cli.out.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            bytes,
            if cli.compliance { format!(", {dropped} deleted Posts dropped") } else { String::new() },
            manifest.coverage.summary
        );
    }
    Ok(())
}
