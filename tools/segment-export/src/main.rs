//! `segment-export`: a time range of one stream of a gapless archive,
//! deduplicated and in time order, as NDJSON (the raw bytes as received,
//! optionally zstd-compressed) or Parquet (typed columns and the raw JSON),
//! with a manifest beside it that says what is complete. See the README.
//!
//! Coverage comes from the store, opened read-only, or, while an archiver
//! holds it, from that archiver (the URL it left in the data directory, or
//! `--admin`): `gapless-client`. Segments are plain files, read directly
//! whether or not the archiver runs; which minutes have one is asked of
//! `gapless_storage::layout`.
//!
//! `--data s3://BUCKET/PREFIX` exports from an archive in a bucket, with no
//! archiver anywhere: the stream's minutes of the range and its sites'
//! compliance ledgers (every minute instead, unless `--raw`, when a site
//! has no ledger in the bucket), with their
//! coverage, are fetched from the bucket's sites (their union) into a
//! temporary data directory (`gapless_client::bucket`), read as a local
//! one, and removed when done. With `--require-full`, the coverage alone
//! is fetched first, so that a refusal downloads no segment.
//!
//! `--format parquet --partitioned --out DIR|s3://BUCKET/PREFIX` writes a
//! Hive-partitioned dataset instead of one file (`hive`). From a local
//! data directory, a range with minutes evicted to the bucket is refused
//! (`gapless_client::segments::evicted_minutes`): they would read as empty.
//!
//! Compliance is applied by default (`compliance`: the stream's ledger
//! decides what is left out or rewritten); `--raw` exports as received.
//!
//! Minutes are read, verified, decompressed and ordered on two worker
//! threads, a few minutes ahead at most (`read`), while the main thread
//! filters and writes them through a 1 MiB buffer, or around it for large
//! minutes (`out`); the output is the same bytes as a sequential reading.

mod compliance;
mod fields;
mod hive;
mod manifest;
mod out;
mod parquet_out;
mod progress;
mod read;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use gapless_client::bucket::{bucket_url, Replica, Want};
use gapless_client::exit::{Exit, Refused, Usage};
use gapless_client::open::{locate, Archiver, Source};
use gapless_report::query::Query;
use gapless_report::schema::{Report, State};
use gapless_storage::activity::{EARLIEST_MS, LATEST_MS};
use gapless_storage::{layout, ActivityKind, Minute};
use gapless_time::{parse_duration_secs, parse_time_ms, rfc3339_ms};

use crate::manifest::{CoverageInfo, Manifest};
use crate::out::Out;
use crate::read::Decision;

/// The grammar of `T` and `DURATION` (gapless-time's, as everywhere).
const GRAMMAR: &str = "Times (UTC): RFC 3339 (2017-07-18T23:25:04Z), 2017-07-18T23:25, 2017-07-18T23, 2017-07-18, \
@UNIXSECONDS, now, now-6h (or -6h), now+1h; the range is half-open: [from, to). \
Durations: 90 (seconds), 250ms, 45s, 30m, 6h, 5d, 1w, 1h30m, 1.5h.";

