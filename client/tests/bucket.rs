//! `--data s3://...` against a real S3-compatible server (moto, started by
//! the test): what the tools are told of a bucket that is not there.

use gapless_bucket::test_server;
use gapless_client::bucket::{fetch, Want};
use gapless_client::exit::Exit;

#[test]
fn a_missing_bucket_is_no_data_said_in_one_line_without_credentials() {
    let Some(_server) = test_server::server() else { return };
    let url = format!("s3://client-missing-{}/archive", std::process::id());
    let Err(err) = fetch(&url, &Want::default()) else { panic!("a missing bucket fetched") };
    let err = anyhow::Error::from(err);
    let text = format!("{err:#}");
    assert_eq!(
        text,
        format!(
            "cannot read the archive in {url}: list archive/sites: NoSuchBucket: The specified bucket does not exist"
        )
    );
    assert!(!text.contains(test_server::SECRET_ACCESS_KEY), "{text}");
    assert_eq!(Exit::of_error(err.chain()), Exit::NoData);
}
