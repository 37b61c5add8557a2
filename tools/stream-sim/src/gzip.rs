//! The gzip body.
//!
//! The whole response is one gzip member. After every batch of lines (and
//! every heartbeat) the encoder does a *sync flush*, which ends the current
//! deflate block on a byte boundary, so a client's decoder can emit every
//! complete line at once instead of waiting for a 32 KB window to fill.
//! Without it a heartbeat would sit in the compressor and the client would
//! see silence.

use std::io::Write;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

pub struct GzStream {
    enc: GzEncoder<Vec<u8>>,
}

impl Default for GzStream {
    fn default() -> Self {
        Self::new()
    }
}

impl GzStream {
    pub fn new() -> Self {
        GzStream { enc: GzEncoder::new(Vec::with_capacity(64 * 1024), Compression::fast()) }
    }

    /// Append raw (uncompressed) bytes.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.enc.write_all(bytes)
    }

    /// Sync-flush and take the compressed bytes produced so far.
    pub fn flush(&mut self) -> std::io::Result<Bytes> {
        self.enc.flush()?;
        Ok(Bytes::from(std::mem::take(self.enc.get_mut())))
    }

    /// End the gzip member (trailer with CRC and length) and take the rest.
    pub fn finish(self) -> std::io::Result<Bytes> {
        Ok(Bytes::from(self.enc.finish()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn flushed_prefix_decodes() {
        let mut g = GzStream::new();
        g.write(b"hello\r\n").unwrap();
        let a = g.flush().unwrap();
        // A decoder sees the line from the flushed prefix alone.
        let mut d = flate2::read::GzDecoder::new(&a[..]);
        let mut buf = [0u8; 16];
        let n = d.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\r\n");
        g.write(b"world\r\n").unwrap();
        let b = g.flush().unwrap();
        let c = g.finish().unwrap();
        let all = [a, b, c].concat();
        let mut s = String::new();
        flate2::read::GzDecoder::new(&all[..]).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello\r\nworld\r\n");
    }
}
