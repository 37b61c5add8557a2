//! Ground truth: every activity of a time range, as `KIND KEY` lines, and
//! optionally each activity's exact bytes as a fingerprint.
//!
//! This is what a perfect client receives over realtime plus Recovery, in
//! activity-time order. Tests compare an archive against it: by key (is
//! every activity there, once?) and by fingerprint (are its bytes the ones
//! sent: no stray `\r`, no byte changed, no line joined badly across a gzip
//! boundary that kept the key?).
//!
//! The fingerprint of an activity is the length and the 64-bit FNV-1a
//! (offset `0xcbf29ce484222325`, prime `0x100000001b3`) of its line's exact
//! bytes, without the `\r\n` separator: the same bytes on every connection,
//! in Backfill and in Recovery. FNV-1a detects every change of a single
//! byte (each step is a bijection of the state), and the length every
//! insertion or removal.

use std::fmt;
use std::io::Write;

use crate::clock::StreamMs;
use crate::generator::{Activity, Generator, Key};
use crate::rng::fnv1a64;

/// The length and FNV-1a 64 of an activity's bytes (without `\r\n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint {
    pub len: u64,
    pub fnv1a64: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Fingerprint {
        Fingerprint { len: bytes.len() as u64, fnv1a64: fnv1a64(bytes) }
    }
}

/// `LEN HASH`: the length in decimal, the hash as 16 lowercase hex digits.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:016x}", self.len, self.fnv1a64)
    }
}

/// One activity of the truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruthEntry {
    /// Activity time (ms since the Unix epoch).
    pub time_ms: StreamMs,
    pub key: Key,
    pub fingerprint: Fingerprint,
}

impl TruthEntry {
    fn of(a: &Activity) -> TruthEntry {
        TruthEntry { time_ms: a.time_ms, key: a.key.clone(), fingerprint: Fingerprint::of(&a.line) }
    }

    /// `KIND KEY`, as [`truth_lines`] prints it.
    pub fn truth_line(&self) -> String {
        self.key.truth_line()
    }
}

/// Write the truth of `[from_ms, to_ms)` (optionally one partition) as
/// `KIND KEY` lines.
pub fn write_truth<W: Write>(
    gen: &Generator,
    from_ms: StreamMs,
    to_ms: StreamMs,
    partition: Option<u32>,
    out: &mut W,
) -> std::io::Result<u64> {
    write_truth_with(gen, from_ms, to_ms, partition, false, out)
}

/// Like [`write_truth`]; with `fingerprints`, each line is
/// `KIND KEY LEN HASH` (see [`Fingerprint`]): the first two columns are
/// the same as without.
pub fn write_truth_with<W: Write>(
    gen: &Generator,
    from_ms: StreamMs,
    to_ms: StreamMs,
    partition: Option<u32>,
    fingerprints: bool,
    out: &mut W,
) -> std::io::Result<u64> {
    let mut n = 0;
    if to_ms <= from_ms {
        return Ok(0);
    }
    for a in gen.range(from_ms, to_ms, partition) {
        if fingerprints {
            writeln!(out, "{} {}", a.key.truth_line(), Fingerprint::of(&a.line))?;
        } else {
            writeln!(out, "{}", a.key.truth_line())?;
        }
        n += 1;
    }
    Ok(n)
}

/// The truth as a vector of lines.
pub fn truth_lines(gen: &Generator, from_ms: StreamMs, to_ms: StreamMs, partition: Option<u32>) -> Vec<String> {
    if to_ms <= from_ms {
        return Vec::new();
    }
    gen.range(from_ms, to_ms, partition).map(|a| a.key.truth_line()).collect()
}

/// The truth with each activity's time and fingerprint, in activity-time
/// order.
pub fn truth_entries(gen: &Generator, from_ms: StreamMs, to_ms: StreamMs, partition: Option<u32>) -> Vec<TruthEntry> {
    if to_ms <= from_ms {
        return Vec::new();
    }
    gen.range(from_ms, to_ms, partition).map(|a| TruthEntry::of(&a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{StreamKind, StreamSpec};

    fn gen() -> Generator {
        let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
        spec.rate = 20.0;
        Generator::new(7, &spec)
    }

    #[test]
    fn fingerprints_extend_the_lines_and_match_the_bytes() {
        let (from, to) = (1_772_323_200_000, 1_772_323_205_000);
        let g = gen();
        let mut plain = Vec::new();
        let mut with = Vec::new();
        let n = write_truth(&g, from, to, None, &mut plain).unwrap();
        assert_eq!(write_truth_with(&g, from, to, None, true, &mut with).unwrap(), n);
        let plain = String::from_utf8(plain).unwrap();
        let with = String::from_utf8(with).unwrap();
        let acts: Vec<Activity> = g.range(from, to, None).collect();
        assert_eq!(acts.len() as u64, n);
        for ((p, w), a) in plain.lines().zip(with.lines()).zip(&acts) {
            let cols: Vec<&str> = w.split(' ').collect();
            assert_eq!(cols.len(), 4, "{w}");
            assert_eq!(format!("{} {}", cols[0], cols[1]), p);
            assert_eq!(cols[2], a.line.len().to_string());
            assert_eq!(u64::from_str_radix(cols[3], 16).unwrap(), fnv1a64(&a.line));
        }
        let entries = truth_entries(&g, from, to, None);
        assert_eq!(entries.iter().map(|e| e.truth_line()).collect::<Vec<_>>(), truth_lines(&g, from, to, None));
    }

    #[test]
    fn a_fingerprint_sees_a_stray_cr_and_a_changed_byte() {
        let a = gen().range(1_772_323_200_000, 1_772_323_202_000, None).next().unwrap();
        let fp = Fingerprint::of(&a.line);
        let mut cr = a.line.to_vec();
        cr.insert(1, b'\r');
        assert_ne!(Fingerprint::of(&cr), fp);
        for i in [0, a.line.len() / 2, a.line.len() - 1] {
            let mut changed = a.line.to_vec();
            changed[i] ^= 0x01;
            assert_ne!(Fingerprint::of(&changed).fnv1a64, fp.fnv1a64, "byte {i}");
        }
    }
}
