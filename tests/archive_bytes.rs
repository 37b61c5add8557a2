//! The test kit compares bytes, not only keys: an archive whose records
//! keep their keys but not their bytes (a stray `\r`, one byte changed) is
//! reported activity by activity, so the end-to-end tests that use the kit
//! would fail on it.
//!
//! The archives here are made by `gapless import` (the library) from
//! stream-sim's own lines, once as sent and once with chosen lines altered
//! or left out; the kit compares them with stream-sim's truth exactly as the
//! end-to-end tests do (`Harness::diff`, `compare_minute`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;

/// The Posts and the rest of minutes `[0, 2)` after START, as stream-sim
/// sends them.
fn sent_lines(h: &Harness) -> Vec<(String, Vec<u8>)> {
    let mut spec = stream_sim::StreamSpec::new(stream_sim::StreamKind::Sample10, "prod");
    spec.rate = h.rate;
    let gen = stream_sim::Generator::new(h.seed, &spec);
    gen.range(h.minute(0) * 60_000, h.minute(2) * 60_000, None).map(|a| (a.key.truth_line(), a.line.to_vec())).collect()
}

/// Writes `lines` as a stream body (`\r\n`-separated) and imports it into
/// a fresh archive at `data`.
fn import(dir: &Path, data: &Path, lines: &[Vec<u8>]) {
    let file: PathBuf = dir.join(format!("{}.ndjson", data.file_name().unwrap().to_string_lossy()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for l in lines {
        f.write_all(l).unwrap();
        f.write_all(b"\r\n").unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    let s = gapless::import::import(data, "decahose", &[file]).unwrap();
    assert_eq!(s.quarantined, 0, "every line is a valid activity");
}

/// The line with one ASCII letter of its `text` changed to another: same
/// key, same length, valid JSON.
fn change_a_byte(line: &[u8]) -> Vec<u8> {
    let at = line.windows(8).position(|w| w == b"\"text\":\"").expect("a Post has a text") + 8;
    let i = (at..line.len()).find(|&i| line[i].is_ascii_alphabetic()).expect("a letter in the text");
    let mut out = line.to_vec();
    out[i] = if line[i] == b'x' { b'y' } else { b'x' };
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_reports_exactly_the_activities_whose_bytes_differ() {
    let _g = serial().await;
    let h = Harness::launch(Setup::new(61, 10.0, 1.0)).await;
    let tmp = tempfile::tempdir().unwrap();
    let sent = sent_lines(&h);
    let posts: Vec<usize> =
        sent.iter().enumerate().filter(|(_, (k, _))| k.starts_with("post ")).map(|(i, _)| i).collect();
    assert!(posts.len() > 100, "{} Posts", posts.len());
    let (cr, changed, left_out) = (posts[10], posts[posts.len() / 2], posts[posts.len() - 10]);

    // As sent: the kit finds the archive exact, byte for byte.
    let exact = tmp.path().join("exact");
    import(tmp.path(), &exact, &sent.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>());
    let d = gapless::demo::verify::compare(
        &h.truth("decahose", h.minute(0) * 60_000, h.minute(2) * 60_000),
        &archive(&exact, "decahose", h.minute(0) * 60_000, h.minute(2) * 60_000),
    );
    assert!(d.is_exact(), "{d}");
    assert_eq!(d.archived, sent.len());

    // Altered: a `\r` inside one record (JSON whitespace: the line still
    // parses, the key is the same), one byte changed in another, a third
    // left out. Imported into the harness's own archive, so that the kit's
    // functions see it as they see an archiver's.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for (i, (_, l)) in sent.iter().enumerate() {
        if i == cr {
            let mut with_cr = l.clone();
            with_cr.insert(1, b'\r');
            lines.push(with_cr);
        } else if i == changed {
            lines.push(change_a_byte(l));
        } else if i != left_out {
            lines.push(l.clone());
        }
    }
    import(tmp.path(), &h.data(), &lines);
    let d = h.diff("decahose", h.minute(0), h.minute(2));
    let mut differ = vec![sent[cr].0.clone(), sent[changed].0.clone()];
    differ.sort();
    assert_eq!(d.differ, differ, "{d}");
    assert_eq!(d.missing, vec![sent[left_out].0.clone()], "{d}");
    assert!(d.unexpected.is_empty() && d.twice.is_empty(), "{d}");
    assert!(!d.is_exact());

    // Minute by minute, as the watch of a running archiver compares: the
    // minute of each altered record fails, and names it.
    for i in [cr, changed] {
        let key = &sent[i].0;
        let id: u64 = key.strip_prefix("post ").unwrap().parse().unwrap();
        let minute = stream_sim::generator::snowflake_ms(id).div_euclid(60_000);
        let err = h.compare_minute("decahose", minute).expect_err("the minute differs");
        assert!(err.contains("bytes differ 1") && err.contains(key.as_str()), "{err}");
    }
}
