//! The borrowed parse: only the top-level fields classification reads,
//! strings borrowed from the line, everything else skipped unparsed with
//! `IgnoredAny` (see the parent module's constraints).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{ms_of, SystemLevel};

/// The top-level fields of a line. Filled by [`ProbeVisitor`]; every other
/// field is skipped unparsed.
#[derive(Default)]
pub(super) struct Probe<'a> {
    pub(super) id_str: Option<Scalar<'a>>,
    pub(super) id: Option<Scalar<'a>>,
    pub(super) created_at: Option<Scalar<'a>>,
    pub(super) timestamp_ms: Option<Scalar<'a>>,
    pub(super) posted_time: Option<Scalar<'a>>,
    pub(super) verb: Option<Scalar<'a>>,
    pub(super) user: bool,
    pub(super) text: bool,
    pub(super) favorited_status: bool,
    pub(super) delete: Option<Obj<'a, DeleteBody<'a>>>,
    pub(super) compliance: Option<Obj<'a, ComplianceBody<'a>>>,
    pub(super) system: Option<(SystemLevel, Obj<'a, SystemBody<'a>>)>,
}

/// `delete`'s object: `{"status":{..}}` or `{"favorite":{..}}`, and
/// `timestamp_ms`.
#[derive(serde::Deserialize)]
pub(super) struct DeleteBody<'a> {
    #[serde(borrow)]
    pub(super) status: Option<Obj<'a, IdFields<'a>>>,
    #[serde(borrow)]
    pub(super) favorite: Option<Obj<'a, IdFields<'a>>>,
    #[serde(borrow)]
    pub(super) timestamp_ms: Option<Scalar<'a>>,
}

/// The IDs of a deleted status or an unliked favorite.
#[derive(serde::Deserialize)]
pub(super) struct IdFields<'a> {
    #[serde(borrow)]
    pub(super) id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) id: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) tweet_id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) tweet_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) user_id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) user_id: Option<Scalar<'a>>,
}

/// The object of a compliance message: only its time matters here.
#[derive(serde::Deserialize)]
pub(super) struct ComplianceBody<'a> {
    #[serde(borrow)]
    pub(super) timestamp_ms: Option<Scalar<'a>>,
}

impl Obj<'_, ComplianceBody<'_>> {
    pub(super) fn timestamp_ms(&self) -> Option<i64> {
        self.map().and_then(|b| ms_of(&b.timestamp_ms))
    }
}

/// The object of `info`, `warn`, `error`, `warning`, `disconnect`.
#[derive(serde::Deserialize)]
pub(super) struct SystemBody<'a> {
    #[serde(borrow)]
    pub(super) message: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) reason: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) sent: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) activity_count: Option<Scalar<'a>>,
}

/// A JSON value read only as far as classification needs: scalars are kept
/// (strings borrowed when they have no escapes), arrays and objects are
/// skipped.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Scalar<'a> {
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    /// An array or object, skipped.
    Composite,
}

/// A value expected to be an object of `T`; anything else is kept as a
/// [`Scalar`] instead of failing the parse.
pub(super) enum Obj<'a, T> {
    Map(T),
    Scalar(Scalar<'a>),
}

impl<T> Obj<'_, T> {
    pub(super) fn map(&self) -> Option<&T> {
        match self {
            Obj::Map(t) => Some(t),
            Obj::Scalar(_) => None,
        }
    }
}

/// A top-level key this module reads.
pub(super) enum Field {
    IdStr,
    Id,
    CreatedAt,
    TimestampMs,
    PostedTime,
    Verb,
    User,
    Text,
    FavoritedStatus,
    Delete,
    Compliance,
    System(SystemLevel),
    Other,
}

