fn main() -> anyhow::Result<()> {
    gapless::cli::run()
}
