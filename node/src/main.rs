//! The `urbanmesh` binary: parse the command line, start tracing, run the command.

mod admin;
mod cli;
mod demo;
mod runtime;

use clap::Parser;
use urbanmesh::{Config, init};

/// Arrow's many large, short-lived buffers fragment glibc's per-thread arenas; mimalloc
/// returns freed memory to the system and keeps a loaded node's footprint near its data.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    // The demo talks to a newcomer on stdout; its nodes' log says only what went wrong.
    runtime::init_tracing(if matches!(cli.command, cli::Command::Demo(_)) { "warn" } else { "info" });
    match cli.command {
        cli::Command::Init(args) => {
            init::init(&args.data_dir, &args.name, args.ars.as_deref())?;
            println!("initialised node `{}` in {}", args.name.trim(), args.data_dir.display());
            println!("admin token: {}", args.data_dir.join(init::TOKEN_FILE).display());
            Ok(())
        }
        cli::Command::Run(args) => {
            let config = Config::load(&args.data_dir, args.config.as_deref(), &args.overrides())?;
            if args.config.is_some() && init::identity(&args.data_dir)? {
                tracing::info!(node = %config.name(), dir = %args.data_dir.display(), "new node: key and admin token created");
            }
            runtime::block_on(|query| async move { urbanmesh::run(&args.data_dir, config, query).await })
        }
        cli::Command::Check(args) => {
            let config = Config::read(&args.config, urbanmesh::environment::settings())?;
            println!("{}: ok (node `{}`)", args.config.display(), config.name());
            Ok(())
        }
        cli::Command::Health(args) => runtime::block_on(|_| admin::health(args)),
        cli::Command::Demo(args) => runtime::block_on(|query| demo::run(args, query)),
        cli::Command::Invite(args) => runtime::block_on(|_| admin::invite(args)),
        cli::Command::Join(args) => runtime::block_on(|_| admin::join(args)),
    }
}
