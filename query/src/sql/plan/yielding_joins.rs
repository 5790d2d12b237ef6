//! A query is cancelled (timeout, client gone, Postgres cancel) by dropping its task, which
//! takes effect when the task next yields. Scans yield between batches (DataFusion wraps them
//! cooperatively), but a join can emit millions of batches from data it already holds without
//! polling a scan again: a cross join of two ranges kept both cores busy for seconds after its
//! timeout. This rule wraps the output of every operator with two or more inputs (joins,
//! unions) in a [`CooperativeExec`], so each batch it emits spends the task's budget and the
//! task yields, and stops, within a budget's worth of batches.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// The rule; add it after DataFusion's own.
#[derive(Debug, Default)]
pub struct YieldingJoins;

impl PhysicalOptimizerRule for YieldingJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.children().len() < 2 {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "yielding_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
