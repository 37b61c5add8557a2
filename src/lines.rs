//! Lines: framing and classification of a stream's bytes.
//!
//! The stream separates activities with `\r\n`, and some servers end error
//! lines with a bare `\n`: a line ends at `\n`, and a `\r` before it belongs
//! to the terminator. An empty line is a heartbeat. Classification (the
//! borrowed JSON parse) happens where the bytes arrive, on the connection's
//! task, so that the storage thread only deduplicates and writes.
//!
//! # Bounded memory
//! A peer decides how long a line is. [`Framer`] cuts a stream of bytes into
//! whole lines while holding at most one line's worth of bytes
//! (`Limits::max_line_bytes`, 1 MiB) of the line in progress, plus the bytes
//! of one push: a line that grows past the limit is cut to a prefix of
//! [`QUARANTINE_PREFIX_BYTES`], the rest of it is counted and discarded up
//! to its newline, and it comes out as a rejected line whose reason carries
//! its true length. The framer looks for the last `\n` of each push
//! (`memrchr`); [`split_lines`] cuts the lines where they are classified.
//! Gzip is inflated in steps of at most 32 KiB of output (`connection.rs`), so neither a line
//! without a newline nor a gzip bomb grows memory past
//! [`Framer::cap`] (four times the line limit).

use gapless_storage::activity::{self, Limits, Line, Rejection};

/// What is kept of a line longer than the limit: its start, for the
/// quarantine (with its true length in the reason).
pub const QUARANTINE_PREFIX_BYTES: usize = 4096;

/// A run of whole lines and their classification.
pub struct Batch {
    buf: Vec<u8>,
    lines: Vec<(usize, usize, Result<Line, Rejection>)>,
}

impl Batch {
    /// Splits a buffer of whole lines and classifies each.
    pub fn classify(buf: Vec<u8>, limits: &Limits) -> Batch {
        let lines = split_lines(&buf).map(|(s, e)| (s, e, activity::classify(&buf[s..e], limits))).collect();
        Batch { buf, lines }
    }

    /// One line that is already known to be bad, with why (a line cut off
    /// when its connection ended).
    pub fn rejected(line: Vec<u8>, rejection: Rejection) -> Batch {
        let len = line.len();
        Batch { buf: line, lines: vec![(0, len, Err(rejection))] }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The classified lines, for inspection before the batch moves on.
    pub fn classified(&self) -> impl Iterator<Item = &Result<Line, Rejection>> {
        self.lines.iter().map(|(_, _, c)| c)
    }

    /// Calls `f` with each line's bytes and classification, in order.
    pub fn each<E>(self, mut f: impl FnMut(&[u8], Result<Line, Rejection>) -> Result<(), E>) -> Result<(), E> {
        for (s, e, c) in self.lines {
            f(&self.buf[s..e], c)?;
        }
        Ok(())
    }
}

/// What a [`Framer`] hands out, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Whole lines, each with its terminator.
    Lines(Vec<u8>),
    /// A line longer than the limit: its first bytes, and its true length
    /// (without terminator).
    TooLong { prefix: Vec<u8>, len: usize },
}

impl Piece {
    pub fn into_batch(self, limits: &Limits) -> Batch {
        match self {
            Piece::Lines(buf) => Batch::classify(buf, limits),
            Piece::TooLong { prefix, len } => {
                Batch::rejected(prefix, Rejection::TooLong { len, limit: limits.max_line_bytes })
            }
        }
    }
}

/// Cuts bytes into lines in bounded memory (see the module doc).
#[derive(Debug)]
pub struct Framer {
    limit: usize,
    /// Whole lines not handed out yet, then the line in progress.
    buf: Vec<u8>,
    /// Where the line in progress starts in `buf`.
    line_start: usize,
    /// A line past the limit: its prefix, its length so far, and whether
    /// its last byte was `\r` (part of the terminator if `\n` follows).
    oversize: Option<(Vec<u8>, usize, bool)>,
    out: Vec<Piece>,
    /// The most bytes ever held at once (for tests and `/metrics`).
    peak: usize,
}

impl Framer {
    pub fn new(limits: &Limits) -> Framer {
        Framer {
            limit: limits.max_line_bytes,
            buf: Vec::new(),
            line_start: 0,
            oversize: None,
            out: Vec::new(),
            peak: 0,
        }
    }

