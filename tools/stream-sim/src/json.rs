//! A tiny JSON writer.
//!
//! Payloads are written by hand rather than through `serde_json::Value` for two
//! reasons: speed (the generator writes hundreds of ~3 KB Posts per second of
//! stream time, and tests run it in debug builds) and fidelity (key order as in
//! real payloads, and Twitter's escaping of `/`, `<`, `>` and `&`), so that the
//! bytes look like what the real service sends.

/// Append `s` as a JSON string literal, escaped the way Twitter's native
/// format does (`\/`, `\u003c`, `\u003e`, `\u0026`), non-ASCII kept as UTF-8.
pub fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An object being written into a `String`.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_str_lit(self.out, v);
        self
    }

    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    pub fn num<N: std::fmt::Display>(&mut self, k: &str, v: N) -> &mut Self {
        self.key(k);
        use std::fmt::Write;
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn opt_num<N: std::fmt::Display>(&mut self, k: &str, v: Option<N>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.null(k),
        }
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.out.push_str("null");
        self
    }

    /// Raw, already-serialized JSON value.
    pub fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k);
        self.out.push_str(json);
        self
    }

    /// A value written directly into the output by `f`.
    pub fn with(&mut self, k: &str, f: impl FnOnce(&mut String)) -> &mut Self {
        self.key(k);
        f(self.out);
        self
    }

    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        let mut o = Obj::new(self.out);
        f(&mut o);
        o.end();
        self
    }

    /// An array whose items are written by `f` through an [`Arr`].
    pub fn arr(&mut self, k: &str, f: impl FnOnce(&mut Arr<'_>)) -> &mut Self {
        self.key(k);
        let mut a = Arr::new(self.out);
        f(&mut a);
        a.end();
        self
    }

    pub fn end(self) {
        self.out.push('}');
    }
}

pub struct Arr<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Arr<'a> {
    pub fn new(out: &'a mut String) -> Self {
        out.push('[');
        Arr { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub fn obj(&mut self, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.sep();
        let mut o = Obj::new(self.out);
        f(&mut o);
        o.end();
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.sep();
        push_str_lit(self.out, v);
        self
    }

    pub fn num<N: std::fmt::Display>(&mut self, v: N) -> &mut Self {
        self.sep();
        use std::fmt::Write;
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.sep();
        self.out.push_str(json);
        self
    }

    pub fn end(self) {
        self.out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("a", "x/<y>&\"\n é").num("b", 3).null("c").bool("d", true);
        o.arr("e", |a| {
            a.num(1).str("z");
        });
        o.obj("f", |o| {
            o.num("g", -1);
        });
        o.end();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "x/<y>&\"\n é");
        assert!(s.contains("x\\/\\u003cy\\u003e\\u0026"));
    }
}
