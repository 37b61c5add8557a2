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
use object_store::UpdateVersion;

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
    /// With a local size limit: settled minutes now safe to evict.
    pub evictions: Vec<Eviction>,
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
    /// Their versions in the bucket (`None`: there was none): a manifest
    /// is replaced only if it is still the version this process knows.
    versions: BTreeMap<String, Option<UpdateVersion>>,
    /// This archiver's identity in the manifests it writes.
    writer: String,
    /// The local file (inode, length) each minute's object was made from,
    /// in this process: an unchanged file needs no new object.
    sources: HashMap<Minute, (u64, u64)>,
    dicts: BTreeSet<String>,
    /// The length of the ledger copy last uploaded (this process).
    ledger_len: Option<usize>,
    /// Keep the stream's segments under this many bytes (evictions).
    local_max: Option<u64>,
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
            versions: BTreeMap::new(),
            writer: String::new(),
            sources: HashMap::new(),
            dicts: BTreeSet::new(),
            ledger_len: None,
            local_max: None,
        }
    }

    /// Names this archiver in the manifests it writes (a stable identity of
    /// its data directory): an uploader with another name finding them
    /// refuses to write under the same site ([`Error::SiteTaken`]).
    pub fn with_writer(mut self, writer: &str) -> Uploader {
        self.writer = writer.to_string();
        self
    }

    /// Proposes evictions so that the stream's segments stay under `bytes`.
    pub fn with_local_max(mut self, bytes: u64) -> Uploader {
        self.local_max = Some(bytes);
        self
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
        // The manifests this round would publish: kept apart until they are
        // written, so that a round that fails leaves nothing half-known.
        let mut pending: BTreeMap<String, Manifest> = BTreeMap::new();
        let evicted: BTreeSet<Minute> =
            layout::evicted_minutes(&self.stream_dir, span.start, span.end)?.into_iter().collect();
        let mut replaced: Vec<Path> = Vec::new();
        let mut sources: Vec<(Minute, (u64, u64))> = Vec::new();
        let mut by_day: BTreeMap<String, Vec<Minute>> = BTreeMap::new();
        for minute in minutes.into_iter().chain(evicted.iter().copied()).collect::<BTreeSet<_>>() {
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
                let key = Manifest::minute_key(minute);
                let path = layout::segment_path(&self.stream_dir, minute);
                let marker = read_marker(&path)?;
                if let (Some(m), false) = (&marker, with_segments.contains(&minute)) {
                    // Evicted: the bucket holds it as the marker says.
                    let counts = counts.get(&minute).copied().unwrap_or_default();
                    next.minutes.insert(
                        key.clone(),
                        MinuteObject { key: m.key.clone(), bytes: m.bytes, crc32c: m.crc32c, counts },
                    );
                }
                if with_segments.contains(&minute) {
                    // (3): the segment as it is now, and what it is made of.
                    let Some((file, ino, len)) = open(&path)? else {
                        // Gone since it was listed (a repair emptied it): its
                        // coverage was withdrawn; the check below restarts.
                        continue;
                    };
                    let current = manifest.minutes.get(&key);
                    if let Some(m) = marker.as_ref().filter(|_| self.sources.get(&minute) != Some(&(ino, len))) {
                        // Evicted before, and a segment again: late data
                        // (or a crash while evicting). The bucket's object
                        // and the new frames become one object.
                        let (file, crc) = checksum(file, len, path.clone()).await?;
                        if (len, crc) != (m.bytes, m.crc32c) {
                            let merged = self.merge(m, file, len).await?;
                            let merged_crc = crc32c::crc32c(&merged);
                            let object = self.keys.segment(minute, merged_crc);
                            let bytes = merged.len() as u64;
                            self.bucket.put_verified(&object, merged).await?;
                            round.objects += 1;
                            round.bytes += bytes;
                            for old in [Some(m.key.as_str()), current.map(|o| o.key.as_str())].into_iter().flatten() {
                                if old != object.as_ref() {
                                    replaced.push(Path::from(old));
                                }
                            }
                            let counts = counts.get(&minute).copied().unwrap_or_default();
                            next.minutes.insert(
                                key.clone(),
                                MinuteObject { key: object.to_string(), bytes, crc32c: merged_crc, counts },
                            );
                        }
                        sources.push((minute, (ino, len)));
                    } else if self.sources.get(&minute) != Some(&(ino, len)) || current.is_none() {
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
                pending.insert(day, next);
            }
        }
        // (5): a repair during the round: publish nothing, start over.
        if self.coverage.withdrawals() != withdrawals {
            self.manifests.clear();
            self.versions.clear();
            self.sources.clear();
            round.restarted = true;
            tracing::warn!(stream = %self.label, "coverage was withdrawn during an upload round; it starts over");
            return Ok(round);
        }
        if !changed.is_empty() {
            self.upload_dicts().await?;
        }
        // The ledger before the manifests: it was fsynced before the
        // segments whose lengths (3) took, so it holds the events of every
        // object a manifest will name.
        self.upload_ledger().await?;
        // (6): the manifests, after every object they name.
        for day in &changed {
            let Some(mut m) = pending.remove(day) else { continue };
            m.dicts = self.dicts.iter().cloned().collect();
            m.owed_from = self.coverage.owed_from(&self.label)?;
            m.recovery_window_secs = self.coverage.recovery_window(&self.label)?;
            m.writer = self.writer.clone();
            let body = serde_json::to_vec_pretty(&m)
                .map_err(|e| Error::BadManifest { key: self.keys.manifest(day).to_string(), why: e.to_string() })?;
            if let Err(e) = self.publish(day, Bytes::from(body)).await {
                // Unknown whether it landed: read it again next round.
                self.manifests.remove(day);
                self.versions.remove(day);
                return Err(e);
            }
            self.manifests.insert(day.clone(), m);
            round.manifests += 1;
        }
        self.sources.extend(sources);
        if let Some(max) = self.local_max {
            round.evictions = self.evictable(max, settled_before)?;
        }
        for old in replaced {
            if let Err(e) = self.bucket.delete(&old).await {
                tracing::warn!(error = %e, "a replaced segment object could not be deleted; it is unused");
            }
        }
        Ok(round)
    }

    /// Purges the minutes evicted from the data directory (a marker and no
    /// segment), in the bucket: each object is read back and checked,
    /// rewritten without what `policy` removes (as a purge of a local
    /// segment, `gapless_storage::compliance::purge`), uploaded as a new
    /// object and read back; then the day's manifest names it, then the
    /// local marker, and only then is the old object deleted. A crash
    /// before the marker is replaced leaves the old object named by it: the
    /// next round names it again and the next purge does it again.
    pub async fn purge_evicted(&mut self, policy: &gapless_storage::compliance::Policy) -> Result<EvictedPurge> {
        let mut out = EvictedPurge::default();
        let Some(partitions) = self.coverage.partitions(&self.label)? else { return Ok(out) };
        let all =
            Minute::of_ms(gapless_storage::activity::EARLIEST_MS)..Minute::of_ms(gapless_storage::activity::LATEST_MS);
        let dict_dir = layout::dict_dir(&self.stream_dir);
        for minute in layout::evicted_minutes(&self.stream_dir, all.start, all.end)? {
            let path = layout::segment_path(&self.stream_dir, minute);
            let Some(marker) = read_marker(&path)? else { continue };
            let key = Path::from(marker.key.as_str());
            let old = self.evicted_object(&marker).await?;
            let Some(copy) = gapless_storage::compliance::purge::purge_copy(&old, minute, &dict_dir, policy)? else {
                continue;
            };
            let crc = crc32c::crc32c(&copy.bytes);
            let object = self.keys.segment(minute, crc);
            let bytes = copy.bytes.len() as u64;
            self.bucket.put_verified(&object, Bytes::from(copy.bytes)).await?;
            let day = minute.day_dir();
            let mut m = self.manifest(&day, partitions).await?;
            let entry_key = Manifest::minute_key(minute);
            let counts = m.minutes.get(&entry_key).map(|o| o.counts).unwrap_or_default();
            m.minutes.insert(entry_key, MinuteObject { key: object.to_string(), bytes, crc32c: crc, counts });
            m.writer = self.writer.clone();
            let body = serde_json::to_vec_pretty(&m)
                .map_err(|e| Error::BadManifest { key: self.keys.manifest(&day).to_string(), why: e.to_string() })?;
            if let Err(e) = self.publish(&day, Bytes::from(body)).await {
                self.manifests.remove(&day);
                self.versions.remove(&day);
                return Err(e);
            }
            self.manifests.insert(day, m);
            let marker = EvictionMarker { format: MARKER_FORMAT.into(), key: object.to_string(), bytes, crc32c: crc };
            let json = serde_json::to_vec(&marker)
                .map_err(|e| Error::BadManifest { key: path.display().to_string(), why: e.to_string() })?;
            gapless_storage::segment::replace_atomically(
                &gapless_storage::io::StdFs,
                &layout::evicted_path(&path),
                &json,
            )?;
            if key != object {
                if let Err(e) = self.bucket.delete(&key).await {
                    tracing::warn!(error = %e, "a purged minute's old object could not be deleted; it is unused");
                }
            }
            out.minutes += 1;
            out.purged += copy.purged;
            out.scrubbed += copy.scrubbed;
        }
        Ok(out)
    }

    /// The object an eviction marker names, read back and checked against it.
    async fn evicted_object(&self, marker: &EvictionMarker) -> Result<Bytes> {
        let key = Path::from(marker.key.as_str());
        let old = self.bucket.get(&key).await?.ok_or_else(|| Error::Verify {
            key: marker.key.clone(),
            why: "the evicted minute's object is not in the bucket".into(),
        })?;
        let crc = crc32c::crc32c(&old);
        if (old.len() as u64, crc) != (marker.bytes, marker.crc32c) {
            return Err(Error::Checksum {
                key: marker.key.clone(),
                bytes: old.len() as u64,
                expected: marker.crc32c,
                got: crc,
            });
        }
        Ok(old)
    }

    /// The object an eviction marker names, read back and checked, with the
    /// frames of the first `len` bytes of `file` (a segment started after
    /// the eviction) after it.
    async fn merge(&self, marker: &EvictionMarker, file: std::fs::File, len: u64) -> Result<Bytes> {
        let old = self.evicted_object(marker).await?;
        let header = gapless_storage::segment::FILE_HEADER_LEN;
        let mut out = Vec::with_capacity(old.len() + len as usize);
        out.extend_from_slice(&old);
        if len > header {
            let path = layout::segment_path(&self.stream_dir, Minute(0));
            let tail = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; (len - header) as usize];
                file.read_exact_at(&mut buf, header).map(|()| buf)
            })
            .await
            .map_err(|e| Error::Io { op: "read segment", path: path.clone(), source: std::io::Error::other(e) })?
            .map_err(|source| Error::Io { op: "read segment", path, source })?;
            out.extend_from_slice(&tail);
        }
        Ok(Bytes::from(out))
    }

    /// The oldest settled minutes to evict so that the stream's segments
    /// take at most `max` bytes: only those whose object in the bucket was
    /// made from the segment as it is now.
    fn evictable(&self, max: u64, settled_before: Minute) -> Result<Vec<Eviction>> {
        use std::os::unix::fs::MetadataExt;
        let all = layout::minutes_with_segments(&self.stream_dir, Minute(0), Minute(i64::from(u32::MAX)))?;
        let mut sizes = Vec::with_capacity(all.len());
        let mut total = 0u64;
        for m in all {
            let path = layout::segment_path(&self.stream_dir, m);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            total += meta.len();
            sizes.push((m, meta.ino(), meta.len()));
        }
        let mut out = Vec::new();
        for (minute, ino, len) in sizes {
            if total <= max || minute >= settled_before {
                break;
            }
            if self.sources.get(&minute) != Some(&(ino, len)) {
                continue;
            }
            let Some(o) =
                self.manifests.get(&minute.day_dir()).and_then(|m| m.minutes.get(&Manifest::minute_key(minute)))
            else {
                continue;
            };
            let marker =
                EvictionMarker { format: MARKER_FORMAT.into(), key: o.key.clone(), bytes: o.bytes, crc32c: o.crc32c };
            let marker = serde_json::to_vec(&marker)
                .map_err(|e| Error::BadManifest { key: o.key.clone(), why: e.to_string() })?;
            out.push(Eviction { minute, ino, len, marker });
            total -= len;
        }
        Ok(out)
    }

    /// Writes the manifest of `day` only over the version this process
    /// knows (or where there is none), then reads it back.
    async fn publish(&mut self, day: &str, body: Bytes) -> Result<()> {
        let key = self.keys.manifest(day);
        let (len, crc) = (body.len() as u64, crc32c::crc32c(&body));
        let written = match self.versions.get(day).cloned().flatten() {
            Some(v) => self.bucket.replace(&key, body, v).await?,
            None => self.bucket.create(&key, body).await?,
        };
        let Some(version) = written else {
            // Someone else wrote it meanwhile: whoever, this site is not ours.
            let writer = match self.bucket.get(&key).await? {
                Some(bytes) => parse_manifest(&key, &bytes).map(|m| m.writer).unwrap_or_default(),
                None => String::new(),
            };
            return Err(self.taken(writer));
        };
        self.bucket.verify(&key, len, crc).await?;
        self.versions.insert(day.to_string(), Some(version));
        Ok(())
    }

    fn taken(&self, writer: String) -> Error {
        let writer = if writer.is_empty() { "another process".to_string() } else { writer };
        Error::SiteTaken { site: self.site.clone(), stream: self.label.clone(), writer }
    }

    /// The bucket's manifest of `day`, read once per process.
    async fn manifest(&mut self, day: &str, partitions: u32) -> Result<Manifest> {
        if let Some(m) = self.manifests.get(day) {
            return Ok(m.clone());
        }
        let key = self.keys.manifest(day);
        let (m, version) = match self.bucket.get_versioned(&key).await? {
            Some((bytes, version)) => (parse_manifest(&key, &bytes)?, Some(version)),
            None => (Manifest::new(&self.site, &self.label, day, partitions), None),
        };
        if !m.writer.is_empty() && !self.writer.is_empty() && m.writer != self.writer {
            return Err(self.taken(m.writer));
        }
        self.versions.insert(day.to_string(), version);
        self.dicts.extend(m.dicts.iter().cloned());
        self.manifests.insert(day.to_string(), m.clone());
        Ok(m)
    }

    /// Uploads the stream's dictionaries the bucket does not have yet
    /// (immutable files, named by their checksum).
    /// Copies the stream's compliance ledger when it grew (an empty one
    /// when there is none, so that readers know this site's events are
    /// all in it).
    async fn upload_ledger(&mut self) -> Result<()> {
        let path = layout::ledger_path(&self.stream_dir);
        let bytes = gapless_storage::compliance::ledger::whole_bytes(&path)?
            .unwrap_or_else(|| gapless_storage::compliance::ledger::MAGIC.to_vec());
        if self.ledger_len == Some(bytes.len()) {
            return Ok(());
        }
        let len = bytes.len();
        self.bucket.put_verified(&self.keys.ledger(), Bytes::from(bytes)).await?;
        self.ledger_len = Some(len);
        Ok(())
    }

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

