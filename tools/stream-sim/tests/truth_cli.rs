//! `stream-sim truth`, with and without `--fingerprints`, as a user runs it.

use std::process::Command;

use stream_sim::rng::fnv1a64;
use stream_sim::{Generator, StreamKind, StreamSpec};

fn truth(extra: &[&str]) -> String {
    truth_of("2026-03-01T00:00:00Z", "2026-03-01T00:00:10Z", extra)
}

fn truth_of(from: &str, to: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stream-sim"))
        .args(["truth", "--seed", "9", "--rate", "20", "--stream", "sample10/prod", "--from", from, "--to", to])
        .args(extra)
        .output()
        .expect("run stream-sim truth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn fingerprints_add_the_length_and_hash_of_the_exact_bytes() {
    let plain = truth(&[]);
    let with = truth(&["--fingerprints"]);
    let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
    spec.rate = 20.0;
    let acts: Vec<_> = Generator::new(9, &spec).range(1_772_323_200_000, 1_772_323_210_000, None).collect();
    assert!(acts.len() > 100);
    assert_eq!(plain.lines().count(), acts.len());
    assert_eq!(with.lines().count(), acts.len());
    for ((p, w), a) in plain.lines().zip(with.lines()).zip(&acts) {
        assert_eq!(p, a.key.truth_line());
        assert_eq!(w, format!("{p} {} {:016x}", a.line.len(), fnv1a64(&a.line)));
    }
}

/// `--from` and `--to` take the project's one grammar of times, not only
/// RFC 3339.
#[test]
fn from_and_to_take_the_one_time_grammar() {
    let rfc = truth(&[]);
    assert!(rfc.lines().count() > 100);
    assert_eq!(truth_of("2026-03-01", "2026-03-01T00:00:10", &[]), rfc);
    assert_eq!(truth_of("@1772323200", "2026-03-01T00:00:10Z", &[]), rfc);
    let out = Command::new(env!("CARGO_BIN_EXE_stream-sim"))
        .args(["truth", "--stream", "sample10/prod", "--from", "last tuesday", "--to", "2026-03-01"])
        .output()
        .expect("run stream-sim truth");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--from") && err.contains("2017-07-18T23:25"), "{err}");
}

/// `truth --compliant`: the compliant truth of the library, line for line,
/// with the ledger range and the withheld option given or defaulted.
#[test]
fn compliant_prints_the_compliant_truth() {
    use stream_sim::compliant::{compliant_truth, CompliantQuery, Withheld};
    let run = |extra: &[&str]| -> (String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_stream-sim"))
            .args(["truth", "--seed", "9", "--rate", "100", "--stream", "sample10/prod"])
            .args(["--from", "2026-03-01T00:00:00Z", "--to", "2026-03-01T00:01:00Z"])
            .args(extra)
            .output()
            .expect("run stream-sim truth");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
    spec.rate = 100.0;
    let gen = Generator::new(9, &spec);
    let (from, to) = (1_772_323_200_000, 1_772_323_260_000);

    let (plain, _) = run(&[]);
    let (lines, stderr) = run(&["--compliant"]);
    let want = compliant_truth(&gen, &CompliantQuery::new(from, to));
    assert_eq!(lines, want.entries.iter().map(|e| format!("{}\n", e.truth_line())).collect::<String>());
    assert!(lines.lines().count() < plain.lines().count(), "deleted Posts of the range are left out");
    assert!(want.counts.deleted > 0);
    assert!(stderr.contains(&format!("deleted {}", want.counts.deleted)), "{stderr}");

    let (lines, _) = run(&[
        "--compliant",
        "--fingerprints",
        "--withheld",
        "keep",
        "--ledger-from",
        "2026-02-28T23:00:00Z",
        "--ledger-to",
        "2026-03-01T00:30:00Z",
    ]);
    let q = CompliantQuery {
        from_ms: from,
        to_ms: to,
        ledger_from_ms: from - 3_600_000,
        ledger_to_ms: from + 1_800_000,
        partition: None,
        withheld: Withheld::Keep,
    };
    let want = compliant_truth(&gen, &q);
    assert_eq!(want.counts.withheld_dropped, 0);
    let want_lines: String = want.entries.iter().map(|e| format!("{} {}\n", e.truth_line(), e.fingerprint)).collect();
    assert_eq!(lines, want_lines);

    for bad in [&["--compliant", "--withheld", "maybe"][..], &["--ledger-from", "2026-03-01"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_stream-sim"))
            .args(["truth", "--stream", "sample10/prod", "--from", "2026-03-01", "--to", "2026-03-01T00:00:01Z"])
            .args(bad)
            .output()
            .expect("run stream-sim truth");
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}
