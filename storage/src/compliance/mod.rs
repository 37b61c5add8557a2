//! Compliance: what the stream says was deleted or withheld, kept per
//! stream in a ledger, and applied to what readers get.
//!
//! # Design constraints
//! - **Exactly what the stream said.** Events come from the compliance
//!   lines the archive stores ([`event`]), as they are stored (realtime,
//!   Backfill, Recovery, import alike): the ingest path reads each stored
//!   Post delete, unlike and compliance message once more (a few per cent
//!   of a stream) and the sink appends the event to the stream's
//!   [`ledger`], fsynced before the segments of the same commit.
//! - **Order free.** An event may arrive before the Post it names
//!   (Recovery brings the Post later), or twice. The rules depend only on
//!   the set of events, never on the order they arrived ([`Policy::add`]).
//! - **Bytes as received, except what compliance removes.** A rewrite
//!   changes only the values it must ([`json`] gives their byte spans);
//!   every other byte of a Post stays as the stream sent it.
//! - **Readable without the ledger.** An archive written before the ledger
//!   existed, or a bucket's union, has its events in its segments:
//!   [`load`] reads them from there when there is no ledger file.
//!
//! # The rules (a compliant reader)
//! A record *involves* its own Post ID and author, and those of the Posts
//! it embeds (`retweeted_status`, `quoted_status`, their own embedded
//! Posts; a like's `favorited_status` and its liker; Activity Streams
//! `actor` and a share's `object`). In this order:
//! 1. **Deleted.** A record that involves a deleted Post (`delete`), or a
//!    user hidden now by `user_delete`, `user_protect` or `user_suspend`,
//!    is left out. A user's state in each family is decided by the event
//!    with the greatest time, the hiding event winning a tie: after
//!    `user_undelete` (`user_unprotect`, `user_unsuspend`) every Post of the
//!    user is shown again.
//! 2. **Unliked.** A like whose (liked Post, liker) has an unlike at or
//!    after the like's time is left out.
//! 3. **Withheld.** A record that involves a Post named by
//!    `status_withheld` or a user named by `user_withheld` is left out
//!    ([`WithheldMode::Drop`], the default) or kept with a top-level
//!    `withheld_in_countries` holding every country that applies
//!    ([`WithheldMode::Keep`]: the value replaced if present, else inserted
//!    before the closing brace).
//! 4. **scrub_geo.** In every Post object whose author is named by a
//!    `scrub_geo` and whose ID is at most its `up_to_status_id`, the values
//!    of `geo`, `coordinates` and `place` become `null`.
//! 5. Compliance messages themselves are kept as received.

pub mod event;
mod json;
pub mod ledger;
pub mod policy;
pub mod purge;

pub use event::{event_of, Action, Event, Family, NotApplied, USER_EVENTS};

impl Action {
    /// The name of the message the action comes from (`delete`,
    /// `user_undelete`, `scrub_geo`, ...); `not_applied` for one that
    /// could not be applied.
    pub fn name(&self) -> &'static str {
        match self {
            Action::DeletePost { .. } => "delete",
            Action::Unlike { .. } => "unlike",
            Action::User { family, hide, .. } => {
                USER_EVENTS.iter().find(|(_, f, h)| f == family && h == hide).map_or("user", |(name, ..)| name)
            }
            Action::ScrubGeo { .. } => "scrub_geo",
            Action::WithholdPost { .. } => "status_withheld",
            Action::WithholdUser { .. } => "user_withheld",
            Action::NotApplied { .. } => "not_applied",
        }
    }
}
pub use ledger::{LedgerRead, LedgerWriter};
pub use policy::{Applied, Policy, PolicySummary, Reason, Verdict, WithheldMode};
pub use purge::{PurgeLog, PurgeRead};

use std::path::Path;

use crate::activity::{EARLIEST_MS, LATEST_MS};
use crate::dict::Dictionaries;
use crate::reader::for_each_record;
use crate::time::Minute;
use crate::{layout, Result};

/// Where a stream's events were read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The ledger file.
    Ledger,
    /// No ledger file: the compliance records of every segment.
    Segments,
}

/// A stream's compliance events.
#[derive(Debug)]
pub struct Loaded {
    pub events: Vec<Event>,
    pub source: Source,
    /// Bytes of the ledger after its last whole record (cut off by the
    /// archiver when it next writes).
    pub torn_bytes: u64,
}

/// Reads the events of the stream in `stream_dir`: its ledger, or, when it
/// has none, the compliance records of all its segments.
pub fn load(stream_dir: &Path) -> Result<Loaded> {
    if let Some(read) = ledger::read(&layout::ledger_path(stream_dir))? {
        return Ok(Loaded { events: read.events, source: Source::Ledger, torn_bytes: read.torn_bytes });
    }
    let mut events = Vec::new();
    let mut dicts = Dictionaries::new(&layout::dict_dir(stream_dir));
    for minute in layout::minutes_with_segments(stream_dir, Minute::of_ms(EARLIEST_MS), Minute::of_ms(LATEST_MS))? {
        let path = layout::segment_path(stream_dir, minute);
        for_each_record(&crate::io::StdFs, &path, &mut dicts, |e, bytes| {
            events.extend(event_of(e.kind, e.time_ms, bytes));
        })?;
    }
    Ok(Loaded { events, source: Source::Segments, torn_bytes: 0 })
}

#[cfg(test)]
mod tests;
