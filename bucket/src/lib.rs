//! gapless's archive in S3-compatible object storage.
//!
//! # Design constraints
//! - **The bucket alone is a complete archive.** Another machine reads it
//!   with no archiver running: segments, dictionaries, and per day a
//!   manifest that names the objects and the covered seconds.
//! - **Coverage in the bucket is never ahead of its data.** A manifest is
//!   written only after every object it names was uploaded and read back
//!   (size and CRC32C), and it covers a minute only with the object that
//!   holds everything the local coverage covered ([`upload`]).
//! - **The local data directory is the write-ahead buffer.** Minutes are
//!   written, fsynced and covered there first; the bucket being away loses
//!   nothing, it only delays the copy.
//! - **Objects are immutable.** A segment object's name carries its
//!   checksum; a new version of a minute is a new object.
//! - **Sites.** Archivers on different machines write under their own site
//!   name; readers see the union of the sites ([`replica`]).
//! - **Credentials** come from the `AWS_*` environment variables only, and
//!   no message carries one ([`remote`]).
//!
//! The object layout is [`keys`]'s; the manifest format is [`manifest`]'s;
//! both are documented in `storage/FORMAT.md`.

pub mod error;
pub mod keys;
pub mod lease;
pub mod manifest;
pub mod peers;
pub mod remote;
pub mod replica;
#[cfg(feature = "test-server")]
#[doc(hidden)]
pub mod test_server;
pub mod upload;

pub use error::{Error, Result};
pub use remote::Bucket;
