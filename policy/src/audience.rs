//! Audience tokens: who may see a dataset, as terms the search index can filter on, so
//! that hit counts and facets never include what the caller may not see.

use crate::{Assignee, Policy, Subject, Visibility};

pub const PUBLIC: &str = "public";
pub const FEDERATION: &str = "federation";

pub fn peer(peer: &str) -> String {
    format!("peer:{peer}")
}

pub fn role(role: &str) -> String {
    format!("role:{role}")
}

impl Policy {
    /// The tokens of everyone who may see the dataset besides this municipality's staff.
    pub fn audience(&self) -> Vec<String> {
        let mut tokens = match &self.visibility {
            Visibility::Public => vec![PUBLIC.to_owned()],
            Visibility::Federation => vec![FEDERATION.to_owned()],
            Visibility::Peers(peers) => peers.iter().map(|p| peer(p)).collect(),
            Visibility::Internal => Vec::new(),
        };
        for rule in &self.rules {
            match &rule.assignee {
                Assignee::Anyone => tokens.push(PUBLIC.to_owned()),
                Assignee::Federation => tokens.push(FEDERATION.to_owned()),
                Assignee::Peers(peers) => tokens.extend(peers.iter().map(|p| peer(p))),
                Assignee::Roles(roles) => tokens.extend(roles.iter().map(|r| role(r))),
            }
        }
        tokens.sort();
        tokens.dedup();
        tokens
    }

    /// Whether `subject` may know that the dataset exists.
    pub fn visible_to(&self, subject: &Subject) -> bool {
        match subject.audience() {
            None => true,
            Some(tokens) => self.audience().iter().any(|t| tokens.contains(t)),
        }
    }
}

/// The audience of another member's dataset on this node: public entries for everyone,
/// the rest for this municipality's staff only (the member shared it with the node).
pub fn of_replica(policy: &Policy) -> Vec<String> {
    if policy.visibility == Visibility::Public { vec![PUBLIC.to_owned()] } else { Vec::new() }
}
