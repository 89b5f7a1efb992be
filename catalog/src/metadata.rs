//! The parts of a DCAT-AP.de description that are more than one value.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::CatalogError;
use crate::vocab::{GEOCODING_BASE, GEOCODING_LEVELS, PUBLISHER_TYPES};

/// `dct:publisher`: a `foaf:Agent` with its ADMS publisher type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    pub name: String,
    /// ADMS publisher type, e.g. `LocalAuthority`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The publisher's own IRI, if it has one (e.g. its entry in a register).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl Publisher {
    pub(crate) fn validate(&self, field: &str) -> Result<(), CatalogError> {
        non_empty(&format!("{field}.name"), &self.name)?;
        if let Some(kind) = &self.kind {
            PUBLISHER_TYPES.check(&format!("{field}.type"), kind)?;
        }
        if let Some(uri) = &self.uri {
            check_iri(&format!("{field}.uri"), uri)?;
        }
        Ok(())
    }
}

/// `dcat:contactPoint`: a vCard with a name and an email address or web page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPoint {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ContactPoint {
    pub(crate) fn validate(&self, field: &str) -> Result<(), CatalogError> {
        non_empty(&format!("{field}.name"), &self.name)?;
        if self.email.is_none() && self.url.is_none() {
            return Err(CatalogError::invalid(field, "needs an `email` or a `url`"));
        }
        if let Some(email) = &self.email {
            let valid = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
            });
            // The export states it as a `mailto:` IRI, which must be well-formed too.
            if !valid || oxrdf::NamedNode::new(format!("mailto:{email}")).is_err() {
                return Err(CatalogError::invalid(
                    format!("{field}.email"),
                    format!("`{email}` is not an email address"),
                ));
            }
        }
        if let Some(url) = &self.url {
            check_iri(&format!("{field}.url"), url)?;
        }
        Ok(())
    }
}

/// `dct:spatial` and the dcat-ap.de political geocoding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Spatial {
    /// A dcat-ap.de political geocoding IRI or its path, e.g. `municipalityKey/05754008`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geocoding: Option<String>,
    /// The political geocoding level, e.g. `municipality`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// `[west, south, east, north]` in WGS 84 degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
}

impl Spatial {
    pub(crate) fn validate(&self) -> Result<(), CatalogError> {
        if let Some(geocoding) = &self.geocoding {
            let path = geocoding.strip_prefix(GEOCODING_BASE).unwrap_or(geocoding);
            let valid = path.split_once('/').is_some_and(|(kind, key)| {
                !kind.is_empty() && !key.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || c == '/')
            });
            if !valid {
                return Err(CatalogError::invalid(
                    "spatial.geocoding",
                    format!("`{geocoding}` is not a dcat-ap.de political geocoding, e.g. `municipalityKey/05754008`"),
                ));
            }
        }
        if let Some(level) = &self.level {
            GEOCODING_LEVELS.check("spatial.level", level)?;
        }
        if let Some([west, south, east, north]) = self.bbox {
            let lon = |v: f64| (-180.0..=180.0).contains(&v);
            let lat = |v: f64| (-90.0..=90.0).contains(&v);
            if !(lon(west) && lon(east) && lat(south) && lat(north) && west <= east && south <= north) {
                return Err(CatalogError::invalid(
                    "spatial.bbox",
                    "must be [west, south, east, north] in degrees with west ≤ east and south ≤ north",
                ));
            }
        }
        Ok(())
    }

    /// The full geocoding IRI.
    pub fn geocoding_iri(&self) -> Option<String> {
        self.geocoding.as_ref().map(|g| match g.starts_with(GEOCODING_BASE) {
            true => g.clone(),
            false => format!("{GEOCODING_BASE}{g}"),
        })
    }
}

