//! Where the bucket keeps what: the one module that knows object keys
//! (FORMAT.md, "The archive in a bucket").
//!
//! ```text
//! PREFIX/sites/SITE/streams/LABEL/coverage/YYYY-MM-DD.json         the day's manifest
//! PREFIX/sites/SITE/streams/LABEL/segments/YYYY-MM-DD/YYYYMMDDTHHMMZ-CCCCCCCC.seg
//! PREFIX/sites/SITE/streams/LABEL/dict/XXXXXXXX.zdict              as the data directory's
//! PREFIX/sites/SITE/streams/LABEL/compliance.ledger                the site's compliance ledger
//! ```
//!
//! A segment object is never overwritten: its name carries the CRC32C of
//! its bytes (`CCCCCCCC`, lowercase hex), so a minute uploaded again (late
//! data, a seal) is a new object, and a reader only ever follows a
//! manifest to objects that were complete before the manifest was written.

use gapless_storage::Minute;
use object_store::path::Path;

/// The keys of one site's copy of one stream.
#[derive(Clone, Debug)]
pub struct StreamKeys {
    base: String,
}

impl StreamKeys {
    /// `prefix` is the bucket URL's path (may be empty).
    pub fn new(prefix: &str, site: &str, label: &str) -> StreamKeys {
        StreamKeys { base: join(prefix, &format!("sites/{site}/streams/{label}")) }
    }

    /// The day's manifest (`day` is `YYYY-MM-DD`).
    pub fn manifest(&self, day: &str) -> Path {
        Path::from(format!("{}/coverage/{day}.json", self.base))
    }

    /// Where the manifests of the stream are listed.
    pub fn manifests(&self) -> Path {
        Path::from(format!("{}/coverage", self.base))
    }

    /// A segment object: the minute's segment with these bytes.
    pub fn segment(&self, minute: Minute, crc: u32) -> Path {
        Path::from(format!("{}/segments/{}/{}-{crc:08x}.seg", self.base, minute.day_dir(), minute.file_stem()))
    }

    /// The site's copy of the stream's compliance ledger (its whole
    /// records), replaced as it grows.
    pub fn ledger(&self) -> Path {
        Path::from(format!("{}/compliance.ledger", self.base))
    }

    /// Where the stream's segment objects are listed.
    pub fn segments(&self) -> Path {
        Path::from(format!("{}/segments", self.base))
    }

    /// A dictionary object; `name` is its file name in the data directory.
    pub fn dict(&self, name: &str) -> Path {
        Path::from(format!("{}/dict/{name}", self.base))
    }

    /// Where the stream's dictionaries are listed.
    pub fn dicts(&self) -> Path {
        Path::from(format!("{}/dict", self.base))
    }
}

/// One of an account's Recovery slots, shared by every site (`n` from 0).
pub fn recovery_slot(prefix: &str, account: &str, n: usize) -> Path {
    Path::from(join(prefix, &format!("accounts/{account}/recovery/slot-{n}.json")))
}

/// Where the sites of a bucket are listed.
pub fn sites(prefix: &str) -> Path {
    Path::from(join(prefix, "sites"))
}

/// Where one site's streams are listed.
pub fn site_streams(prefix: &str, site: &str) -> Path {
    Path::from(join(prefix, &format!("sites/{site}/streams")))
}

/// The day (`YYYY-MM-DD`) a manifest's key names.
pub fn manifest_day(key: &Path) -> Option<String> {
    let name = key.filename()?.strip_suffix(".json")?;
    chrono::NaiveDate::parse_from_str(name, "%Y-%m-%d").ok().map(|_| name.to_string())
}

/// A site name names a directory in the bucket, as a stream label does:
/// letters, digits, `-`, `_`, `.`, not starting with `.`, at most 64 bytes.
pub fn check_site(site: &str) -> bool {
    gapless_storage::layout::check_label(site).is_ok()
}

fn join(prefix: &str, rest: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let k = StreamKeys::new("/archive/x/", "east", "decahose");
        let m = Minute::of_secs(1_772_366_400 + 25 * 60); // 2026-03-01T12:25Z (12:00 + 25 min)
        assert_eq!(
            k.segment(m, 0xab).as_ref(),
            "archive/x/sites/east/streams/decahose/segments/2026-03-01/20260301T1225Z-000000ab.seg"
        );
        assert_eq!(k.manifest("2026-03-01").as_ref(), "archive/x/sites/east/streams/decahose/coverage/2026-03-01.json");
        assert_eq!(manifest_day(&k.manifest("2026-03-01")).as_deref(), Some("2026-03-01"));
        assert_eq!(manifest_day(&Path::from("a/coverage/junk.json")), None);
        assert_eq!(
            StreamKeys::new("", "s", "l").dict("00000001.zdict").as_ref(),
            "sites/s/streams/l/dict/00000001.zdict"
        );
        assert!(check_site("east-1") && !check_site("../x") && !check_site(""));
    }
}
