//! Turns a [`SearchRequest`] into one tantivy query.

use std::ops::Bound;

use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;

use crate::CatalogError;
use crate::search::fields::{Fields, LOCAL, facet, folded};
use crate::search::request::{Scope, SearchRequest};

/// Substring matches (trigrams) rank below whole-word matches.
const TRIGRAM_SCORE: f32 = 0.5;

pub(crate) fn build(
    request: &SearchRequest,
    fields: Fields,
    parser: &QueryParser,
    trigrams: &mut TextAnalyzer,
) -> Result<Box<dyn Query>, CatalogError> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    match &request.query {
        Some(text) => {
            let words = parser.parse_query(text).map_err(|e| CatalogError::invalid_search("q", e.to_string()))?;
            let mut either: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, words)];
            if let Some(inside) = compound_parts(text, fields, trigrams) {
                either.push((Occur::Should, Box::new(ConstScoreQuery::new(inside, TRIGRAM_SCORE))));
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(either))));
        }
        None => clauses.push((Occur::Must, Box::new(AllQuery))),
    }
    if request.scope == Scope::Local {
        let local = Term::from_field_text(fields.origin, LOCAL);
        clauses.push((Occur::Must, Box::new(TermQuery::new(local, IndexRecordOption::Basic))));
    }
    if let Some(tokens) = &request.audience {
        let any: Vec<(Occur, Box<dyn Query>)> = tokens
            .iter()
            .map(|token| {
                let term = Term::from_field_text(fields.audience, token);
                (Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>)
            })
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    for (dimension, values) in &request.filters {
        let any: Vec<(Occur, Box<dyn Query>)> = values
            .iter()
            .map(|value| {
                let term = Term::from_facet(fields.facets, &facet(dimension, value));
                (Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>)
            })
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    if let Some([west, south, east, north]) = request.bbox {
        clauses.push((Occur::Must, at_most_f64(fields.west, east)));
        clauses.push((Occur::Must, at_least_f64(fields.east, west)));
        clauses.push((Occur::Must, at_most_f64(fields.south, north)));
        clauses.push((Occur::Must, at_least_f64(fields.north, south)));
    }
    // Staff search what the rows cover as stored; everyone else what the audience may know.
    let (start, end) =
        if request.audience.is_none() { (fields.stored_start, fields.stored_end) } else { (fields.start, fields.end) };
    if let Some(to) = request.to {
        let bound = Bound::Included(Term::from_field_i64(start, to.timestamp_micros()));
        clauses.push((Occur::Must, Box::new(RangeQuery::new(Bound::Unbounded, bound))));
    }
    if let Some(from) = request.from {
        let bound = Bound::Included(Term::from_field_i64(end, from.timestamp_micros()));
        clauses.push((Occur::Must, Box::new(RangeQuery::new(bound, Bound::Unbounded))));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

fn at_most_f64(field: tantivy::schema::Field, value: f64) -> Box<dyn Query> {
    Box::new(RangeQuery::new(Bound::Unbounded, Bound::Included(Term::from_field_f64(field, value))))
}

fn at_least_f64(field: tantivy::schema::Field, value: f64) -> Box<dyn Query> {
    Box::new(RangeQuery::new(Bound::Included(Term::from_field_f64(field, value)), Bound::Unbounded))
}

/// Every word of a plain query found inside a title or keyword, compounds included:
/// "Stand" matches "Pegelstände". `None` when the query uses syntax or has no word
/// long enough to stand for itself.
fn compound_parts(text: &str, fields: Fields, trigrams: &mut TextAnalyzer) -> Option<Box<dyn Query>> {
    if text.chars().any(|c| matches!(c, ':' | '"' | '(' | ')' | '+' | '-' | '*' | '[' | '{' | '^' | '~')) {
        return None;
    }
    let mut words: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3) {
        if matches!(word, "AND" | "OR" | "NOT") {
            return None;
        }
        let mut grams: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let word = folded(word);
        let mut stream = trigrams.token_stream(&word);
        while let Some(token) = stream.next() {
            let term = Term::from_field_text(fields.trigrams, &token.text);
            grams.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
        }
        words.push((Occur::Must, Box::new(BooleanQuery::new(grams))));
    }
    (!words.is_empty()).then(|| Box::new(BooleanQuery::new(words)) as Box<dyn Query>)
}
