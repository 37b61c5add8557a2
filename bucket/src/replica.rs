//! Reading a bucket's archive: its sites' manifests, segments and
//! dictionaries fetched into a local data directory that the tools open as
//! they open any other, holding the union of the sites.
//!
//! # Design
//! - The union is what coverage means across sites: a second is covered
//!   when any site covers it (every site's coverage was proved by its own
//!   commits and by its verified objects), so the rebuilt coverage map
//!   covers each site's runs in turn.
//! - A minute that several sites hold becomes one segment: the first
//!   site's object, then the frames of the others (each object's file
//!   header dropped). Readers already drop a key seen twice in a minute
//!   (`gapless_storage::reader`), so each activity is read once: exact
//!   dedup across sites. Dictionaries are named by checksum, so the sites'
//!   dictionaries never collide.
//! - Every object's size and CRC32C are checked against its manifest as it
//!   is written to disk: a mismatch is an error, never a silent hole.
//! - Counters are per site; the union shows, for each minute, those of the
//!   site that stored the most (a lower bound of the union's).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};

use futures_util::StreamExt;
use gapless_storage::coverage::{Counts, CoverageMap};
use gapless_storage::segment::FILE_HEADER_LEN;
use gapless_storage::{layout, Durable, Minute};
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::keys::{self, StreamKeys};
use crate::manifest::Manifest;
use crate::remote::Bucket;
use crate::upload::parse_manifest;

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct Want {
    /// One stream, or every stream of every site.
    pub stream: Option<String>,
    /// Days overlapping these minutes (every day if `None`).
    pub minutes: Option<Range<Minute>>,
    /// Segments and dictionaries too (coverage alone otherwise).
    pub segments: bool,
}

/// A bucket's archive on local disk, removed when dropped.
pub struct Replica {
    dir: tempfile::TempDir,
    /// The sites read, sorted.
    pub sites: Vec<String>,
    /// The streams found, sorted.
    pub streams: Vec<String>,
    /// Segment objects fetched, and their bytes.
    pub objects: usize,
    pub bytes: u64,
}

impl Replica {
    /// The data directory.
    pub fn root(&self) -> &FsPath {
        self.dir.path()
    }
}

/// Fetches what `want` names from `bucket` into a new temporary data
/// directory (under `$TMPDIR`).
pub async fn fetch(bucket: &Bucket, want: &Want) -> Result<Replica> {
    let dir = tempfile::Builder::new().prefix("gapless-bucket-").tempdir().map_err(|source| Error::Io {
        op: "create a temporary directory",
        path: std::env::temp_dir(),
        source,
    })?;
    let root = dir.path().to_path_buf();
    let mut replica = Replica { dir, sites: Vec::new(), streams: Vec::new(), objects: 0, bytes: 0 };
    let coverage = CoverageMap::open(&layout::coverage_dir(&root))?;
    let mut sites = bucket.children(&keys::sites(bucket.prefix())).await?;
    sites.retain(|s| keys::check_site(s));
    sites.sort();
    let mut streams: BTreeSet<String> = BTreeSet::new();
    // (stream, minute) -> the counts of the site that stored most.
    let mut counts: BTreeMap<(String, Minute), Counts> = BTreeMap::new();
    // Per stream, the union of its sites' ledgers; `None` once a site has
    // none (an archive uploaded before ledgers: readers then read the
    // events from the segments).
    let mut ledgers: BTreeMap<String, Option<Vec<gapless_storage::compliance::Event>>> = BTreeMap::new();
    for site in &sites {
        let mut labels = bucket.children(&keys::site_streams(bucket.prefix(), site)).await?;
        labels.retain(|l| layout::check_label(l).is_ok() && want.stream.as_ref().is_none_or(|w| w == l));
        for label in labels {
            let keys = StreamKeys::new(bucket.prefix(), site, &label);
            if want.segments {
                let union = ledgers.entry(label.clone()).or_insert_with(|| Some(Vec::new()));
                match bucket.get(&keys.ledger()).await? {
                    Some(bytes) => {
                        if let Some(u) = union.as_mut() {
                            u.extend(gapless_storage::compliance::ledger::decode(&bytes).events);
                        }
                    }
                    None => *union = None,
                }
            }
            for manifest in manifests(bucket, &keys, want.minutes.as_ref()).await? {
                let m = &manifest;
                let known = coverage.partitions(&label)?.unwrap_or(0);
                coverage.set_partitions(&label, known.max(m.partitions))?;
                if let Some(from) = m.owed_from {
                    coverage.owe_from(&label, from)?;
                }
                if let Some(w) = m.recovery_window_secs {
                    coverage.set_recovery_window(&label, w)?;
                }
                let proof = Durable::verified_copy(&label);
                for p in 1..=m.partitions {
                    for r in m.covered_ranges(p) {
                        coverage.cover(&proof, &label, p, r)?;
                    }
                }
                let stream_dir = layout::stream_dir(&root, &label);
                for (key, object) in &m.minutes {
                    let Some(minute) = m.minute_of(key) else { continue };
                    if want.minutes.as_ref().is_some_and(|w| !w.contains(&minute)) {
                        continue;
                    }
                    let best = counts.entry((label.clone(), minute)).or_default();
                    if object.counts.stored >= best.stored {
                        *best = object.counts;
                    }
                    if want.segments {
                        let path = layout::segment_path(&stream_dir, minute);
                        let n =
                            fetch_segment(bucket, &Path::from(object.key.as_str()), object.bytes, object.crc32c, &path)
                                .await?;
                        replica.objects += 1;
                        replica.bytes += n;
                    }
                }
                if want.segments {
                    let dir = layout::dict_dir(&stream_dir);
                    for name in &m.dicts {
                        let path = dir.join(name);
                        if !path.exists() {
                            let bytes = bucket.get(&keys.dict(name)).await?.ok_or_else(|| Error::BadManifest {
                                key: keys.manifest(&m.day).to_string(),
                                why: format!("dictionary {name} is not in the bucket"),
                            })?;
                            write_new(&path, &bytes)?;
                        }
                    }
                }
            }
            streams.insert(label);
        }
    }
    for ((label, minute), c) in counts {
        coverage.add_counts(&label, minute, c)?;
    }
    for (label, events) in ledgers {
        if let Some(events) = events {
            let path = layout::ledger_path(&layout::stream_dir(&root, &label));
            gapless_storage::compliance::ledger::write_copy(&path, &events)?;
        }
    }
    coverage.flush()?;
    drop(coverage);
    replica.sites = sites;
    replica.streams = streams.into_iter().collect();
    Ok(replica)
}

