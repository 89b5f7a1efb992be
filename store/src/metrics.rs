//! Store metrics. Totals are public; the per-dataset series name datasets, so they go
//! into the registry that only staff may scrape ([`crate::Store::register_dataset_metrics`]).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type DatasetLabels = Vec<(&'static str, String)>;

#[derive(Clone, Default)]
pub(crate) struct StoreMetrics {
    pub(crate) rows_ingested: Counter,
    pub(crate) rows_ingested_by_dataset: Family<DatasetLabels, Counter>,
    pub(crate) flushes: Counter,
    pub(crate) segments_written: Counter,
}

impl StoreMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "urbanmesh_rows_ingested",
            "Rows durably appended, all datasets together",
            metrics.rows_ingested.clone(),
        );
        registry.register(
            "urbanmesh_wal_flushes",
            "Group-commit fsyncs of the write-ahead log",
            metrics.flushes.clone(),
        );
        registry.register(
            "urbanmesh_segments_written",
            "Parquet segments written by compaction",
            metrics.segments_written.clone(),
        );
        metrics
    }

    /// Registers the series that name datasets in `registry`.
    pub(crate) fn register_by_dataset(&self, registry: &mut Registry) {
        registry.register(
            "urbanmesh_dataset_rows_ingested",
            "Rows durably appended, by dataset",
            self.rows_ingested_by_dataset.clone(),
        );
    }

    pub(crate) fn ingested(&self, dataset: &str, rows: usize) {
        let rows = rows as u64;
        self.rows_ingested.inc_by(rows);
        self.rows_ingested_by_dataset.get_or_create(&vec![("dataset", dataset.to_owned())]).inc_by(rows);
    }
}
