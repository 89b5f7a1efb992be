//! The one decision point: may this subject read this dataset, and in what shape.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Aggregate, Assignee, Policy, Rule, Subject};

/// What a read states beyond the rows it wants.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub purpose: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit(Grant),
    Deny(Denial),
}

/// Why a read was refused. A `hidden` refusal is answered exactly like a dataset that does
/// not exist; otherwise the caller may see the dataset and is told the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: String,
    pub hidden: bool,
}

/// The shape in which rows are released: applied to the query plan by the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Index of the rule that applied; `None` for the owner's staff.
    pub rule: Option<usize>,
    pub columns: Option<Vec<String>>,
    pub masked: Vec<String>,
    pub row_filter: Option<String>,
    pub aggregate: Option<Aggregate>,
    pub max_rows: Option<u64>,
    pub attribution: Option<String>,
    pub licence: Option<String>,
}

impl Grant {
    /// Everything, as the owner sees it.
    pub fn owner() -> Self {
        Self::default()
    }

    /// Whether rows go out as stored.
    pub fn is_unrestricted(&self) -> bool {
        self.columns.is_none()
            && self.masked.is_empty()
            && self.row_filter.is_none()
            && self.aggregate.is_none()
            && self.max_rows.is_none()
    }

    /// How the audit log names what applied.
    pub fn describe(&self) -> String {
        match self.rule {
            None => "owner".into(),
            Some(i) => format!("rule {i}"),
        }
    }

    fn of(rule: &Rule, index: Option<usize>, policy: &Policy) -> Self {
        Self {
            rule: index,
            columns: rule.columns.clone(),
            masked: rule.masked.clone(),
            row_filter: rule.row_filter.clone(),
            aggregate: rule.aggregate.clone(),
            max_rows: rule.max_rows,
            attribution: policy.attribution.clone(),
            licence: policy.licence.clone(),
        }
    }
}

impl Policy {
    /// Decides a read. Staff of the owning municipality read everything; everyone else
    /// reads under the first rule whose assignee, validity window and purpose fit.
    pub fn decide(&self, subject: &Subject, access: &Access<'_>) -> Decision {
        if subject.is_staff() {
            return Decision::Permit(Grant {
                attribution: self.attribution.clone(),
                licence: self.licence.clone(),
                ..Grant::owner()
            });
        }
        if !self.visible_to(subject) {
            return deny(format!("not visible to {}", subject.label()), true);
        }
        let rules = self.effective_rules();
        let implicit = self.rules.is_empty();
        let mut refusals = Vec::new();
        let mut purposes: Vec<&str> = Vec::new();
        for (index, rule) in rules.iter().enumerate().filter(|(_, rule)| rule.assignee.matches(subject)) {
            if let Some(from) = rule.valid_from.filter(|from| access.now < *from) {
                refusals.push(format!("rule {index} is valid from {}", from.to_rfc3339()));
                continue;
            }
            if let Some(until) = rule.valid_until.filter(|until| access.now >= *until) {
                refusals.push(format!("rule {index} ended at {}", until.to_rfc3339()));
                continue;
            }
            if !rule.purposes.is_empty() && !access.purpose.is_some_and(|p| rule.purposes.iter().any(|a| a == p)) {
                purposes.extend(rule.purposes.iter().map(String::as_str));
                continue;
            }
            let index = (!implicit).then_some(index);
            return Decision::Permit(Grant::of(rule, index, self));
        }
        if !purposes.is_empty() {
            purposes.sort_unstable();
            purposes.dedup();
            let stated =
                access.purpose.map_or("no purpose was stated".to_owned(), |p| format!("`{p}` is not one of them"));
            refusals.insert(0, format!("reading requires a purpose, one of: {} ({stated})", purposes.join(", ")));
        }
        if refusals.is_empty() {
            refusals.push(format!("no rule grants {} read access", subject.label()));
        }
        deny(refusals.join("; "), false)
    }
}

impl Assignee {
    pub fn matches(&self, subject: &Subject) -> bool {
        match (self, subject) {
            (Self::Anyone, _) => true,
            (Self::Federation, Subject::Member { .. }) => true,
            (Self::Peers(peers), Subject::Member { peer }) => peers.contains(peer),
            (Self::Roles(roles), Subject::Person(person)) => roles.iter().any(|role| person.has_role(role)),
            _ => false,
        }
    }
}

