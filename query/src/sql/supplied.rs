//! Tables another part of the process supplies, beside the history and the live views (the
//! webhook dead letters): small, read whole when a query scans them, and scoped to the caller's
//! company by their `company` column like every table.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// A table whose rows someone else keeps.
pub trait SuppliedTable: Send + Sync + std::fmt::Debug {
    /// Its SQL name.
    fn name(&self) -> &'static str;
    /// Its columns: one of them is `company`.
    fn schema(&self) -> SchemaRef;
    /// Its rows now.
    fn rows(&self) -> std::result::Result<RecordBatch, ArrowError>;
}

/// A table whose rows are computed when a query scans it (the live tables, supplied tables),
/// so an unread table costs nothing.
pub struct ScanTimeTable {
    schema: SchemaRef,
    rows: RowsFn,
}

type RowsFn = Box<dyn Fn() -> Result<RecordBatch> + Send + Sync>;

impl ScanTimeTable {
    pub fn new(
        schema: SchemaRef,
        rows: impl Fn() -> Result<RecordBatch> + Send + Sync + 'static,
    ) -> Arc<ScanTimeTable> {
        Arc::new(ScanTimeTable {
            schema,
            rows: Box::new(rows),
        })
    }

    /// `table`, read at scan time.
    pub fn supplied(table: Arc<dyn SuppliedTable>) -> Arc<ScanTimeTable> {
        ScanTimeTable::new(table.schema(), move || Ok(table.rows()?))
    }
}

impl std::fmt::Debug for ScanTimeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanTimeTable")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for ScanTimeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = (self.rows)()?;
        MemTable::try_new(self.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
