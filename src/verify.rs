//! `gapless verify`: checks every checksum of every frame of an archive,
//! and repairs what does not verify the way the archiver does: the
//! minute's coverage is withdrawn first (so the archiver requests it again
//! with Recovery), the damaged bytes are moved aside into a `.damaged` file
//! beside the segment, and the frames that verify are kept.
//!
//! It writes (coverage, repairs), so it takes the data directory's lock:
//! stop the archiver first. The archiver itself checks the structure of
//! the segments of its recovery window (file and frame headers, lengths)
//! when it starts; payload checksums are read only here and by readers.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use gapless_storage::store::{Depth, Repaired, Store, StoreConfig};
use gapless_storage::{layout, Minute};

/// What `verify` found, stream by stream.
#[derive(Debug, Default)]
pub struct Report {
    pub streams: Vec<(String, Vec<gapless_storage::store::Finding>)>,
}

impl Report {
    /// Damaged minutes that were repaired.
    pub fn repaired(&self) -> usize {
        self.streams.iter().flat_map(|(_, f)| f).filter(|f| f.outcome == Repaired::Yes).count()
    }

    /// Damaged minutes that could not be repaired.
    pub fn failed(&self) -> usize {
        self.streams.iter().flat_map(|(_, f)| f).filter(|f| f.outcome != Repaired::Yes).count()
    }

    /// The exit status: 0 every frame verified, 1 damage was found and
    /// repaired (its coverage withdrawn), 2 some damage could not be
    /// repaired.
    pub fn exit_code(&self) -> i32 {
        if self.failed() > 0 {
            2
        } else if self.repaired() > 0 {
            1
        } else {
            0
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (stream, findings) in &self.streams {
            for finding in findings {
                let minute = finding.minute.file_stem();
                match &finding.outcome {
                    Repaired::Yes => writeln!(
                        f,
                        "{stream} {minute}: DAMAGED; coverage withdrawn (the archiver recovers it), damaged bytes kept in the segment's .damaged file"
                    )?,
                    Repaired::No(why) => writeln!(f, "{stream} {minute}: DAMAGED and not repaired: {why}")?,
                }
            }
            if findings.is_empty() {
                writeln!(f, "{stream}: every frame verifies")?;
            }
        }
        write!(f, "{} damaged minutes repaired, {} not repaired", self.repaired(), self.failed())
    }
}

/// Verifies every segment of `stream` (or of every stream) under `data`.
pub fn verify(data: &Path, stream: Option<&str>) -> anyhow::Result<Report> {
    let store = Store::open(data, StoreConfig::default()).map_err(|e| match e {
        gapless_storage::Error::Locked { .. } => {
            anyhow::anyhow!("{e}: stop the archiver first (verify repairs segments and withdraws coverage)")
        }
        e => anyhow::Error::new(e).context(format!("open {}", data.display())),
    })?;
    let labels = match stream {
        Some(s) => vec![s.to_string()],
        None => layout::streams(data).with_context(|| format!("list the streams of {}", data.display()))?,
    };
    let mut report = Report::default();
    for label in labels {
        let mut w = store.stream(&label).with_context(|| format!("open stream {label}"))?;
        let findings = w
            .verify(Minute(0)..Minute(u32::MAX as i64), Depth::Checksums)
            .with_context(|| format!("verify stream {label}"))?;
        report.streams.push((label, findings));
    }
    Ok(report)
}
