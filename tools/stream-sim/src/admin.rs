//! A small admin API under `/sim/` (same Basic credentials, no gzip), for
//! demos and tests of a client:
//!
//! - `GET /sim/status`: stream time, clock, open connections, Recovery jobs,
//!   counters (accepted connections, activities sent, refusals by status).
//! - `POST /sim/faults`: add faults now, with a body in the fault-file format
//!   (TOML); `+DURATION` times are relative to the current stream time. This
//!   is how a demo breaks a stream on cue.

use std::sync::atomic::Ordering;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, StatusCode};
use serde_json::json;
use tracing::info;

use crate::clock::Clock;
use crate::faults::FaultPlan;
use crate::http::{authorized, json as json_response, refusal, Resp};
use crate::protocol::{self, Refusal};
use crate::state::{lock, Shared};

pub(crate) async fn handle(shared: &Shared, req: hyper::Request<Incoming>) -> Resp {
    if !authorized(&shared.cfg, &req) {
        return refusal(&Refusal::new(401, protocol::MSG_AUTH));
    }
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/sim/status") => json_response(StatusCode::OK, status(shared)),
        (Method::POST, "/sim/faults") => {
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return refusal(&Refusal::new(400, &format!("Cannot read the body: {e}"))),
            };
            let Ok(text) = std::str::from_utf8(&body) else {
                return refusal(&Refusal::new(400, "The body must be UTF-8 TOML."));
            };
            let now = shared.cfg.clock.now_ms();
            match FaultPlan::from_toml(text, now, shared.cfg.seed) {
                Ok(plan) => {
                    let added: Vec<serde_json::Value> = plan
                        .scripted
                        .iter()
                        .map(|f| {
                            json!({
                                "kind": f.kind.name(),
                                "start": gapless_time::rfc3339_ms(f.start_ms),
                                "end": gapless_time::rfc3339_ms(f.end_ms),
                                "stream": f.stream,
                                "partition": f.partition,
                                "connection": f.connection,
                            })
                        })
                        .collect();
                    info!(faults = added.len(), random = plan.random.len(), "faults added at run time");
                    let random = plan.random.len();
                    shared.add_faults(plan);
                    json_response(StatusCode::OK, json!({"added": added, "random_added": random}))
                }
                Err(e) => refusal(&Refusal::new(400, &e.to_string())),
            }
        }
        _ => refusal(&Refusal::new(404, "Admin endpoints: GET /sim/status, POST /sim/faults.")),
    }
}

/// The clock's three values, which a client passes to agree on stream
/// time. The system clock (whose start and origin are the epoch) is shown
/// with `start` and `origin_unix` null: no flags, wall time.
fn clock_json(clock: &Clock) -> serde_json::Value {
    if *clock == Clock::system() {
        return json!({"start": null, "speed": 1.0, "origin_unix": null});
    }
    json!({
        "start": gapless_time::rfc3339_ms(clock.start_ms()),
        "speed": clock.speed(),
        "origin_unix": clock.origin_unix(),
    })
}

fn status(shared: &Shared) -> serde_json::Value {
    let clock = &shared.cfg.clock;
    let streams: Vec<serde_json::Value> = shared
        .stream_states()
        .into_iter()
        .map(|(account, st)| {
            let conns: Vec<serde_json::Value> =
                lock(&st.conns).iter().map(|c| json!({"id": c.id, "partition": c.partition})).collect();
            json!({
                "account": account,
                "stream": st.spec.name(),
                "partitions": st.spec.partitions,
                "rate": st.spec.rate,
                "max_connections": st.spec.max_connections,
                "realtime_connections": conns,
                "accepted_connections": st.accepted.load(Ordering::Relaxed),
                "activities_sent": st.sent.load(Ordering::Relaxed),
            })
        })
        .collect();
    let jobs: serde_json::Map<String, serde_json::Value> =
        shared.recovery_job_counts().into_iter().map(|(a, n)| (a, json!(n))).collect();
    let refused: serde_json::Map<String, serde_json::Value> =
        shared.refusal_counts().into_iter().map(|(s, n)| (s.to_string(), json!(n))).collect();
    json!({
        "now": gapless_time::rfc3339_ms(clock.now_ms()),
        "clock": clock_json(clock),
        "seed": shared.cfg.seed,
        "streams": streams,
        "recovery_jobs": jobs,
        "refused": refused,
        "faults": {"scripted": shared.faults().scripted.len(), "random": shared.faults().random.len()},
    })
}
