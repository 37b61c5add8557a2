//! Lines: framing and classification of a stream's bytes.
//!
//! The stream separates activities with `\r\n`, and some servers end error
//! lines with a bare `\n`: a line ends at `\n`, and a `\r` before it belongs
//! to the terminator. An empty line is a heartbeat. Classification (the
//! borrowed JSON parse) happens where the bytes arrive, on the connection's
//! task, so that the storage thread only deduplicates and writes.

use gapless_storage::activity::{self, Limits, Line, Rejection};

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

/// The lines of a buffer of whole lines, without terminators; a final
/// line without `\n` counts. Empty lines are kept (they are heartbeats).
pub fn split_lines(buf: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= buf.len() {
            return None;
        }
        let end = buf[at..].iter().position(|&c| c == b'\n').map_or(buf.len(), |i| at + i);
        let start = at;
        at = end + 1;
        let trimmed = if end > start && buf[end - 1] == b'\r' { end - 1 } else { end };
        Some((start, trimmed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_crlf_and_lf() {
        let buf = b"a\r\nb\n\r\n\nc";
        let got: Vec<&[u8]> = split_lines(buf).map(|(s, e)| &buf[s..e]).collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"", b"", b"c"]);
    }
}
