//! The index's fields and analyzers, and how a catalogue entry becomes a document.

use tantivy::schema::{
    FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, NgramTokenizer, RawTokenizer, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer,
};
use tantivy::{Index, TantivyDocument};

use crate::CatalogError;
use crate::search::Entry;

/// German text: lower case, umlauts and ß folded, Snowball-stemmed, so that
/// "Pegelstände", "Pegelstand" and "Pegelstande" are one term.
pub(crate) const GERMAN: &str = "german";
/// Trigrams of [`folded`] text: a word found inside a compound ("Stand" in "Pegelstände").
pub(crate) const TRIGRAMS: &str = "trigrams";

/// The facet dimensions, in the order the API lists them.
pub const FACETS: [&str; 6] = ["theme", "publisher", "licence", "format", "municipality", "origin"];

/// The `origin` of this node's own entries.
pub(crate) const LOCAL: &str = "local";

/// Sentinels for entries without a time extent or bounding box: they never overlap a filter.
pub(crate) const NO_START: i64 = i64::MAX;
pub(crate) const NO_END: i64 = i64::MIN;
pub(crate) const NO_WEST: f64 = 1000.0;
pub(crate) const NO_EAST: f64 = -1000.0;

/// Prefix of the fields that hold what the municipality's staff know.
const STORED_PREFIX: &str = "stored_";

/// The fast field a search sorts on by last change: the staff's or the audience's.
pub(crate) fn modified(staff: bool) -> &'static str {
    if staff { "stored_modified" } else { "modified" }
}

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    /// Unique: the dataset id, or `peer/id` for a replica.
    pub(crate) key: Field,
    pub(crate) dataset: Field,
    /// [`LOCAL`] or the PeerId of the member a replica comes from.
    pub(crate) origin: Field,
    pub(crate) title: Field,
    pub(crate) description: Field,
    pub(crate) keywords: Field,
    pub(crate) trigrams: Field,
    pub(crate) facets: Field,
    /// Last change and covered time as the entry's audience may know them.
    pub(crate) modified: Field,
    pub(crate) start: Field,
    pub(crate) end: Field,
    /// The same as the municipality's staff know them.
    pub(crate) stored_modified: Field,
    pub(crate) stored_start: Field,
    pub(crate) stored_end: Field,
    pub(crate) west: Field,
    pub(crate) south: Field,
    pub(crate) east: Field,
    pub(crate) north: Field,
    pub(crate) audience: Field,
}

impl Fields {
    pub(crate) fn schema() -> Schema {
        let mut builder = Schema::builder();
        let german = |stored: bool| {
            let options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(GERMAN)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            );
            if stored { options.set_stored() } else { options }
        };
        builder.add_text_field("key", STRING | STORED);
        builder.add_text_field("dataset", STORED);
        builder.add_text_field("origin", STRING | STORED);
        builder.add_text_field("audience", STRING);
        builder.add_text_field("title", german(true));
        builder.add_text_field("description", german(true));
        builder.add_text_field("keywords", german(false));
        builder.add_text_field(
            "trigrams",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default().set_tokenizer(TRIGRAMS).set_index_option(IndexRecordOption::Basic),
            ),
        );
        builder.add_facet_field("facets", FacetOptions::default());
        for prefix in ["", STORED_PREFIX] {
            builder.add_i64_field(&format!("{prefix}modified"), FAST);
            builder.add_i64_field(&format!("{prefix}start"), FAST | INDEXED);
            builder.add_i64_field(&format!("{prefix}end"), FAST | INDEXED);
        }
        for edge in ["west", "south", "east", "north"] {
            builder.add_f64_field(edge, FAST | INDEXED);
        }
        builder.build()
    }

    pub(crate) fn of(schema: &Schema) -> Result<Self, CatalogError> {
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| CatalogError::Index { reason: format!("the index lacks field `{name}`") })
        };
        Ok(Self {
            key: field("key")?,
            dataset: field("dataset")?,
            origin: field("origin")?,
            title: field("title")?,
            description: field("description")?,
            keywords: field("keywords")?,
            trigrams: field("trigrams")?,
            facets: field("facets")?,
            modified: field("modified")?,
            start: field("start")?,
            end: field("end")?,
            stored_modified: field("stored_modified")?,
            stored_start: field("stored_start")?,
            stored_end: field("stored_end")?,
            west: field("west")?,
            south: field("south")?,
            east: field("east")?,
            north: field("north")?,
            audience: field("audience")?,
        })
    }

    pub(crate) fn document(&self, entry: &Entry) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, &entry.key);
        doc.add_text(self.dataset, &entry.id);
        doc.add_text(self.origin, entry.origin.as_ref().map_or(LOCAL, |o| o.peer.as_str()));
        for token in &entry.audience {
            doc.add_text(self.audience, token);
        }
        doc.add_text(self.title, &entry.title);
        doc.add_text(self.description, &entry.description);
        doc.add_text(self.trigrams, folded(&entry.title));
        for keyword in &entry.keywords {
            doc.add_text(self.keywords, keyword);
            doc.add_text(self.trigrams, folded(keyword));
        }
        for (dimension, values) in [
            ("theme", &entry.themes),
            ("publisher", &vec![entry.publisher.clone()]),
            ("licence", &vec![entry.licence.clone()]),
            ("format", &entry.formats),
            ("municipality", &vec![entry.municipality.clone()]),
            ("origin", &vec![entry.origin.as_ref().map_or_else(|| entry.municipality.clone(), |o| o.name.clone())]),
        ] {
            for value in values {
                doc.add_facet(self.facets, facet(dimension, value));
            }
        }
        for (coverage, [modified, start, end]) in [
            (&entry.coverage, [self.modified, self.start, self.end]),
            (&entry.stored, [self.stored_modified, self.stored_start, self.stored_end]),
        ] {
            doc.add_i64(modified, coverage.modified.timestamp_micros());
            let (from, to) = match coverage.temporal {
                Some((from, to)) => (from.timestamp_micros(), to.timestamp_micros()),
                None => (NO_START, NO_END),
            };
            doc.add_i64(start, from);
            doc.add_i64(end, to);
        }
        let [west, south, east, north] = entry.bbox.unwrap_or([NO_WEST, NO_WEST, NO_EAST, NO_EAST]);
        doc.add_f64(self.west, west);
        doc.add_f64(self.south, south);
        doc.add_f64(self.east, east);
        doc.add_f64(self.north, north);
        doc
    }
}

/// Lower case with umlauts, ß and accents folded to ASCII, so that trigrams of
/// "Fußgänger" and "fussganger" are the same.
pub(crate) fn folded(text: &str) -> String {
    let mut analyzer =
        TextAnalyzer::builder(RawTokenizer::default()).filter(LowerCaser).filter(AsciiFoldingFilter).build();
    let mut stream = analyzer.token_stream(text);
    stream.next().map(|token| token.text.clone()).unwrap_or_default()
}

pub(crate) fn facet(dimension: &str, value: &str) -> Facet {
    Facet::from_path([dimension, value])
}

pub(crate) fn register_analyzers(index: &Index) -> Result<(), CatalogError> {
    let german = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::German))
        .build();
    // Input is folded before (see [`folded`]): folding "ß" after cutting grams would not
    // give the grams of "ss".
    let trigrams = TextAnalyzer::from(
        NgramTokenizer::new(3, 3, false).map_err(|e| CatalogError::Index { reason: e.to_string() })?,
    );
    index.tokenizers().register(GERMAN, german);
    index.tokenizers().register(TRIGRAMS, trigrams);
    Ok(())
}
