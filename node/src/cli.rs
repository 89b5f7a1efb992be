use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A sovereign Urban Mesh node: stores a municipality's datasets and serves them
/// over Arrow Flight and HTTP.
#[derive(Parser)]
#[command(name = "urbanmesh", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create a new node: key, configuration and admin token.
    Init(InitArgs),
    /// Run a node until SIGTERM or Ctrl-C.
    Run(RunArgs),
    /// Start the demonstration: a federation of five towns of Ostwestfalen-Lippe on this
    /// machine, with a month of river levels, weather and pedestrian counts, and a regional
    /// view of the river levels across the towns.
    Demo(DemoArgs),
    /// Print a single-use invitation to this node's federation (founding one if needed).
    /// The node must be running.
    Invite(InviteArgs),
    /// Join a federation with an invitation: at once if the node runs, else at its next start.
    Join(JoinArgs),
    /// Check a configuration file (with the URBANMESH_… settings of the environment over
    /// it) and name what is wrong; exits 1 if anything is.
    Check(CheckArgs),
    /// Ask a running node whether it is ready (`/readyz`); exits 0 if it is, 1 if not. For
    /// container health checks: needs no curl.
    Health(HealthArgs),
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The configuration file to check.
    #[arg(long, env = "URBANMESH_CONFIG")]
    pub(crate) config: PathBuf,
}

#[derive(Args)]
pub(crate) struct HealthArgs {
    /// The node's HTTP address; from `DIR/addresses.json` with --data-dir, else
    /// http://127.0.0.1:8470.
    #[arg(long)]
    pub(crate) url: Option<String>,
    #[arg(long, env = "URBANMESH_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct InviteArgs {
    #[arg(long, env = "URBANMESH_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// The running node's HTTP address, where `DIR/addresses.json` names another (a
    /// node in another container): e.g. http://guetersloh:8470.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// How long the invitation stays valid: 90s, 30m, 24h, 7d.
    #[arg(long, default_value = "24h")]
    pub(crate) ttl: String,
    /// Whom the invitation is for, e.g. "Bielefeld".
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Name of the federation, when this invitation founds it.
    #[arg(long)]
    pub(crate) federation: Option<String>,
}

#[derive(Args)]
pub(crate) struct JoinArgs {
    #[arg(long, env = "URBANMESH_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// The running node's HTTP address, as for `invite`.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// The invitation line printed by `urbanmesh invite`.
    pub(crate) invitation: String,
}

#[derive(Args)]
pub(crate) struct InitArgs {
    #[arg(long, env = "URBANMESH_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// The municipality this node belongs to, e.g. "Gütersloh".
    #[arg(long)]
    pub(crate) name: String,
    /// Amtlicher Regionalschlüssel (12 digits) of the municipality.
    #[arg(long)]
    pub(crate) ars: Option<String>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[arg(long, env = "URBANMESH_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// The configuration file; `DIR/config.toml` when not given. A data directory without
    /// a node key is initialised for the `[node]` this file names.
    #[arg(long, env = "URBANMESH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// HTTP listen address (REST API, metrics); port 0 picks a free port.
    #[arg(long)]
    pub(crate) http: Option<SocketAddr>,
    /// Arrow Flight listen address; port 0 picks a free port.
    #[arg(long)]
    pub(crate) flight: Option<SocketAddr>,
    /// Peer-to-peer listen multiaddress.
    #[arg(long)]
    pub(crate) p2p: Option<String>,
}

impl RunArgs {
    /// What the command line sets over the node's configuration.
    pub(crate) fn overrides(&self) -> urbanmesh::Overrides {
        urbanmesh::Overrides { http: self.http, flight: self.flight, peer_flight: None, p2p: self.p2p.clone() }
    }
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Where the demo keeps its nodes' data (`BASE/<town>/`); a second run reuses it.
    #[arg(long, default_value = "urbanmesh-demo")]
    pub(crate) base_dir: PathBuf,
    /// How many of the five towns to start (Gütersloh, Bielefeld, Herford, Detmold, Bad Salzuflen).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) nodes: u8,
}
