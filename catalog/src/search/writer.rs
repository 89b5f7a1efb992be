//! The index's single writer: a thread that applies changes in order and commits them
//! in batches, so that a burst of changes costs one commit.

use tantivy::{IndexReader, IndexWriter, TantivyDocument, Term};
use tokio::sync::{mpsc, oneshot};

use crate::CatalogError;
use crate::search::fields::Fields;

pub(crate) enum Op {
    Upsert { key: String, document: Box<TantivyDocument>, generation: u64 },
    Remove { key: String, generation: u64 },
    Sync(oneshot::Sender<()>),
}

/// Changes applied before a commit is forced even while more are waiting.
const BATCH: usize = 10_000;

pub(crate) fn spawn(
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    queue: mpsc::Receiver<Op>,
) -> Result<(), CatalogError> {
    std::thread::Builder::new()
        .name("search-index".into())
        .spawn(move || run(writer, &reader, fields, queue))
        .map(|_| ())
        .map_err(|e| CatalogError::Index { reason: format!("starting the index writer: {e}") })
}

fn run(mut writer: IndexWriter, reader: &IndexReader, fields: Fields, mut queue: mpsc::Receiver<Op>) {
    let mut generation = None;
    while let Some(first) = queue.blocking_recv() {
        let mut waiting = Vec::new();
        let mut next = Some(first);
        let mut applied = 0;
        while let Some(op) = next {
            match op {
                Op::Upsert { key, document, generation: g } => {
                    writer.delete_term(Term::from_field_text(fields.key, &key));
                    if let Err(error) = writer.add_document(*document) {
                        tracing::error!(%error, entry = %key, "indexing failed");
                    }
                    generation = generation.max(Some(g));
                }
                Op::Remove { key, generation: g } => {
                    writer.delete_term(Term::from_field_text(fields.key, &key));
                    generation = generation.max(Some(g));
                }
                Op::Sync(done) => waiting.push(done),
            }
            applied += 1;
            next = if applied < BATCH { queue.try_recv().ok() } else { None };
        }
        if let Some(generation) = generation {
            // A failed commit leaves the index behind sled; the next start rebuilds it.
            if let Err(error) = commit(&mut writer, generation)
                .and_then(|()| reader.reload().map_err(|e| CatalogError::Index { reason: e.to_string() }))
            {
                tracing::error!(%error, "search index commit failed");
            }
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Bumped whenever fields or analyzers change, so that older indexes are rebuilt.
const INDEX_VERSION: u32 = 3;

/// What a commit records: the index layout and the catalogue generation it reflects.
pub(crate) fn payload(generation: u64) -> String {
    format!("v{INDEX_VERSION}/{generation}")
}

pub(crate) fn commit(writer: &mut IndexWriter, generation: u64) -> Result<(), CatalogError> {
    let mut prepared = writer.prepare_commit().map_err(|e| CatalogError::Index { reason: e.to_string() })?;
    prepared.set_payload(&payload(generation));
    prepared.commit().map_err(|e| CatalogError::Index { reason: e.to_string() })?;
    Ok(())
}
