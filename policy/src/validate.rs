//! Checks a policy against the dataset it is for, before it is stored. Errors name the field.

use crate::{Assignee, Policy, PolicyError, Rule, Visibility};

/// What a policy may refer to in its dataset.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    pub columns: Vec<&'a str>,
    pub time_column: Option<&'a str>,
    pub series_key: Option<&'a str>,
}

/// Longest attribution or row filter accepted.
const MAX_TEXT: usize = 4096;
const MAX_RULES: usize = 64;

impl Policy {
    /// Checks the policy against the dataset's shape and the node's list of purposes, and
    /// fills in defaults (aggregation groups by the series key). Row filters are planned by
    /// the store separately.
    pub fn validate(mut self, shape: &Shape<'_>, purposes: &[String]) -> Result<Self, PolicyError> {
        if let Visibility::Peers(peers) = &self.visibility {
            check_peers("visibility.peers", peers)?;
        }
        if self.rules.len() > MAX_RULES {
            return Err(PolicyError::invalid("rules", format!("at most {MAX_RULES} rules")));
        }
        for (i, rule) in self.rules.iter_mut().enumerate() {
            validate_rule(&format!("rules[{i}]"), rule, shape, purposes)?;
        }
        if let Some(text) = &self.attribution {
            check_text("attribution", text)?;
        }
        if let Some(licence) = &self.licence {
            check_text("licence", licence)?;
        }
        Ok(self)
    }
}

fn validate_rule(path: &str, rule: &mut Rule, shape: &Shape<'_>, purposes: &[String]) -> Result<(), PolicyError> {
    match &rule.assignee {
        Assignee::Peers(peers) => check_peers(&format!("{path}.assignee.peers"), peers)?,
        Assignee::Roles(roles) => {
            if roles.is_empty() || roles.iter().any(|r| r.trim().is_empty()) {
                return Err(PolicyError::invalid(
                    format!("{path}.assignee.roles"),
                    "name at least one role, none empty",
                ));
            }
        }
        Assignee::Anyone | Assignee::Federation => {}
    }
    for (j, purpose) in rule.purposes.iter().enumerate() {
        if !purposes.iter().any(|p| p == purpose) {
            return Err(PolicyError::invalid(
                format!("{path}.purposes[{j}]"),
                format!("`{purpose}` is not a purpose of this node; configured: {}", purposes.join(", ")),
            ));
        }
    }
    if let (Some(from), Some(until)) = (rule.valid_from, rule.valid_until) {
        if from >= until {
            return Err(PolicyError::invalid(format!("{path}.valid_until"), "must be after valid_from"));
        }
    }
    if let Some(columns) = &rule.columns {
        if columns.is_empty() {
            return Err(PolicyError::invalid(format!("{path}.columns"), "release at least one column"));
        }
        check_columns(&format!("{path}.columns"), columns, shape)?;
    }
    check_columns(&format!("{path}.masked"), &rule.masked, shape)?;
    if let Some(filter) = &rule.row_filter {
        check_text(&format!("{path}.row_filter"), filter)?;
    }
    if rule.max_rows == Some(0) {
        return Err(PolicyError::invalid(format!("{path}.max_rows"), "must be at least 1"));
    }
    if let Some(aggregate) = &mut rule.aggregate {
        let path = format!("{path}.aggregate");
        if aggregate.bucket.whole_seconds().is_none() {
            return Err(PolicyError::invalid(
                format!("{path}.bucket"),
                format!("`{}` is not a width such as 15m, 1h or 1d", aggregate.bucket),
            ));
        }
        if aggregate.min_group == 0 {
            return Err(PolicyError::invalid(format!("{path}.min_group"), "must be at least 1"));
        }
        let Some(time) = shape.time_column else {
            return Err(PolicyError::invalid(path, "the dataset has no time column to bucket by"));
        };
        if rule.columns.as_ref().is_some_and(|c| !c.iter().any(|c| c == time)) || rule.masked.iter().any(|c| c == time)
        {
            return Err(PolicyError::invalid(path, format!("the time column `{time}` must be released")));
        }
        let by = aggregate.by.get_or_insert_with(|| shape.series_key.map(|k| vec![k.to_owned()]).unwrap_or_default());
        by.retain(|c| !rule.masked.contains(c));
        check_columns(&format!("{path}.by"), by, shape)?;
        if let Some(weight) = &aggregate.weight {
            if !shape.columns.contains(&weight.as_str()) {
                return Err(PolicyError::invalid(
                    format!("{path}.weight"),
                    format!("unknown column `{weight}`; the dataset has: {}", shape.columns.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

fn check_columns(path: &str, columns: &[String], shape: &Shape<'_>) -> Result<(), PolicyError> {
    for (i, column) in columns.iter().enumerate() {
        if !shape.columns.contains(&column.as_str()) {
            return Err(PolicyError::invalid(
                format!("{path}[{i}]"),
                format!("unknown column `{column}`; the dataset has: {}", shape.columns.join(", ")),
            ));
        }
    }
    Ok(())
}

fn check_peers(path: &str, peers: &[String]) -> Result<(), PolicyError> {
    if peers.is_empty() {
        return Err(PolicyError::invalid(path, "name at least one member (PeerId)"));
    }
    for (i, peer) in peers.iter().enumerate() {
        let plausible = (40..=64).contains(&peer.len()) && peer.chars().all(|c| c.is_ascii_alphanumeric());
        if !plausible {
            return Err(PolicyError::invalid(format!("{path}[{i}]"), format!("`{peer}` is not a PeerId")));
        }
    }
    Ok(())
}

fn check_text(path: &str, text: &str) -> Result<(), PolicyError> {
    if text.trim().is_empty() || text.len() > MAX_TEXT {
        return Err(PolicyError::invalid(path, format!("must be 1 to {MAX_TEXT} bytes")));
    }
    Ok(())
}
