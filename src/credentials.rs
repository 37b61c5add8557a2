//! Credentials: from an environment variable or a file, never from argv,
//! never in logs, never in error messages.
//!
//! The secret lives in [`Secret`], whose `Debug` and `Display` print
//! `<redacted>`; the only way to the bytes is the `Authorization` header
//! value it builds. Errors name the variable or the file, not the content.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// Where a stream's `user:password` comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CredentialSource {
    /// An environment variable holding `user:password`.
    Env(String),
    /// A file holding `user:password` (surrounding whitespace ignored).
    File(PathBuf),
}

impl CredentialSource {
    pub fn relative_to(self, base: &Path) -> CredentialSource {
        match self {
            CredentialSource::File(p) if p.is_relative() => CredentialSource::File(base.join(p)),
            other => other,
        }
    }

    pub fn load(&self) -> anyhow::Result<Secret> {
        let text = match self {
            CredentialSource::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(_) => bail!("credentials: environment variable {var} is not set (expected user:password)"),
            },
            CredentialSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}", e.kind()))
                .with_context(|| format!("credentials: read {}", path.display()))?,
        };
        let text = text.trim();
        let Some((user, password)) = text.split_once(':') else {
            bail!("credentials from {}: expected user:password", self.describe());
        };
        if user.is_empty() {
            bail!("credentials from {}: the user is empty", self.describe());
        }
        Ok(Secret { header: basic_header(user, password) })
    }

    fn describe(&self) -> String {
        match self {
            CredentialSource::Env(v) => format!("${v}"),
            CredentialSource::File(p) => p.display().to_string(),
        }
    }
}

/// An HTTP Basic `Authorization` value, kept out of every printout.
#[derive(Clone)]
pub struct Secret {
    header: String,
}

impl Secret {
    /// The `Authorization` header value, for the request and nothing else.
    pub fn authorization(&self) -> &str {
        &self.header
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn basic_header(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let bytes = input.as_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc_7617() {
        assert_eq!(basic_header("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_header("a", "b"), "Basic YTpi");
    }

    #[test]
    fn secrets_never_print_and_errors_never_leak() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("creds");
        std::fs::write(&f, "alice:s3cr3t-value\n").unwrap();
        let s = CredentialSource::File(f.clone()).load().unwrap();
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.authorization(), basic_header("alice", "s3cr3t-value"));
        std::fs::write(&f, "s3cr3t-without-colon").unwrap();
        let e = format!("{:#}", CredentialSource::File(f).load().unwrap_err());
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = format!("{:#}", CredentialSource::Env("GAPLESS_TEST_UNSET_VAR".into()).load().unwrap_err());
        assert!(e.contains("GAPLESS_TEST_UNSET_VAR"), "{e}");
    }
}
