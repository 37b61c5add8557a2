//! Compliance applied by `segment-export` (the default), rule by rule, on
//! an archive built with the real store: the bytes of the export are
//! compared with what each rule must leave, and `--raw` gives the archive
//! as received.

use std::path::Path;
use std::process::{Command, Output};

use gapless_storage::store::{Store, StoreConfig};
use serde_json::Value;

const BASE: i64 = 1_500_336_000; // 2017-07-18T00:00:00Z
const GEO: &str = r#","geo":{"type":"Point","coordinates":[52.5,13.4]},"coordinates":{"type":"Point","coordinates":[13.4,52.5]},"place":{"id":"b","full_name":"Berlin"}"#;
const NO_GEO: &str = r#","geo":null,"coordinates":null,"place":null"#;

fn post(id: u64, user: u64, ms: i64, geo: &str) -> String {
    format!(
        r#"{{"created_at":"x","id":{id},"id_str":"{id}","text":"words of user {user} in {id}","user":{{"id":{user},"id_str":"{user}"}}{geo},"timestamp_ms":"{ms}"}}"#
    )
}

fn event(name: &str, body: &str, ms: i64) -> String {
    format!(r#"{{"{name}":{{{body},"timestamp_ms":"{ms}"}}}}"#)
}

fn export(dir: &Path, more: &[&str]) -> (String, Value) {
    let out_file = dir.join(format!("out-{}.ndjson", more.join("")));
    let (from, to) = (format!("@{BASE}"), format!("@{}", BASE + 600));
    let mut args = vec!["--data", dir.to_str().unwrap(), "--stream", "s", "--from", &from, "--to", &to, "--quiet"];
    args.extend(["--out", out_file.to_str().unwrap()]);
    args.extend(more);
    let out: Output = Command::new(env!("CARGO_BIN_EXE_segment-export")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut m = out_file.as_os_str().to_owned();
    m.push(".manifest.json");
    let manifest = serde_json::from_str(&std::fs::read_to_string(m).unwrap()).unwrap();
    (std::fs::read_to_string(&out_file).unwrap(), manifest)
}

fn posts(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("\"text\"")).collect()
}

#[test]
fn every_rule_changes_the_export_and_raw_is_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let ms = |s: i64| (BASE + s) * 1000;
    // Posts 1..=8 by users 1..=4, each with geo.
    let all: Vec<String> = (1..=8u64).map(|id| post(id, id.div_ceil(2), ms(id as i64 * 10), GEO)).collect();
    let events = [
        // A delete of Post 1 that arrives first (the Post comes later).
        event("delete", r#""status":{"id":1,"id_str":"1","user_id":1,"user_id_str":"1"}"#, ms(300)),
        // User 2 deleted, then undeleted: shown. User 3 protected: hidden.
        event("user_delete", r#""id":2,"id_str":"2""#, ms(310)),
        event("user_undelete", r#""id":2,"id_str":"2""#, ms(320)),
        event("user_protect", r#""id":3,"id_str":"3""#, ms(330)),
        // User 4's geo scrubbed up to Post 7; Post 2 withheld in FR and DE.
        event("scrub_geo", r#""user_id":4,"user_id_str":"4","up_to_status_id":7,"up_to_status_id_str":"7""#, ms(340)),
        event("status_withheld", r#""id":2,"user_id":1,"withheld_in_countries":["FR","DE"]"#, ms(350)),
    ];
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let mut w = store.stream("s").unwrap();
        for e in &events {
            w.ingest(e.as_bytes(), ms(400)).unwrap();
        }
        w.commit().unwrap();
        for p in &all {
            w.ingest(p.as_bytes(), ms(400)).unwrap();
        }
        w.commit().unwrap();
    }

    let (text, m) = export(dir.path(), &[]);
    let want = [
        // 1 deleted; 2 withheld (dropped); 3, 4 of user 2 (undeleted) kept;
        // 5, 6 of user 3 hidden; 7 scrubbed; 8 (after up_to) keeps its geo.
        post(3, 2, ms(30), GEO),
        post(4, 2, ms(40), GEO),
        post(7, 4, ms(70), NO_GEO),
        post(8, 4, ms(80), GEO),
    ];
    assert_eq!(posts(&text), want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(text.lines().count(), 4 + events.len(), "compliance messages are kept as received");
    let c = &m["compliance"];
    assert_eq!(c["enabled"], true);
    assert_eq!(c["source"], "ledger");
    assert_eq!(c["withheld"], "drop");
    assert_eq!(c["left_out"]["deleted_posts"], 1);
    assert_eq!(c["left_out"]["hidden_users"], 2);
    assert_eq!(c["left_out"]["withheld"], 1);
    assert_eq!(c["rewritten"]["geo_scrubbed"], 1);
    for kind in ["delete", "user_delete", "user_undelete", "user_protect", "scrub_geo", "status_withheld"] {
        assert_eq!(c["events"][kind], 1, "{kind}: {c}");
    }
    assert_eq!(m["records"], 4 + events.len() as u64);

    // Withheld kept, with its countries.
    let (text, m) = export(dir.path(), &["--withheld", "keep"]);
    let plain = post(2, 1, ms(20), GEO);
    let marked = format!(r#"{},"withheld_in_countries":["DE","FR"]}}"#, &plain[..plain.len() - 1]);
    assert_eq!(posts(&text)[0], marked);
    assert_eq!(m["compliance"]["rewritten"]["withheld_marked"], 1);

    // --raw: the archive as received.
    let (text, m) = export(dir.path(), &["--raw"]);
    assert_eq!(posts(&text), all.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(m["compliance"]["enabled"], false);

    // Parquet: the same records (its raw column holds the compliant bytes).
    let pq = dir.path().join("out.parquet");
    let (from, to) = (format!("@{BASE}"), format!("@{}", BASE + 600));
    let out = Command::new(env!("CARGO_BIN_EXE_segment-export"))
        .args(["--data", dir.path().to_str().unwrap(), "--stream", "s", "--from", &from, "--to", &to, "--quiet"])
        .args(["--format", "parquet", "--out", pq.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut mp = pq.as_os_str().to_owned();
    mp.push(".manifest.json");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(mp).unwrap()).unwrap();
    assert_eq!(m["records"], 4 + events.len() as u64);
    assert_eq!(m["compliance"]["rewritten"]["geo_scrubbed"], 1);
}
