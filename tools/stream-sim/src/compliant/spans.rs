//! Byte spans of JSON object members, for splicing a line without
//! re-serializing it: only the bytes a rule names change.
//!
//! A small scanner, not a parser: it trusts that the line is JSON (the
//! caller has parsed it with serde_json first) and never panics on bytes
//! that are not (it answers `None`).

/// One member of an object: its key (unescaped) and its value's span.
pub(super) struct Member {
    pub key: String,
    pub start: usize,
    pub end: usize,
}

/// An object's members and the position of its closing `}`.
pub(super) struct ObjectSpans {
    pub members: Vec<Member>,
    pub close: usize,
}

impl ObjectSpans {
    pub fn get(&self, key: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.key == key)
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string literal starting at `i` (a `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The members of the object whose `{` is at or after `i` (after
/// whitespace).
pub(super) fn object_at(b: &[u8], i: usize) -> Option<ObjectSpans> {
    let mut j = skip_ws(b, i);
    if b.get(j) != Some(&b'{') {
        return None;
    }
    j = skip_ws(b, j + 1);
    let mut members = Vec::new();
    if b.get(j) == Some(&b'}') {
        return Some(ObjectSpans { members, close: j });
    }
    loop {
        if b.get(j) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, j)?;
        let key: String = serde_json::from_slice(&b[j..key_end]).ok()?;
        j = skip_ws(b, key_end);
        if b.get(j) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, j + 1);
        let end = value_end(b, start)?;
        members.push(Member { key, start, end });
        j = skip_ws(b, end);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b'}') => return Some(ObjectSpans { members, close: j }),
            _ => return None,
        }
    }
}

/// `line` with each `(start, end, bytes)` edit applied (edits sorted by
/// start, not overlapping; `start == end` inserts).
pub(super) fn splice(line: &[u8], mut edits: Vec<(usize, usize, Vec<u8>)>) -> Vec<u8> {
    edits.sort_by_key(|e| (e.0, e.1));
    let mut out = Vec::with_capacity(line.len() + 64);
    let mut at = 0;
    for (start, end, bytes) in edits {
        if start < at || end > line.len() {
            continue;
        }
        out.extend_from_slice(&line[at..start]);
        out.extend_from_slice(&bytes);
        at = end;
    }
    out.extend_from_slice(&line[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_their_spans() {
        let b = br#" {"a":1,"b" : {"c":"x}\"y"},"d":[1,{"e":null}],"g\u0065o":null }"#;
        let o = object_at(b, 0).unwrap();
        let keys: Vec<&str> = o.members.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "d", "geo"]);
        let span = |k: &str| {
            let m = o.get(k).unwrap();
            std::str::from_utf8(&b[m.start..m.end]).unwrap()
        };
        assert_eq!(span("b"), r#"{"c":"x}\"y"}"#);
        assert_eq!(span("d"), r#"[1,{"e":null}]"#);
        assert_eq!(span("geo"), "null");
        assert_eq!(b[o.close], b'}');
        let inner = object_at(b, o.get("b").unwrap().start).unwrap();
        assert_eq!(inner.members[0].key, "c");
        assert!(object_at(b"{\"a\":", 0).is_none());
        assert!(object_at(b"[1]", 0).is_none());
        let edited = splice(b"{\"a\":1}", vec![(6, 6, b",\"b\":2".to_vec()), (5, 6, b"3".to_vec())]);
        assert_eq!(edited, b"{\"a\":3,\"b\":2}");
    }
}
