//! Per-stream zstd dictionaries.
//!
//! A frame of one second of Decahose holds ~10 Posts, too little for zstd
//! to learn the shape of a Post: such frames compress ~7x alone and ~9.5x
//! with a dictionary trained on the stream (figures in the README's
//! benchmark table). A minute sealed into one frame learns the shape by
//! itself, so dictionaries are used only for small frames.
//!
//! A dictionary is a raw zstd dictionary in `dict/<id as 8 hex digits>.zdict`
//! beside the stream's segments. Its id is the CRC32C of its bytes (0 is
//! reserved for "no dictionary"), so an id names exactly one dictionary.
//! A dictionary file is written and fsynced (with its directory) before the
//! first frame that needs it, and never deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::IoContext;
use crate::io::{Filesystem, StdFs};
use crate::segment::replace_atomically;
use crate::{Error, Result};

/// The dictionaries of one stream, loaded on first use.
pub struct Dictionaries {
    dir: PathBuf,
    loaded: HashMap<u32, Vec<u8>>,
    fs: Arc<dyn Filesystem>,
}

pub fn dict_id(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).max(1)
}

impl Dictionaries {
    pub fn new(dir: &Path) -> Dictionaries {
        Dictionaries::with_fs(dir, StdFs::shared())
    }

    /// Dictionaries read and written through `fs`.
    pub fn with_fs(dir: &Path, fs: Arc<dyn Filesystem>) -> Dictionaries {
        Dictionaries { dir: dir.to_path_buf(), loaded: HashMap::new(), fs }
    }

    fn path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("{id:08x}.zdict"))
    }

    /// The bytes of dictionary `id`.
    pub fn get(&mut self, id: u32) -> Result<&[u8]> {
        if !self.loaded.contains_key(&id) {
            let path = self.path(id);
            let bytes = match self.fs.read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::MissingDictionary { id, dir: self.dir.clone() })
                }
                Err(e) => return Err(Error::Io { op: "read dictionary", path, source: e }),
            };
            if dict_id(&bytes) != id {
                return Err(Error::NotASegment { path, reason: format!("dictionary does not match its id {id:08x}") });
            }
            self.loaded.insert(id, bytes);
        }
        Ok(&self.loaded[&id])
    }

    /// Stores a dictionary durably and returns its id.
    pub fn save(&mut self, bytes: Vec<u8>) -> Result<u32> {
        let id = dict_id(&bytes);
        if !self.dir.exists() {
            self.fs.create_dir_all(&self.dir).ctx("create dictionary dir", &self.dir)?;
            if let Some(parent) = self.dir.parent() {
                crate::segment::sync_dir(self.fs.as_ref(), parent)?;
            }
        }
        let path = self.path(id);
        if !path.exists() {
            replace_atomically(self.fs.as_ref(), &path, &bytes)?;
        }
        self.loaded.insert(id, bytes);
        Ok(id)
    }

    /// The newest dictionary on disk (by modification time), if any: the
    /// one a reopened store keeps using.
    pub fn latest(&mut self) -> Result<Option<u32>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io { op: "list dictionaries", path: self.dir.clone(), source: e }),
        };
        let mut best: Option<(std::time::SystemTime, u32)> = None;
        for entry in entries {
            let entry = entry.ctx("list dictionaries", &self.dir)?;
            let name = entry.file_name();
            let Some(id) =
                name.to_str().and_then(|n| n.strip_suffix(".zdict")).and_then(|h| u32::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            let modified = entry.metadata().and_then(|m| m.modified()).ctx("stat dictionary", entry.path())?;
            if best.is_none_or(|(t, _)| modified > t) {
                best = Some((modified, id));
            }
        }
        Ok(best.map(|(_, id)| id))
    }
}

/// Trains a dictionary of at most `max_size` bytes on sample activities.
pub fn train(samples: &[u8], sizes: &[usize], max_size: usize) -> Result<Vec<u8>> {
    zstd::dict::from_continuous(samples, sizes, max_size).map_err(Error::Compression)
}
