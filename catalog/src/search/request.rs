//! A search as the API receives it, checked and bounded before it reaches the index.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::CatalogError;
use crate::metadata::Moment;

/// Hits per page unless the caller asks otherwise, and the most a page may hold.
pub const DEFAULT_PER_PAGE: usize = 20;
pub const MAX_PER_PAGE: usize = 100;
/// Paging reaches this many hits deep; narrow the search to see further.
pub const MAX_DEPTH: usize = 10_000;

/// Query parameters of `GET /api/v1/search`, as strings.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: words, `"a phrase"`, `field:word`, `-excluded`.
    pub q: Option<String>,
    /// Theme codes (`TRAN`, `ENVI`, …), comma-separated; any of them matches.
    pub theme: Option<String>,
    /// Publisher names, comma-separated.
    pub publisher: Option<String>,
    /// Licence codes (`dl-by-de/2.0`, …), comma-separated.
    pub licence: Option<String>,
    /// Download formats, comma-separated.
    pub format: Option<String>,
    /// Municipality names, comma-separated.
    pub municipality: Option<String>,
    /// Member names, comma-separated (with `scope=federation`).
    pub origin: Option<String>,
    /// `local` (default) or `federation`.
    pub scope: Option<String>,
    /// `west,south,east,north` in WGS 84; hits overlap it.
    pub bbox: Option<String>,
    /// Hits cover some time at or after this date or RFC 3339 time.
    pub from: Option<String>,
    /// Hits cover some time at or before this date or RFC 3339 time.
    pub to: Option<String>,
    /// `relevance` (default with `q`) or `modified` (newest first).
    pub sort: Option<String>,
    /// 1-based page number.
    pub page: Option<String>,
    /// Hits per page.
    pub per_page: Option<String>,
}

/// Which catalogue a search covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This node's own datasets.
    Local,
    /// This node's and those its federation's members share.
    Federation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Modified,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Free text in the query syntax (`Pegel Ems`, `"Pegelstände Ems"`, `title:Pegel`, `-Luft`).
    pub query: Option<String>,
    /// Facet filters: a hit has one of the listed values in every dimension given.
    pub filters: Vec<(&'static str, Vec<String>)>,
    /// `[west, south, east, north]`; hits overlap it.
    pub bbox: Option<[f64; 4]>,
    /// Hits cover some time between `from` and `to`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub sort: Sort,
    pub scope: Scope,
    /// Audience tokens the caller matches (see `urbanmesh_policy::audience`); hits must
    /// carry one of them. `None` sees everything (the municipality's staff).
    pub audience: Option<Vec<String>>,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

impl SearchRequest {
    pub fn parse(params: SearchParams) -> Result<Self, CatalogError> {
        let query = params.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        if query.as_ref().is_some_and(|q| q.len() > 1000) {
            return Err(CatalogError::invalid_search("q", "is longer than 1000 bytes"));
        }
        let mut filters = Vec::new();
        for (name, value) in [
            ("theme", params.theme),
            ("publisher", params.publisher),
            ("licence", params.licence),
            ("format", params.format),
            ("municipality", params.municipality),
            ("origin", params.origin),
        ] {
            let values: Vec<String> = value
                .iter()
                .flat_map(|v| v.split(','))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            if !values.is_empty() {
                filters.push((name, values));
            }
        }
        let bbox = params.bbox.as_deref().map(parse_bbox).transpose()?;
        let from = params.from.as_deref().map(|v| moment("from", v).map(Moment::instant)).transpose()?;
        // `to=2026-01-31` includes that day.
        let to = params.to.as_deref().map(|v| moment("to", v).map(Moment::last_instant)).transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            return Err(CatalogError::invalid_search("to", "lies before `from`"));
        }
        let sort = match params.sort.as_deref() {
            None | Some("") => match query {
                Some(_) => Sort::Relevance,
                None => Sort::Modified,
            },
            Some("relevance") => Sort::Relevance,
            Some("modified") => Sort::Modified,
            Some(other) => {
                return Err(CatalogError::invalid_search(
                    "sort",
                    format!("`{other}` is not a sort order; use `relevance` or `modified`"),
                ));
            }
        };
        let scope = match params.scope.as_deref() {
            None | Some("") | Some("local") => Scope::Local,
            Some("federation") => Scope::Federation,
            Some(other) => {
                return Err(CatalogError::invalid_search(
                    "scope",
                    format!("`{other}` is not a scope; use `local` or `federation`"),
                ));
            }
        };
        let page = number("page", params.page.as_deref(), 1)?;
        let per_page = number("per_page", params.per_page.as_deref(), DEFAULT_PER_PAGE)?;
        if page == 0 {
            return Err(CatalogError::invalid_search("page", "counts from 1"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(CatalogError::invalid_search("per_page", format!("must be between 1 and {MAX_PER_PAGE}")));
        }
        if page.saturating_mul(per_page) > MAX_DEPTH {
            return Err(CatalogError::invalid_search(
                "page",
                format!("paging reaches {MAX_DEPTH} hits deep; narrow the search with a query or filters"),
            ));
        }
        // Callers narrow or widen this to what the subject may see; by default only what is public.
        let audience = Some(vec![urbanmesh_policy::audience::PUBLIC.to_owned()]);
        Ok(Self { query, filters, bbox, from, to, sort, scope, audience, page, per_page })
    }

    /// Identifies the set of hits, whatever the page and order.
    pub(crate) fn result_key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.query, self.filters, self.bbox, self.from, self.to, self.scope, self.audience
        )
    }

    pub(crate) fn offset(&self) -> usize {
        (self.page - 1) * self.per_page
    }
}

