//! The one exit-status table of the tools (`inspect-coverage`,
//! `segment-export`): one code, one meaning, whichever tool returns it.
//! The README shows it as one table.
//!
//! | status | name | meaning |
//! |---|---|---|
//! | 0 | [`Exit::Ok`] | done: the coverage is complete (inspect-coverage), the export is written (segment-export) |
//! | 1 | [`Exit::Holes`] | inspect-coverage: recoverable holes only |
//! | 2 | [`Exit::Lost`] | inspect-coverage: lost data |
//! | 3 | [`Exit::Refused`] | segment-export: refused by `--require-full` (holes, or coverage unknown); nothing written |
//! | 64 | [`Exit::Usage`] | bad arguments: an unknown option, a time or duration not in the grammar, an empty window |
//! | 66 | [`Exit::NoData`] | no such data directory or bucket, no coverage store there, no such stream, or (segment-export) minutes of the range evicted to the bucket |
//! | 69 | [`Exit::ArchiverUnreachable`] | an archiver holds the data directory and cannot be asked (no `admin.url`, or nothing answers at it or at `--admin`) |
//! | 70 | [`Exit::Error`] | any other failure: I/O, a damaged store, an unexpected answer |
//! | 141 | [`Exit::BrokenPipe`] | standard output was closed early (`\| head`): ended quietly, as on SIGPIPE |
//!
//! 64, 66, 69 and 70 are `sysexits.h`'s `EX_USAGE`, `EX_NOINPUT`,
//! `EX_UNAVAILABLE` and `EX_SOFTWARE`, so that 1 to 3 stay verdicts.

use std::error::Error as StdError;

/// An exit status of the tools (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Holes = 1,
    Lost = 2,
    Refused = 3,
    Usage = 64,
    NoData = 66,
    ArchiverUnreachable = 69,
    Error = 70,
    BrokenPipe = 141,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status for a report's verdict (`exit_code` 0, 1 or 2).
    pub fn of_verdict(exit_code: i32) -> Exit {
        match exit_code {
            0 => Exit::Ok,
            1 => Exit::Holes,
            _ => Exit::Lost,
        }
    }

    /// The status for an error, from the first cause in its chain (outermost
    /// first) that says what went wrong.
    pub fn of_error<'a>(chain: impl IntoIterator<Item = &'a (dyn StdError + 'static)>) -> Exit {
        chain.into_iter().find_map(classify).unwrap_or(Exit::Error)
    }

    /// The `after_help` line of the tools: the table, short.
    pub const HELP: &'static str = "Exit status (both tools): 0 done (complete / exported), 1 recoverable holes, \
2 lost data, 3 refused by --require-full, 64 bad arguments, 66 no such data directory, bucket, store or stream \
(or minutes evicted to the bucket: export them with --data s3://...), \
69 the archiver holds the data directory and cannot be asked (give --admin URL), 70 any other error, \
141 output closed early.";
}

/// The `main` of a tool: parses its arguments (`--help` and `--version`
/// exit 0, bad arguments [`Exit::Usage`]), runs it, and maps what it
/// returns onto the table; an error is printed as `TOOL: error: …` with its
/// causes, except when standard output was closed early.
pub fn run_tool<C: clap::Parser>(tool: &str, run: impl FnOnce(C) -> anyhow::Result<Exit>) -> std::process::ExitCode {
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Usage } else { Exit::Ok };
            let _ = e.print();
            return code.into();
        }
    };
    match run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            let code = Exit::of_error(e.chain());
            // The reader went away (`| head`): end quietly, as a SIGPIPE would.
            if code != Exit::BrokenPipe {
                eprintln!("{tool}: error: {e:#}");
            }
            code.into()
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// Bad arguments found after parsing (a window that is empty, a ratio out
/// of range, ...): exit [`Exit::Usage`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A refusal: the request was understood and declined (exit [`Exit::Refused`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn classify(e: &(dyn StdError + 'static)) -> Option<Exit> {
    if e.is::<Usage>() || e.is::<gapless_time::Error>() {
        return Some(Exit::Usage);
    }
    if e.is::<Refused>() {
        return Some(Exit::Refused);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return (io.kind() == std::io::ErrorKind::BrokenPipe).then_some(Exit::BrokenPipe);
    }
    if let Some(e) = e.downcast_ref::<crate::Error>() {
        use crate::Error as E;
        return match e {
            E::NoDataDir(_) | E::NotAnArchive { .. } | E::NoStream(_) | E::Evicted { .. } => Some(Exit::NoData),
            E::ArchiverUnreachable { .. } | E::NoAnswer { .. } => Some(Exit::ArchiverUnreachable),
            // The archiver refused the query (a window too wide, say).
            E::Status { status: 400, .. } | E::BadUrl(_) | E::BadBucketUrl { .. } => Some(Exit::Usage),
            E::Bucket { error, .. } => Some(bucket_exit(error)),
            // Transparent: their source is the inner error's source.
            E::Report(r) => classify(r),
            E::Storage(s) => classify(s),
            _ => Some(Exit::Error),
        };
    }
    if let Some(e) = e.downcast_ref::<gapless_report::Error>() {
        return match e {
            gapless_report::Error::Query(_) => Some(Exit::Usage),
            gapless_report::Error::Storage(s) => classify(s),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<gapless_storage::Error>() {
        use gapless_storage::Error as S;
        return match e {
            S::NotFound { .. } | S::UnknownStream(_) => Some(Exit::NoData),
            S::BadLabel(_) => Some(Exit::Usage),
            S::CoverageLocked { .. } | S::Locked { .. } => Some(Exit::ArchiverUnreachable),
            _ => None,
        };
    }
    None
}

/// The status for an error of the bucket: a bucket that is not there is
/// "no such data", like a data directory that is not (an object that a
/// manifest names and is not there is damage: [`Exit::Error`]).
fn bucket_exit(e: &gapless_bucket::Error) -> Exit {
    use gapless_bucket::Error as B;
    match e {
        B::BadUrl { .. } => Exit::Usage,
        B::Request { .. } if crate::bucket::s3_error(e).is_some_and(|(code, _)| code == "NoSuchBucket") => Exit::NoData,
        B::Storage(s) => classify(s).unwrap_or(Exit::Error),
        _ => Exit::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(e: &(dyn StdError + 'static)) -> Exit {
        let mut chain = vec![e];
        let mut at = e;
        while let Some(s) = at.source() {
            chain.push(s);
            at = s;
        }
        Exit::of_error(chain)
    }

    #[test]
    fn errors_map_onto_the_table() {
        let stream =
            crate::Error::Report(gapless_report::Error::Storage(gapless_storage::Error::UnknownStream("x".into())));
        assert_eq!(of(&stream), Exit::NoData);
        assert_eq!(of(&crate::Error::NoDataDir("/x".into())), Exit::NoData);
        let evicted = crate::Error::Evicted { data: "/x".into(), stream: "s".into(), minutes: 1, first: "t".into() };
        assert_eq!(of(&evicted), Exit::NoData);
        assert_eq!(of(&Usage("--from after --to".into())), Exit::Usage);
        assert_eq!(of(&Refused("holes".into())), Exit::Refused);
        assert_eq!(of(&gapless_time::parse_duration("5x").expect_err("bad")), Exit::Usage);
        let damaged = gapless_storage::Error::CorruptCoverage("x".into());
        assert_eq!(of(&damaged), Exit::Error);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(of(&pipe), Exit::BrokenPipe);
        assert_eq!(of(&std::io::Error::from(std::io::ErrorKind::PermissionDenied)), Exit::Error);
        assert_eq!(Exit::of_verdict(1).code(), 1);
    }
}
