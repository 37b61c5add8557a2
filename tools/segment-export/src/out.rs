//! The output: a file or standard output, behind a 1 MiB buffer, counting
//! the bytes written.
//!
//! NDJSON lines are written from the decompressed frames where they are,
//! without copying them into the buffer when a minute is large: a
//! minute's runs of lines (see `read::Batch::for_each_run`) of at least the
//! buffer's size go to the file in vectored writes (`writev`), after what
//! the buffer holds; smaller ones are copied into the buffer, so that
//! sparse minutes still make large writes. Standard output is written as a
//! file (on Unix), not through the standard library's line buffering.

use std::io::{BufWriter, IoSlice, Write};

/// The buffer's size: writes of at least this go around it.
pub const BUFFER: usize = 1 << 20;
/// At most this many slices per vectored write (Linux's `IOV_MAX`).
const MAX_SLICES: usize = 1024;

/// Counts bytes written through it.
pub struct Counting<W: Write> {
    inner: W,
    pub bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The output file (or standard output), buffered, counting bytes.
pub type Out = BufWriter<Counting<Box<dyn Write + Send>>>;

/// `out` (a file) or standard output, buffered.
pub fn new(out: Option<std::fs::File>) -> std::io::Result<Out> {
    let raw: Box<dyn Write + Send> = match out {
        Some(f) => Box::new(f),
        None => stdout()?,
    };
    Ok(BufWriter::with_capacity(BUFFER, Counting { inner: raw, bytes: 0 }))
}

#[cfg(unix)]
fn stdout() -> std::io::Result<Box<dyn Write + Send>> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
    Ok(Box::new(std::fs::File::from(fd)))
}

#[cfg(not(unix))]
fn stdout() -> std::io::Result<Box<dyn Write + Send>> {
    Ok(Box::new(std::io::stdout()))
}

/// Writes `slices` in order: copied into the buffer when they add up to
/// less than its size, else after flushing it, straight to the file.
pub fn write_slices(w: &mut Out, slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    if total < BUFFER {
        for s in slices.iter() {
            w.write_all(s)?;
        }
        return Ok(());
    }
    w.flush()?;
    let inner = w.get_mut();
    for chunk in slices.chunks_mut(MAX_SLICES) {
        let mut chunk = chunk;
        while !chunk.is_empty() {
            let n = inner.write_vectored(chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut chunk, n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most 4099 bytes a call, vectored or not.
    struct Trickle(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Trickle {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = b.len().min(4099);
            self.0.lock().unwrap().extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
            let mut left = 4099;
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(left);
                self.0.lock().unwrap().extend_from_slice(&b[..k]);
                (left, n) = (left - k, n + k);
            }
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Small and large batches of slices, short writes: every byte, in
    /// order, counted.
    #[test]
    fn slices_are_written_in_order_whatever_the_writes_take() {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut w: Out = BufWriter::with_capacity(BUFFER, Counting { inner: Box::new(Trickle(got.clone())), bytes: 0 });
        let line = |i: usize| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 3000)).into_bytes();
        let small: Vec<Vec<u8>> = (0..10).map(line).collect();
        let large: Vec<Vec<u8>> = (10..3000).map(line).collect();
        let mut want: Vec<u8> = Vec::new();
        for batch in [&small, &large, &small] {
            let mut slices: Vec<IoSlice> = batch.iter().map(|l| IoSlice::new(l)).collect();
            write_slices(&mut w, &mut slices).unwrap();
            want.extend(batch.iter().flatten());
        }
        w.flush().unwrap();
        assert!(large.iter().map(|l| l.len()).sum::<usize>() >= BUFFER, "the large batch goes around the buffer");
        assert_eq!(w.get_ref().bytes, want.len() as u64);
        assert!(*got.lock().unwrap() == want);
    }
}