/// The format tag of an eviction marker.
pub const MARKER_FORMAT: &str = "gapless.evicted/1";

/// What an eviction marker says (`layout::evicted_path`, FORMAT.md): the
/// object in the bucket that holds the minute.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvictionMarker {
    pub format: String,
    pub key: String,
    pub bytes: u64,
    pub crc32c: u32,
}

/// What [`Uploader::purge_evicted`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvictedPurge {
    /// Evicted minutes whose object was rewritten.
    pub minutes: usize,
    /// Records left out, and rewritten.
    pub purged: usize,
    pub scrubbed: usize,
}

/// A segment the caller may evict (`StreamWriter::evict`): its copy in the
/// bucket is verified and the manifest that names it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eviction {
    pub minute: Minute,
    /// The segment file (inode, length) that was copied.
    pub ino: u64,
    pub len: u64,
    /// The marker to leave in its place.
    pub marker: Vec<u8>,
}

/// The eviction marker beside `segment`, if there is one.
fn read_marker(segment: &std::path::Path) -> Result<Option<EvictionMarker>> {
    let path = layout::evicted_path(segment);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<EvictionMarker>(&bytes)
            .ok()
            .filter(|m| m.format == MARKER_FORMAT)
            .map(Some)
            .ok_or_else(|| Error::BadManifest {
                key: path.display().to_string(),
                why: "not an eviction marker".into(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { op: "read eviction marker", path, source }),
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
