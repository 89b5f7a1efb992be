//! What the search index holds of an entry: its description with the node's defaults, and
//! what its rows cover as its audience may know it and as stored.

use chrono::Utc;
use urbanmesh_policy::audience;

use super::FORMATS;
use crate::replica::Replica;
use crate::search::{Coverage, Entry};
use crate::{CatalogInfo, Dataset, Derived};

/// The index entry of a dataset: its description with the node's defaults filled in, and
/// what its rows cover as its audience may know it and as stored.
pub(super) fn entry(info: &CatalogInfo, dataset: &Dataset, derived: &Derived) -> Entry {
    let audience = derived.known_to_all(dataset, &audience::representatives(&dataset.policy));
    described(info, dataset, coverage(dataset, &audience), coverage(dataset, derived))
}

/// The index entry of a peer's dataset: as the peer described it, with its origin. Staff
/// search what the peer lets this node know; visitors (of a public entry) what it lets
/// the public know.
pub(super) fn replica_entry(replica: &Replica) -> Entry {
    let info = CatalogInfo::for_municipality(&replica.origin.name);
    let dataset = &replica.entry.dataset;
    let public = coverage(dataset, &replica.entry.public);
    let mut entry = described(&info, dataset, public, coverage(dataset, &replica.entry.derived));
    entry.key = replica.key();
    entry.origin = Some(replica.origin.clone());
    entry.audience = audience::of_replica(&dataset.policy);
    entry
}

fn described(info: &CatalogInfo, dataset: &Dataset, coverage: Coverage, stored: Coverage) -> Entry {
    let spec = &dataset.spec;
    Entry {
        key: dataset.id().to_owned(),
        id: dataset.id().to_owned(),
        origin: None,
        title: spec.title.clone(),
        description: spec.description.clone(),
        keywords: spec.keywords.clone(),
        themes: spec.themes.iter().map(|t| crate::vocab::THEMES.code(t).to_owned()).collect(),
        publisher: spec.publisher.as_ref().unwrap_or(&info.publisher).name.clone(),
        licence: spec.licence().to_owned(),
        formats: FORMATS.iter().map(|f| (*f).to_owned()).collect(),
        municipality: dataset.tenant.clone(),
        coverage,
        stored,
        bbox: spec.spatial.as_ref().and_then(|s| s.bbox),
        audience: dataset.policy.audience(),
    }
}

/// When the dataset last changed and what time it covers: as declared, else as `known`.
fn coverage(dataset: &Dataset, known: &Derived) -> Coverage {
    let declared = dataset.spec.temporal.as_ref().and_then(|t| {
        let start = crate::Moment::parse("", &t.start).ok()?.instant();
        let end = match &t.end {
            Some(end) => crate::Moment::parse("", end).ok()?.last_instant(),
            None => chrono::DateTime::<Utc>::MAX_UTC,
        };
        Some((start, end))
    });
    Coverage {
        modified: known.data_modified.map_or(dataset.modified, |data| data.max(dataset.modified)),
        temporal: declared.or(known.first.zip(known.last)),
    }
}
