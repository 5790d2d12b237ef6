use clap::Parser;

/// mimalloc: the dataflow allocates and frees row buffers at a high rate; glibc's malloc hands
/// those pages back and faults them in again (benches/RESULTS.md). The `system-alloc` feature
/// keeps glibc's, for heap profilers that hook `malloc` (heaptrack).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = fleetflow::cli::Cli::parse();
    fleetflow::cli::run(cli)?;
    Ok(())
}
