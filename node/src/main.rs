//! The `urbanmesh` binary: parse the command line, start tracing, run the command.

mod admin;
mod cli;
mod config;
mod demo;
mod init;
mod node;
mod retention;
mod runtime;

use clap::Parser;

/// Arrow's many large, short-lived buffers fragment glibc's per-thread arenas; mimalloc
/// returns freed memory to the system and keeps a loaded node's footprint near its data.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    runtime::init_tracing();
    match cli.command {
        cli::Command::Init(args) => init::init(&args),
        cli::Command::Run(args) => runtime::block_on(|query| node::run(args, query)),
        cli::Command::Demo(args) => runtime::block_on(|query| demo::run(args, query)),
        cli::Command::Invite(args) => runtime::block_on(|_| admin::invite(args)),
        cli::Command::Join(args) => runtime::block_on(|_| admin::join(args)),
    }
}
