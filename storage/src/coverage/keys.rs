//! Key encoding of the coverage trees (big-endian, so that byte order is
//! numeric order), and the ranges of seconds and minutes a key can hold.

use std::ops::Range;

use super::{Run, MAX_SECS};
use crate::error::{Error, Result};
use crate::time::Minute;

pub(super) fn be_u32(b: &[u8]) -> Option<u32> {
    let a: [u8; 4] = b.try_into().ok()?;
    Some(u32::from_be_bytes(a))
}

pub(super) fn check_partition(stream: &str, partition: u32, parts: u32) -> Result<()> {
    if partition == 0 || partition > parts {
        return Err(Error::BadPartition { stream: stream.to_string(), partition, partitions: parts });
    }
    Ok(())
}

/// A valid half-open range of seconds inside `[0, MAX_SECS)`.
pub(super) fn check_secs(r: &Range<i64>) -> Result<Run> {
    if r.start < 0 || r.end > MAX_SECS || r.start > r.end {
        return Err(Error::OutOfRange(format!("seconds {}..{}: need 0 <= start <= end <= {MAX_SECS}", r.start, r.end)));
    }
    Ok((r.start, r.end))
}

/// The seconds of a valid range of minutes (checked before multiplying, so
/// an absurd `Minute` cannot overflow).
pub(super) fn minute_window(minutes: &Range<Minute>) -> Result<Run> {
    let max = MAX_SECS / 60;
    if !(0..=max).contains(&minutes.start.0) || !(0..=max).contains(&minutes.end.0) {
        return Err(Error::OutOfRange(format!(
            "minutes {}..{}: need 0 <= minute <= {max}",
            minutes.start.0, minutes.end.0
        )));
    }
    check_secs(&(minutes.start.start_secs()..minutes.end.start_secs()))
}

pub(super) fn check_minute(m: Minute) -> Result<u32> {
    if m.0 < 0 || m.0 >= MAX_SECS / 60 {
        return Err(Error::OutOfRange(format!("minute {} out of range", m.0)));
    }
    Ok(m.0 as u32)
}

pub(super) fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 13);
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k
}

pub(super) fn covered_prefix(stream: &str, partition: u32) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

pub(super) fn counts_key(stream: &str, minute: u32) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&minute.to_be_bytes());
    k
}

pub(super) fn job_key(stream: &str, id: u64) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(super) fn day_key(prefix: &[u8], day: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 4);
    k.extend_from_slice(prefix);
    // 0 <= day < 2^32 / 86400 by check_secs.
    k.extend_from_slice(&(day as u32).to_be_bytes());
    k
}
