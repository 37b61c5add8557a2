//! The compliant export of a live archive (the real archiver against
//! stream-sim, whose compliance messages name Posts and users the stream
//! really sent) is what stream-sim's own implementation of the rules makes
//! of the same archive: `segment-export` against an independent oracle.

#[path = "../../inspect-coverage/tests/common/archiver.rs"]
mod live;

use std::path::Path;
use std::process::Command;

use stream_sim::compliant::{Ledger, Outcome, Withheld};

fn export(data: &Path, out: &Path, more: &[&str]) -> String {
    let mut args = vec!["--data", data.to_str().unwrap(), "--stream", "decahose", "--from", "now-1h", "--to", "now+1m"];
    args.extend(["--quiet", "--out", out.to_str().unwrap()]);
    args.extend(more);
    let o = Command::new(env!("CARGO_BIN_EXE_segment-export")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn the_compliant_export_of_a_live_archive_is_the_oracles() {
    let mut live = live::Live::start(200.0);
    live.until_stored(8000);
    live.stop();
    let data = live.data();
    let dir = live.dir.path().to_path_buf();
    let raw = export(&data, &dir.join("raw.ndjson"), &["--raw"]);
    // The oracle's ledger: every compliance message the archive holds.
    let mut ledger = Ledger::default();
    for line in raw.lines() {
        ledger.add(line.as_bytes());
    }
    for (withheld, flag) in [(Withheld::Drop, "drop"), (Withheld::Keep, "keep")] {
        let (mut left_out, mut rewritten) = (0, 0);
        let mut want = String::new();
        for line in raw.lines() {
            match ledger.apply(line.as_bytes(), withheld) {
                Outcome::Message | Outcome::Kept { line: None, .. } => want.push_str(line),
                Outcome::Kept { line: Some(bytes), .. } => {
                    rewritten += 1;
                    want.push_str(std::str::from_utf8(&bytes).unwrap());
                }
                _ => {
                    left_out += 1;
                    continue;
                }
            }
            want.push('\n');
        }
        let got = export(&data, &dir.join(format!("compliant-{flag}.ndjson")), &["--withheld", flag]);
        assert!(left_out > 0, "the archive holds Posts its compliance messages remove ({rewritten} rewritten)");
        if got != want {
            let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
            let first = g.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
            panic!(
                "--withheld {flag}: the export ({} lines) is not the oracle's ({} lines; {left_out} left out); first difference at line {first}:\n got: {:?}\nwant: {:?}",
                g.len(),
                w.len(),
                g.get(first),
                w.get(first)
            );
        }
        eprintln!("--withheld {flag}: {} lines, {left_out} left out, {rewritten} rewritten", got.lines().count());
    }
}
