//! `--format parquet --partitioned`: a Hive-partitioned Parquet dataset, in
//! a local directory or a bucket (`--out s3://BUCKET/PREFIX`), that
//! pyarrow's dataset reader, DuckDB, Spark, Athena and Trino read as a
//! table partitioned by `stream`, `date` and `hour`.
//!
//! ```text
//! ROOT/stream=LABEL/date=YYYY-MM-DD/hour=HH/part-00000.parquet     the hour's rows (activity time, UTC)
//!                                           part-00001.parquet     more of them, past 1 GiB of raw JSON
//! ROOT/_manifests/stream=LABEL/YYYYMMDDTHHZ-YYYYMMDDTHHZ.json      what one export wrote
//! ```
//!
//! # Design
//! - **The hour is the unit.** The range must start and end on whole
//!   hours (UTC), so that every partition an export writes holds the whole
//!   hour, and replacing it never drops rows outside the range. Rows go
//!   to the hour of their activity time; minutes come in order, so one
//!   Parquet file is open at a time. An hour's rows go to `part-00000`,
//!   and to the next part once a file holds [`PART_RAW_BYTES`] of raw
//!   JSON (a Firehose hour would otherwise be one file of tens of GB;
//!   readers split work by file, and a bucket's copy is staged locally
//!   one file at a time).
//! - **Re-running replaces** (as Spark's dynamic partition overwrite, or
//!   pyarrow's `existing_data_behavior="delete_matching"`): every file in
//!   the partitions of the range that this export did not write is
//!   removed, whatever wrote it, and an hour with no rows has no file.
//! - **Order, so that a manifest is never ahead of its files.** First the
//!   manifests whose range overlaps this one are removed (their files are
//!   about to change); then each hour's file is written (locally to a
//!   hidden name, renamed; in a bucket uploaded and read back, size and
//!   CRC32C: `Bucket::put_file_verified`); then the stale files go; the
//!   manifest is written last. A reader that finds a manifest finds
//!   every file it names, complete. An export that fails leaves the hours
//!   it wrote replaced and no manifest for its range: run it again.
//! - **Hidden from readers.** The manifests are under `_manifests/`, and a
//!   file being written is named `.part-…`: every Hive reader skips paths
//!   starting with `_` or `.`.
//! - **Credentials** only from the `AWS_*` environment variables
//!   (`gapless_bucket::Bucket::open`); neither the manifest nor a message
//!   carries one.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use gapless_bucket::Bucket;
use gapless_client::bucket::{bucket_url, describe};
use gapless_storage::frame::Entry;
use serde::Serialize;

use crate::out::{self, Out};
use crate::parquet_out::ParquetSink;

const HOUR_MS: i64 = 3_600_000;
/// Raw JSON bytes after which an hour's file is closed and the next part
/// begun (Parquet with zstd is several times smaller: a few hundred MB).
pub const PART_RAW_BYTES: u64 = 1 << 30;

/// The name of an hour's file number `n`.
fn part_name(n: u32) -> String {
    format!("part-{n:05}.parquet")
}
/// Where the manifests are, under the dataset's root.
pub const MANIFESTS: &str = "_manifests";

/// One partition (hour) of the range, in the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Partition {
    /// `stream=LABEL/date=YYYY-MM-DD/hour=HH`, relative to the root.
    pub path: String,
    pub date: String,
    pub hour: u32,
    /// Rows in its files.
    pub rows: u64,
    /// Bytes of its files.
    pub bytes: u64,
    /// Its files, in order; none when the hour has no rows.
    pub files: Vec<PartFile>,
}

/// One file of a partition, in the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct PartFile {
    /// Relative to the root.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub crc32c: u32,
}

/// Where the dataset is.
enum Root {
    Dir(PathBuf),
    Bucket { bucket: Bucket, runtime: tokio::runtime::Runtime, staging: tempfile::TempDir },
}

