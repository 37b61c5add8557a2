//! An archive in a bucket (`--data s3://BUCKET/PREFIX`), read by the tools
//! with no archiver running.
//!
//! # Design
//! - The tools do not learn a second way to read an archive: [`fetch`]
//!   copies what they need of the bucket's sites (their union: coverage,
//!   and segments and dictionaries when asked) into a temporary data
//!   directory with `gapless_bucket::replica`, and the tools open that
//!   directory exactly as they open a local `--data DIR`. The [`Replica`]
//!   removes it when dropped, so it must outlive every use of its
//!   `root()`.
//! - Only what is wanted is fetched: one stream or all, the days of a
//!   range or all, coverage alone or with segments ([`Want`]). Every
//!   object is checked against its manifest's size and CRC32C as it is
//!   written; a mismatch is an error, never a silent hole.
//! - A stream is never left out because it has no manifest among the
//!   days asked for (its archivers were all away, or it started later):
//!   that would hide a hole. It is registered as its other days' manifests
//!   say (partitions, where coverage is owed from), covering nothing in
//!   the range, and has its directory, as in a local archive.
//! - The tools stay synchronous: the requests run on a small
//!   current-thread tokio runtime that lives for one fetch.
//! - Credentials, region and endpoint come only from the `AWS_*`
//!   environment variables (`gapless_bucket::remote`); no message here
//!   carries one, and a URL with a user part (`s3://KEY:SECRET@bucket`,
//!   refused) is shown without it.

use std::path::Path;

use gapless_storage::coverage::{CoverageMap, MAX_SECS};
use gapless_storage::{layout, Minute};

pub use gapless_bucket::replica::{Replica, Want};

use crate::Error;

/// The URL scheme of an archive in a bucket.
pub const SCHEME: &str = "s3://";

/// The bucket URL that `--data` names, or `None` for a local directory.
pub fn bucket_url(data: &Path) -> Option<&str> {
    data.to_str().filter(|s| s.starts_with(SCHEME))
}

