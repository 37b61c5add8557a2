//! The uploader: copies a stream's settled minutes from the data directory
//! to the bucket, and only then lets the bucket's manifests cover them.
//!
//! # Design
//! - The data directory stays the write-ahead buffer: the archiver writes,
//!   fsyncs and covers locally as before; this copies what is there. A
//!   minute is copied once it has settled (no minute newer than the
//!   caller's `settled_before`), and again whenever its segment changed
//!   (late data, Recovery, a seal): each version is a new object, named by
//!   its checksum, and the old one is deleted only after the manifest that
//!   replaced it was written.
//! - The order of one round is what makes the bucket's coverage true:
//!   (1) read the count of coverage withdrawals, (2) read the local
//!   coverage of the minutes, (3) open each minute's segment and take its
//!   length `L` from the open file, (4) upload its first `L` bytes and read
//!   them back (size and CRC32C), (5) read the withdrawal count again, and
//!   (6) only if it did not change, write the day manifests. Coverage is
//!   recorded locally only after the data it covers is fsynced, so what (2)
//!   covers is in the first `L` bytes at (3); appends never change those
//!   bytes, and a seal replaces the file whole (the open file keeps the old
//!   one); only a repair cuts a segment, and it withdraws the minute's
//!   coverage first, which (5) sees. A round that saw a withdrawal writes
//!   no manifest and starts over.
//! - A minute covered locally without a segment is a verified empty minute
//!   and is covered in the bucket without an object.
//! - Dictionaries the segments may name are uploaded before any manifest.
//! - Any failure leaves the bucket's manifests as they were (the objects
//!   already uploaded are found again by name next round): the caller
//!   retries with backoff, and the local data stays until it is copied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use gapless_storage::coverage::CoverageMap;
use gapless_storage::{layout, Minute};
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::keys::StreamKeys;
use crate::manifest::{Manifest, MinuteObject};
use crate::remote::Bucket;

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Segment objects uploaded and verified.
    pub objects: usize,
    pub bytes: u64,
    /// Day manifests written.
    pub manifests: usize,
    /// A withdrawal (a repair) happened during the round: nothing was
    /// published, the next round starts over.
    pub restarted: bool,
}

/// Copies one stream of one data directory to its site's place in the bucket.
pub struct Uploader {
    bucket: Bucket,
    keys: StreamKeys,
    site: String,
    label: String,
    stream_dir: PathBuf,
    coverage: Arc<CoverageMap>,
    /// The bucket's manifests as this process last wrote or read them.
    manifests: BTreeMap<String, Manifest>,
    /// The local file (inode, length) each minute's object was made from,
    /// in this process: an unchanged file needs no new object.
    sources: HashMap<Minute, (u64, u64)>,
    dicts: BTreeSet<String>,
}

impl Uploader {
    pub fn new(
        bucket: Bucket,
        site: &str,
        data: &std::path::Path,
        label: &str,
        coverage: Arc<CoverageMap>,
    ) -> Uploader {
        Uploader {
            keys: StreamKeys::new(bucket.prefix(), site, label),
            bucket,
            site: site.to_string(),
            label: label.to_string(),
            stream_dir: layout::stream_dir(data, label),
            coverage,
            manifests: BTreeMap::new(),
            sources: HashMap::new(),
            dicts: BTreeSet::new(),
        }
    }

