use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = fleetflow::cli::Cli::parse();
    fleetflow::cli::run(cli)?;
    Ok(())
}
