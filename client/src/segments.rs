//! What the tools need to know of segment files, asked of
//! [`gapless_storage::layout`] (the one module that knows paths and file
//! names): no directory is walked by hand here.

use std::path::Path;

use gapless_storage::activity::{EARLIEST_MS, LATEST_MS};
use gapless_storage::{layout, Minute};

use crate::Error;

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
}