#[derive(Parser)]
#[command(
    name = "segment-export",
    version,
    about = "Exports a time range of a gapless archive to NDJSON or Parquet, deduplicated and in time order, with a coverage manifest",
    after_help = format!("{}\n{GRAMMAR}", Exit::HELP)
)]
struct Cli {
    /// The archive's data directory. While an archiver holds it, coverage
    /// comes from that archiver (at the URL in DIR/admin.url). Or the
    /// archive in a bucket, s3://BUCKET/PREFIX (credentials and endpoint
    /// from the AWS_* environment variables).
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
    /// With --partitioned, the dataset's root: a directory or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// With --format parquet: write a Hive-partitioned dataset under --out
    /// (stream=LABEL/date=YYYY-MM-DD/hour=HH/part-00000.parquet, manifest
    /// in _manifests/), replacing the range's partitions. --from and --to
    /// on whole hours.
    #[arg(long)]
    partitioned: bool,
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
    /// The archive as received: no compliance applied. By default the
    /// stream's compliance ledger is applied (deleted Posts and Posts of
    /// deleted, protected or suspended users left out, unliked likes left
    /// out, geo scrubbed, withheld Posts per --withheld).
    #[arg(long)]
    raw: bool,
    /// Withheld Posts: drop (leave them out) or keep (with
    /// withheld_in_countries set to every country that applies).
    #[arg(long, value_enum, default_value_t = compliance::Withheld::Drop, value_name = "drop|keep")]
    withheld: compliance::Withheld,
    /// Compliance is applied by default now (kept so that old command lines work).
    #[arg(long, hide = true, conflicts_with = "raw")]
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
    /// No progress on stderr (a bar on a terminal, else one line per step).
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

fn main() -> ExitCode {
    gapless_client::exit::run_tool("segment-export", |cli| run(cli).map(|()| Exit::Ok))
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

enum Sink {
    Plain(Out),
    Zstd(zstd::stream::write::Encoder<'static, Out>),
    Parquet(Box<parquet_out::ParquetSink<Out>>),
    Hive(Box<hive::HiveSink>),
}

impl Sink {
    /// Finishes the output; returns the bytes written.
    fn finish(self) -> Result<u64> {
        let w = match self {
            Sink::Plain(w) => w,
            Sink::Zstd(z) => z.finish()?,
            Sink::Parquet(p) => p.finish()?,
            Sink::Hive(_) => return Err(anyhow::anyhow!("a partitioned dataset is finished with HiveSink::finish")),
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
            None => {
                return Err(Usage(format!(
                    "--kinds {n:?}: use posts, deletes, likes, unlikes, compliance, activities (or all)"
                ))
                .into())
            }
        }
    }
    Ok(out)
}

/// Longest range whose coverage is reported minute by minute (as inspect-coverage).
const MAX_COVERAGE_MINUTES: i64 = 400 * 1440;

/// Coverage of the range: from the store of `data`, the archiver, or unknown.
fn coverage(cli: &Cli, data: &Path, q: &Query) -> Result<CoverageInfo> {
    if (q.to_secs - q.from_secs) / 60 > MAX_COVERAGE_MINUTES {
        return Ok(CoverageInfo::Unknown(
            "unknown (the range is longer than 400 days: export it in parts for per-minute coverage)".to_string(),
        ));
    }
    let source = match &cli.admin {
        Some(url) => Source::Archiver(Archiver { url: url.clone(), found_in: None }),
        None => locate(data)?,
    };
    if let Source::Store(map) = &source {
        if map.partitions(&cli.stream)?.is_none() {
            return Ok(CoverageInfo::Unknown(format!(
                "unknown (stream {:?} is not in the coverage map: no coverage was ever claimed for it)",
                cli.stream
            )));
        }
    }
    Ok(CoverageInfo::Known(Box::new(source.report(q, false, env!("CARGO_PKG_VERSION"))?)))
}

/// The stream's minutes of `[from_ms, to_ms)` in the bucket at `url`, with
/// segments or not; with `all`, every minute of the stream (compliance
/// without a ledger in the bucket reads its events from every segment).
fn fetch(cli: &Cli, url: &str, from_ms: i64, to_ms: i64, segments: bool, all: bool) -> Result<Replica> {
    let minutes = if all {
        Minute::of_ms(EARLIEST_MS)..Minute::of_ms(LATEST_MS)
    } else {
        Minute::of_ms(from_ms)..Minute(Minute::of_ms(to_ms - 1).0 + 1)
    };
    let want = Want { stream: Some(cli.stream.clone()), minutes: Some(minutes), segments };
    let replica = gapless_client::bucket::fetch(url, &want)?;
    if segments && !cli.quiet {
        eprintln!(
            "segment-export: fetched {} segments ({} bytes) of sites {} from {url}",
            replica.objects,
            replica.bytes,
            if replica.sites.is_empty() { "(none)".to_string() } else { replica.sites.join(", ") }
        );
    }
    Ok(replica)
}

/// The range from the bucket, and, unless `--raw`, the stream's compliance
/// ledger: the union of its sites' copies, or, when a site has none (an
/// archive uploaded before ledgers), every minute of the stream.
fn fetch_for_export(cli: &Cli, url: &str, from_ms: i64, to_ms: i64) -> Result<Replica> {
    let replica = fetch(cli, url, from_ms, to_ms, true, false)?;
    let ledger = layout::ledger_path(&layout::stream_dir(replica.root(), &cli.stream));
    if cli.raw || ledger.exists() || replica.sites.is_empty() {
        return Ok(replica);
    }
    fetch(cli, url, from_ms, to_ms, true, true)
}

/// `--require-full`: refuses (exit 3) unless every minute of the range is full.
fn require_full(cov: &CoverageInfo) -> Result<()> {
    match cov {
        CoverageInfo::Known(r) => {
            let gaps = describe_gaps(r);
            if !gaps.is_empty() {
                return Err(Refused(format!("--require-full: the range has holes, nothing exported:\n{gaps}")).into());
            }
        }
        CoverageInfo::Unknown(why) => {
            return Err(Refused(format!("--require-full: coverage is {why}; nothing exported")).into());
        }
    }
    Ok(())
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
    let wall = gapless_client::now_ms();
    let now = match &cli.now {
        Some(t) => parse_time_ms(t, wall).context("--now")?,
        None => wall,
    };
    let from_ms = parse_time_ms(&cli.from, now).context("--from")?;
    let to_ms = parse_time_ms(&cli.to, now).context("--to")?;
    if from_ms >= to_ms {
        return Err(Usage("--from must be before --to".into()).into());
    }
    layout::check_label(&cli.stream)?;
    let bucket = bucket_url(&cli.data);
    if bucket.is_none() && !cli.data.is_dir() {
        return Err(gapless_client::Error::NoDataDir(cli.data.clone()).into());
    }
    let kinds = parse_kinds(&cli.kinds)?;
    let out_bucket = cli.out.as_deref().and_then(bucket_url);
    if cli.partitioned {
        match (cli.format, &cli.out) {
            (Format::Parquet, Some(_)) => hive::check_range(from_ms, to_ms)?,
            _ => {
                return Err(
                    Usage("--partitioned needs --format parquet and --out DIR or s3://BUCKET/PREFIX".into()).into()
                )
            }
        }
    } else if out_bucket.is_some() {
        return Err(
            Usage("--out s3://... writes a partitioned dataset: add --format parquet --partitioned".into()).into()
        );
    }
    let compress = match (cli.format, cli.compress) {
        (Format::Parquet, Compress::Zstd) => {
            return Err(Usage("--compress applies to NDJSON; Parquet pages are always zstd-compressed".into()).into())
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
        q.pending_secs = parse_duration_secs(p).context("--pending")?;
    }
    // From a bucket: its copy of what is exported, in a temporary data
    // directory (`replica`, removed when done). Coverage and data both
    // come from that one copy; with --require-full a coverage-only copy
    // decides first, so that a refusal fetches no segment.
    let replica = match bucket {
        Some(url) => {
            if cli.require_full && cli.admin.is_none() {
                let precheck = fetch(&cli, url, from_ms, to_ms, false, false)?;
                require_full(&coverage(&cli, precheck.root(), &q)?)?;
            }
            Some(fetch_for_export(&cli, url, from_ms, to_ms)?)
        }
        None => None,
    };
    let data: &Path = replica.as_ref().map_or(cli.data.as_path(), |r| r.root());
    let cov = coverage(&cli, data, &q)?;
    if cli.require_full {
        require_full(&cov)?;
    }

    // Only the minutes that have a segment: a range of years costs a
    // directory listing, not a look-up per minute.
    let stream_dir = layout::stream_dir(data, &cli.stream);
    if !stream_dir.is_dir() {
        let why = format!("{}: no such stream in {}", cli.stream, cli.data.display());
        return Err(gapless_client::Error::NoStream(why).into());
    }
    let (first, end) = (Minute::of_ms(from_ms), Minute(Minute::of_ms(to_ms - 1).0 + 1));
    let mut applier = if cli.raw { None } else { Some(compliance::Applier::load(&stream_dir, cli.withheld)?) };
    if replica.is_none() {
        // Minutes evicted to the bucket would read as empty here: refused
        // (without a ledger, every minute: compliance events may be there).
        let everywhere = applier.as_ref().is_some_and(|a| !a.has_ledger());
        let (from, to) = if everywhere { (Minute::of_ms(EARLIEST_MS), Minute::of_ms(LATEST_MS)) } else { (first, end) };
        let evicted = gapless_client::segments::evicted_minutes(data, &cli.stream, from, to)?;
        if let Some(m) = evicted.first() {
            let (data, stream, minutes) = (cli.data.clone(), cli.stream.clone(), evicted.len());
            return Err(gapless_client::Error::Evicted { data, stream, minutes, first: m.to_string() }.into());
        }
    }
    let minutes = layout::minutes_with_segments(&stream_dir, first, end)?;

    // The output: a temporary name, renamed when complete.
    let partial = cli.out.as_ref().filter(|_| !cli.partitioned).map(|p| {
        let mut s = p.as_os_str().to_owned();
        s.push(".partial");
        PathBuf::from(s)
    });
    let file = match &partial {
        Some(p) => Some(File::create(p).with_context(|| format!("create {}", p.display()))?),
        None => None,
    };
    // An export that fails leaves no half-written file behind.
    let mut cleanup = RemoveOnDrop(partial.clone());
    let buffered = out::new(file).context("standard output")?;
    let mut sink = match (cli.format, &cli.out) {
        (Format::Parquet, Some(out)) if cli.partitioned => {
            Sink::Hive(Box::new(hive::HiveSink::new(out, &cli.stream, cli.level, from_ms, to_ms)?))
        }
        (Format::Parquet, _) => Sink::Parquet(Box::new(parquet_out::ParquetSink::new(buffered, cli.level)?)),
        (Format::Ndjson, _) if compress => Sink::Zstd(zstd::stream::write::Encoder::new(buffered, cli.level)?),
        (Format::Ndjson, _) => Sink::Plain(buffered),
    };

    let mut progress = progress::Progress::new(minutes.len() as u64, !cli.quiet);
    let mut exported: BTreeMap<i64, u64> = BTreeMap::new();
    // Records by kind, indexed by the kind's number (counted on the hot path).
    let mut by_kind_n = [0u64; 8];
    let (mut records, mut raw_bytes) = (0u64, 0u64);
    let mut unverified = Vec::new();
    let mut done = 0u64;
    // Nothing in the ledger can change a record: the fast path (runs
    // written where they are) stays open.
    let applier_idle = applier.as_ref().is_none_or(|a| a.is_idle());
    // Minutes are read and decompressed on worker threads, in order, while
    // this thread writes (`read`).
    read::read_minutes(&stream_dir, &minutes, from_ms..to_ms, |m, batch| {
        done += 1;
        let batch = match batch {
            Ok(b) => b,
            // A segment the archiver is creating this instant has no header yet.
            Err(gapless_storage::Error::NotASegment { reason, .. }) if reason.contains("shorter than its header") => {
                return Ok(())
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
        let mut decide = |e: &gapless_storage::frame::Entry, b: &[u8]| {
            if !kinds.contains(&e.kind) {
                return Decision::Skip;
            }
            let d = applier.as_mut().map_or(Decision::Keep, |a| a.decide(e, b));
            let len = match &d {
                Decision::Skip => return d,
                Decision::Keep => b.len(),
                Decision::Replace(r) => r.len(),
            };
            n += 1;
            raw_bytes += len as u64 + 1;
            by_kind_n[e.kind as usize] += 1;
            d
        };
        match &mut sink {
            Sink::Plain(w) if applier_idle => {
                // The runs of the minute, written where they are (`out`).
                let mut runs = Vec::new();
                batch
                    .for_each_run(
                        |e, b| matches!(decide(e, b), Decision::Keep),
                        |run| {
                            runs.push(std::io::IoSlice::new(run));
                            Ok::<(), std::convert::Infallible>(())
                        },
                    )
                    .unwrap_or_else(|e| match e {});
                out::write_slices(w, &mut runs)?;
            }
            Sink::Plain(w) => batch.for_each_decided(decide, |run| w.write_all(run))?,
            Sink::Zstd(w) => batch.for_each_decided(decide, |run| w.write_all(run))?,
            Sink::Parquet(p) => {
                for (e, b) in batch.iter() {
                    match decide(e, b) {
                        Decision::Skip => {}
                        Decision::Keep => p.push(e, b)?,
                        Decision::Replace(r) => p.push(e, &r)?,
                    }
                }
            }
            Sink::Hive(h) => {
                for (e, b) in batch.iter() {
                    match decide(e, b) {
                        Decision::Skip => {}
                        Decision::Keep => h.push(e, b)?,
                        Decision::Replace(r) => h.push(e, &r)?,
                    }
                }
            }
        }
        if n > 0 {
            exported.insert(m.0, n);
        }
        records += n;
        progress.update(done, records, raw_bytes);
        Ok(())
    })?;
    let by_kind: BTreeMap<&'static str, u64> = ActivityKind::ALL
        .iter()
        .filter(|k| by_kind_n[**k as usize] > 0)
        .map(|k| (k.name(), by_kind_n[*k as usize]))
        .collect();
    let (bytes, dataset) = match sink {
        Sink::Hive(mut h) => {
            let partitions = h.finish()?;
            (partitions.iter().map(|p| p.bytes).sum(), Some((h, partitions)))
        }
        sink => (sink.finish()?, None),
    };
    progress.finish();
    if let (Some(p), Some(out)) = (&partial, &cli.out) {
        std::fs::rename(p, out).with_context(|| format!("rename {} to {}", p.display(), out.display()))?;
    }
    cleanup.0 = None;

    let manifest_path = cli.manifest.clone().or_else(|| {
        cli.out.as_ref().filter(|_| !cli.partitioned).map(|o| {
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
        out: dataset.as_ref().map(|(h, _)| h.shown()).or_else(|| cli.out.as_ref().map(|p| p.display().to_string())),
        partitions: dataset.as_ref().map(|(_, p)| p.clone()),
        bytes,
        kinds: &kinds,
        compliance: applier.as_ref().map_or_else(compliance::ManifestCompliance::raw, |a| a.manifest()),
        records,
        raw_bytes,
        by_kind: &by_kind,
        exported: &exported,
        coverage: &cov,
        unverified: &unverified,
    });
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    if let Some(p) = &manifest_path {
        std::fs::write(p, &text).with_context(|| format!("write {}", p.display()))?;
    }
    // A dataset's manifest goes last, beside its files.
    let dataset_manifest = match &dataset {
        Some((h, _)) => Some(h.write_manifest(&text)?),
        None => None,
    };
    if manifest_path.is_none() && dataset_manifest.is_none() {
        eprintln!("segment-export: no manifest written (output is standard output; give --manifest FILE)");
    }
    if !cli.quiet && cli.out.is_some() {
        eprintln!(
            "segment-export: {records} records ({} MB raw) from {} .. {} to {} ({} bytes){}; coverage: {}",
            raw_bytes / 1_000_000,
            rfc3339_ms(from_ms),
            rfc3339_ms(to_ms),
            manifest.output.clone().unwrap_or_default(),
            bytes,
            applier
                .as_ref()
                .map_or_else(|| ", raw (no compliance applied)".to_string(), |a| format!("; {}", a.summary())),
            manifest.coverage.summary
        );
    }
    Ok(())
}
