//! Running segment-export in the tests that use a bucket: every run's
//! output is checked for the secret access key.

use std::process::{Command, Output};

use crate::bucket::assert_no_secret;

pub fn export(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_segment-export")).args(args).output().expect("run segment-export");
    assert_no_secret(&out);
    out
}

pub fn run(args: &[String]) -> Output {
    export(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

pub fn ok(out: &Output) {
    assert!(out.status.success(), "status {:?}; stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
}
