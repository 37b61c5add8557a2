//! The archive against stream-sim's ground truth, activity by activity and
//! byte by byte: the demo's final verification and the end-to-end tests
//! (`tests/common`) share it.
//!
//! The truth gives each activity's key (`KIND KEY`, as `stream-sim truth`
//! prints it) and fingerprint: the length and FNV-1a 64 of the exact bytes
//! stream-sim sent, without the `\r\n` separator. The archive is read back
//! through gapless-storage's range reader, and every stored record is
//! fingerprinted the same way. So a record stored under the right key with
//! the wrong bytes (a stray `\r`, a byte changed, a line joined badly across
//! a gzip boundary) is reported as differing, not counted as archived.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use gapless_storage::reader::RangeReader;
pub use stream_sim::truth::Fingerprint;

/// Expected activities: `KIND KEY` to the fingerprint of their bytes.
pub type Truth = BTreeMap<String, Fingerprint>;

/// The truth of `[from_ms, to_ms)` (activity time) of one stream.
pub fn truth(gen: &stream_sim::Generator, from_ms: i64, to_ms: i64) -> Truth {
    stream_sim::truth::truth_entries(gen, from_ms, to_ms, None)
        .into_iter()
        .map(|e| (e.truth_line(), e.fingerprint))
        .collect()
}

/// What an archive holds over a range.
#[derive(Debug, Default, Clone)]
pub struct Archived {
    /// `KIND KEY` to the fingerprint of every stored copy (more than one:
    /// stored twice).
    pub records: BTreeMap<String, Vec<Fingerprint>>,
    /// Records read, every copy counted.
    pub count: usize,
}

impl Archived {
    /// Adds one stored record.
    pub fn add(&mut self, key: String, bytes: &[u8]) {
        self.records.entry(key).or_default().push(Fingerprint::of(bytes));
        self.count += 1;
    }

    /// Adds everything of `other` (another range of the same stream).
    pub fn extend(&mut self, other: Archived) {
        for (k, v) in other.records {
            self.records.entry(k).or_default().extend(v);
        }
        self.count += other.count;
    }
}

/// Reads `[from_ms, to_ms)` of `stream` from the archive in `data`.
pub fn read_archive(data: &Path, stream: &str, from_ms: i64, to_ms: i64) -> gapless_storage::Result<Archived> {
    let mut out = Archived::default();
    for batch in RangeReader::new(data, stream, from_ms..to_ms) {
        for (e, bytes) in batch?.iter() {
            out.add(format!("{} {}", e.kind.name(), e.key.display()), bytes);
        }
    }
    Ok(out)
}

/// How an archive differs from the truth. Every list holds `KIND KEY`s,
/// sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Activities expected.
    pub expected: usize,
    /// Distinct activities archived.
    pub archived: usize,
    /// Expected, not archived.
    pub missing: Vec<String>,
    /// Archived, not expected.
    pub unexpected: Vec<String>,
    /// Archived more than once.
    pub twice: Vec<String>,
    /// Extra copies stored (records read less distinct activities).
    pub extra_copies: usize,
    /// Archived under an expected key, but some stored copy's bytes are not
    /// the bytes stream-sim sent.
    pub differ: Vec<String>,
}

impl Diff {
    /// The archive holds exactly the truth: every activity once, with its
    /// exact bytes, and nothing else.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.twice.is_empty() && self.differ.is_empty()
    }

    /// Only some expected activities are missing; what is there is exact
    /// (for a range that is known to be incomplete, e.g. lost).
    pub fn is_exact_subset(&self) -> bool {
        self.unexpected.is_empty() && self.twice.is_empty() && self.differ.is_empty()
    }

    /// One line, the numbers only.
    pub fn summary(&self) -> String {
        format!(
            "archived {:>7} of {:>7} expected  missing {}  unexpected {}  stored twice {}  bytes differ {}",
            self.archived,
            self.expected,
            self.missing.len(),
            self.unexpected.len(),
            self.extra_copies,
            self.differ.len()
        )
    }
}

/// The summary, then up to three examples of each kind of difference.
impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        for (what, keys) in [
            ("missing", &self.missing),
            ("unexpected", &self.unexpected),
            ("stored twice", &self.twice),
            ("bytes differ", &self.differ),
        ] {
            if !keys.is_empty() {
                write!(f, "; {what}: {:?}", keys.iter().take(3).collect::<Vec<_>>())?;
            }
        }
        Ok(())
    }
}

/// Compares an archive with the truth of the same range.
pub fn compare(truth: &Truth, archived: &Archived) -> Diff {
    let mut d = Diff {
        expected: truth.len(),
        archived: archived.records.len(),
        extra_copies: archived.count - archived.records.len(),
        ..Diff::default()
    };
    for (key, copies) in &archived.records {
        if copies.len() > 1 {
            d.twice.push(key.clone());
        }
        match truth.get(key) {
            None => d.unexpected.push(key.clone()),
            Some(want) if copies.iter().any(|c| c != want) => d.differ.push(key.clone()),
            Some(_) => {}
        }
    }
    d.missing = truth.keys().filter(|k| !archived.records.contains_key(*k)).cloned().collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::of(s.as_bytes())
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let truth: Truth =
            [("post 1", "{\"id\":1}"), ("post 2", "{\"id\":2}"), ("post 3", "{\"id\":3}"), ("post 4", "{\"id\":4}")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), fp(v)))
                .collect();
        let mut a = Archived::default();
        a.add("post 1".into(), b"{\"id\":1}");
        a.add("post 2".into(), b"{\"id\":2}\r");
        a.add("post 3".into(), b"{\"id\":3}");
        a.add("post 3".into(), b"{\"id\":3}");
        a.add("post 5".into(), b"{\"id\":5}");
        let d = compare(&truth, &a);
        assert_eq!(d.missing, ["post 4"]);
        assert_eq!(d.unexpected, ["post 5"]);
        assert_eq!(d.twice, ["post 3"]);
        assert_eq!(d.differ, ["post 2"]);
        assert_eq!((d.expected, d.archived, d.extra_copies), (4, 4, 1));
        assert!(!d.is_exact() && !d.is_exact_subset());
        assert!(d.to_string().contains("bytes differ 1"), "{d}");

        let mut exact = Archived::default();
        for k in 1..=4 {
            exact.add(format!("post {k}"), format!("{{\"id\":{k}}}").as_bytes());
        }
        assert!(compare(&truth, &exact).is_exact());
    }
}