/// Fetches what `want` names from the archive at `url` (`s3://BUCKET[/PREFIX]`)
/// into a temporary data directory (see the module doc).
pub fn fetch(url: &str, want: &Want) -> Result<Replica, Error> {
    let bucket = gapless_bucket::Bucket::open(url).map_err(|e| match e {
        gapless_bucket::Error::BadUrl { why, .. } => Error::BadBucketUrl { url: shown(url), why },
        error => Error::Bucket { url: shown(url), detail: describe(&error), error: Box::new(error) },
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
    let bucket_error =
        |error| Error::Bucket { url: bucket.url().to_string(), detail: describe(&error), error: Box::new(error) };
    let replica = runtime.block_on(gapless_bucket::replica::fetch(&bucket, want)).map_err(bucket_error)?;
    if want.minutes.is_some() {
        let map = crate::open::open_coverage(replica.root())?;
        for label in &replica.streams {
            if map.partitions(label)?.is_none() {
                // No manifest of this stream among the days asked for.
                let all = Want { stream: Some(label.clone()), minutes: None, segments: false };
                let all = runtime.block_on(gapless_bucket::replica::fetch(&bucket, &all)).map_err(bucket_error)?;
                register(&map, &crate::open::open_coverage(all.root())?, label)?;
            }
        }
        map.flush()?;
    }
    for label in &replica.streams {
        let dir = layout::stream_dir(replica.root(), label);
        std::fs::create_dir_all(&dir).map_err(|source| gapless_storage::Error::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
    }
    Ok(replica)
}

/// Registers `label` in `map` as `from` has it (partitions, where coverage
/// is owed from, the recovery window), covering nothing.
fn register(map: &CoverageMap, from: &CoverageMap, label: &str) -> Result<(), Error> {
    let Some(partitions) = from.partitions(label)? else { return Ok(()) };
    map.set_partitions(label, partitions)?;
    if let Some(secs) = from.owed_from(label)? {
        map.owe_from(label, secs)?;
    }
    if let Some(secs) = from.recovery_window(label)? {
        map.set_recovery_window(label, secs)?;
    }
    Ok(())
}

/// What went wrong with the bucket, in one line: for a request the server
/// answered with an S3 error, the request and the error's code and
/// message (`list archive/sites: NoSuchBucket: The specified bucket does
/// not exist`), not the whole answer; otherwise the error as it says
/// itself (its causes included once).
pub fn describe(e: &gapless_bucket::Error) -> String {
    match (e, s3_error(e)) {
        (gapless_bucket::Error::Request { op, key, .. }, Some((code, message))) => {
            format!("{op} {key}: {code}: {message}")
        }
        _ => e.to_string(),
    }
}

/// The code and message of the S3 error answer (`<Error><Code>…</Code>
/// <Message>…</Message>`) in `e`'s causes, if there is one.
pub fn s3_error(e: &(dyn std::error::Error + 'static)) -> Option<(String, String)> {
    let mut at = Some(e);
    while let Some(err) = at {
        let text = err.to_string();
        if let Some(code) = xml_element(&text, "Code") {
            return Some((code.to_string(), xml_element(&text, "Message").unwrap_or_default().to_string()));
        }
        at = err.source();
    }
    None
}

/// The text of the first `<name>…</name>` in `text`.
fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(&text[start..start + len])
}

/// The end (Unix seconds) of the newest minute that `map` covers or counts
/// in any stream: what the newest segment is for a local data directory
/// (a replica fetched without segments has none).
pub fn newest_end(map: &CoverageMap) -> Result<Option<i64>, Error> {
    let mut best: Option<i64> = None;
    let mut see = |end: i64| best = Some(best.map_or(end, |b| b.max(end)));
    for stream in map.streams()? {
        for p in 1..=map.partitions(&stream)?.unwrap_or(0) {
            if let Some(r) = map.covered_ranges(&stream, p, 0..MAX_SECS)?.last() {
                see(Minute::of_secs(r.end - 1).start_secs() + 60);
            }
        }
        if let Some((m, _)) = map.counts(&stream, Minute(0)..Minute(MAX_SECS / 60))?.last() {
            see(m.start_secs() + 60);
        }
    }
    Ok(best)
}

/// `url` as it may be shown: without a user part, if it has one.
fn shown(url: &str) -> String {
    let Some(rest) = url.strip_prefix(SCHEME) else { return url.to_string() };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rfind('@') {
        Some(at) => format!("{SCHEME}…@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gapless_storage::coverage::Counts;
    use gapless_storage::Durable;

    #[test]
    fn a_bucket_url_is_told_from_a_path() {
        assert_eq!(bucket_url(Path::new("s3://b/p")), Some("s3://b/p"));
        assert_eq!(bucket_url(Path::new("s3://b")), Some("s3://b"));
        for local in ["/tmp/s3://x", "data", "s3:/b", "./s3://b", "S3://b"] {
            assert_eq!(bucket_url(Path::new(local)), None, "{local}");
        }
    }

    #[test]
    fn s3_errors_are_told_by_code_and_message() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code>\
<Message>The specified bucket does not exist</Message><RequestId>x</RequestId></Error>";
        let io = std::io::Error::other(body);
        assert_eq!(
            s3_error(&io),
            Some(("NoSuchBucket".to_string(), "The specified bucket does not exist".to_string()))
        );
        assert_eq!(s3_error(&std::io::Error::other("connection refused")), None);
        assert_eq!(xml_element("<Code>A</Code>", "Message"), None);
    }

    #[test]
    fn a_url_is_shown_without_its_user_part() {
        assert_eq!(shown("s3://b/p"), "s3://b/p");
        assert_eq!(shown("s3://KEY:SECRET@b/p"), "s3://…@b/p");
        assert_eq!(shown("s3://b/p@q"), "s3://b/p@q");
        let Err(err) = fetch("s3://KEY:SECRET@b/p", &Want::default()) else { panic!("a user part is refused") };
        assert!(matches!(err, Error::BadBucketUrl { .. }), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn the_newest_covered_or_counted_minute() {
        let dir = tempfile::tempdir().expect("tempdir");
        let map = CoverageMap::open(dir.path()).expect("open");
        assert_eq!(newest_end(&map).ok(), Some(None));
        let base = 1_500_336_000;
        map.set_partitions("a", 2).expect("partitions");
        let proof = Durable::verified_copy("a");
        map.cover(&proof, "a", 1, base..base + 90).expect("cover");
        map.cover(&proof, "a", 2, base..base + 30).expect("cover");
        // Half a minute covered: its end.
        assert_eq!(newest_end(&map).ok(), Some(Some(base + 120)));
        map.set_partitions("b", 1).expect("partitions");
        map.add_counts("b", Minute::of_secs(base + 600), Counts { received: 1, stored: 1, ..Counts::default() })
            .expect("counts");
        assert_eq!(newest_end(&map).ok(), Some(Some(base + 660)));
    }
}