/// The manifests of one site's stream whose day overlaps `minutes`.
async fn manifests(bucket: &Bucket, keys: &StreamKeys, minutes: Option<&Range<Minute>>) -> Result<Vec<Manifest>> {
    let mut days: Vec<(String, Path)> = bucket
        .list(&keys.manifests())
        .await?
        .into_iter()
        .filter_map(|meta| Some((keys::manifest_day(&meta.location)?, meta.location)))
        .collect();
    days.sort();
    let mut out = Vec::new();
    for (day, key) in days {
        if let Some(w) = minutes {
            let (first, last) = (w.start.day_dir(), Minute(w.end.0 - 1).day_dir());
            if day < first || day > last {
                continue;
            }
        }
        let Some(bytes) = bucket.get(&key).await? else { continue };
        let m = parse_manifest(&key, &bytes)?;
        if m.day != day {
            return Err(Error::BadManifest { key: key.to_string(), why: format!("names day {}", m.day) });
        }
        out.push(m);
    }
    Ok(out)
}

/// Streams the object `key` into the segment at `path` (appending its
/// frames if another site's object is there already), checking its size
/// and CRC32C against the manifest's. Returns the bytes fetched.
async fn fetch_segment(bucket: &Bucket, key: &Path, bytes: u64, crc: u32, path: &FsPath) -> Result<u64> {
    let io = |op: &'static str, path: &FsPath| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io("open", path))?;
    let mut stream = bucket.stream(key).await?;
    let (mut n, mut c) = (0u64, 0u32);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        c = crc32c::crc32c_append(c, &chunk);
        // A second site's object: its file header is already there.
        let skip = if existed { (FILE_HEADER_LEN.saturating_sub(n) as usize).min(chunk.len()) } else { 0 };
        n += chunk.len() as u64;
        file.write_all(&chunk[skip..]).map_err(io("write", path))?;
    }
    if n != bytes || c != crc {
        return Err(Error::Checksum { key: key.to_string(), bytes: n, expected: crc, got: c });
    }
    Ok(n)
}

fn write_new(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    let io = |op: &'static str| {
        let path = path.clone();
        move |source| Error::Io { op, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create"))?;
    }
    std::fs::write(path, bytes).map_err(io("write"))
}