/// `dct:temporal`: the period the data covers, as the owner declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Temporal {
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl Temporal {
    pub(crate) fn validate(&self) -> Result<(), CatalogError> {
        let start = Moment::parse("temporal.start", &self.start)?;
        if let Some(end) = &self.end {
            let end = Moment::parse("temporal.end", end)?;
            if end.instant() < start.instant() {
                return Err(CatalogError::invalid("temporal.end", "lies before `temporal.start`"));
            }
        }
        Ok(())
    }
}

/// A date (`2026-11-22`) or a date-time (RFC 3339), as DCAT allows both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

impl Moment {
    pub fn parse(field: &str, value: &str) -> Result<Self, CatalogError> {
        if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Ok(Self::Date(date));
        }
        DateTime::parse_from_rfc3339(value).map(|t| Self::DateTime(t.with_timezone(&Utc))).map_err(|_| {
            CatalogError::invalid(
                field,
                format!(
                    "`{value}` is neither a date (YYYY-MM-DD) nor a date-time (RFC 3339, e.g. 2026-11-22T08:00:00Z)"
                ),
            )
        })
    }

    /// The first instant the moment stands for.
    pub fn instant(self) -> DateTime<Utc> {
        match self {
            Self::Date(date) => date.and_time(chrono::NaiveTime::MIN).and_utc(),
            Self::DateTime(time) => time,
        }
    }

    /// The last instant the moment stands for: a date lasts until the end of its day.
    pub fn last_instant(self) -> DateTime<Utc> {
        match self {
            Self::Date(date) => date.succ_opt().map_or(DateTime::<Utc>::MAX_UTC, |next| {
                next.and_time(chrono::NaiveTime::MIN).and_utc() - chrono::TimeDelta::microseconds(1)
            }),
            Self::DateTime(time) => time,
        }
    }
}

pub(crate) fn non_empty(field: &str, value: &str) -> Result<(), CatalogError> {
    match value.trim().is_empty() {
        true => Err(CatalogError::invalid(field, "must not be empty")),
        false => Ok(()),
    }
}

/// An absolute IRI that RDF serialisers accept.
pub(crate) fn check_iri(field: &str, value: &str) -> Result<(), CatalogError> {
    oxrdf::NamedNode::new(value)
        .ok()
        .filter(|_| value.contains(':'))
        .map(|_| ())
        .ok_or_else(|| CatalogError::invalid(field, format!("`{value}` is not an absolute IRI (e.g. https://…)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_accept_dates_and_date_times_only() {
        assert!(matches!(Moment::parse("f", "2026-11-22"), Ok(Moment::Date(_))));
        assert!(matches!(Moment::parse("f", "2026-11-22T08:00:00+01:00"), Ok(Moment::DateTime(_))));
        let message = Moment::parse("temporal.start", "22.11.2026").expect_err("german date").to_string();
        assert!(message.contains("temporal.start") && message.contains("YYYY-MM-DD"), "{message}");
    }

    #[test]
    fn contact_points_need_a_way_to_reach_someone() {
        let contact = ContactPoint { name: "Umweltamt".into(), email: None, url: None };
        assert!(contact.validate("contact_point").is_err());
        let contact = ContactPoint { email: Some("umwelt at guetersloh".into()), ..contact };
        assert!(contact.validate("contact_point").expect_err("bad").to_string().contains("contact_point.email"));
    }

    #[test]
    fn boxes_and_geocodings_are_checked() {
        let spatial = Spatial { bbox: Some([8.5, 51.8, 8.3, 52.0]), ..Spatial::default() };
        assert!(spatial.validate().is_err());
        let spatial = Spatial { geocoding: Some("municipalityKey/05754008".into()), ..Spatial::default() };
        spatial.validate().expect("valid");
        assert_eq!(
            spatial.geocoding_iri().as_deref(),
            Some("http://dcat-ap.de/def/politicalGeocoding/municipalityKey/05754008")
        );
        let spatial = Spatial { level: Some("city".into()), ..Spatial::default() };
        assert!(spatial.validate().expect_err("bad level").to_string().contains("municipality"));
    }
}