    /// The most this framer ever holds: the line limit for the line in
    /// progress, the same for one push (callers push at most that much at
    /// once), and room for a prefix and the pieces of a push.
    pub fn cap(&self) -> usize {
        4 * self.limit.max(QUARANTINE_PREFIX_BYTES)
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Bytes of the line in progress (or of a line being discarded).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.line_start + self.oversize.as_ref().map_or(0, |o| o.1)
    }

    fn held(&self) -> usize {
        self.buf.capacity()
            + self.oversize.as_ref().map_or(0, |o| o.0.capacity())
            + self.out.iter().map(Piece::held).sum::<usize>()
    }

    /// Takes more bytes; pushes of more than the line limit are split.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let step = data.len().min(self.limit.max(1));
            let (now, rest) = data.split_at(step);
            self.push_step(now);
            data = rest;
        }
    }

    fn push_step(&mut self, mut data: &[u8]) {
        // Discarding a line past the limit: look for its end only.
        if let Some((prefix, len, cr)) = self.oversize.as_mut() {
            match memchr::memchr(b'\n', data) {
                None => {
                    *len += data.len();
                    *cr = data.last().map_or(*cr, |&b| b == b'\r');
                    self.peak = self.peak.max(self.held());
                    return;
                }
                Some(i) => {
                    let ends_cr = if i > 0 { data[i - 1] == b'\r' } else { *cr };
                    let len = *len + i - usize::from(ends_cr);
                    let prefix = std::mem::take(prefix);
                    self.oversize = None;
                    self.out.push(Piece::TooLong { prefix, len });
                    data = &data[i + 1..];
                }
            }
        }
        let scanned = self.buf.len();
        // Grow by doubling, but never past twice the limit (the line in
        // progress, at most the limit, and one step, at most the limit).
        let need = scanned + data.len();
        if need > self.buf.capacity() {
            let target = need.max((2 * self.buf.capacity()).min(2 * self.limit));
            self.buf.reserve_exact(target - scanned);
        }
        self.buf.extend_from_slice(data);
        // Scan only the new bytes, for the last newline: lines are cut
        // again, one by one, where they are classified.
        if let Some(i) = memchr::memrchr(b'\n', &self.buf[scanned..]) {
            self.line_start = scanned + i + 1;
        }
        self.peak = self.peak.max(self.held());
        if self.buf.len() - self.line_start > self.limit {
            // The line in progress is past the limit: keep a prefix, hand
            // out the whole lines before it, drop the rest.
            let line = &self.buf[self.line_start..];
            let prefix = line[..QUARANTINE_PREFIX_BYTES.min(line.len())].to_vec();
            let len = line.len();
            let cr = line.last() == Some(&b'\r');
            self.buf.truncate(self.line_start);
            self.flush_lines();
            self.buf = Vec::new();
            self.oversize = Some((prefix, len, cr));
        } else {
            self.flush_lines();
        }
    }

    /// Moves the whole lines of `buf` to the output.
    fn flush_lines(&mut self) {
        if self.line_start > 0 {
            let rest = self.buf.split_off(self.line_start);
            self.out.push(Piece::Lines(std::mem::replace(&mut self.buf, rest)));
            self.line_start = 0;
        }
    }

    /// What is complete so far, in order.
    pub fn take(&mut self) -> Vec<Piece> {
        std::mem::take(&mut self.out)
    }

    /// The end of the stream: the line in progress, if any, cut off. Its
    /// bytes (at most the line limit, or a prefix) and how long it was.
    pub fn finish(mut self) -> (Vec<Piece>, Option<(Vec<u8>, usize)>) {
        let out = self.take();
        let rest = match self.oversize.take() {
            Some((prefix, len, _)) => Some((prefix, len)),
            None => {
                let line = self.buf.split_off(self.line_start);
                let len = line.len();
                (len > 0).then_some((line, len))
            }
        };
        (out, rest)
    }
}

impl Piece {
    fn held(&self) -> usize {
        match self {
            Piece::Lines(b) => b.capacity(),
            Piece::TooLong { prefix, .. } => prefix.capacity(),
        }
    }
}

/// The lines of a buffer of whole lines, without terminators; a final
/// line without `\n` counts. Empty lines are kept (they are heartbeats).
pub fn split_lines(buf: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= buf.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |i| at + i);
        let start = at;
        at = end + 1;
        let trimmed = if end > start && buf[end - 1] == b'\r' { end - 1 } else { end };
        Some((start, trimmed))
    })
}

