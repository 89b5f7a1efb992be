//! Full-text and faceted search over catalogue entries (tantivy).
//!
//! One writer thread applies changes in order and commits them in batches, recording
//! the catalogue generation it reflects; readers see a commit as soon as it is made.
//! sled stays the source of truth: an index that is missing, damaged or behind is
//! rebuilt from it when the node starts.

mod fields;
mod query;
mod request;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, FacetCounts, TopDocs};
use tantivy::query::{Query, QueryParser};
use tantivy::schema::Value;
use tantivy::snippet::{Snippet, SnippetGenerator};
use tantivy::{DocAddress, Index, IndexReader, Order, ReloadPolicy, Searcher, TantivyDocument};
use tokio::sync::{mpsc, oneshot};

use crate::CatalogError;
pub use fields::FACETS;
use fields::{Fields, TRIGRAMS};
pub use request::{DEFAULT_PER_PAGE, MAX_DEPTH, MAX_PER_PAGE, Scope, SearchParams, SearchRequest, Sort};
use writer::Op;

/// What the index knows of one catalogue entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique in the index: the dataset id, or `peer/id` for a replica.
    pub key: String,
    pub id: String,
    /// The member a replica comes from; `None` for this node's own datasets.
    pub origin: Option<crate::Origin>,
    pub title: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub themes: Vec<String>,
    pub publisher: String,
    pub licence: String,
    pub formats: Vec<String>,
    pub municipality: String,
    /// Its last change and the time it covers as everyone in `audience` may know them:
    /// what searches by the audience match and sort on.
    pub coverage: Coverage,
    /// The same as the municipality's staff know them, for their searches.
    pub stored: Coverage,
    pub bbox: Option<[f64; 4]>,
    /// Who may see the entry besides the municipality's staff (audience tokens).
    pub audience: Vec<String>,
}

/// When an entry last changed and what time its rows cover.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub modified: DateTime<Utc>,
    pub temporal: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Per dimension, the values among all hits with their counts, most frequent first.
    pub facets: BTreeMap<&'static str, Vec<FacetCount>>,
}

#[derive(Debug, Serialize)]
pub struct Hit {
    pub id: String,
    /// The PeerId of the member holding the dataset; absent for this node's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Matched words marked with `<mark>`, HTML-escaped otherwise.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub highlights: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// Changes waiting for the writer; senders wait when it is full.
const QUEUE: usize = 4096;
const SNIPPET_CHARS: usize = 240;
const ELLIPSIS: &str = "…";

/// The snippet as HTML, with an ellipsis where it leaves out the start or the end of a text
/// `whole` bytes long; fragments begin and end with whole words.
fn elided(snippet: &Snippet, whole: usize) -> String {
    let range = snippet.fragment_range();
    let mut html = snippet.to_html();
    if range.start > 0 {
        html = format!("{ELLIPSIS}\u{a0}{html}");
    }
    if range.end < whole {
        html.push_str("\u{a0}");
        html.push_str(ELLIPSIS);
    }
    html
}

#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    parser: QueryParser,
    ops: mpsc::Sender<Op>,
    /// Facet counts of recent searches, valid for one searcher generation: paging
    /// through a result and the unfiltered overview reuse them.
    facets: Mutex<FacetCache>,
}

type Facets = BTreeMap<&'static str, Vec<FacetCount>>;

#[derive(Default)]
struct FacetCache {
    generation: u64,
    entries: HashMap<String, (usize, Facets)>,
}

/// Searches whose facet counts are kept per searcher generation.
const FACET_CACHE: usize = 256;

