//! What the node learns about a dataset from its rows, and how much of it each reader
//! may know: no more than a plain read under the reader's grant would show.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use urbanmesh_policy::{Access, Buckets, Decision, Grant, Subject};

use crate::Dataset;

/// Row count, time extent and last change of a dataset's rows. As the store knows them
/// in the catalogue; as one reader may know them once [`Derived::known_to`] has applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Derived {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Earliest and latest value of the time column (under aggregation: the start of the
    /// first bucket and the end of the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<DateTime<Utc>>,
    /// When rows were last added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_modified: Option<DateTime<Utc>>,
}

impl Derived {
    /// What `subject` may know of the rows, judged by a plain read (no purpose):
    /// - read as stored: everything;
    /// - columns released or masked, rows as stored: the count, and the extent where the
    ///   time column is released;
    /// - aggregated: the extent and the last change to the grant's buckets, no count;
    /// - a row filter, a row cap or no read at all: nothing (which rows are released
    ///   would have to be read to be counted).
    pub fn known_to(&self, dataset: &Dataset, subject: &Subject) -> Self {
        self.known(Knowledge::of(dataset, subject))
    }

    /// What every one of `subjects` may know: the least that each of them may.
    pub fn known_to_all(&self, dataset: &Dataset, subjects: &[Subject]) -> Self {
        let least = subjects.iter().map(|subject| Knowledge::of(dataset, subject)).reduce(Knowledge::meet);
        self.known(least.unwrap_or(Knowledge::NOTHING))
    }

    fn known(&self, knowledge: Knowledge) -> Self {
        Self {
            rows: self.rows.filter(|_| knowledge.rows),
            first: self.first.and_then(|t| knowledge.extent.start(t)),
            last: self.last.and_then(|t| knowledge.extent.end(t)),
            data_modified: self.data_modified.and_then(|t| knowledge.changes.start(t)),
        }
    }
}

/// How precisely a reader may know a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    Hidden,
    Buckets(Buckets),
    Exact,
}

impl Precision {
    fn start(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Hidden => None,
            Self::Buckets(buckets) => Some(buckets.start(t)),
            Self::Exact => Some(t),
        }
    }

    fn end(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Buckets(buckets) => Some(buckets.end(t)),
            other => other.start(t),
        }
    }

    /// The finer of the two that both readers can tell.
    fn meet(self, other: Self) -> Self {
        match (self, other) {
            (Self::Hidden, _) | (_, Self::Hidden) => Self::Hidden,
            (Self::Exact, other) | (other, Self::Exact) => other,
            (Self::Buckets(a), Self::Buckets(b)) => a.coarsest_common(b).map_or(Self::Hidden, Self::Buckets),
        }
    }
}

/// What a reader may know of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Knowledge {
    rows: bool,
    extent: Precision,
    changes: Precision,
}

impl Knowledge {
    const NOTHING: Self = Self { rows: false, extent: Precision::Hidden, changes: Precision::Hidden };
    const EVERYTHING: Self = Self { rows: true, extent: Precision::Exact, changes: Precision::Exact };

    fn of(dataset: &Dataset, subject: &Subject) -> Self {
        match dataset.policy.decide(subject, &Access { purpose: None, now: Utc::now() }) {
            Decision::Permit(grant) => Self::under(&grant, dataset.spec.time_column.as_deref()),
            Decision::Deny(_) => Self::NOTHING,
        }
    }

    fn under(grant: &Grant, time_column: Option<&str>) -> Self {
        if grant.is_unrestricted() {
            return Self::EVERYTHING;
        }
        if grant.row_filter.is_some() || grant.max_rows.is_some() {
            return Self::NOTHING;
        }
        let time_released = time_column.is_some_and(|time| {
            !grant.masked.iter().any(|m| m == time)
                && grant.columns.as_ref().is_none_or(|c| c.iter().any(|c| c == time))
        });
        match &grant.aggregate {
            None => Self {
                rows: true,
                extent: if time_released { Precision::Exact } else { Precision::Hidden },
                changes: Precision::Exact,
            },
            Some(aggregate) => {
                let buckets = aggregate.buckets().map_or(Precision::Hidden, Precision::Buckets);
                Self { rows: false, extent: if time_released { buckets } else { Precision::Hidden }, changes: buckets }
            }
        }
    }

