//! What the tools need to know of segment files, asked of
//! [`gapless_storage::layout`] (the one module that knows paths and file
//! names): no directory is walked by hand here.

use std::path::Path;

use gapless_storage::activity::{EARLIEST_MS, LATEST_MS};
use gapless_storage::{layout, Minute};

use crate::Error;

/// The minutes of `[first, end)` of stream `label` in the data directory
/// `data` whose data is in the bucket, wholly or in part: evicted
/// (`[archive] local_max`), their segment replaced by an eviction marker
/// ([`layout::evicted_path`]). A minute with a marker and a segment again
/// (late data after the eviction, or an eviction cut short) counts too:
/// its segment may hold only the late activities, so the local copy is
/// not the minute (when in doubt, it is not here). Sorted.
pub fn evicted_minutes(data: &Path, label: &str, first: Minute, end: Minute) -> Result<Vec<Minute>, Error> {
    let dir = layout::stream_dir(data, label);
    let mut out = layout::evicted_minutes(&dir, first, end)?;
    for m in layout::minutes_with_segments(&dir, first, end)? {
        if layout::evicted_path(&layout::segment_path(&dir, m)).exists() {
            out.push(m);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The end (Unix seconds) of the newest minute that has a segment in any
/// stream of `data`, from file names alone; `None` when there is none.
pub fn newest_segment_end(data: &Path) -> Result<Option<i64>, Error> {
    // Activity times outside [EARLIEST_MS, LATEST_MS) are quarantined,
    // never stored: these bounds hold every segment.
    let (first, end) = (Minute::of_ms(EARLIEST_MS), Minute::of_ms(LATEST_MS));
    let mut best: Option<i64> = None;
    for label in layout::streams(data)? {
        let dir = layout::stream_dir(data, &label);
        for day in layout::segment_days(&dir, first, end)?.iter().rev() {
            if let Some(m) = layout::segment_minutes(&dir, day, first, end)?.last() {
                let m_end = m.start_secs() + 60;
                best = Some(best.map_or(m_end, |b| b.max(m_end)));
                break;
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_minute_of_any_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(newest_segment_end(dir.path()).ok(), Some(None));
        let touch = |label: &str, secs: i64| {
            let p = layout::segment_path(&layout::stream_dir(dir.path(), label), Minute::of_secs(secs));
            std::fs::create_dir_all(p.parent().expect("a day directory")).expect("mkdir");
            std::fs::write(p, b"").expect("write");
        };
        touch("a", 1_500_336_000);
        touch("a", 1_500_336_000 + 86_400 + 120);
        touch("b", 1_500_336_000 + 600);
        // A day directory with nothing in it is passed over.
        std::fs::create_dir_all(dir.path().join("streams/b/segments/2017-07-25")).expect("mkdir");
        assert_eq!(newest_segment_end(dir.path()).ok(), Some(Some(1_500_336_000 + 86_400 + 180)));
    }

    #[test]
    fn evicted_minutes_with_or_without_a_segment_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = 1_500_336_000;
        let stream = layout::stream_dir(dir.path(), "a");
        let seg = |k: i64| layout::segment_path(&stream, Minute::of_secs(base + k * 60));
        std::fs::create_dir_all(seg(0).parent().expect("a day directory")).expect("mkdir");
        // 0: a segment; 1: evicted; 2: evicted, then late data; 3: evicted, out of the range.
        for (k, segment, marker) in [(0, true, false), (1, false, true), (2, true, true), (3, false, true)] {
            if segment {
                std::fs::write(seg(k), b"").expect("write");
            }
            if marker {
                std::fs::write(layout::evicted_path(&seg(k)), b"{}").expect("write");
            }
        }
        let range = (Minute::of_secs(base), Minute::of_secs(base + 180));
        let got = evicted_minutes(dir.path(), "a", range.0, range.1).expect("list");
        assert_eq!(got, [Minute::of_secs(base + 60), Minute::of_secs(base + 120)]);
        assert_eq!(evicted_minutes(dir.path(), "nope", range.0, range.1).ok(), Some(vec![]));
    }
}
