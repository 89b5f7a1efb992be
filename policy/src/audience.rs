//! Audience tokens: who may see a dataset, as terms the search index can filter on, so
//! that hit counts and facets never include what the caller may not see.

use crate::{Assignee, Person, Policy, Subject, Visibility};

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

/// One subject for each audience token of the policy, holding that token and no other.
/// Every subject that may see the dataset reads it under the grant of one of them (the
/// first rule it matches is the first one of its tokens matches), so what all of them may
/// know, everyone who may see the dataset may know.
pub fn representatives(policy: &Policy) -> Vec<Subject> {
    policy.audience().iter().filter_map(|token| representative(token)).collect()
}

/// [`representatives`] among the federation's members: what every member that receives
/// the dataset's entry may know is what all of these may know.
pub fn member_representatives(policy: &Policy) -> Vec<Subject> {
    let mut members = Vec::new();
    for token in policy.audience() {
        let member = match token.as_str() {
            PUBLIC | FEDERATION => unnamed_member(),
            token => match token.strip_prefix("peer:") {
                Some(peer) => Subject::Member { peer: peer.to_owned() },
                None => continue,
            },
        };
        if !members.contains(&member) {
            members.push(member);
        }
    }
    members
}

fn representative(token: &str) -> Option<Subject> {
    match token {
        PUBLIC => Some(Subject::Anonymous),
        FEDERATION => Some(unnamed_member()),
        token => {
            if let Some(peer) = token.strip_prefix("peer:") {
                return Some(Subject::Member { peer: peer.to_owned() });
            }
            let role = token.strip_prefix("role:")?;
            Some(Subject::Person(Person { id: String::new(), name: None, home: true, roles: vec![role.to_owned()] }))
        }
    }
}

/// A member no rule names: what the federation as such may know.
fn unnamed_member() -> Subject {
    Subject::Member { peer: String::new() }
}