impl Field {
    pub(super) fn of(name: &str) -> Field {
        match name {
            "id_str" => Field::IdStr,
            "id" => Field::Id,
            "created_at" => Field::CreatedAt,
            "timestamp_ms" => Field::TimestampMs,
            "postedTime" => Field::PostedTime,
            "verb" => Field::Verb,
            "user" => Field::User,
            "text" | "full_text" => Field::Text,
            "favorited_status" => Field::FavoritedStatus,
            "delete" => Field::Delete,
            "info" => Field::System(SystemLevel::Info),
            "warn" | "warning" => Field::System(SystemLevel::Warn),
            "error" | "disconnect" => Field::System(SystemLevel::Error),
            // COMPLIANCE_KEYS, spelled out so that the compiler can dispatch
            // on length instead of scanning a list for each of a Post's
            // ~30 keys (a test keeps the two in step).
            "scrub_geo" | "status_withheld" | "user_withheld" | "user_delete" | "user_undelete" | "user_protect"
            | "user_unprotect" | "user_suspend" | "user_unsuspend" | "status_undelete" | "status_delete"
            | "tweet_delete" | "tweet_undelete" | "tweet_withheld" | "status_edit" | "tweet_edit"
            | "user_scrub_geo" | "limit" => Field::Compliance,
            _ => Field::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(FieldVisitor)
    }
}

pub(super) struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::of(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Field, E> {
        Ok(Field::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Probe<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Probe<'a>, D::Error> {
        d.deserialize_map(ProbeVisitor(PhantomData))
    }
}

pub(super) struct ProbeVisitor<'a>(PhantomData<Probe<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ProbeVisitor<'a> {
    type Value = Probe<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe<'a>, A::Error> {
        let mut p = Probe::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::IdStr => p.id_str = map.next_value()?,
                Field::Id => p.id = map.next_value()?,
                Field::CreatedAt => p.created_at = map.next_value()?,
                Field::TimestampMs => p.timestamp_ms = map.next_value()?,
                Field::PostedTime => p.posted_time = map.next_value()?,
                Field::Verb => p.verb = map.next_value()?,
                Field::User => p.user = present(map.next_value::<Option<IgnoredAny>>()?),
                Field::Text => p.text = present(map.next_value::<Option<IgnoredAny>>()?),
                Field::FavoritedStatus => p.favorited_status = present(map.next_value::<Option<IgnoredAny>>()?),
                Field::Delete => p.delete = map.next_value()?,
                Field::Compliance => p.compliance = map.next_value()?,
                Field::System(level) => p.system = map.next_value::<Option<_>>()?.map(|body| (level, body)),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }
}

/// A field counts as present unless it is `null`.
pub(super) fn present(v: Option<IgnoredAny>) -> bool {
    v.is_some()
}

/// The scalar cases shared by [`ScalarVisitor`] and [`ObjVisitor`]; `$wrap`
/// turns a [`Scalar`] into the visitor's value.
macro_rules! visit_scalars {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::I64(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::U64(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::F64(v)))
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Str(Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Str(Cow::Owned(v.to_string()))))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Str(Cow::Owned(v))))
        }
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Composite))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($wrap(Scalar::Composite))
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar<'a>, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

pub(super) struct ScalarVisitor<'a>(PhantomData<Scalar<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    visit_scalars!(std::convert::identity);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Composite)
    }
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for Obj<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Obj<'a, T>, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

pub(super) struct ObjVisitor<'a, T>(PhantomData<(Scalar<'a>, fn() -> T)>);

impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<'a, T> {
    type Value = Obj<'a, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    visit_scalars!(Obj::Scalar);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<'a, T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Map)
    }
}

/// The top-level keys of an object, in order (for [`top_level_keys`]).
pub(super) struct KeyList(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyList, D::Error> {
        d.deserialize_map(KeyListVisitor)
    }
}

pub(super) struct KeyListVisitor;

impl<'de> Visitor<'de> for KeyListVisitor {
    type Value = KeyList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyList, A::Error> {
        let mut keys = Vec::new();
        while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
            keys.push(k);
        }
        Ok(KeyList(keys))
    }
}
