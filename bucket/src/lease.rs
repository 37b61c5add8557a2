//! The account's Recovery slots, shared by sites on different machines
//! through the bucket: the service allows an account two concurrent
//! Recovery jobs, whichever machine runs them.
//!
//! # Design
//! - Slot `n` is the object `accounts/ACCOUNT/recovery/slot-n.json` (`keys`):
//!   `{"site", "stream", "job", "expires_ms"}`. A site holds the slot while
//!   the object names it and has not expired.
//! - Taking a slot is a conditional write: create the object if there is
//!   none, or replace it if it has expired, only if it is still the
//!   version read (`If-Match` on its ETag). Of two sites racing for a slot,
//!   exactly one write succeeds.
//! - A holder renews before half the time-to-live passed (the same
//!   conditional replace, so a holder that lost its slot learns it) and
//!   deletes the object when the job ends. A holder that dies leaves a slot
//!   that expires: taken again after `ttl`.
//! - Expiry is judged by wall clocks of different machines: the time to
//!   live (60 s by default) dwarfs their skew under NTP. Should two sites
//!   still run three jobs at once, the service answers 429, which Recovery
//!   already backs off from.

use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::UpdateVersion;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys;
use crate::remote::Bucket;

/// How long a slot is held without renewal.
pub const TTL: Duration = Duration::from_secs(60);

/// What a slot's object says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub site: String,
    pub stream: String,
    /// The job, as the holder names it (for people reading the bucket).
    pub job: String,
    /// Wall time (Unix ms) after which the slot is free.
    pub expires_ms: i64,
}

/// A slot this site holds.
#[derive(Debug)]
pub struct Lease {
    key: Path,
    version: UpdateVersion,
    holder: Holder,
}

impl Lease {
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

/// The Recovery slots of one account.
#[derive(Clone, Debug)]
pub struct Slots {
    bucket: Bucket,
    account: String,
    slots: usize,
    ttl: Duration,
}

impl Slots {
    /// `slots` shared slots of `account` (a name a bucket key can hold:
    /// anything else is hashed into one).
    pub fn new(bucket: Bucket, account: &str, slots: usize, ttl: Duration) -> Slots {
        let account = if keys::check_site(account) {
            account.to_string()
        } else {
            format!("x{:08x}", crc32c::crc32c(account.as_bytes()))
        };
        Slots { bucket, account, slots, ttl }
    }

    /// Takes a free slot for `site`'s `job` of `stream`, or `None` if every
    /// slot is held (and not expired) by someone.
    pub async fn acquire(&self, site: &str, stream: &str, job: &str, now_ms: i64) -> Result<Option<Lease>> {
        let holder = Holder {
            site: site.to_string(),
            stream: stream.to_string(),
            job: job.to_string(),
            expires_ms: now_ms + self.ttl.as_millis() as i64,
        };
        let body = body(&holder)?;
        for n in 0..self.slots {
            let key = keys::recovery_slot(self.bucket.prefix(), &self.account, n);
            let taken = match self.bucket.get_versioned(&key).await? {
                None => self.bucket.create(&key, body.clone()).await?,
                Some((bytes, version)) => match serde_json::from_slice::<Holder>(&bytes) {
                    Ok(h) if h.expires_ms > now_ms => None,
                    // Expired, or not a slot object: replace it, if it is
                    // still what was read.
                    _ => self.bucket.replace(&key, body.clone(), version).await?,
                },
            };
            if let Some(version) = taken {
                return Ok(Some(Lease { key, version, holder }));
            }
        }
        Ok(None)
    }

    /// Extends the lease by the time to live from `now_ms`; `false` if it
    /// was lost (expired and taken by another).
    pub async fn renew(&self, lease: &mut Lease, now_ms: i64) -> Result<bool> {
        let mut holder = lease.holder.clone();
        holder.expires_ms = now_ms + self.ttl.as_millis() as i64;
        match self.bucket.replace(&lease.key, body(&holder)?, lease.version.clone()).await? {
            Some(version) => {
                lease.version = version;
                lease.holder = holder;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Gives the slot back (only if it is still this lease's).
    pub async fn release(&self, lease: Lease, now_ms: i64) -> Result<()> {
        // An expired holder frees the slot for anyone at once; a delete
        // could remove a slot another site just took.
        let mut holder = lease.holder;
        holder.expires_ms = now_ms.min(holder.expires_ms) - 1;
        self.bucket.replace(&lease.key, body(&holder)?, lease.version).await?;
        Ok(())
    }

    /// The slots' holders now (for `/status` and tests): `None` for a free
    /// or expired slot.
    pub async fn holders(&self, now_ms: i64) -> Result<Vec<Option<Holder>>> {
        let mut out = Vec::new();
        for n in 0..self.slots {
            let key = keys::recovery_slot(self.bucket.prefix(), &self.account, n);
            let h = match self.bucket.get_versioned(&key).await? {
                Some((bytes, _)) => serde_json::from_slice::<Holder>(&bytes).ok().filter(|h| h.expires_ms > now_ms),
                None => None,
            };
            out.push(h);
        }
        Ok(out)
    }
}

fn body(h: &Holder) -> Result<Bytes> {
    serde_json::to_vec(h)
        .map(Bytes::from)
        .map_err(|e| Error::BadManifest { key: "recovery slot".into(), why: e.to_string() })
}
