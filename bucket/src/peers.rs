//! What the other sites of a stream cover, from their manifests in the
//! bucket: so that a site does not spend the account's scarce Recovery jobs
//! on a range another site already holds.
//!
//! Only other sites' manifests are read, and only their covered seconds
//! are used: those were written after the objects they cover were
//! verified, so what a peer covers is in the bucket.

use std::collections::BTreeMap;
use std::ops::Range;

use gapless_storage::Minute;

use crate::error::Result;
use crate::keys::{self, StreamKeys};
use crate::remote::Bucket;
use crate::upload::parse_manifest;

/// The union of the other sites' covered seconds, per partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCoverage {
    covered: BTreeMap<u32, Vec<Range<i64>>>,
    /// The other sites found, sorted.
    pub sites: Vec<String>,
}

impl PeerCoverage {
    /// The seconds other sites cover in `partition`: sorted, disjoint, merged.
    pub fn covered(&self, partition: u32) -> &[Range<i64>] {
        self.covered.get(&partition).map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, partition: u32, runs: impl IntoIterator<Item = Range<i64>>) {
        let v = self.covered.entry(partition).or_default();
        v.extend(runs);
        v.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<i64>> = Vec::with_capacity(v.len());
        for r in v.drain(..) {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        *v = merged;
    }
}

/// Reads the manifests of the days of `minutes` of every site but `site`
/// for stream `label`.
pub async fn read(bucket: &Bucket, site: &str, label: &str, minutes: Range<Minute>) -> Result<PeerCoverage> {
    let mut out = PeerCoverage::default();
    if minutes.start >= minutes.end {
        return Ok(out);
    }
    let mut days = Vec::new();
    let mut day = minutes.start.day_dir();
    let mut m = minutes.start;
    while m < minutes.end {
        if days.last() != Some(&day) {
            days.push(day.clone());
        }
        m = Minute::of_secs((m.start_secs().div_euclid(86_400) + 1) * 86_400);
        day = m.day_dir();
    }
    for peer in bucket.children(&keys::sites(bucket.prefix())).await? {
        if peer == site || !keys::check_site(&peer) {
            continue;
        }
        let keys = StreamKeys::new(bucket.prefix(), &peer, label);
        let mut found = false;
        for day in &days {
            let key = keys.manifest(day);
            let Some(bytes) = bucket.get(&key).await? else { continue };
            let m = parse_manifest(&key, &bytes)?;
            found = true;
            for p in 1..=m.partitions {
                out.add(p, m.covered_ranges(p));
            }
        }
        if found {
            out.sites.push(peer);
        }
    }
    out.sites.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_several_sites_merge() {
        let mut p = PeerCoverage::default();
        p.add(1, [10..20, 40..50]);
        p.add(1, [15..30, 50..60]);
        p.add(2, vec![0..3, 3..5]);
        assert_eq!(p.covered(1), &[10..30, 40..60]);
        assert_eq!((p.covered(2).len(), p.covered(2)[0].clone()), (1, 0..5), "touching runs merge");
        assert!(p.covered(3).is_empty());
    }
}
