//! Stream kinds and the per-stream settings the protocol leaves to the
//! account representative (partitions, redundant connections, the recovery
//! window, volume).

use std::fmt;

/// The four stream types of PROTOCOL.md, by their path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Sample10,
    Firehose,
    PowerTrack,
    Likes,
}

impl StreamKind {
    pub const ALL: [StreamKind; 4] =
        [StreamKind::Sample10, StreamKind::Firehose, StreamKind::PowerTrack, StreamKind::Likes];

    pub fn path_name(self) -> &'static str {
        match self {
            StreamKind::Sample10 => "sample10",
            StreamKind::Firehose => "firehose",
            StreamKind::PowerTrack => "powertrack",
            StreamKind::Likes => "likes",
        }
    }

    pub fn parse(s: &str) -> Option<StreamKind> {
        StreamKind::ALL.into_iter().find(|k| k.path_name() == s)
    }

    /// 0 means "not partitioned" (the `partition` parameter is refused).
    pub fn default_partitions(self) -> u32 {
        match self {
            StreamKind::Sample10 => 2,
            StreamKind::Firehose => 20,
            StreamKind::PowerTrack => 0,
            StreamKind::Likes => 2,
        }
    }

    /// Average activities per second of stream time.
    pub fn default_rate(self) -> f64 {
        match self {
            StreamKind::Sample10 => 600.0,
            StreamKind::Firehose => 6000.0,
            StreamKind::PowerTrack => 50.0,
            StreamKind::Likes => 150.0,
        }
    }

    /// Rolling Recovery window; None = no Recovery (Likes).
    pub fn default_recovery_window_ms(self) -> Option<i64> {
        match self {
            StreamKind::Sample10 | StreamKind::Firehose => Some(5 * 86_400_000),
            StreamKind::PowerTrack => Some(86_400_000),
            StreamKind::Likes => None,
        }
    }

    pub fn carries_posts(self) -> bool {
        self != StreamKind::Likes
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path_name())
    }
}

/// Payload format of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Native enriched (the default).
    #[default]
    Native,
    /// Gnip Activity Streams, for Posts and Post deletes.
    ActivityStreams,
}

/// One served stream: a kind and a label, with its settings.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub kind: StreamKind,
    pub label: String,
    /// Number of partitions; 0 = not partitioned.
    pub partitions: u32,
    /// Average activities per second of stream time (before the daily cycle).
    pub rate: f64,
    /// Rolling Recovery window in ms; None = Recovery refused.
    pub recovery_window_ms: Option<i64>,
    /// Connections allowed at once per (stream, partition).
    pub max_connections: u32,
    pub format: Format,
}

impl StreamSpec {
    pub fn new(kind: StreamKind, label: &str) -> Self {
        StreamSpec {
            kind,
            label: label.to_string(),
            partitions: kind.default_partitions(),
            rate: kind.default_rate(),
            recovery_window_ms: kind.default_recovery_window_ms(),
            max_connections: 2,
            format: Format::Native,
        }
    }

    /// `kind/label`, e.g. `sample10/prod`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.kind, self.label)
    }

    /// Partition numbers a client must connect to (1-based); `[1]`... or
    /// `[0]` for an unpartitioned stream (0 stands for "the whole stream").
    pub fn partition_numbers(&self) -> Vec<u32> {
        if self.partitions == 0 {
            vec![0]
        } else {
            (1..=self.partitions).collect()
        }
    }
}

/// Parse `kind/label`.
pub fn parse_stream_name(s: &str) -> Option<(StreamKind, String)> {
    let (k, l) = s.split_once('/')?;
    let kind = StreamKind::parse(k)?;
    if l.is_empty() || l.contains('/') {
        return None;
    }
    Some((kind, l.to_string()))
}
