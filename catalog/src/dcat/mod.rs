//! The catalogue as DCAT-AP.de 3.0 RDF, streamed dataset by dataset so that memory
//! stays flat however large the catalogue grows.

mod graph;
mod syntax;
mod vocabulary;

use std::io::Write;

use oxrdfio::{RdfSerializer, WriterQuadSerializer};

use urbanmesh_policy::Subject;

use crate::{Catalog, CatalogError, Dataset, Derived, Endpoints};
use graph::{Collection, Graph};
pub use syntax::RdfSyntax;

/// A page of the catalogue, announced with Hydra paging as ckanext-dcat does.
#[derive(Debug, Clone)]
pub struct Paging {
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
    /// The URL path of this export without query, e.g. `/catalog.ttl`.
    pub path: String,
}

/// Largest page of a paged export.
pub const MAX_EXPORT_PAGE: usize = 1000;

/// Writes the node's catalogue as `reader` may see it: every dataset and view visible to
/// it (a view as the dataset it describes), or one page of them, with what their rows
/// cover as the reader may know it.
pub fn write_catalog<W: Write>(
    catalog: &Catalog,
    endpoints: &Endpoints,
    syntax: RdfSyntax,
    paging: Option<&Paging>,
    reader: &Subject,
    out: W,
) -> Result<W, CatalogError> {
    let visible = |dataset: &Dataset| dataset.policy.visible_to(reader);
    let mut writer = serializer(syntax, out)?;
    let graph = Graph::new(catalog.info(), endpoints);
    graph.catalog(&mut writer)?;
    let admitted = || {
        let datasets = catalog.iter().map(|d| d.map(|d| (d, Collection::Datasets)));
        let views = catalog.views().list().map_or_else(
            |e| vec![Err(e)],
            |views| views.iter().map(|v| Ok((v.described(), Collection::Views))).collect(),
        );
        datasets.chain(views).filter(|entry| entry.as_ref().map_or(true, |(d, _)| visible(d)))
    };
    let entries: Box<dyn Iterator<Item = _>> = match paging {
        Some(paging) => {
            graph.paging(&mut writer, paging, admitted().count())?;
            Box::new(admitted().skip((paging.page - 1) * paging.per_page).take(paging.per_page))
        }
        None => Box::new(admitted()),
    };
    for entry in entries {
        let (dataset, collection) = entry?;
        let derived = match collection {
            Collection::Datasets => catalog.derived(dataset.id())?.known_to(&dataset, reader),
            Collection::Views => Derived::default(),
        };
        graph.dataset(&mut writer, &dataset, &derived, collection, true)?;
    }
    Ok(writer.finish()?)
}

/// Writes one dataset with its distributions, publisher and the service it is served by,
/// as `reader` may know it. The caller has checked that the reader may see it.
pub fn write_dataset<W: Write>(
    catalog: &Catalog,
    endpoints: &Endpoints,
    syntax: RdfSyntax,
    id: &str,
    reader: &Subject,
    out: W,
) -> Result<W, CatalogError> {
    let dataset = catalog.get(id)?;
    let derived = catalog.derived(id)?.known_to(&dataset, reader);
    write_one(catalog, endpoints, syntax, (&dataset, &derived, Collection::Datasets), out)
}

/// Writes one view, described as the dataset it assembles.
pub fn write_view<W: Write>(
    catalog: &Catalog,
    endpoints: &Endpoints,
    syntax: RdfSyntax,
    id: &str,
    out: W,
) -> Result<W, CatalogError> {
    let view = catalog.views().get(id)?.described();
    write_one(catalog, endpoints, syntax, (&view, &Derived::default(), Collection::Views), out)
}

fn write_one<W: Write>(
    catalog: &Catalog,
    endpoints: &Endpoints,
    syntax: RdfSyntax,
    (dataset, derived, collection): (&Dataset, &Derived, Collection),
    out: W,
) -> Result<W, CatalogError> {
    let mut writer = serializer(syntax, out)?;
    let graph = Graph::new(catalog.info(), endpoints);
    graph.agents(&mut writer)?;
    graph.dataset(&mut writer, dataset, derived, collection, false)?;
    Ok(writer.finish()?)
}

fn serializer<W: Write>(syntax: RdfSyntax, out: W) -> Result<WriterQuadSerializer<W>, CatalogError> {
    let mut serializer = RdfSerializer::from_format(syntax.format());
    for (prefix, iri) in vocabulary::PREFIXES {
        serializer =
            serializer.with_prefix(prefix, iri).map_err(|e| std::io::Error::other(format!("prefix {prefix}: {e}")))?;
    }
    Ok(serializer.for_writer(out))
}