fn number(name: &str, value: Option<&str>, default: usize) -> Result<usize, CatalogError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| CatalogError::invalid_search(name, format!("`{v}` is not a whole number"))),
    }
}

fn moment(name: &str, value: &str) -> Result<Moment, CatalogError> {
    Moment::parse(name, value)
        .map_err(|_| CatalogError::invalid_search(name, format!("`{value}` is neither a date nor an RFC 3339 time")))
}

fn parse_bbox(value: &str) -> Result<[f64; 4], CatalogError> {
    let wrong = || {
        CatalogError::invalid_search(
            "bbox",
            format!("`{value}` is not `west,south,east,north` in degrees (e.g. 8.3,51.8,8.6,52.1)"),
        )
    };
    let numbers: Vec<f64> =
        value.split(',').map(|n| n.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| wrong())?;
    let [west, south, east, north] = numbers[..] else { return Err(wrong()) };
    let lon = |v: f64| (-180.0..=180.0).contains(&v);
    let lat = |v: f64| (-90.0..=90.0).contains(&v);
    if !(lon(west) && lon(east) && lat(south) && lat(north) && west <= east && south <= north) {
        return Err(wrong());
    }
    Ok([west, south, east, north])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> SearchParams {
        let map: serde_json::Map<String, serde_json::Value> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
        serde_json::from_value(serde_json::Value::Object(map)).expect("params")
    }

    #[test]
    fn paging_is_bounded_and_explained() {
        let error = SearchRequest::parse(params(&[("per_page", "100000")])).expect_err("too big").to_string();
        assert!(error.contains("per_page"), "{error}");
        let error = SearchRequest::parse(params(&[("page", "999999999999")])).expect_err("too deep").to_string();
        assert!(error.contains("10000"), "{error}");
        assert!(SearchRequest::parse(params(&[("page", "-1")])).is_err());
        let ok = SearchRequest::parse(params(&[("page", "3"), ("per_page", "10")])).expect("ok");
        assert_eq!(ok.offset(), 20);
    }

    #[test]
    fn filters_split_on_commas_and_sort_follows_the_query() {
        let request = SearchRequest::parse(params(&[("theme", "ENVI, TRAN"), ("q", "Pegel")])).expect("ok");
        assert_eq!(request.filters, vec![("theme", vec!["ENVI".to_owned(), "TRAN".to_owned()])]);
        assert_eq!(request.sort, Sort::Relevance);
        assert_eq!(SearchRequest::parse(params(&[])).expect("ok").sort, Sort::Modified);
        assert!(SearchRequest::parse(params(&[("bbox", "8,52,7,53")])).is_err());
        assert!(SearchRequest::parse(params(&[("from", "2026-02-30")])).is_err());
    }
}