/// The hour being written.
struct Current {
    hour: i64,
    part: u32,
    /// Raw bytes of its rows.
    raw: u64,
    sink: ParquetSink<Out>,
    /// The local file being written (hidden name, or in the staging directory).
    path: PathBuf,
    rows: u64,
}

/// Writes the rows of `[from_ms, to_ms)` (whole hours) of one stream as a
/// Hive-partitioned dataset (see the module doc).
pub struct HiveSink {
    root: Root,
    stream: String,
    level: i32,
    from_ms: i64,
    to_ms: i64,
    cur: Option<Current>,
    written: Vec<Partition>,
    part_raw_bytes: u64,
}

/// `stream=LABEL/date=YYYY-MM-DD/hour=HH` of the hour starting at `hour_ms`.
fn partition_path(stream: &str, hour_ms: i64) -> (String, String, u32) {
    let t = chrono::DateTime::from_timestamp_millis(hour_ms).unwrap_or_default();
    let (date, hour) = (t.format("%Y-%m-%d").to_string(), t.format("%H").to_string());
    (format!("stream={stream}/date={date}/hour={hour}"), date, hour.parse().unwrap_or(0))
}

/// The manifest's name for a range: `YYYYMMDDTHHZ-YYYYMMDDTHHZ.json`.
fn manifest_name(from_ms: i64, to_ms: i64) -> String {
    let f = |ms| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y%m%dT%HZ").to_string();
    format!("{}-{}.json", f(from_ms), f(to_ms))
}

/// The range a manifest's name says, in ms.
fn manifest_range(name: &str) -> Option<(i64, i64)> {
    let (a, b) = name.strip_suffix(".json")?.split_once('-')?;
    let p = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(&format!("{}00", s.strip_suffix('Z')?), "%Y%m%dT%H%M")
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    };
    Some((p(a)?, p(b)?))
}

/// Checks that `[from_ms, to_ms)` is whole hours.
pub fn check_range(from_ms: i64, to_ms: i64) -> Result<(), gapless_client::exit::Usage> {
    if from_ms.rem_euclid(HOUR_MS) != 0 || to_ms.rem_euclid(HOUR_MS) != 0 {
        return Err(gapless_client::exit::Usage(
            "--partitioned writes whole hour partitions: --from and --to must be on the hour (UTC), \
             e.g. --from 2026-03-01T00 --to 2026-03-01T06"
                .into(),
        ));
    }
    Ok(())
}