    fn meet(self, other: Self) -> Self {
        Self {
            rows: self.rows && other.rows,
            extent: self.extent.meet(other.extent),
            changes: self.changes.meet(other.changes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use urbanmesh_policy::audience;

    fn dataset(policy: serde_json::Value) -> Dataset {
        serde_json::from_value(json!({
            "id": "pegel", "tenant": "Herford", "created": "2026-03-01T00:00:00Z", "modified": "2026-03-01T00:00:00Z",
            "title": "Pegel", "description": "Pegelstände",
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                                  {"name": "value", "type": "float64"}]},
            "time_column": "time", "series_key": "station", "policy": policy,
        }))
        .expect("dataset")
    }

    fn stored() -> Derived {
        Derived {
            rows: Some(1234),
            first: Some(at("2026-03-01T10:17:00Z")),
            last: Some(at("2026-03-04T23:59:59Z")),
            data_modified: Some(at("2026-03-05T08:42:13Z")),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    fn member(peer: &str) -> Subject {
        Subject::Member { peer: peer.into() }
    }

    #[test]
    fn readers_of_the_rows_as_stored_know_everything() {
        let open = dataset(json!({"visibility": "public"}));
        assert_eq!(stored().known_to(&open, &Subject::Anonymous), stored());
        assert_eq!(stored().known_to(&open, &Subject::Admin), stored());
    }

    #[test]
    fn aggregates_tell_the_extent_and_last_change_to_the_bucket_and_no_count() {
        let hourly = dataset(json!({"visibility": "public", "rules": [
            {"assignee": "anyone", "aggregate": {"bucket": "1h", "min_group": 5}}]}));
        let known = stored().known_to(&hourly, &Subject::Anonymous);
        assert_eq!(
            known,
            Derived {
                rows: None,
                first: Some(at("2026-03-01T10:00:00Z")),
                last: Some(at("2026-03-05T00:00:00Z")),
                data_modified: Some(at("2026-03-05T08:00:00Z")),
            }
        );
    }

    #[test]
    fn row_filters_and_row_caps_tell_nothing_and_masked_time_hides_the_extent() {
        for rule in [
            json!({"assignee": "anyone", "row_filter": "station = 'a'"}),
            json!({"assignee": "anyone", "max_rows": 10}),
        ] {
            let restricted = dataset(json!({"visibility": "public", "rules": [rule]}));
            assert_eq!(stored().known_to(&restricted, &Subject::Anonymous), Derived::default());
        }
        let masked = dataset(json!({"visibility": "public", "rules": [{"assignee": "anyone", "masked": ["time"]}]}));
        let known = stored().known_to(&masked, &Subject::Anonymous);
        assert_eq!((known.rows, known.first, known.last), (Some(1234), None, None));
        let needs_purpose =
            dataset(json!({"visibility": "public", "rules": [{"assignee": "anyone", "purposes": ["research"]}]}));
        assert_eq!(stored().known_to(&needs_purpose, &Subject::Anonymous), Derived::default());
    }

    #[test]
    fn what_all_may_know_is_the_least_any_of_them_may() {
        let herford = dataset(json!({"visibility": "federation", "rules": [
            {"assignee": {"peers": ["partner"]}},
            {"assignee": "federation", "aggregate": {"bucket": "15m", "min_group": 5}},
            {"assignee": {"roles": ["research"]}, "aggregate": {"bucket": "1h", "min_group": 5}}]}));
        assert_eq!(stored().known_to(&herford, &member("partner")), stored());
        let members = stored().known_to_all(&herford, &audience::member_representatives(&herford.policy));
        assert_eq!(members.first, Some(at("2026-03-01T10:15:00Z")), "the unnamed member's 15-minute buckets");
        let everyone = stored().known_to_all(&herford, &audience::representatives(&herford.policy));
        assert_eq!(everyone.first, Some(at("2026-03-01T10:00:00Z")), "the researchers' hours");
        assert_eq!(everyone.rows, None);
    }

    #[test]
    fn buckets_that_do_not_nest_meet_at_their_common_multiple() {
        let odd = dataset(json!({"visibility": "federation", "rules": [
            {"assignee": {"peers": ["a"]}, "aggregate": {"bucket": "2h", "min_group": 5}},
            {"assignee": "federation", "aggregate": {"bucket": "3h", "min_group": 5}}]}));
        let known = stored().known_to_all(&odd, &[member("a"), member("b")]);
        assert_eq!(known.first, Some(at("2026-03-01T06:00:00Z")), "6-hour buckets both can tell");
    }
}