impl SearchIndex {
    /// Opens the index in `dir`. When it is missing, unreadable or does not reflect
    /// `generation`, it is rebuilt from `entries` (read only then).
    pub fn open<I>(dir: &Path, generation: u64, entries: impl FnOnce() -> I) -> Result<Self, CatalogError>
    where
        I: Iterator<Item = Result<Entry, CatalogError>>,
    {
        // tantivy may panic on damaged files rather than fail; either way the index is rebuilt.
        let existing = std::panic::catch_unwind(|| open_existing(dir))
            .unwrap_or_else(|_| Err(CatalogError::Index { reason: "reading it panicked".into() }));
        let index = match existing {
            Ok(index) => index,
            Err(error) => {
                if dir.join("meta.json").exists() {
                    tracing::warn!(dir = %dir.display(), %error, "search index unreadable; rebuilding");
                }
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| index_error(&e))?;
                }
                std::fs::create_dir_all(dir).map_err(|e| index_error(&e))?;
                Index::create_in_dir(dir, Fields::schema()).map_err(|e| index_error(&e))?
            }
        };
        fields::register_analyzers(&index)?;
        let fields = Fields::of(&index.schema())?;
        let mut writer = index.writer_with_num_threads(1, 50_000_000).map_err(|e| index_error(&e))?;
        let indexed = index.load_metas().map_err(|e| index_error(&e))?.payload;
        if indexed.as_deref() != Some(writer::payload(generation).as_str()) {
            let started = std::time::Instant::now();
            writer.delete_all_documents().map_err(|e| index_error(&e))?;
            let mut count = 0usize;
            for entry in entries() {
                writer.add_document(fields.document(&entry?)).map_err(|e| index_error(&e))?;
                count += 1;
            }
            writer::commit(&mut writer, generation)?;
            tracing::info!(entries = count, took_ms = started.elapsed().as_millis() as u64, "search index rebuilt");
        }
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e| index_error(&e))?;
        let mut parser = QueryParser::for_index(&index, vec![fields.title, fields.keywords, fields.description]);
        parser.set_conjunction_by_default();
        parser.set_field_boost(fields.title, 3.0);
        parser.set_field_boost(fields.keywords, 2.0);
        let (ops, queue) = mpsc::channel(QUEUE);
        writer::spawn(writer, reader.clone(), fields, queue)?;
        let facets = Mutex::default();
        Ok(Self { inner: Arc::new(Inner { index, reader, fields, parser, ops, facets }) })
    }

    /// Adds or replaces an entry; searchable after the writer's next commit (milliseconds).
    pub async fn upsert(&self, entry: &Entry, generation: u64) -> Result<(), CatalogError> {
        let document = Box::new(self.inner.fields.document(entry));
        self.send(Op::Upsert { key: entry.key.clone(), document, generation }).await
    }

    /// Removes the entry with `key` (a dataset id, or `peer/id` for a replica).
    pub async fn remove(&self, key: &str, generation: u64) -> Result<(), CatalogError> {
        self.send(Op::Remove { key: key.to_owned(), generation }).await
    }

    /// Waits until every change sent so far is committed and visible.
    pub async fn sync(&self) -> Result<(), CatalogError> {
        let (done, committed) = oneshot::channel();
        self.send(Op::Sync(done)).await?;
        committed.await.map_err(|_| CatalogError::Index { reason: "the index writer stopped".into() })
    }

    async fn send(&self, op: Op) -> Result<(), CatalogError> {
        self.inner.ops.send(op).await.map_err(|_| CatalogError::Index { reason: "the index writer stopped".into() })
    }

    /// Runs a search; blocking, so call it off the async threads.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, CatalogError> {
        let inner = &self.inner;
        let mut trigrams = inner
            .index
            .tokenizers()
            .get(TRIGRAMS)
            .ok_or_else(|| CatalogError::Index { reason: "the trigram analyzer is not registered".into() })?;
        let query = query::build(request, inner.fields, &inner.parser, &mut trigrams)?;
        let searcher = inner.reader.searcher();
        let generation = searcher.generation().generation_id();
        let key = request.result_key();
        let top = TopDocs::with_limit(request.per_page).and_offset(request.offset());
        let sort = (request.sort, fields::modified(request.audience.is_none()));
        let (total, page, facets) = match self.cached_facets(generation, &key) {
            Some((total, facets)) => (total, self.page(&searcher, &*query, top, sort)?, facets),
            None => {
                let (total, page, counts) = self.page_with_facets(&searcher, &*query, top, sort)?;
                let facets = facet_counts(&counts);
                self.cache_facets(generation, key, total, &facets);
                (total, page, facets)
            }
        };
        let snippets = match request.query {
            Some(_) => Some(self.snippet_generators(&searcher, &*query)?),
            None => None,
        };
        let hits = page
            .into_iter()
            .map(|(score, address)| self.hit(&searcher, address, score, snippets.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(SearchResults { total, hits, facets })
    }

    /// One page of hits, counted and faceted.
    fn page_with_facets(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        top: TopDocs,
        (sort, modified): (Sort, &str),
    ) -> Result<(usize, Vec<(Option<f32>, DocAddress)>, FacetCounts), CatalogError> {
        let mut facets = FacetCollector::for_field("facets");
        for dimension in FACETS {
            facets.add_facet(format!("/{dimension}").as_str());
        }
        Ok(match sort {
            Sort::Relevance => {
                let (total, hits, counts) =
                    searcher.search(query, &(Count, top.order_by_score(), facets)).map_err(|e| index_error(&e))?;
                (total, hits.into_iter().map(|(score, doc)| (Some(score), doc)).collect(), counts)
            }
            Sort::Modified => {
                let by_modified = top.order_by_fast_field::<i64>(modified, Order::Desc);
                let (total, hits, counts) =
                    searcher.search(query, &(Count, by_modified, facets)).map_err(|e| index_error(&e))?;
                (total, hits.into_iter().map(|(_, doc)| (None, doc)).collect(), counts)
            }
        })
    }

    /// One page of hits when the counts are known already.
    fn page(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        top: TopDocs,
        (sort, modified): (Sort, &str),
    ) -> Result<Vec<(Option<f32>, DocAddress)>, CatalogError> {
        Ok(match sort {
            Sort::Relevance => searcher
                .search(query, &top.order_by_score())
                .map_err(|e| index_error(&e))?
                .into_iter()
                .map(|(score, doc)| (Some(score), doc))
                .collect(),
            Sort::Modified => searcher
                .search(query, &top.order_by_fast_field::<i64>(modified, Order::Desc))
                .map_err(|e| index_error(&e))?
                .into_iter()
                .map(|(_, doc)| (None, doc))
                .collect(),
        })
    }

    fn cached_facets(&self, generation: u64, key: &str) -> Option<(usize, Facets)> {
        let cache = self.inner.facets.lock().unwrap_or_else(PoisonError::into_inner);
        (cache.generation == generation).then(|| cache.entries.get(key).cloned()).flatten()
    }

    fn cache_facets(&self, generation: u64, key: String, total: usize, facets: &Facets) {
        let mut cache = self.inner.facets.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.generation != generation || cache.entries.len() >= FACET_CACHE {
            cache.entries.clear();
            cache.generation = generation;
        }
        cache.entries.insert(key, (total, facets.clone()));
    }

    fn snippet_generators(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
    ) -> Result<[(&'static str, SnippetGenerator); 2], CatalogError> {
        let generator = |field| -> Result<SnippetGenerator, CatalogError> {
            let mut generator = SnippetGenerator::create(searcher, query, field).map_err(|e| index_error(&e))?;
            generator.set_max_num_chars(SNIPPET_CHARS);
            Ok(generator)
        };
        Ok([("title", generator(self.inner.fields.title)?), ("description", generator(self.inner.fields.description)?)])
    }

    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        score: Option<f32>,
        snippets: Option<&[(&'static str, SnippetGenerator); 2]>,
    ) -> Result<Hit, CatalogError> {
        let document: TantivyDocument = searcher.doc(address).map_err(|e| index_error(&e))?;
        let text = |field| document.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let id = text(self.inner.fields.dataset);
        let origin = Some(text(self.inner.fields.origin)).filter(|o| o != fields::LOCAL);
        let mut highlights = BTreeMap::new();
        for (name, generator) in snippets.into_iter().flatten() {
            let mut snippet = generator.snippet_from_doc(&document);
            if !snippet.highlighted().is_empty() {
                snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
                let field = if *name == "title" { self.inner.fields.title } else { self.inner.fields.description };
                highlights.insert(*name, elided(&snippet, text(field).trim().len()));
            }
        }
        Ok(Hit { id, origin, score, highlights })
    }
}

/// An index that opens, has our fields and whose segments can be read.
fn open_existing(dir: &Path) -> Result<Index, CatalogError> {
    let index = Index::open_in_dir(dir).map_err(|e| index_error(&e))?;
    Fields::of(&index.schema())?;
    fields::register_analyzers(&index)?;
    let reader: IndexReader = index.reader_builder().try_into().map_err(|e| index_error(&e))?;
    drop(reader);
    Ok(index)
}

fn facet_counts(counts: &FacetCounts) -> Facets {
    FACETS
        .into_iter()
        .map(|dimension| {
            let mut values: Vec<FacetCount> = counts
                .get(format!("/{dimension}").as_str())
                .filter_map(|(facet, count)| {
                    facet.to_path().last().map(|value| FacetCount { value: (*value).to_owned(), count })
                })
                .collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            (dimension, values)
        })
        .collect()
}

fn index_error(error: &dyn std::fmt::Display) -> CatalogError {
    CatalogError::Index { reason: error.to_string() }
}
