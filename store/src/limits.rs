//! Every query runs within a memory budget and a time budget, whichever edge asked for it
//! (a Flight read, an SQL statement, a portal page, a view's source): one reader must not
//! take the node's memory or its query threads from everyone else.
//!
//! Memory: each query gets a DataFusion memory pool of its own, and no disk to spill to,
//! so an operator that needs more fails with `ResourcesExhausted` instead of growing.
//!
//! Time: the time the query spends producing batches, summed. Time spent waiting for a
//! slow reader to take them does not count; `write_timeout_secs` ends that. An operator
//! can compute for long without returning (a cross join under an aggregate), so the check
//! is made between every two operators of the plan, on every batch, not only where the
//! reader takes the rows. A reader that goes away ends its query the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;
use futures::{Stream, StreamExt};

use crate::StoreError;
use crate::budget::BudgetExec;

/// The budgets of one query, from `[limits]` in `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Bytes the query's operators may hold at once (`query_memory_bytes`).
    pub memory_bytes: usize,
    /// Time the query may compute for (`query_timeout_secs`).
    pub time: Duration,
    /// Queries that run at once (`query_concurrency`); the memory the node may give to
    /// queries is this many times `memory_bytes`.
    pub concurrency: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self { memory_bytes: 512 * 1024 * 1024, time: Duration::from_secs(60), concurrency: 8 }
    }
}

/// Consumers named in a memory error, largest first.
const NAMED_CONSUMERS: usize = 3;

impl QueryLimits {
    /// A session like `base` (same configuration and functions) whose queries draw on a
    /// memory pool of their own, with catalogs of its own: what one query registers no
    /// other query sees.
    pub(crate) fn session(&self, base: &SessionContext) -> Result<SessionContext, StoreError> {
        let state = base.state();
        let top = std::num::NonZeroUsize::new(NAMED_CONSUMERS).unwrap_or(std::num::NonZeroUsize::MIN);
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(self.memory_bytes), top)))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()?;
        let state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    /// Runs `plan` within the time budget: its batches, ended with
    /// [`StoreError::QueryTimeout`] once producing them has taken longer than allowed,
    /// and with [`StoreError::QueryMemory`] where the pool ran out. Dropping the stream
    /// ends the query at its next batch anywhere in the plan.
    pub(crate) fn run(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: Arc<TaskContext>,
    ) -> Result<impl Stream<Item = Result<RecordBatch, StoreError>> + Send + 'static, StoreError> {
        let budget = Arc::new(Budget::new(self.time));
        let stream = guarded(plan, &budget)?.execute(0, context)?;
        Ok(bounded(stream, budget))
    }
}

/// The plan with a [`BudgetExec`] on every edge and above its root.
fn guarded(plan: Arc<dyn ExecutionPlan>, budget: &Arc<Budget>) -> Result<Arc<dyn ExecutionPlan>, StoreError> {
    let guard =
        |plan: Arc<dyn ExecutionPlan>| Arc::new(BudgetExec::new(plan, Arc::clone(budget))) as Arc<dyn ExecutionPlan>;
    let guarded = plan
        .transform_up(|node| {
            let children: Vec<Arc<dyn ExecutionPlan>> = node.children().into_iter().cloned().collect();
            if children.is_empty() {
                return Ok(Transformed::no(node));
            }
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Transformed::yes(node.replace_children(children.into_iter().map(guard).collect(), options)?))
        })?
        .data;
    let root = guard(guarded);
    // One output stream: a plan of several partitions is merged under the guard.
    if root.output_partitioning().partition_count() > 1 {
        Ok(guard(Arc::new(datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec::new(root))))
    } else {
        Ok(root)
    }
}

/// The time one query has spent producing batches, shared by the guards in its plan.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: Duration,
    spent: Mutex<Spent>,
    /// The reader went away.
    abandoned: AtomicBool,
}

#[derive(Debug, Default)]
struct Spent {
    /// Time of the batches already delivered.
    delivered: Duration,
    /// When the reader asked for the batch being made, if one is.
    asked: Option<Instant>,
}

impl Budget {
    fn new(limit: Duration) -> Self {
        Self { limit, spent: Mutex::default(), abandoned: AtomicBool::new(false) }
    }

    fn spent(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.spent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the query may go on; checked on every batch anywhere in its plan.
    pub(crate) fn check(&self) -> Result<(), DataFusionError> {
        if self.abandoned.load(Ordering::Relaxed) {
            return Err(DataFusionError::External(Box::new(StoreError::ReaderGone)));
        }
        let spent = self.spent();
        let used = spent.delivered + spent.asked.map_or(Duration::ZERO, |asked| asked.elapsed());
        if used > self.limit {
            return Err(DataFusionError::External(Box::new(self.exceeded())));
        }
        Ok(())
    }

    fn exceeded(&self) -> StoreError {
        StoreError::QueryTimeout { secs: self.limit.as_secs() }
    }

    fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.spent().delivered)
    }
}

/// Marks the query abandoned when its reader drops the stream.
struct Abandon(Arc<Budget>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.abandoned.store(true, Ordering::Relaxed);
    }
}

/// The query's batches as the reader takes them, each timed from the reader's asking to
/// its delivery. A query that waits longer than its budget for a batch (an operator that
/// does not return, a member that does not answer) ends there too.
fn bounded(
    stream: SendableRecordBatchStream,
    budget: Arc<Budget>,
) -> impl Stream<Item = Result<RecordBatch, StoreError>> + Send + 'static {
    let abandon = Abandon(Arc::clone(&budget));
    futures::stream::unfold((stream, budget, abandon, false), |(mut stream, budget, abandon, ended)| async move {
        if ended {
            return None;
        }
        let asked = Instant::now();
        budget.spent().asked = Some(asked);
        let next = tokio::time::timeout(budget.remaining(), stream.next()).await;
        {
            let mut spent = budget.spent();
            spent.delivered += asked.elapsed();
            spent.asked = None;
        }
        match next {
            Ok(Some(batch)) => {
                let failed = batch.is_err();
                Some((batch.map_err(StoreError::from), (stream, budget, abandon, failed)))
            }
            Ok(None) => None,
            Err(_) => {
                let exceeded = budget.exceeded();
                Some((Err(exceeded), (stream, budget, abandon, true)))
            }
        }
    })
}
