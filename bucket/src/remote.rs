//! The bucket: an S3-compatible object store, configured from the
//! conventional `AWS_*` environment variables (never from argv or the
//! config file, and never logged), and the few requests gapless makes of
//! it, each verified where it writes.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ClientConfigKey, RetryConfig};
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};

use crate::error::{request, Error, Result};

/// Objects up to this size are written with one PUT; larger ones in parts
/// of this size, read from the file a part at a time (memory stays
/// bounded whatever a minute weighs).
pub const PART_BYTES: usize = 16 << 20;

/// A bucket and the prefix gapless owns in it.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// `s3://BUCKET/PREFIX`, for messages (it holds no credential).
    url: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Bucket {
    /// Opens `s3://BUCKET[/PREFIX]`. Credentials, region and endpoint come
    /// from the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// (`AWS_SESSION_TOKEN`), `AWS_REGION` or `AWS_DEFAULT_REGION`, and
    /// for a store other than AWS `AWS_ENDPOINT` (with `AWS_ALLOW_HTTP=true`
    /// for plain HTTP). Requests use path-style addresses unless
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`.
    pub fn open(url: &str) -> Result<Bucket> {
        let (bucket, prefix, url) = Bucket::check_url(url)?;
        // Requests fail within about a minute when the bucket is away: the
        // uploader retries rounds with its own backoff, and a shutdown does
        // not wait on object_store's (3 minutes by default).
        let retry = RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(30), ..RetryConfig::default() };
        let client = |key, value: &str| (AmazonS3ConfigKey::Client(key), value.to_string());
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket).with_retry(retry);
        for (key, value) in [client(ClientConfigKey::ConnectTimeout, "5s"), client(ClientConfigKey::Timeout, "60s")] {
            builder = builder.with_config(key, value);
        }
        let store = builder.build().map_err(|source| Error::Configure { url: url.clone(), source })?;
        Ok(Bucket { store: Arc::new(store), prefix, url })
    }

    /// Checks the form of `s3://BUCKET[/PREFIX]`: the bucket, the prefix and
    /// the URL as messages show it.
    pub fn check_url(url: &str) -> Result<(String, String, String)> {
        // A URL with `user:secret@` in it is not echoed.
        let shown =
            if url.contains('@') { "s3://(not shown: it holds credentials)".to_string() } else { url.to_string() };
        let bad = |why: &str| Error::BadUrl { url: shown.clone(), why: why.to_string() };
        let rest = url.strip_prefix("s3://").ok_or_else(|| bad("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['@', ':', '?', '#']) {
            return Err(bad("no bucket name (s3://BUCKET/PREFIX; credentials go in AWS_* variables, not the URL)"));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix has an empty, `.` or `..` part"));
        }
        let url = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
        Ok((bucket.to_string(), prefix, url))
    }

    /// A bucket over any object store (tests, other clouds).
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Bucket {
        Bucket { store, prefix: prefix.trim_matches('/').to_string(), url: url.to_string() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `bytes` to `key` and reads it back: the object must have the
    /// same size and CRC32C, or this is [`Error::Verify`].
    pub async fn put_verified(&self, key: &Path, bytes: Bytes) -> Result<()> {
        let crc = crc32c::crc32c(&bytes);
        let len = bytes.len() as u64;
        self.store.put(key, PutPayload::from_bytes(bytes)).await.map_err(request("put", key))?;
        self.verify(key, len, crc).await
    }

    /// Writes the first `len` bytes of `file` to `key`, a part at a time,
    /// and verifies it as [`Bucket::put_verified`] does. `crc` is the
    /// CRC32C of those bytes, computed by the caller.
    pub async fn put_file_verified(&self, key: &Path, file: std::fs::File, len: u64, crc: u32) -> Result<()> {
        if len as usize <= PART_BYTES {
            let bytes = read_at(file, 0, len as usize).await?;
            return self.put_verified(key, bytes).await;
        }
        let upload = self.store.put_multipart(key).await.map_err(request("start upload", key))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let file = Arc::new(file);
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(PART_BYTES as u64) as usize;
            let part = read_at(Arc::clone(&file), at, n).await?;
            w.wait_for_capacity(2).await.map_err(request("upload part", key))?;
            w.put(part);
            at += n as u64;
        }
        w.finish().await.map_err(request("finish upload", key))?;
        self.verify(key, len, crc).await
    }

    /// Reads `key` back and checks its size and CRC32C.
    pub async fn verify(&self, key: &Path, len: u64, crc: u32) -> Result<()> {
        let got = self.store.get(key).await.map_err(request("get", key))?;
        let mut stream = got.into_stream();
        let (mut n, mut c) = (0u64, 0u32);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(request("get", key))?;
            n += chunk.len() as u64;
            c = crc32c::crc32c_append(c, &chunk);
        }
        if n != len || c != crc {
            return Err(Error::Verify {
                key: key.to_string(),
                why: format!("{n} bytes with CRC32C {c:08x}, expected {len} bytes with {crc:08x}"),
            });
        }
        Ok(())
    }

    /// Writes `bytes` to `key` only if there is no object there: the new
    /// version, or `None` if one exists.
    pub async fn create(&self, key: &Path, bytes: Bytes) -> Result<Option<UpdateVersion>> {
        self.put_mode(key, bytes, PutMode::Create).await
    }

    /// Replaces the object at `key` only if it is still at `version`: the
    /// new version, or `None` if it changed (or is gone).
    pub async fn replace(&self, key: &Path, bytes: Bytes, version: UpdateVersion) -> Result<Option<UpdateVersion>> {
        self.put_mode(key, bytes, PutMode::Update(version)).await
    }

    async fn put_mode(&self, key: &Path, bytes: Bytes, mode: PutMode) -> Result<Option<UpdateVersion>> {
        match self.store.put_opts(key, PutPayload::from_bytes(bytes), PutOptions::from(mode)).await {
            Ok(r) => Ok(Some(UpdateVersion { e_tag: r.e_tag, version: r.version })),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(request("put", key)(e)),
        }
    }

    /// The object at `key` with its version, or `None` if there is none.
    pub async fn get_versioned(&self, key: &Path) -> Result<Option<(Bytes, UpdateVersion)>> {
        match self.store.get(key).await {
            Ok(got) => {
                let version = UpdateVersion { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
                Ok(Some((got.bytes().await.map_err(request("get", key))?, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(request("get", key)(e)),
        }
    }

    /// The object at `key`, or `None` if there is none.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>> {
        match self.store.get(key).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(request("get", key))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(request("get", key)(e)),
        }
    }

    /// The object at `key` as a stream of chunks.
    pub async fn stream(&self, key: &Path) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static> {
        let got = self.store.get(key).await.map_err(request("get", key))?;
        let key = key.clone();
        Ok(got.into_stream().map(move |c| c.map_err(|e| request("get", &key)(e))))
    }

    /// Every object under `prefix`.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(prefix));
        while let Some(meta) = listing.next().await {
            out.push(meta.map_err(request("list", prefix))?);
        }
        Ok(out)
    }

    /// The names one level under `prefix` (`sites/` → the site names).
    pub async fn children(&self, prefix: &Path) -> Result<Vec<String>> {
        let listing = self.store.list_with_delimiter(Some(prefix)).await.map_err(request("list", prefix))?;
        Ok(listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect())
    }

    /// Removes `key` (an object that is not there is not an error).
    pub async fn delete(&self, key: &Path) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(request("delete", key)(e)),
        }
    }
}

/// `n` bytes of `file` from `at`, off the async runtime.
async fn read_at(file: impl std::borrow::Borrow<std::fs::File> + Send + 'static, at: u64, n: usize) -> Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; n];
        file.borrow().read_exact_at(&mut buf, at).map(|()| Bytes::from(buf))
    })
    .await
    .map_err(|e| Error::Io { op: "read segment", path: Default::default(), source: std::io::Error::other(e) })?
    .map_err(|source| Error::Io { op: "read segment", path: Default::default(), source })
}