/// The CRC32C of a file.
fn crc_of(path: &Path) -> Result<u32> {
    let mut f = std::fs::File::open(path).with_context(|| format!("read {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    loop {
        let n = f.read(&mut buf).with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

fn bucket_error(url: &str, error: gapless_bucket::Error) -> anyhow::Error {
    match error {
        gapless_bucket::Error::BadUrl { why, .. } => gapless_client::exit::Usage(format!("--out {url}: {why}")).into(),
        error => {
            gapless_client::Error::Bucket { url: url.to_string(), detail: describe(&error), error: Box::new(error) }
                .into()
        }
    }
}

impl HiveSink {
    /// A dataset at `out` (a directory, created if need be, or
    /// `s3://BUCKET/PREFIX`). Removes the manifests whose range overlaps
    /// this one's (see the module doc).
    pub fn new(out: &Path, stream: &str, level: i32, from_ms: i64, to_ms: i64) -> Result<HiveSink> {
        check_range(from_ms, to_ms)?;
        let root = match bucket_url(out) {
            Some(url) => {
                let bucket = Bucket::open(url).map_err(|e| bucket_error(url, e))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("start the runtime for the bucket's requests")?;
                let staging = tempfile::tempdir().context("create a staging directory")?;
                Root::Bucket { bucket, runtime, staging }
            }
            None => {
                std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
                Root::Dir(out.to_path_buf())
            }
        };
        let sink = HiveSink {
            root,
            stream: stream.to_string(),
            level,
            from_ms,
            to_ms,
            cur: None,
            written: Vec::new(),
            part_raw_bytes: PART_RAW_BYTES,
        };
        sink.remove_overlapping_manifests()?;
        Ok(sink)
    }

    /// The dataset's root as messages and the manifest show it.
    pub fn shown(&self) -> String {
        match &self.root {
            Root::Dir(d) => d.display().to_string(),
            Root::Bucket { bucket, .. } => bucket.url().to_string(),
        }
    }

    fn key(bucket: &Bucket, rel: &str) -> object_store::path::Path {
        match bucket.prefix() {
            "" => object_store::path::Path::from(rel),
            p => object_store::path::Path::from(format!("{p}/{rel}")),
        }
    }

    fn manifests_dir(&self) -> String {
        format!("{MANIFESTS}/stream={}", self.stream)
    }

    fn remove_overlapping_manifests(&self) -> Result<()> {
        let overlaps = |name: &str| manifest_range(name).is_some_and(|(a, b)| a < self.to_ms && b > self.from_ms);
        match &self.root {
            Root::Dir(d) => {
                let dir = d.join(self.manifests_dir());
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
                };
                for e in entries {
                    let e = e.with_context(|| format!("list {}", dir.display()))?;
                    if e.file_name().to_str().is_some_and(overlaps) {
                        std::fs::remove_file(e.path()).with_context(|| format!("remove {}", e.path().display()))?;
                    }
                }
            }
            Root::Bucket { bucket, runtime, .. } => {
                let prefix = Self::key(bucket, &self.manifests_dir());
                let url = bucket.url();
                let listed = runtime.block_on(bucket.list(&prefix)).map_err(|e| bucket_error(url, e))?;
                for meta in listed {
                    if meta.location.filename().is_some_and(overlaps) {
                        runtime.block_on(bucket.delete(&meta.location)).map_err(|e| bucket_error(url, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds a record: to its hour's file.
    pub fn push(&mut self, e: &Entry, raw: &[u8]) -> Result<()> {
        let hour = e.time_ms.div_euclid(HOUR_MS) * HOUR_MS;
        match &self.cur {
            Some(c) if c.hour == hour && c.raw < self.part_raw_bytes => {}
            Some(c) if c.hour == hour => {
                let part = c.part + 1;
                self.close()?;
                self.open(hour, part)?;
            }
            Some(c) if c.hour > hour => {
                return Err(anyhow!("records out of order: {} after hour {}", e.time_ms, c.hour));
            }
            _ => {
                self.close()?;
                self.open(hour, 0)?;
            }
        }
        let Some(c) = self.cur.as_mut() else { return Err(anyhow!("no partition open")) };
        c.rows += 1;
        c.raw += raw.len() as u64 + 1;
        c.sink.push(e, raw)
    }

    fn open(&mut self, hour: i64, part: u32) -> Result<()> {
        let (rel, _, _) = partition_path(&self.stream, hour);
        let path = match &self.root {
            Root::Dir(d) => {
                let dir = d.join(&rel);
                std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
                dir.join(format!(".{}.partial", part_name(part)))
            }
            Root::Bucket { staging, .. } => staging.path().join(part_name(part)),
        };
        let file = std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        let sink = ParquetSink::new(out::new(Some(file))?, self.level)?;
        self.cur = Some(Current { hour, part, raw: 0, sink, path, rows: 0 });
        Ok(())
    }

    /// Finishes the open hour's file and puts it in place (see the module doc).
    fn close(&mut self) -> Result<()> {
        let Some(c) = self.cur.take() else { return Ok(()) };
        let w = c.sink.finish()?;
        let mut counting = w.into_inner().map_err(|e| e.into_error())?;
        std::io::Write::flush(&mut counting)?;
        let bytes = counting.bytes;
        drop(counting);
        let crc = crc_of(&c.path)?;
        let (rel, date, hour) = partition_path(&self.stream, c.hour);
        let file = format!("{rel}/{}", part_name(c.part));
        match &self.root {
            Root::Dir(d) => {
                let target = d.join(&file);
                std::fs::File::open(&c.path)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("fsync {}", c.path.display()))?;
                std::fs::rename(&c.path, &target)
                    .with_context(|| format!("rename {} to {}", c.path.display(), target.display()))?;
            }
            Root::Bucket { bucket, runtime, .. } => {
                let key = Self::key(bucket, &file);
                let f = std::fs::File::open(&c.path).with_context(|| format!("read {}", c.path.display()))?;
                runtime
                    .block_on(bucket.put_file_verified(&key, f, bytes, crc))
                    .map_err(|e| bucket_error(bucket.url(), e))?;
                let _ = std::fs::remove_file(&c.path);
            }
        }
        let f = PartFile { file, rows: c.rows, bytes, crc32c: crc };
        match self.written.last_mut().filter(|p| p.path == rel) {
            Some(p) => {
                (p.rows, p.bytes) = (p.rows + f.rows, p.bytes + f.bytes);
                p.files.push(f);
            }
            None => {
                self.written.push(Partition { path: rel, date, hour, rows: f.rows, bytes: f.bytes, files: vec![f] })
            }
        }
        Ok(())
    }

    /// Closes the last hour, removes every file of the range's partitions
    /// that this export did not write, and returns every hour of the range
    /// (those with no rows too). The manifest is the caller's, written
    /// with [`HiveSink::write_manifest`].
    pub fn finish(&mut self) -> Result<Vec<Partition>> {
        self.close()?;
        let ours: BTreeSet<String> = self.written.iter().flat_map(|p| p.files.iter().map(|f| f.file.clone())).collect();
        let hours: Vec<i64> = (self.from_ms / HOUR_MS..self.to_ms / HOUR_MS).map(|h| h * HOUR_MS).collect();
        let in_range: BTreeSet<String> = hours.iter().map(|&h| partition_path(&self.stream, h).0).collect();
        let stale =
            |rel: &str| rel.rsplit_once('/').is_some_and(|(dir, _)| in_range.contains(dir)) && !ours.contains(rel);
        match &self.root {
            Root::Dir(d) => {
                for rel in &in_range {
                    let dir = d.join(rel);
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
                    };
                    for e in entries {
                        let e = e.with_context(|| format!("list {}", dir.display()))?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        if e.file_type().is_ok_and(|t| t.is_file()) && stale(&format!("{rel}/{name}")) {
                            std::fs::remove_file(e.path()).with_context(|| format!("remove {}", e.path().display()))?;
                        }
                    }
                    // An hour with no rows leaves no directory (an error: not empty).
                    let _ = std::fs::remove_dir(&dir);
                }
            }
            Root::Bucket { bucket, runtime, .. } => {
                let url = bucket.url();
                let days: BTreeSet<String> = hours.iter().map(|&h| partition_path(&self.stream, h).1).collect();
                let base = Self::key(bucket, "");
                for day in days {
                    let prefix = Self::key(bucket, &format!("stream={}/date={day}", self.stream));
                    for meta in runtime.block_on(bucket.list(&prefix)).map_err(|e| bucket_error(url, e))? {
                        let rel = meta
                            .location
                            .prefix_match(&base)
                            .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"));
                        if rel.as_deref().is_some_and(stale) {
                            runtime.block_on(bucket.delete(&meta.location)).map_err(|e| bucket_error(url, e))?;
                        }
                    }
                }
            }
        }
        Ok(hours
            .iter()
            .map(|&h| {
                let (path, date, hour) = partition_path(&self.stream, h);
                self.written.iter().find(|p| p.path == path).cloned().unwrap_or(Partition {
                    path,
                    date,
                    hour,
                    rows: 0,
                    bytes: 0,
                    files: Vec::new(),
                })
            })
            .collect())
    }

    /// Writes the manifest, last: `_manifests/stream=LABEL/FROM-TO.json`.
    /// Returns where it is.
    pub fn write_manifest(&self, text: &str) -> Result<String> {
        let rel = format!("{}/{}", self.manifests_dir(), manifest_name(self.from_ms, self.to_ms));
        match &self.root {
            Root::Dir(d) => {
                let path = d.join(&rel);
                let dir = d.join(self.manifests_dir());
                std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
                let tmp = dir.join(format!(".{}.partial", manifest_name(self.from_ms, self.to_ms)));
                std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
                std::fs::rename(&tmp, &path).with_context(|| format!("rename {}", tmp.display()))?;
                Ok(path.display().to_string())
            }
            Root::Bucket { bucket, runtime, .. } => {
                let key = Self::key(bucket, &rel);
                let bytes = bytes::Bytes::from(text.as_bytes().to_vec());
                runtime.block_on(bucket.put_verified(&key, bytes)).map_err(|e| bucket_error(bucket.url(), e))?;
                Ok(format!("{}/{rel}", bucket.url()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_manifest_names() {
        let base = 1_500_336_000_000; // 2017-07-18T00:00Z
        assert_eq!(
            partition_path("decahose", base + 13 * HOUR_MS),
            ("stream=decahose/date=2017-07-18/hour=13".to_string(), "2017-07-18".to_string(), 13)
        );
        let name = manifest_name(base, base + 26 * HOUR_MS);
        assert_eq!(name, "20170718T00Z-20170719T02Z.json");
        assert_eq!(manifest_range(&name), Some((base, base + 26 * HOUR_MS)));
        assert_eq!(manifest_range("x.json"), None);
        assert!(check_range(base, base + HOUR_MS).is_ok());
        assert!(check_range(base + 60_000, base + HOUR_MS).is_err());
    }

    /// An hour past the part size is several files, each row in one; an
    /// hour with no rows has none; a file left from before is removed.
    #[test]
    fn large_hours_are_split_into_parts_and_the_rest_replaced() {
        let base = 1_500_336_000_000;
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("stream=s/date=2017-07-18/hour=01/part-00000.parquet");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, b"from an earlier export").unwrap();
        let mut h = HiveSink::new(root.path(), "s", 3, base, base + 3 * HOUR_MS).unwrap();
        h.part_raw_bytes = 1000;
        let raw = format!(r#"{{"text":"{}"}}"#, "x".repeat(90)); // 101 bytes with its newline
        for i in 0..25i64 {
            let hour = if i < 20 { 0 } else { 2 };
            let e = Entry {
                kind: gapless_storage::ActivityKind::AsActivity,
                key: gapless_storage::Key::Hashed(i as u64),
                time_ms: base + hour * HOUR_MS + i * 1000,
                len: raw.len() as u32,
            };
            h.push(&e, raw.as_bytes()).unwrap();
        }
        let parts = h.finish().unwrap();
        let files = |p: &Partition| p.files.iter().map(|f| (f.file.clone(), f.rows)).collect::<Vec<_>>();
        assert_eq!(parts.iter().map(|p| p.rows).collect::<Vec<_>>(), [20, 0, 5]);
        assert_eq!(
            files(&parts[0]),
            [
                ("stream=s/date=2017-07-18/hour=00/part-00000.parquet".to_string(), 10),
                ("stream=s/date=2017-07-18/hour=00/part-00001.parquet".to_string(), 10)
            ]
        );
        assert_eq!(files(&parts[1]), []);
        assert!(!old.exists() && !old.parent().unwrap().exists(), "hour 01 has no rows now: no file");
        assert_eq!(files(&parts[2]), [("stream=s/date=2017-07-18/hour=02/part-00000.parquet".to_string(), 5)]);
        for f in parts.iter().flat_map(|p| &p.files) {
            let bytes = std::fs::read(root.path().join(&f.file)).unwrap();
            assert_eq!((bytes.len() as u64, crc32c::crc32c(&bytes)), (f.bytes, f.crc32c), "{}", f.file);
        }
    }
}