    /// Copies the minutes of `span` (those before `settled_before` only)
    /// that changed since they were last copied, then publishes the
    /// manifests of the days it touched.
    pub async fn round(&mut self, span: Range<Minute>, settled_before: Minute) -> Result<Round> {
        let span = span.start..span.end.min(settled_before);
        let mut round = Round::default();
        if span.start >= span.end {
            return Ok(round);
        }
        let Some(partitions) = self.coverage.partitions(&self.label)? else { return Ok(round) };
        // (1), then (2): the coverage of the span, one read per partition.
        let withdrawals = self.coverage.withdrawals();
        let secs = span.start.start_secs()..span.end.start_secs();
        let mut covered: Vec<Vec<Range<i64>>> = Vec::new();
        for p in 1..=partitions {
            covered.push(self.coverage.covered_ranges(&self.label, p, secs.clone())?);
        }
        let counts: HashMap<Minute, _> = self.coverage.counts(&self.label, span.clone())?.into_iter().collect();
        let with_segments: BTreeSet<Minute> =
            layout::minutes_with_segments(&self.stream_dir, span.start, span.end)?.into_iter().collect();
        let mut minutes: BTreeSet<Minute> = with_segments.clone();
        for runs in &covered {
            for r in runs {
                let mut m = Minute::of_secs(r.start);
                while m.start_secs() < r.end {
                    minutes.insert(m);
                    m = m.next();
                }
            }
        }

        let mut changed: BTreeSet<String> = BTreeSet::new();
        let mut replaced: Vec<Path> = Vec::new();
        let mut sources: Vec<(Minute, (u64, u64))> = Vec::new();
        let mut by_day: BTreeMap<String, Vec<Minute>> = BTreeMap::new();
        for minute in minutes {
            by_day.entry(minute.day_dir()).or_default().push(minute);
        }
        for (day, minutes) in by_day {
            let manifest = self.manifest(&day, partitions).await?;
            let mut next = manifest.clone();
            next.partitions = partitions;
            for minute in minutes {
                for (i, runs) in covered.iter().enumerate() {
                    let inside: Vec<Range<i64>> = runs
                        .iter()
                        .filter(|r| r.end > minute.start_secs() && r.start < minute.next().start_secs())
                        .map(|r| r.start.max(minute.start_secs())..r.end.min(minute.next().start_secs()))
                        .collect();
                    next.set_covered(i as u32 + 1, minute, &inside);
                }
                if with_segments.contains(&minute) {
                    // (3): the segment as it is now, and what it is made of.
                    let path = layout::segment_path(&self.stream_dir, minute);
                    let Some((file, ino, len)) = open(&path)? else {
                        // Gone since it was listed (a repair emptied it): its
                        // coverage was withdrawn; the check below restarts.
                        continue;
                    };
                    let key = Manifest::minute_key(minute);
                    let current = manifest.minutes.get(&key);
                    if self.sources.get(&minute) != Some(&(ino, len)) || current.is_none() {
                        let (file, crc) = checksum(file, len, path.clone()).await?;
                        let same = current.is_some_and(|o| o.bytes == len && o.crc32c == crc);
                        if !same {
                            // (4): upload and read back.
                            let object = self.keys.segment(minute, crc);
                            self.bucket.put_file_verified(&object, file, len, crc).await?;
                            round.objects += 1;
                            round.bytes += len;
                            if let Some(old) = current {
                                if old.key != object.as_ref() {
                                    replaced.push(Path::from(old.key.as_str()));
                                }
                            }
                            next.minutes.insert(
                                key.clone(),
                                MinuteObject {
                                    key: object.to_string(),
                                    bytes: len,
                                    crc32c: crc,
                                    counts: counts.get(&minute).copied().unwrap_or_default(),
                                },
                            );
                        }
                        sources.push((minute, (ino, len)));
                    }
                    if let (Some(o), Some(c)) = (next.minutes.get_mut(&key), counts.get(&minute)) {
                        o.counts = *c;
                    }
                }
            }
            if next != manifest {
                changed.insert(day.clone());
                self.manifests.insert(day, next);
            }
        }
        // (5): a repair during the round: publish nothing, start over.
        if self.coverage.withdrawals() != withdrawals {
            self.manifests.clear();
            self.sources.clear();
            round.restarted = true;
            tracing::warn!(stream = %self.label, "coverage was withdrawn during an upload round; it starts over");
            return Ok(round);
        }
        if changed.is_empty() {
            return Ok(round);
        }
        self.upload_dicts().await?;
        // (6): the manifests, after every object they name.
        for day in &changed {
            let Some(m) = self.manifests.get_mut(day) else { continue };
            m.dicts = self.dicts.iter().cloned().collect();
            m.owed_from = self.coverage.owed_from(&self.label)?;
            m.recovery_window_secs = self.coverage.recovery_window(&self.label)?;
            let body = serde_json::to_vec_pretty(&*m)
                .map_err(|e| Error::BadManifest { key: self.keys.manifest(day).to_string(), why: e.to_string() })?;
            if let Err(e) = self.bucket.put_verified(&self.keys.manifest(day), Bytes::from(body)).await {
                // Unknown whether it landed: read it again next round.
                self.manifests.remove(day);
                return Err(e);
            }
            round.manifests += 1;
        }
        self.sources.extend(sources);
        for old in replaced {
            if let Err(e) = self.bucket.delete(&old).await {
                tracing::warn!(error = %e, "a replaced segment object could not be deleted; it is unused");
            }
        }
        Ok(round)
    }

