//! Several real nodes in one process, for tests: each in its own data directory, every
//! listener on loopback port 0, federated by invitations. [`Sandbox::start`] returns once
//! every node holds every other as an admitted member; nothing waits a fixed time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use urbanmesh_protocol::federation::MemberStatus;

use crate::{Config, Overrides, RunningNode, init, start};

/// How long a sandbox may take to form its federation.
const FORMING: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

pub struct Sandbox {
    pub nodes: Vec<RunningNode>,
}

impl Sandbox {
    /// One node per name under `base`, the first founding the federation `federation`
    /// and inviting the others.
    pub async fn start(base: &Path, federation: &str, names: &[&str]) -> anyhow::Result<Self> {
        let mut nodes = Vec::with_capacity(names.len());
        for name in names {
            let dir = base.join(name);
            init::init(&dir, name, None)?;
            let config = Config::load(&dir, &Overrides::loopback())?;
            nodes.push(start(&dir, config, tokio::runtime::Handle::current()).await?);
        }
        if let Some((founder, others)) = nodes.split_first() {
            for (node, name) in others.iter().zip(&names[1..]) {
                let invitation = founder
                    .federation
                    .invite(Some(federation), Some((*name).to_owned()), Duration::from_secs(600))
                    .await
                    .with_context(|| format!("inviting {name}"))?;
                node.federation.join(&invitation).await.with_context(|| format!("{name} joining"))?;
            }
        }
        let sandbox = Self { nodes };
        sandbox.wait_formed().await?;
        Ok(sandbox)
    }

    /// Until every node knows every node as an admitted member, connected.
    async fn wait_formed(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + FORMING;
        let mut poll = tokio::time::interval(POLL);
        loop {
            let mut formed = true;
            for node in &self.nodes {
                let status = node.federation.status().await;
                let admitted = status.members.iter().filter(|m| m.status == MemberStatus::Admitted && m.connected);
                formed &= admitted.count() == self.nodes.len();
            }
            if formed {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the sandbox federation did not form within {FORMING:?}");
            }
            poll.tick().await;
        }
    }

    /// Stops every node cleanly.
    pub async fn stop(self) -> anyhow::Result<()> {
        for node in self.nodes {
            node.stop().await?;
        }
        Ok(())
    }
}
