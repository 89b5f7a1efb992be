//! Several real nodes in one process, for tests: each in its own data directory, every
//! listener on loopback port 0, federated by invitations. [`Sandbox::start`] returns once
//! every node holds every other as an admitted member; nothing waits a fixed time.

use std::future::Future;
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
            nodes.push(node(base, name).await?);
        }
        if let Some((founder, others)) = nodes.split_first() {
            founder.federation.found(federation).await.context("founding")?;
            for node in others {
                invite_and_join(founder, node, Some(federation)).await?;
            }
        }
        let sandbox = Self { nodes };
        sandbox.wait_formed().await?;
        Ok(sandbox)
    }

    /// Admits `newcomer` (a [`node`] of its own, perhaps with datasets already) by an
    /// invitation of the member at `sponsor`, and waits until the federation holds it.
    pub async fn admit(&mut self, newcomer: RunningNode, sponsor: usize) -> anyhow::Result<()> {
        let sponsor = self.nodes.get(sponsor).context("no such sponsor")?;
        invite_and_join(sponsor, &newcomer, None).await?;
        self.nodes.push(newcomer);
        self.wait_formed().await
    }

    /// Until every node knows every node as an admitted member, connected.
    pub async fn wait_formed(&self) -> anyhow::Result<()> {
        eventually("the sandbox federation to form", FORMING, || async {
            let mut formed = true;
            for node in &self.nodes {
                let status = node.federation.status().await;
                let admitted = status.members.iter().filter(|m| m.status == MemberStatus::Admitted && m.connected);
                formed &= admitted.count() == self.nodes.len();
            }
            formed
        })
        .await
        .map(drop)
    }

    /// Stops every node cleanly.
    pub async fn stop(self) -> anyhow::Result<()> {
        for node in self.nodes {
            node.stop().await?;
        }
        Ok(())
    }
}

/// A node of its own under `base/<name>`, on loopback port 0, in no federation yet.
pub async fn node(base: &Path, name: &str) -> anyhow::Result<RunningNode> {
    let dir = base.join(name);
    init::init(&dir, name, None)?;
    let config = Config::load(&dir, None, &Overrides::loopback())?;
    start(&dir, config, tokio::runtime::Handle::current()).await
}

async fn invite_and_join(
    sponsor: &RunningNode,
    newcomer: &RunningNode,
    federation: Option<&str>,
) -> anyhow::Result<()> {
    let newcomer_peer = peer(newcomer).await;
    let invitation = sponsor
        .federation
        .invite(federation, None, Duration::from_secs(600))
        .await
        .with_context(|| format!("inviting {newcomer_peer}"))?;
    newcomer.federation.join(&invitation).await.with_context(|| format!("{newcomer_peer} joining"))?;
    Ok(())
}

/// The node's PeerId.
pub async fn peer(node: &RunningNode) -> String {
    node.federation.status().await.me
}

/// Waits until `condition` holds, checking every 20 ms, and fails after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut condition: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    while !condition().await {
        if started.elapsed() >= deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        poll.tick().await;
    }
    Ok(started.elapsed())
}
