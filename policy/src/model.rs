//! The usage policy of one dataset, as its owner writes it (`PUT /api/v1/datasets/{id}/policy`).
//!
//! Typed and closed: every field is known, unknown fields are refused, so a rule can never be
//! dropped silently on the way in (the risk of expanding ODRL JSON-LD).

use crate::Span;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who may find the dataset in listings, search and the DCAT export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone, including anonymous callers and harvesters.
    Public,
    /// The member nodes of this node's federation (and, as always, this municipality's staff).
    Federation,
    /// The named member nodes (PeerIds).
    Peers(Vec<String>),
    /// The people of this municipality only: nothing leaves the node.
    #[default]
    Internal,
}

/// Whom a rule grants something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    Anyone,
    /// Every member node of the federation.
    Federation,
    /// The named member nodes (PeerIds).
    Peers(Vec<String>),
    /// People holding one of these roles at this municipality's OpenID provider.
    Roles(Vec<String>),
}

/// What a rule permits; reading is the only action so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Read,
}

/// Rows released only as time buckets, each over at least `min_group` rows (or, with
/// `weight`, over a sum of at least `min_group` of that column, e.g. counted people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Bucket width: `15m`, `1h`, `1d`.
    pub bucket: Span,
    pub min_group: u64,
    /// Grouping columns besides the bucket; the dataset's series key when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
}

/// One permission: an assignee may read, under constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub assignee: Assignee,
    #[serde(default)]
    pub action: Action,
    /// The request must state one of these purposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Only these columns are released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// These columns are released as nulls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// Only rows matching this SQL predicate are released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
}

/// A dataset's usage policy. `{"visibility": "public"}` alone is complete: everyone it is
/// visible to may read. With rules, only the rules grant reads; the first rule whose
/// assignee, validity and purpose fit the request applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub visibility: Visibility,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Duty: the attribution text readers must show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// Duty: the licence (a dcat-ap.de licence code) the data is used under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
}

impl Policy {
    /// Whether anything of the dataset leaves the node (it is announced to the federation).
    pub fn is_shared(&self) -> bool {
        self.visibility != Visibility::Internal
            || self.rules.iter().any(|rule| matches!(rule.assignee, Assignee::Federation | Assignee::Peers(_)))
    }

    /// Whether a member that received the shared entry should keep it: entries visible to
    /// named members only are dropped by the others.
    pub fn is_for_member(&self, peer: &str) -> bool {
        match &self.visibility {
            Visibility::Peers(peers) => peers.iter().any(|p| p == peer),
            _ => true,
        }
    }

    /// What other members learn of the policy: who may see it among the members (the
    /// visibility, widened by the members the rules name) and the duties, not the rules.
    pub fn shared(&self) -> Self {
        let named = |visibility: &Visibility| match visibility {
            Visibility::Peers(peers) => peers.clone(),
            _ => Vec::new(),
        };
        let mut peers = named(&self.visibility);
        let mut federation = matches!(self.visibility, Visibility::Federation);
        for rule in &self.rules {
            match &rule.assignee {
                Assignee::Federation | Assignee::Anyone => federation = true,
                Assignee::Peers(named) => peers.extend(named.iter().cloned()),
                Assignee::Roles(_) => {}
            }
        }
        peers.sort();
        peers.dedup();
        let visibility = match &self.visibility {
            Visibility::Public => Visibility::Public,
            _ if federation => Visibility::Federation,
            _ if !peers.is_empty() => Visibility::Peers(peers),
            other => other.clone(),
        };
        Self { visibility, rules: Vec::new(), attribution: self.attribution.clone(), licence: self.licence.clone() }
    }

    /// The rules in force: the written ones, or the one the visibility implies.
    pub(crate) fn effective_rules(&self) -> std::borrow::Cow<'_, [Rule]> {
        if !self.rules.is_empty() {
            return std::borrow::Cow::Borrowed(&self.rules);
        }
        let assignee = match &self.visibility {
            Visibility::Public => Assignee::Anyone,
            Visibility::Federation => Assignee::Federation,
            Visibility::Peers(peers) => Assignee::Peers(peers.clone()),
            Visibility::Internal => return std::borrow::Cow::Owned(Vec::new()),
        };
        std::borrow::Cow::Owned(vec![Rule::open(assignee)])
    }
}

impl Rule {
    /// Read without constraints.
    pub fn open(assignee: Assignee) -> Self {
        Self {
            assignee,
            action: Action::Read,
            purposes: Vec::new(),
            valid_from: None,
            valid_until: None,
            columns: None,
            masked: Vec::new(),
            row_filter: None,
            aggregate: None,
            max_rows: None,
        }
    }
}

impl Aggregate {
    /// The bucket width in seconds, if `bucket` is a valid width.
    pub fn bucket_seconds(&self) -> Option<i64> {
        self.bucket.whole_seconds()
    }

    /// The grant's time buckets, if `bucket` is a valid width.
    pub fn buckets(&self) -> Option<Buckets> {
        self.bucket_seconds().map(|seconds| Buckets { seconds })
    }
}

/// Time buckets of one width, aligned to the Unix epoch as SQL `date_bin` aligns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub seconds: i64,
}

impl Buckets {
    /// The start of the bucket holding `t`.
    pub fn start(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let s = t.timestamp();
        DateTime::from_timestamp(s - s.rem_euclid(self.seconds), 0).unwrap_or(t)
    }

    /// The end of the bucket holding `t` (the next one's start).
    pub fn end(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.start(t).checked_add_signed(chrono::Duration::seconds(self.seconds)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// `t` itself where a bucket starts there, else the end of its bucket.
    pub fn ceil(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self.start(t) == t { t } else { self.end(t) }
    }

    /// The finest buckets that both `self` and `other` can tell (their least common
    /// multiple); `None` when that is wider than any bucket a policy may name.
    pub fn coarsest_common(self, other: Self) -> Option<Self> {
        let gcd = |mut a: i64, mut b: i64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let seconds = (self.seconds / gcd(self.seconds, other.seconds)).checked_mul(other.seconds)?;
        (u64::try_from(seconds).ok()? <= crate::MAX_DURATION.as_secs()).then_some(Self { seconds })
    }
}
