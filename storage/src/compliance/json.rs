//! Where a JSON object's fields are, by byte offset: what the compliance
//! rewrites need to change one value (`"place":{..}` to `"place":null`)
//! and leave every other byte as received.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// One field of an object: its key and the byte range of its value in the
/// text the object was read from.
#[derive(Debug)]
pub(crate) struct Field<'a> {
    pub key: Cow<'a, str>,
    pub value: &'a str,
    pub span: Range<usize>,
}

/// The fields of the object `text` holds (whitespace around it allowed);
/// `None` if it is not a JSON object. Duplicate keys are all listed.
pub(crate) fn fields(text: &str) -> Option<Vec<Field<'_>>> {
    let raw: Fields<'_> = serde_json::from_str(text).ok()?;
    let base = text.as_ptr() as usize;
    Some(
        raw.0
            .into_iter()
            .map(|(key, v)| {
                let value = v.get();
                let start = value.as_ptr() as usize - base;
                Field { key: key.0, value, span: start..start + value.len() }
            })
            .collect(),
    )
}

/// The position of the closing `}` of the object `text` holds.
pub(crate) fn closing_brace(text: &str) -> Option<usize> {
    let end = text.trim_end();
    end.ends_with('}').then(|| end.len() - 1)
}

struct Fields<'a>(Vec<(Key<'a>, &'a RawValue)>);

/// A key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_the_values() {
        let text = r#" {"a" : 1, "b":{"c":[1,2]}, "\u0067eo": null } "#;
        let f = fields(text).unwrap();
        let got: Vec<(&str, &str)> = f.iter().map(|f| (f.key.as_ref(), &text[f.span.clone()])).collect();
        assert_eq!(got, vec![("a", "1"), ("b", r#"{"c":[1,2]}"#), ("geo", "null")]);
        assert_eq!(closing_brace(text), Some(text.len() - 2));
        assert!(fields("[1]").is_none());
        assert!(fields("{").is_none());
    }
}
