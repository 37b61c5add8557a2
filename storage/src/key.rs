//! Activity kinds and their natural dedup keys.
//!
//! Every activity has a natural key, and two activities with the same key
//! are the same activity delivered twice (by Backfill, Recovery or a
//! redundant connection). The key is what the ID index stores and what
//! every frame's record table carries, so that an index can be rebuilt from
//! frame headers without decompressing payloads.

/// What an activity is. Stored as one byte in the frame's record table
/// (see FORMAT.md); the numbers are part of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ActivityKind {
    /// A Post in the native format.
    Post = 1,
    /// A Post delete: `{"delete":{"status":{..}}}`.
    PostDelete = 2,
    /// A like (Likes stream), with its 32-hex-digit id.
    Like = 3,
    /// An unlike: `{"delete":{"favorite":{..}}}`.
    Unlike = 4,
    /// Another compliance message (`scrub_geo`, `status_withheld`,
    /// `user_withheld`, `user_delete`, ...).
    Compliance = 5,
    /// An activity in the Activity Streams format.
    AsActivity = 6,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 6] = [
        ActivityKind::Post,
        ActivityKind::PostDelete,
        ActivityKind::Like,
        ActivityKind::Unlike,
        ActivityKind::Compliance,
        ActivityKind::AsActivity,
    ];

    pub fn from_byte(b: u8) -> Option<ActivityKind> {
        ActivityKind::ALL.into_iter().find(|k| *k as u8 == b)
    }

    /// The lowercase name used on command lines and in ground truth.
    pub fn name(self) -> &'static str {
        match self {
            ActivityKind::Post => "post",
            ActivityKind::PostDelete => "delete",
            ActivityKind::Like => "like",
            ActivityKind::Unlike => "unlike",
            ActivityKind::Compliance => "compliance",
            ActivityKind::AsActivity => "activity",
        }
    }

    pub fn from_name(s: &str) -> Option<ActivityKind> {
        let s = s.trim().trim_end_matches('s');
        ActivityKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The natural key of an activity. Equal keys mean the same activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A Post, by its ID (native or Activity Streams).
    Post(u64),
    /// A Post delete, by the deleted Post's ID.
    PostDelete(u64),
    /// A like, by its 128-bit id.
    Like(u128),
    /// An unlike, by (Post ID, user ID, timestamp_ms).
    Unlike { tweet_id: u64, user_id: u64, timestamp_ms: i64 },
    /// Anything else, by [`content_hash`] of its bytes. Equal hashes are
    /// checked against the bytes before an activity is called a duplicate.
    Hashed(u64),
}

impl Key {
    /// The tag byte that starts the key's encoding (FORMAT.md).
    pub fn tag(&self) -> u8 {
        match self {
            Key::Post(_) => 1,
            Key::PostDelete(_) => 2,
            Key::Like(_) => 3,
            Key::Unlike { .. } => 4,
            Key::Hashed(_) => 5,
        }
    }

    /// Length of the encoding after the tag byte, for a tag.
    pub fn body_len(tag: u8) -> Option<usize> {
        match tag {
            1 | 2 | 5 => Some(8),
            3 => Some(16),
            4 => Some(24),
            _ => None,
        }
    }

    /// Appends tag and body, little-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match *self {
            Key::Post(v) | Key::PostDelete(v) | Key::Hashed(v) => out.extend_from_slice(&v.to_le_bytes()),
            Key::Like(v) => out.extend_from_slice(&v.to_le_bytes()),
            Key::Unlike { tweet_id, user_id, timestamp_ms } => {
                out.extend_from_slice(&tweet_id.to_le_bytes());
                out.extend_from_slice(&user_id.to_le_bytes());
                out.extend_from_slice(&timestamp_ms.to_le_bytes());
            }
        }
    }

    /// Decodes a key from the start of `buf`; returns it and the bytes used.
    pub fn decode(buf: &[u8]) -> Option<(Key, usize)> {
        let (&tag, rest) = buf.split_first()?;
        let n = Key::body_len(tag)?;
        let body = rest.get(..n)?;
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        let key = match tag {
            1 => Key::Post(u64_at(0)),
            2 => Key::PostDelete(u64_at(0)),
            3 => Key::Like(u128::from_le_bytes(body[..16].try_into().expect("16 bytes"))),
            4 => Key::Unlike { tweet_id: u64_at(0), user_id: u64_at(8), timestamp_ms: u64_at(16) as i64 },
            5 => Key::Hashed(u64_at(0)),
            _ => return None,
        };
        Some((key, 1 + n))
    }

    /// The key as ground truth prints it (`stream-sim truth`): a Post or
    /// delete by its ID, a like by its hex id, an unlike as
    /// `tweet:user:timestamp`, anything else by its hash in hex.
    pub fn display(&self) -> String {
        match *self {
            Key::Post(id) | Key::PostDelete(id) => id.to_string(),
            Key::Like(id) => format!("{id:032x}"),
            Key::Unlike { tweet_id, user_id, timestamp_ms } => format!("{tweet_id}:{user_id}:{timestamp_ms}"),
            Key::Hashed(h) => format!("{h:016x}"),
        }
    }
}

/// 64-bit FNV-1a of `bytes`: the key of activities with no natural ID.
/// Stable forever (it is in the format); collisions are resolved by
/// comparing bytes, so its quality only affects speed.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_key() -> impl Strategy<Value = Key> {
        prop_oneof![
            any::<u64>().prop_map(Key::Post),
            any::<u64>().prop_map(Key::PostDelete),
            any::<u128>().prop_map(Key::Like),
            (any::<u64>(), any::<u64>(), any::<i64>()).prop_map(|(t, u, ts)| Key::Unlike {
                tweet_id: t,
                user_id: u,
                timestamp_ms: ts
            }),
            any::<u64>().prop_map(Key::Hashed),
        ]
    }

    proptest! {
        #[test]
        fn keys_round_trip(k in any_key()) {
            let mut buf = Vec::new();
            k.encode(&mut buf);
            prop_assert_eq!(Key::decode(&buf), Some((k, buf.len())));
        }
    }

    #[test]
    fn kinds_round_trip_by_byte_and_name() {
        for k in ActivityKind::ALL {
            assert_eq!(ActivityKind::from_byte(k as u8), Some(k));
            assert_eq!(ActivityKind::from_name(k.name()), Some(k));
        }
        assert_eq!(ActivityKind::from_name("posts"), Some(ActivityKind::Post));
        assert_eq!(ActivityKind::from_byte(0), None);
    }
}
