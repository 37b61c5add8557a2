//! What the archiver says about itself: `/metrics` follows Prometheus'
//! conventions (checked here, and by `promtool check metrics` when it is on
//! PATH), and its logs say which stream and which connection an event is
//! about through tracing spans (the format of `tracing_subscriber::fmt`,
//! as `gapless archive` logs).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use gapless::metrics::StreamMetrics;

/// The fault script of a disconnect of the Decahose from minute 1 on.
/// What Prometheus' naming conventions (and promtool's lint) ask of a
/// text exposition; an empty list when it follows them.
fn convention_problems(text: &str) -> Vec<String> {
    // promtool's units: a name's words may name a base unit, never another.
    const NOT_BASE: [&str; 13] = [
        "minutes",
        "hours",
        "days",
        "weeks",
        "milliseconds",
        "microseconds",
        "nanoseconds",
        "ms",
        "bits",
        "kilobytes",
        "megabytes",
        "gigabytes",
        "percent",
    ];
    let mut problems = Vec::new();
    let mut help: BTreeMap<&str, &str> = BTreeMap::new();
    let mut kind: BTreeMap<&str, &str> = BTreeMap::new();
    let mut samples: BTreeMap<&str, usize> = BTreeMap::new();
    let valid = |n: &str| {
        n.starts_with("gapless_")
            && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !n.ends_with('_')
            && !n.contains("__")
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if help.insert(name, text.trim()).is_some() {
                problems.push(format!("{name}: HELP given twice"));
            }
            if text.trim().is_empty() {
                problems.push(format!("{name}: empty HELP"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').unwrap_or((rest, ""));
            if kind.insert(name, t).is_some() {
                problems.push(format!("{name}: TYPE given twice"));
            }
            if samples.contains_key(name) {
                problems.push(format!("{name}: TYPE after its samples"));
            }
            if !["counter", "gauge"].contains(&t) {
                problems.push(format!("{name}: type {t:?}"));
            }
        } else if line.starts_with('#') || line.is_empty() {
            problems.push(format!("unexpected line {line:?}"));
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            *samples.entry(name).or_default() += 1;
            let value = line.rsplit(' ').next().unwrap_or("");
            if value.parse::<f64>().is_err() {
                problems.push(format!("{name}: value {value:?} is not a number"));
            }
            if let Some(labels) = line[name_end..].strip_prefix('{') {
                let labels = labels.split_once('}').map_or("", |l| l.0);
                for pair in labels.split(',') {
                    let ok = pair.split_once('=').is_some_and(|(k, v)| {
                        !k.is_empty()
                            && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                            && v.len() >= 2
                            && v.starts_with('"')
                            && v.ends_with('"')
                    });
                    if !ok {
                        problems.push(format!("{name}: label {pair:?}"));
                    }
                }
            }
            if !kind.contains_key(name) {
                problems.push(format!("{name}: a sample before (or without) its TYPE"));
            }
        }
    }
    for (name, t) in &kind {
        if !valid(name) {
            problems.push(format!("{name}: not a gapless_ snake_case name"));
        }
        if !help.contains_key(name) {
            problems.push(format!("{name}: no HELP"));
        }
        match (*t, name.ends_with("_total")) {
            ("counter", false) => problems.push(format!("{name}: a counter's name ends in _total")),
            ("counter", true) | (_, false) => {}
            (_, true) => problems.push(format!("{name}: only counters end in _total")),
        }
        if let Some(unit) = name.split('_').find(|w| NOT_BASE.contains(w)) {
            problems.push(format!("{name}: {unit:?} is not a base unit (seconds, bytes)"));
        }
    }
    for name in help.keys().filter(|n| !kind.contains_key(*n)) {
        problems.push(format!("{name}: HELP without TYPE"));
    }
    problems
}

/// The name in a line's `connection` span.
fn connection(line: &str) -> Option<&str> {
    line.split("connection{connection=").nth(1).and_then(|r| r.split('}').next())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_say_which_stream_and_connection_through_spans() {
    let _g = serial().await;
    // A disconnect longer than Backfill's five minutes: reconnects, and a
    // Recovery job.
    capture_logs();
    clear_logs();
    // And a line cut in half (the storage thread quarantines it).
    let faults = script(&[fault("drop", "+1m", "6m"), fault("cut_line", "+30s", "10s").partition(1)]);
    let h = Harness::launch(Setup::new(52, 40.0, 60.0).faults(&faults)).await;
    let running = h.archiver().await;
    wait_for("a completed Recovery", Duration::from_secs(180), || logs().contains("recovery completed")).await;
    running.stop().await.unwrap();
    let logs = logs();
    let lines = |what: &str| logs.lines().filter(|l| l.contains(what)).map(str::to_string).collect::<Vec<_>>();
    // A realtime connection's events carry its stream and its name.
    let mut seen = std::collections::BTreeSet::new();
    for what in [" connected backfill_minutes=", "connection ended; reconnecting"] {
        let said = lines(what);
        assert!(!said.is_empty(), "no {what:?} in\n{logs}");
        for l in said {
            assert!(l.contains("stream{stream=decahose}:connection{connection="), "{l}");
            assert!(!l.contains(" stream=") && !l.contains(" connection="), "a field repeated by hand: {l}");
            seen.insert(connection(&l).unwrap().to_string());
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["partition-1/0", "partition-2/0"]);
    // The storage thread's events are in the stream's span.
    let quarantined = lines("quarantined a line");
    assert!(!quarantined.is_empty(), "no quarantined line in\n{logs}");
    for l in quarantined {
        assert!(l.contains("stream{stream=decahose}"), "{l}");
        assert!(!l.contains(" stream="), "a field repeated by hand: {l}");
    }
    // The planner's jobs carry the stream and the job (stream-sim's own
    // line about the request it served is not the archiver's).
    let jobs: Vec<String> = lines("recovery completed")
        .into_iter()
        .chain(lines("recovery started"))
        .filter(|l| l.contains("gapless::"))
        .collect();
    assert!(!jobs.is_empty(), "no Recovery job in\n{logs}");
    for l in &jobs {
        assert!(l.contains("stream{stream=decahose}:planner:recovery{job="), "{l}");
    }
    // So does the stream's own start.
    let start = lines(" archiving ");
    assert!(start.len() == 1 && start[0].contains("stream{stream=decahose}"), "{start:?}");
}

#[test]
fn the_convention_check_finds_what_promtool_would() {
    let bad = "# HELP gapless_covered_minutes Full minutes.\n# TYPE gapless_covered_minutes gauge\n\
               gapless_covered_minutes{stream=\"d\"} 3\n\
               # HELP gapless_reconnects Reconnects.\n# TYPE gapless_reconnects counter\n\
               # TYPE gapless_jobs gauge\ngapless_jobs 1\ngapless_lag_seconds 2\n";
    let problems = convention_problems(bad);
    for want in [
        "gapless_covered_minutes: \"minutes\" is not a base unit",
        "gapless_reconnects: a counter's name ends in _total",
        "gapless_jobs: no HELP",
        "gapless_lag_seconds: a sample before (or without) its TYPE",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(want)), "{want}: {problems:#?}");
    }
    let good = "# HELP gapless_stored_total Stored.\n# TYPE gapless_stored_total counter\n\
                gapless_stored_total{stream=\"d\"} 3\n";
    assert_eq!(convention_problems(good), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_prometheus_conventions() {
    let _g = serial().await;
    // A short disconnect, so that every family has samples (reconnects by
    // cause included).
    let h = Harness::launch(Setup::new(51, 40.0, 60.0).faults(&script(&[fault("drop", "+1m", "20s")]))).await;
    let running = h.archiver().await;
    let admin = running.admin.unwrap();
    let m = running.metrics.streams[0].clone();
    // Until every family has something to say: a reconnect, a planner pass.
    wait_for("a reconnect and a planner pass", Duration::from_secs(120), || {
        m.reconnects.lock().unwrap().values().sum::<u64>() > 0
            && m.covered_minutes.load(std::sync::atomic::Ordering::Relaxed) > 0
            && StreamMetrics::get(&m.stored) > 0
    })
    .await;
    let text = reqwest::get(format!("http://{admin}/metrics")).await.unwrap().text().await.unwrap();
    running.stop().await.unwrap();
    assert!(text.contains("gapless_reconnects_total{stream=\"decahose\",cause=\"network\"}"), "{text}");
    assert!(text.contains("gapless_window_full_seconds{stream=\"decahose\"}"), "{text}");
    // The storage thread's time: data was stored, so fsync took some.
    let seconds = |name: &str| -> f64 {
        let prefix = format!("{name}{{stream=\"decahose\"}} ");
        text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.parse().ok()).unwrap_or(-1.0)
    };
    assert!(seconds("gapless_storage_sync_seconds_total") > 0.0, "{text}");
    assert!(seconds("gapless_storage_accept_seconds_total") > 0.0, "{text}");
    assert!(seconds("gapless_storage_write_seconds_total") > 0.0, "{text}");
    let problems = convention_problems(&text);
    assert!(problems.is_empty(), "{problems:#?}\n{text}");

    // promtool, when it is installed (`.ci/run` installs it).
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut promtool) = promtool else {
        println!("promtool is not on PATH: `promtool check metrics` skipped (the check above ran)");
        return;
    };
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
}
