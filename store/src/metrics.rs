use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type DatasetLabels = Vec<(&'static str, String)>;

#[derive(Clone, Default)]
pub(crate) struct StoreMetrics {
    pub(crate) rows_ingested: Family<DatasetLabels, Counter>,
    pub(crate) flushes: Counter,
    pub(crate) segments_written: Counter,
}

impl StoreMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "urbanmesh_rows_ingested",
            "Rows durably appended, by dataset",
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

    pub(crate) fn ingested(&self, dataset: &str, rows: usize) {
        self.rows_ingested.get_or_create(&vec![("dataset", dataset.to_owned())]).inc_by(rows as u64);
    }
}