    /// The bucket's manifest of `day`, read once per process.
    async fn manifest(&mut self, day: &str, partitions: u32) -> Result<Manifest> {
        if let Some(m) = self.manifests.get(day) {
            return Ok(m.clone());
        }
        let key = self.keys.manifest(day);
        let m = match self.bucket.get(&key).await? {
            Some(bytes) => parse_manifest(&key, &bytes)?,
            None => Manifest::new(&self.site, &self.label, day, partitions),
        };
        self.dicts.extend(m.dicts.iter().cloned());
        self.manifests.insert(day.to_string(), m.clone());
        Ok(m)
    }

    /// Uploads the stream's dictionaries the bucket does not have yet
    /// (immutable files, named by their checksum).
    async fn upload_dicts(&mut self) -> Result<()> {
        let dir = layout::dict_dir(&self.stream_dir);
        let names = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".zdict"))
                .collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(Error::Io { op: "list dictionaries", path: dir, source }),
        };
        for name in names {
            if self.dicts.contains(&name) {
                continue;
            }
            let path = dir.join(&name);
            let bytes = std::fs::read(&path).map_err(|source| Error::Io { op: "read dictionary", path, source })?;
            self.bucket.put_verified(&self.keys.dict(&name), Bytes::from(bytes)).await?;
            self.dicts.insert(name);
        }
        Ok(())
    }
}

/// Parses and checks a manifest read from `key`.
pub fn parse_manifest(key: &Path, bytes: &[u8]) -> Result<Manifest> {
    let bad = |why: String| Error::BadManifest { key: key.to_string(), why };
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    m.check().map_err(bad)?;
    Ok(m)
}

/// The segment, its inode and its length now, or `None` if it is gone.
fn open(path: &std::path::Path) -> Result<Option<(std::fs::File, u64, u64)>> {
    let io = |source| Error::Io { op: "open segment", path: path.to_path_buf(), source };
    match std::fs::File::open(path) {
        Ok(f) => {
            let meta = f.metadata().map_err(io)?;
            Ok(Some((f, meta.ino(), meta.len())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// The CRC32C of the first `len` bytes of `file`, read off the runtime.
async fn checksum(file: std::fs::File, len: u64, path: PathBuf) -> Result<(std::fs::File, u32)> {
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; (1 << 20).min(len as usize).max(1)];
        let (mut at, mut crc) = (0u64, 0u32);
        while at < len {
            let n = buf.len().min((len - at) as usize);
            file.read_exact_at(&mut buf[..n], at)?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            at += n as u64;
        }
        Ok((file, crc))
    })
    .await
    .map_err(|e| Error::Io { op: "read segment", path: p, source: std::io::Error::other(e) })?
    .map_err(|source| Error::Io { op: "read segment", path, source })
}
