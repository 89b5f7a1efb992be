use serde::Serialize;

/// Roles of this municipality's staff, from least to most.
pub const STAFF_ROLES: [&str; 3] = ["viewer", "editor", "admin"];

/// The caller of a request, as established by the edge it came through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Anonymous,
    /// Holder of the node's admin token.
    Admin,
    /// A person signed in at an OpenID provider the node trusts.
    Person(Person),
    /// Another member of the federation, authenticated by mutual TLS (its PeerId).
    Member {
        peer: String,
    },
}

/// A person, from a verified token of the node's OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Person {
    /// The provider's `sub`.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the person belongs to this node's municipality (the tenant claim matched).
    pub home: bool,
    /// Roles at this municipality; empty for people of other municipalities.
    pub roles: Vec<String>,
}

impl Subject {
    /// Holds the admin token or is an admin of this municipality: sets policies, reads the audit log.
    pub fn is_admin(&self) -> bool {
        match self {
            Self::Admin => true,
            Self::Person(person) => person.has_role("admin"),
            _ => false,
        }
    }

    /// May publish and change datasets.
    pub fn may_edit(&self) -> bool {
        match self {
            Self::Admin => true,
            Self::Person(person) => person.has_role("admin") || person.has_role("editor"),
            _ => false,
        }
    }

    /// Staff of this municipality: they see and read all of its data, as its owner.
    pub fn is_staff(&self) -> bool {
        match self {
            Self::Admin => true,
            Self::Person(person) => STAFF_ROLES.iter().any(|role| person.has_role(role)),
            _ => false,
        }
    }

    /// How the audit log and the logs name the caller.
    pub fn label(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".into(),
            Self::Admin => "admin-token".into(),
            Self::Person(person) => format!("person:{}", person.id),
            Self::Member { peer } => format!("peer:{peer}"),
        }
    }

    /// The catalogue audience tokens this subject matches (see [`crate::Policy::audience`]);
    /// `None` for staff, who see everything.
    pub fn audience(&self) -> Option<Vec<String>> {
        if self.is_staff() {
            return None;
        }
        let mut tokens = vec![crate::audience::PUBLIC.to_owned()];
        match self {
            Self::Member { peer } => {
                tokens.push(crate::audience::FEDERATION.to_owned());
                tokens.push(crate::audience::peer(peer));
            }
            Self::Person(person) if person.home => {
                tokens.extend(person.roles.iter().map(|role| crate::audience::role(role)));
            }
            Self::Person(_) => {}
            Self::Anonymous | Self::Admin => {}
        }
        Some(tokens)
    }
}

impl Person {
    pub fn has_role(&self, role: &str) -> bool {
        self.home && self.roles.iter().any(|r| r == role)
    }
}
