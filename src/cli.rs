//! The command line.

use clap::{Parser, Subcommand};

/// gapless archives X/Twitter enterprise streams and proves, minute by
/// minute, that the archive is complete.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the storage format version this build writes.
    Version,
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("gapless {} (segment format {})", env!("CARGO_PKG_VERSION"), gapless_storage::frame::VERSION);
            Ok(())
        }
    }
}
