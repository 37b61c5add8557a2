//! The proof that data is durable.

/// Proof that every frame appended to a stream before a commit is on disk
/// (written and fsynced, and its directory entry fsynced).
///
/// Only a successful commit constructs one (the constructor is private to
/// the crate), and the coverage map records nothing without one. A commit
/// that fails, for example on a full disk, yields no proof, so coverage
/// cannot advance past data that is not durable.
#[derive(Debug)]
pub struct Durable {
    stream: String,
    seq: u64,
}

impl Durable {
    pub(crate) fn new(stream: &str, seq: u64) -> Durable {
        Durable { stream: stream.to_string(), seq }
    }

    /// The proof for a verified copy of an archive: the bucket's copy of a
    /// stream, whose manifest names only objects that were uploaded and
    /// verified (size and checksum) before it was written, and whose
    /// coverage the archiver that wrote it held only with its own commits'
    /// proofs. For readers that rebuild a coverage map from such a copy
    /// (`gapless-bucket`); nothing else may use it.
    pub fn verified_copy(stream: &str) -> Durable {
        Durable { stream: stream.to_string(), seq: 0 }
    }

    /// The stream whose data the commit made durable.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The commit's sequence number, increasing per open store.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}
