//! Compliance applied to an export (the default; `--raw` turns it off):
//! the stream's ledger (`gapless_storage::compliance`) decides, record by
//! record, what is left out and what is rewritten, and the manifest says
//! what was applied, with counts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;
use gapless_storage::compliance::{self, Action, Applied, Policy, Source, Verdict, WithheldMode};
use gapless_storage::frame::Entry;
use serde::Serialize;

use crate::read::Decision;

/// `--withheld`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Withheld {
    /// Leave withheld Posts out.
    #[default]
    Drop,
    /// Keep them, with `withheld_in_countries` set to every country that applies.
    Keep,
}

/// The ledger loaded for one export, and what applying it did.
pub struct Applier {
    policy: Policy,
    mode: WithheldMode,
    source: Source,
    events: BTreeMap<&'static str, u64>,
    not_applied: u64,
    torn_bytes: u64,
    pub applied: Applied,
}

impl Applier {
    /// Loads the ledger of the stream in `stream_dir` (or, without one, the
    /// compliance records of its segments).
    pub fn load(stream_dir: &Path, withheld: Withheld) -> Result<Applier> {
        let loaded = compliance::load(stream_dir)
            .with_context(|| format!("read the compliance ledger of {}", stream_dir.display()))?;
        let mut events = BTreeMap::new();
        let mut not_applied = 0;
        for e in &loaded.events {
            if matches!(e.action, Action::NotApplied { .. }) {
                not_applied += 1;
                continue;
            }
            let name = e.action.name();
            *events.entry(name).or_default() += 1;
        }
        if loaded.torn_bytes > 0 {
            eprintln!(
                "segment-export: the compliance ledger ends in {} bytes that do not verify (a write in progress, or damage); the events before them are applied",
                loaded.torn_bytes
            );
        }
        Ok(Applier {
            policy: Policy::of(&loaded.events),
            mode: match withheld {
                Withheld::Drop => WithheldMode::Drop,
                Withheld::Keep => WithheldMode::Keep,
            },
            source: loaded.source,
            events,
            not_applied,
            torn_bytes: loaded.torn_bytes,
            applied: Applied::default(),
        })
    }

    /// What to do with one record, counted.
    pub fn decide(&mut self, e: &Entry, bytes: &[u8]) -> Decision {
        let v = self.policy.verdict(e.kind, e.time_ms, bytes, self.mode);
        self.applied.count(&v);
        match v {
            Verdict::Keep => Decision::Keep,
            Verdict::Rewrite { bytes, .. } => Decision::Replace(bytes),
            Verdict::Drop(_) => Decision::Skip,
        }
    }

    /// Whether no record can change (an empty ledger).
    pub fn is_idle(&self) -> bool {
        self.policy.is_empty()
    }

    /// Where the events came from.
    pub fn has_ledger(&self) -> bool {
        self.source == Source::Ledger
    }

    pub fn manifest(&self) -> ManifestCompliance {
        ManifestCompliance {
            enabled: true,
            source: match self.source {
                Source::Ledger => "ledger",
                Source::Segments => "segments",
            },
            withheld: match self.mode {
                WithheldMode::Drop => "drop",
                WithheldMode::Keep => "keep",
            },
            events: self.events.clone(),
            events_not_applied: self.not_applied,
            ledger_torn_bytes: self.torn_bytes,
            left_out: LeftOut {
                deleted_posts: self.applied.deleted_posts,
                hidden_users: self.applied.hidden_users,
                unliked: self.applied.unliked,
                withheld: self.applied.withheld_dropped,
            },
            rewritten: Rewritten {
                geo_scrubbed: self.applied.geo_scrubbed,
                withheld_marked: self.applied.withheld_marked,
            },
            posts_dropped: self.applied.dropped(),
        }
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let a = &self.applied;
        format!(
            "compliance: {} left out ({} deleted, {} of hidden users, {} unliked, {} withheld), {} geo scrubbed",
            a.dropped(),
            a.deleted_posts,
            a.hidden_users,
            a.unliked,
            a.withheld_dropped,
            a.geo_scrubbed
        )
    }
}

/// The manifest's `compliance` object.
#[derive(Serialize)]
pub struct ManifestCompliance {
    /// false with --raw: the archive as received.
    pub enabled: bool,
    /// `ledger` (the stream's compliance ledger) or `segments` (no ledger:
    /// the compliance records of every segment); absent with --raw.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub source: &'static str,
    /// `drop` or `keep` (--withheld).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub withheld: &'static str,
    /// Events applied, by kind (all of the stream's, whatever their time).
    pub events: BTreeMap<&'static str, u64>,
    /// Compliance messages that name no usable ID (`gapless compliance` lists them).
    pub events_not_applied: u64,
    pub ledger_torn_bytes: u64,
    /// Records of the range left out, by rule.
    pub left_out: LeftOut,
    /// Records of the range kept with bytes changed.
    pub rewritten: Rewritten,
    /// Records left out in all (the sum of left_out).
    pub posts_dropped: u64,
}

impl ManifestCompliance {
    pub fn raw() -> ManifestCompliance {
        ManifestCompliance {
            enabled: false,
            source: "",
            withheld: "",
            events: BTreeMap::new(),
            events_not_applied: 0,
            ledger_torn_bytes: 0,
            left_out: LeftOut::default(),
            rewritten: Rewritten::default(),
            posts_dropped: 0,
        }
    }
}

#[derive(Serialize, Default)]
pub struct LeftOut {
    pub deleted_posts: u64,
    pub hidden_users: u64,
    pub unliked: u64,
    pub withheld: u64,
}

#[derive(Serialize, Default)]
pub struct Rewritten {
    pub geo_scrubbed: u64,
    pub withheld_marked: u64,
}
