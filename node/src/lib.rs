//! An Urban Mesh node as a library: [`start`] opens a data directory made by
//! [`init::init`] and runs its storage, network, Flight and HTTP servers in this process,
//! so that tests and tools can run several nodes side by side. The `urbanmesh` binary is
//! a thin command line over it.

mod ballast;
pub mod config;
pub mod environment;
pub mod init;
mod node;
pub mod sandbox;

pub use config::{Config, Overrides};
pub use node::{Addresses, RunningNode, run, shutdown_signal, start};
