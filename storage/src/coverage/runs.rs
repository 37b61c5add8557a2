//! Runs: sorted, disjoint, non-adjacent half-open ranges of seconds
//! (`(start, end)`), their arithmetic (linear in the number of runs, never
//! per second), and runs kept in a sled tree as one value per UTC day.

use std::ops::Range;

use super::keys::{be_u32, day_key};
use super::{corrupt, Run, DAY};
use crate::error::Result;

/// Applies `edit` to the runs of every day `secs` touches (with the part of
/// `secs` inside that day) and adds the writes to `batch`.
pub(super) fn edit_days(
    tree: &sled::Tree,
    prefix: &[u8],
    secs: Run,
    batch: &mut sled::Batch,
    mut edit: impl FnMut(&mut Vec<Run>, Run),
) -> Result<()> {
    let mut day = secs.0.div_euclid(DAY);
    while day * DAY < secs.1 {
        let piece = (secs.0.max(day * DAY), secs.1.min((day + 1) * DAY));
        let key = day_key(prefix, day);
        let mut runs = match tree.get(&key)? {
            Some(v) => decode_runs(&v, day)?,
            None => Vec::new(),
        };
        edit(&mut runs, piece);
        if runs.is_empty() {
            batch.remove(key);
        } else {
            batch.insert(key, encode_runs(&runs));
        }
        day += 1;
    }
    Ok(())
}

/// The runs stored under `prefix` (one key per day), clipped to `win`,
/// merged across midnight.
pub(super) fn load_runs(tree: &sled::Tree, prefix: &[u8], win: Run) -> Result<Vec<Run>> {
    let mut out: Vec<Run> = Vec::new();
    if win.0 >= win.1 {
        return Ok(out);
    }
    let lo = day_key(prefix, win.0.div_euclid(DAY));
    let hi = day_key(prefix, (win.1 - 1).div_euclid(DAY));
    for kv in tree.range(lo..=hi) {
        let (k, v) = kv?;
        let day =
            be_u32(&k[prefix.len().min(k.len())..]).ok_or_else(|| corrupt(format!("day key of {} bytes", k.len())))?;
        for (s, e) in decode_runs(&v, day as i64)? {
            let (s, e) = (s.max(win.0), e.min(win.1));
            if s >= e {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
    }
    Ok(out)
}

pub(super) fn encode_runs(runs: &[Run]) -> Vec<u8> {
    let mut v = Vec::with_capacity(runs.len() * 8);
    for &(s, e) in runs {
        // Inside one day below MAX_SECS, so both fit in a u32.
        v.extend_from_slice(&(s as u32).to_be_bytes());
        v.extend_from_slice(&(e as u32).to_be_bytes());
    }
    v
}

/// Decodes and checks the runs of `day` (see the module docs).
pub(super) fn decode_runs(v: &[u8], day: i64) -> Result<Vec<Run>> {
    if v.is_empty() || !v.chunks_exact(8).remainder().is_empty() {
        return Err(corrupt(format!("day {day}: runs value of {} bytes", v.len())));
    }
    let (lo, hi) = (day * DAY, (day + 1) * DAY);
    let mut runs = Vec::with_capacity(v.len() / 8);
    let mut prev_end = i64::MIN;
    for pair in v.chunks_exact(8) {
        let s = be_u32(&pair[..4]).unwrap_or(0) as i64;
        let e = be_u32(&pair[4..]).unwrap_or(0) as i64;
        if s < lo || e > hi || s >= e || s <= prev_end {
            return Err(corrupt(format!("day {day}: bad run {s}..{e}")));
        }
        prev_end = e;
        runs.push((s, e));
    }
    Ok(runs)
}

pub(super) fn to_ranges(runs: &[Run]) -> Vec<Range<i64>> {
    runs.iter().map(|&(s, e)| s..e).collect()
}

/// Sorts, drops empty runs, merges overlapping and adjacent ones.
pub(super) fn normalize(runs: &mut Vec<Run>) {
    runs.retain(|r| r.0 < r.1);
    runs.sort_unstable();
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for &(s, e) in runs.iter() {
        match out.last_mut() {
            Some(last) if last.1 >= s => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *runs = out;
}

pub(super) fn union(a: &[Run], b: &[Run]) -> Vec<Run> {
    let mut v: Vec<Run> = a.iter().chain(b.iter()).copied().collect();
    normalize(&mut v);
    v
}

/// Intersection of two normalized run lists.
pub(super) fn intersect(a: &[Run], b: &[Run]) -> Vec<Run> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// A normalized run list less one run.
pub(super) fn subtract(runs: &[Run], cut: Run) -> Vec<Run> {
    let mut out = Vec::with_capacity(runs.len() + 1);
    for &(s, e) in runs {
        if e <= cut.0 || s >= cut.1 {
            out.push((s, e));
            continue;
        }
        if s < cut.0 {
            out.push((s, cut.0));
        }
        if e > cut.1 {
            out.push((cut.1, e));
        }
    }
    out
}

/// The seconds of `win` outside a normalized run list.
pub(super) fn complement(runs: &[Run], win: Run) -> Vec<Run> {
    let mut out = Vec::new();
    let mut at = win.0;
    for &(s, e) in runs {
        if e <= at {
            continue;
        }
        if s >= win.1 {
            break;
        }
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < win.1 {
        out.push((at, win.1));
    }
    out
}

/// Walks a normalized run list with queries of increasing start.
pub(super) struct Cursor<'a> {
    runs: &'a [Run],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(runs: &'a [Run]) -> Cursor<'a> {
        Cursor { runs, i: 0 }
    }

    fn skip_before(&mut self, s: i64) {
        while self.i < self.runs.len() && self.runs[self.i].1 <= s {
            self.i += 1;
        }
    }

    /// Does one run hold all of `[s, e)`?
    pub(super) fn contains(&mut self, s: i64, e: i64) -> bool {
        self.skip_before(s);
        self.runs.get(self.i).is_some_and(|r| r.0 <= s && r.1 >= e)
    }

    /// Does some run meet `[s, e)`?
    pub(super) fn overlaps(&mut self, s: i64, e: i64) -> bool {
        self.skip_before(s);
        self.runs.get(self.i).is_some_and(|r| r.0 < e)
    }
}
