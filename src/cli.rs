//! The command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// gapless archives X/Twitter enterprise streams and proves, minute by
/// minute, that the archive is complete.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import existing NDJSON archives (plain, .gz or .zst; native or
    /// Activity Streams format) into a stream of the store. Deduplicates;
    /// claims no coverage.
    Import {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The stream label to file the activities under.
        #[arg(long)]
        stream: String,
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_json);
    match cli.command {
        Command::Import { data, stream, files } => {
            let summary = crate::import::import(&data, &stream, &files)
                .with_context(|| format!("import into stream {stream:?} of {}", data.display()))?;
            println!("{summary}");
            Ok(())
        }
    }
}
