use std::io::Cursor;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

use crate::StoreError;

/// One table's write-ahead log: a sled tree of Arrow IPC batches keyed by sequence number.
pub(crate) struct Wal {
    tree: sled::Tree,
}

impl Wal {
    pub(crate) fn open(db: &sled::Db, table: &str) -> Result<Self, StoreError> {
        Ok(Self { tree: db.open_tree(Self::tree_name(table))? })
    }

    pub(crate) const TREE_PREFIX: &'static str = "wal/";

    pub(crate) fn tree_name(table: &str) -> String {
        format!("{}{table}", Self::TREE_PREFIX)
    }

    /// Stages an entry; it is durable only after the next flush of the database.
    pub(crate) fn insert(&self, seq: u64, entry: Vec<u8>) -> Result<(), StoreError> {
        self.tree.insert(seq.to_be_bytes(), entry)?;
        Ok(())
    }

    /// Withdraws an entry whose flush failed.
    pub(crate) fn remove(&self, seq: u64) -> Result<(), StoreError> {
        self.tree.remove(seq.to_be_bytes())?;
        Ok(())
    }

    /// Entries after `compacted`, in sequence order; older ones are removed.
    pub(crate) fn replay(&self, schema: &SchemaRef, compacted: u64) -> Result<Vec<(u64, RecordBatch)>, StoreError> {
        self.trim(compacted)?;
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let seq = decode_seq(&key)?;
                Ok((seq, decode(schema, &value)?))
            })
            .collect()
    }

    /// Removes entries up to and including `seq`, which a segment now holds.
    pub(crate) fn trim(&self, seq: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for key in self.tree.range(..=seq.to_be_bytes()).keys() {
            batch.remove(key?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    let mut writer = StreamWriter::try_new(&mut bytes, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(bytes)
}

fn decode(schema: &SchemaRef, bytes: &[u8]) -> Result<RecordBatch, StoreError> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let batch = reader
        .next()
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt { reason: "empty write-ahead log entry".into() })?;
    // Re-attach the table's schema so that every batch of a table compares equal.
    Ok(RecordBatch::try_new(schema.clone(), batch.columns().to_vec())?)
}

fn decode_seq(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt { reason: format!("write-ahead log key of {} bytes", key.len()) })?;
    Ok(u64::from_be_bytes(bytes))
}
