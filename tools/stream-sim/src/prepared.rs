//! Max-speed content: a span of stream time of every configured stream and
//! partition (from the clock start), generated and gzip-compressed once, into parts of
//! about 64 KB of input each ended by a sync flush. See [`crate::maxspeed`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::SimConfig;
use crate::generator::Generator;
use crate::gzip::GzStream;
use crate::stream::StreamKind;

/// Input bytes per sync-flushed part.
const PART_INPUT: usize = 64 * 1024;

/// One stream partition's pre-compressed body.
#[derive(Default)]
pub struct Body {
    pub parts: Vec<Bytes>,
    pub activities: u64,
    pub raw_bytes: u64,
    pub gzip_bytes: u64,
}

/// Pre-generated, pre-compressed content, by (kind, label, partition).
#[derive(Default)]
pub struct Prepared {
    pub bodies: HashMap<(StreamKind, String, u32), Arc<Body>>,
}

impl Prepared {
    /// Generate and compress `span` of stream time of every configured
    /// stream partition.
    pub fn build(cfg: &SimConfig, span: Duration) -> std::io::Result<Prepared> {
        let mut out = Prepared::default();
        let from = crate::clock::run_start_ms(&cfg.clock);
        let to = from.saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX));
        for spec in &cfg.streams {
            let gen = Generator::new(cfg.seed, spec);
            for p in spec.partition_numbers() {
                let mut gz = GzStream::new();
                let mut body = Body::default();
                let mut pending = 0usize;
                let filter = if p == 0 { None } else { Some(p) };
                for a in gen.range(from, to, filter) {
                    gz.write(&a.line)?;
                    gz.write(b"\r\n")?;
                    pending += a.line.len() + 2;
                    body.activities += 1;
                    body.raw_bytes += a.line.len() as u64 + 2;
                    if pending >= PART_INPUT {
                        let b = gz.flush()?;
                        body.gzip_bytes += b.len() as u64;
                        body.parts.push(b);
                        pending = 0;
                    }
                }
                let b = gz.finish()?;
                body.gzip_bytes += b.len() as u64;
                body.parts.push(b);
                out.bodies.insert((spec.kind, spec.label.clone(), p), Arc::new(body));
            }
        }
        Ok(out)
    }
}