/// A batch of Posts with these activity times (ms), for unit tests.
#[cfg(test)]
pub(crate) fn posts_at(times: impl IntoIterator<Item = i64>) -> Batch {
    let mut buf = Vec::new();
    for (i, t) in times.into_iter().enumerate() {
        buf.extend_from_slice(
            format!("{{\"id_str\":\"{}\",\"created_at\":\"x\",\"user\":{{}},\"timestamp_ms\":\"{t}\"}}\r\n", 1000 + i)
                .as_bytes(),
        );
    }
    Batch::classify(buf, &Limits::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pieces: &[Piece]) -> Vec<String> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Lines(b) => {
                    out.extend(split_lines(b).map(|(s, e)| String::from_utf8_lossy(&b[s..e]).into_owned()))
                }
                Piece::TooLong { prefix, len } => {
                    out.push(format!("TOO LONG {len} {}", String::from_utf8_lossy(prefix)))
                }
            }
        }
        out
    }

    #[test]
    fn a_framer_cuts_lines_across_pushes() {
        let mut f = Framer::new(&Limits { max_line_bytes: 100 });
        f.push(b"a\r\nb");
        assert_eq!(lines(&f.take()), vec!["a"]);
        f.push(b"c\n\r\nd");
        assert_eq!(lines(&f.take()), vec!["bc", ""]);
        assert_eq!(f.pending(), 1);
        let (out, rest) = f.finish();
        assert!(out.is_empty());
        assert_eq!(rest, Some((b"d".to_vec(), 1)));
    }

    #[test]
    fn a_line_past_the_limit_is_cut_to_a_prefix_with_its_true_length() {
        let limits = Limits { max_line_bytes: 10_000 };
        let mut f = Framer::new(&limits);
        f.push(b"before\r\n");
        let mut sent = 0;
        // 5 MB without a newline, in pushes of 64 KiB, then its end.
        let chunk = vec![b'x'; 65_536];
        while sent < 5_000_000 {
            f.push(&chunk);
            sent += chunk.len();
        }
        f.push(b"yz\r\nafter\r\n");
        let got = lines(&f.take());
        assert_eq!(got.len(), 3, "{:?}", got.iter().map(|l| &l[..l.len().min(30)]).collect::<Vec<_>>());
        assert_eq!(got[0], "before");
        assert!(got[1].starts_with(&format!("TOO LONG {} xxx", sent + 2)), "{}", &got[1][..30]);
        assert_eq!(got[1].len(), format!("TOO LONG {} ", sent + 2).len() + QUARANTINE_PREFIX_BYTES);
        assert_eq!(got[2], "after");
        assert!(f.peak() <= f.cap(), "held {} bytes, cap {}", f.peak(), f.cap());
        // A push larger than the limit, one line too long inside it.
        let mut big = b"ok\n".to_vec();
        big.extend(std::iter::repeat_n(b'y', 25_000));
        big.extend(b"\nok2\n");
        f.push(&big);
        assert_eq!(
            lines(&f.take()),
            vec![
                "ok".to_string(),
                format!("TOO LONG 25000 {}", "y".repeat(QUARANTINE_PREFIX_BYTES)),
                "ok2".to_string()
            ]
        );
        assert!(f.peak() <= f.cap(), "held {} bytes, cap {}", f.peak(), f.cap());
        // Cut off by the end of the stream in the middle of a long line.
        f.push(&chunk);
        let (out, rest) = f.finish();
        assert!(out.is_empty());
        assert_eq!(rest.map(|(p, len)| (p.len(), len)), Some((QUARANTINE_PREFIX_BYTES, 65_536)));
    }

    #[test]
    fn the_newline_scan_is_linear() {
        // One byte at a time for a line of the limit: quadratic scanning
        // would take 10^10 steps; this is instant.
        let mut f = Framer::new(&Limits { max_line_bytes: 100_000 });
        for _ in 0..100_000 {
            f.push(b"x");
        }
        f.push(b"\n");
        assert_eq!(f.take().len(), 1);
    }

    #[test]
    fn lines_split_on_crlf_and_lf() {
        let buf = b"a\r\nb\n\r\n\nc";
        let got: Vec<&[u8]> = split_lines(buf).map(|(s, e)| &buf[s..e]).collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"", b"", b"c"]);
    }
}