fn deny(reason: String, hidden: bool) -> Decision {
    Decision::Deny(Denial { reason, hidden })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Person;

    const PARTNER: &str = "12D3KooWPartnerPartnerPartnerPartnerPartnerPartner";
    const OTHER: &str = "12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOth";

    fn herford() -> Policy {
        serde_json::from_value(serde_json::json!({
            "visibility": "federation",
            "rules": [
                {"assignee": {"peers": [PARTNER]}, "purposes": ["urban planning"],
                 "valid_until": "2026-12-31T23:00:00Z"},
                {"assignee": "federation", "masked": ["serial"],
                 "aggregate": {"bucket": "1h", "min_group": 10, "weight": "count"}}
            ],
            "attribution": "Stadt Herford"
        }))
        .expect("policy")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    fn person(roles: &[&str], home: bool) -> Subject {
        Subject::Person(Person {
            id: "p".into(),
            name: None,
            home,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        })
    }

    fn decide(policy: &Policy, subject: &Subject, purpose: Option<&str>) -> Decision {
        policy.decide(subject, &Access { purpose, now: at("2026-11-22T12:00:00Z") })
    }

    #[test]
    fn a_named_partner_with_the_purpose_reads_raw_rows_until_the_grant_ends() {
        let partner = Subject::Member { peer: PARTNER.into() };
        let Decision::Permit(grant) = decide(&herford(), &partner, Some("urban planning")) else { panic!("denied") };
        assert_eq!(grant.rule, Some(0));
        assert!(grant.is_unrestricted());
        assert_eq!(grant.attribution.as_deref(), Some("Stadt Herford"));
        let later =
            herford().decide(&partner, &Access { purpose: Some("urban planning"), now: at("2027-01-01T00:00:00Z") });
        let Decision::Permit(grant) = later else { panic!("denied") };
        assert_eq!(grant.rule, Some(1), "after the end only the aggregate rule applies");
    }

    #[test]
    fn members_without_a_purpose_get_masked_aggregates() {
        for peer in [PARTNER, OTHER] {
            let Decision::Permit(grant) = decide(&herford(), &Subject::Member { peer: peer.into() }, None) else {
                panic!("denied")
            };
            assert_eq!(grant.rule, Some(1));
            assert_eq!(grant.masked, ["serial"]);
            assert_eq!(grant.aggregate.as_ref().map(|a| a.min_group), Some(10));
        }
    }

    #[test]
    fn outsiders_do_not_see_it_and_staff_read_everything() {
        for subject in [Subject::Anonymous, person(&["admin"], false), person(&[], true)] {
            let Decision::Deny(denial) = decide(&herford(), &subject, None) else { panic!("permitted") };
            assert!(denial.hidden, "{subject:?}");
        }
        for subject in [Subject::Admin, person(&["viewer"], true)] {
            let Decision::Permit(grant) = decide(&herford(), &subject, None) else { panic!("denied") };
            assert!(grant.is_unrestricted());
            assert_eq!(grant.rule, None);
        }
    }

    #[test]
    fn a_missing_purpose_is_refused_with_the_allowed_ones() {
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "visibility": "public",
            "rules": [{"assignee": "anyone", "purposes": ["research", "urban planning"]}]
        }))
        .expect("policy");
        let Decision::Deny(denial) = decide(&policy, &Subject::Anonymous, None) else { panic!("permitted") };
        assert!(!denial.hidden);
        assert!(denial.reason.contains("research, urban planning"), "{}", denial.reason);
        let Decision::Deny(denial) = decide(&policy, &Subject::Anonymous, Some("fun")) else { panic!("permitted") };
        assert!(denial.reason.contains("`fun` is not one of them"), "{}", denial.reason);
        assert!(matches!(decide(&policy, &Subject::Anonymous, Some("research")), Decision::Permit(_)));
    }

    #[test]
    fn one_line_policies_are_complete_and_new_datasets_stay_inside() {
        let public: Policy = serde_json::from_str(r#"{"visibility": "public"}"#).expect("policy");
        assert!(matches!(decide(&public, &Subject::Anonymous, None), Decision::Permit(g) if g.is_unrestricted()));
        let federation: Policy = serde_json::from_str(r#"{"visibility": "federation"}"#).expect("policy");
        assert!(matches!(decide(&federation, &Subject::Member { peer: OTHER.into() }, None), Decision::Permit(_)));
        assert!(matches!(decide(&federation, &Subject::Anonymous, None), Decision::Deny(d) if d.hidden));
        let internal = Policy::default();
        assert!(!internal.is_shared());
        assert!(
            matches!(decide(&internal, &Subject::Member { peer: OTHER.into() }, None), Decision::Deny(d) if d.hidden)
        );
        assert!(matches!(decide(&internal, &person(&["editor"], true), None), Decision::Permit(_)));
    }

    #[test]
    fn roles_grant_only_at_home_and_unknown_fields_are_refused() {
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "visibility": "internal",
            "rules": [{"assignee": {"roles": ["researcher"]}, "max_rows": 100}]
        }))
        .expect("policy");
        let Decision::Permit(grant) = decide(&policy, &person(&["researcher"], true), None) else { panic!("denied") };
        assert_eq!(grant.max_rows, Some(100));
        assert!(matches!(decide(&policy, &person(&["researcher"], false), None), Decision::Deny(d) if d.hidden));
        let typo = serde_json::from_str::<Policy>(r#"{"visibility": "public", "rulez": []}"#);
        assert!(typo.is_err(), "a misspelt field must not be dropped silently");
    }
}
