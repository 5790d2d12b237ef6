//! One SQL namespace over the Parquet history and the live views (DataFusion).
//!
//! Tables, for every caller (scoped to the caller's company, see [`crate::sql::tenant_scope`]):
//! - `positions`, `trips`, `events`, `errors`: the history, listing tables over
//!   `<data-dir>/<table>/date=YYYY-MM-DD/*.parquet` with `date` (a `DATE`) as partition column,
//!   so `WHERE date = ...` prunes directories, and the files' statistics and page indexes prune
//!   row groups and pages;
//! - `trips_latest`: each trip's newest version, deleted ones left out (`trips` keeps every
//!   version; see the trips table in the README);
//! - `live_vehicles`, `live_summary`, `live_leaderboard`, `live_alerts`: the live views, read
//!   from one snapshot per query ([`crate::sql::live_tables`]);
//! - tables the process supplies ([`crate::sql::supplied`]): `webhook_dead_letters` where
//!   webhooks are delivered;
//! - `pg_catalog.*`: what Postgres clients introspect ([`crate::pgwire::catalog`]).
//!
//! Every query gets its own session: the caller's view of the catalog, nothing shared but the
//! runtime (memory pool and Parquet metadata cache). Listing is never cached, so a query sees
//! the files committed when it started. SQL is read-only: only queries, `EXPLAIN` and `SHOW`
//! are planned, and the plan is verified again (no DDL, DML or statements) before it runs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use fleetflow_live_store::store::LiveStore;
use fleetflow_model::{PARTITION_COLUMN, Principal, Table};
use serde::{Deserialize, Serialize};

use crate::error::QueryError;
use crate::pgwire::catalog::{self as pg_catalog, Relation};
use crate::sql::error::{classify, redact_paths};
use crate::sql::live_tables::{LiveSnapshotOnce, LiveTable, live_table};
use crate::sql::params::{Param, bind, parameter_types};
use crate::sql::plan::partition_key_aggregate::PartitionKeyAggregate;
use crate::sql::supplied::{ScanTimeTable, SuppliedTable};
use crate::sql::tenant_scope::scoped;

/// `[query]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// Most rows one answer returns (a request may ask for fewer with `?limit=`); the answer
    /// says when it was cut.
    pub max_rows: usize,
    /// A query running longer is cancelled.
    pub timeout_secs: u64,
    /// Memory all running queries may use together, MiB; a query that needs more fails.
    pub memory_mb: usize,
    /// Threads that run queries, apart from ingest's and the pipeline's (0: the cores).
    pub threads: usize,
    /// The Postgres wire listener (`host:port`), or `off`. Logins send tokens in cleartext:
    /// keep it on loopback unless a TLS proxy fronts it.
    pub postgres: String,
    /// Postgres connections logged in at once; a login past it is refused (SQLSTATE 53300).
    pub postgres_connections: usize,
    /// Queries one company runs at once (0: half the query threads, at least one); further
    /// ones wait, within their timeout, so one company cannot take every query thread.
    pub company_queries: usize,
}

impl SqlConfig {
    /// Where to serve the Postgres wire protocol, if at all.
    pub fn postgres_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        match self.postgres.trim() {
            "off" | "" => Ok(None),
            addr => addr
                .parse()
                .map(Some)
                .map_err(|e| format!("query.postgres: {addr:?} is not host:port or \"off\": {e}")),
        }
    }
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            max_rows: 100_000,
            timeout_secs: 30,
            memory_mb: 2048,
            threads: 0,
            postgres: "127.0.0.1:5433".to_owned(),
            postgres_connections: 64,
            company_queries: 0,
        }
    }
}

/// The result of one query.
#[derive(Debug)]
pub struct SqlAnswer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// More rows existed than were returned.
    pub truncated: bool,
    /// The dataflow time the live tables were read at, if the query read any.
    pub upto_ms: Option<u64>,
}

impl SqlAnswer {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The SQL side: shared by the HTTP endpoint, the REST routes and Postgres wire.
#[derive(Debug, Clone)]
pub struct SqlEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    config: SqlConfig,
    runtime: Arc<RuntimeEnv>,
    live: Option<Arc<LiveStore>>,
    /// `pg_catalog`, built by the first session (every session has the same tables).
    pg_catalog: OnceLock<Arc<dyn SchemaProvider>>,
    /// Statements planned (for `/status`).
    queries: std::sync::atomic::AtomicU64,
    /// Per company: its queries running now (`company_queries`).
    company_slots: std::sync::Mutex<std::collections::HashMap<Arc<str>, Arc<Semaphore>>>,
    /// Queries one company may run at once.
    company_queries: usize,
    /// Queries run here, not on the runtime that serves ingest (an `Option` only so that
    /// `Drop` can shut it down without blocking, which async code may not do).
    threads: Option<tokio::runtime::Runtime>,
    /// Tables the process supplies (`webhook_dead_letters`).
    supplied: Vec<Arc<dyn SuppliedTable>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(threads) = self.threads.take() {
            threads.shutdown_background();
        }
    }
}

/// Statement kinds a read-only session plans.
const ALLOWED: &str = "SELECT, WITH, VALUES, EXPLAIN, SHOW TABLES and SHOW COLUMNS";

impl SqlEngine {
    pub fn new(
        data_dir: &Path,
        config: SqlConfig,
        live: Option<Arc<LiveStore>>,
    ) -> Result<SqlEngine, QueryError> {
        for table in Table::ALL {
            std::fs::create_dir_all(data_dir.join(table.name()))
                .map_err(|e| QueryError::Internal(format!("creating the table directory: {e}")))?;
        }
        // One spelling of the directory (no `..`, no symlinks), so that answers can leave it out.
        let data_dir = &std::fs::canonicalize(data_dir)
            .map_err(|e| QueryError::Internal(format!("resolving the data directory: {e}")))?;
        let runtime = RuntimeEnvBuilder::new()
            // No listing cache: a query must see what was committed before it started.
            .with_object_list_cache_limit(0)
            .with_memory_limit(config.memory_mb << 20, 1.0)
            .build_arc()
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let mut threads = tokio::runtime::Builder::new_multi_thread();
        if config.threads > 0 {
            threads.worker_threads(config.threads);
        }
        let threads = threads
            .thread_name("sql")
            // Room for the deepest expression `sql_bounds` lets through.
            .thread_stack_size(crate::sql::bounds::QUERY_THREAD_STACK)
            .enable_all()
            .build()
            .map_err(|e| QueryError::Internal(format!("starting the query threads: {e}")))?;
        let company_queries = match config.company_queries {
            0 => (threads.metrics().num_workers() / 2).max(1),
            n => n,
        };
        Ok(SqlEngine {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                config,
                runtime,
                live,
                pg_catalog: OnceLock::new(),
                queries: std::sync::atomic::AtomicU64::new(0),
                company_slots: Default::default(),
                company_queries,
                threads: Some(threads),
                supplied: Vec::new(),
            }),
        })
    }

    /// This engine, with `tables` beside the history and the live views. Call it before the
    /// engine is cloned.
    pub fn with_supplied(mut self, tables: Vec<Arc<dyn SuppliedTable>>) -> SqlEngine {
        Arc::get_mut(&mut self.inner)
            .expect("tables are supplied before the engine is shared")
            .supplied = tables;
        self
    }

    pub fn config(&self) -> &SqlConfig {
        &self.inner.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub(crate) fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.inner.runtime
    }

    /// Whether sessions see the live tables (a pipeline runs in this process).
    pub fn has_live(&self) -> bool {
        self.inner.live.is_some()
    }

    /// Threads that run queries.
    pub fn thread_count(&self) -> usize {
        self.inner
            .threads
            .as_ref()
            .map_or(0, |t| t.metrics().num_workers())
    }

    pub(crate) fn queries_planned(&self) -> &std::sync::atomic::AtomicU64 {
        &self.inner.queries
    }

    /// A session holding `principal`'s view of every table, and the live snapshot its live
    /// tables will share.
    pub fn session(
        &self,
        principal: &Principal,
    ) -> DfResult<(SessionContext, Option<Arc<LiveSnapshotOnce>>)> {
        let mut config = SessionConfig::new();
        if self.inner.config.threads > 0 {
            config = config.with_target_partitions(self.inner.config.threads);
        }
        let config = config
            .with_information_schema(true)
            .with_default_catalog_and_schema("fleetflow", "public")
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true)
            // Spans on identifiers, so an error can say where in the SQL it is.
            .set_bool("datafusion.sql_parser.collect_spans", true);
        let state = crate::sql::plan::latest_version::with_planner(SessionStateBuilder::new())
            .with_config(config)
            .with_runtime_env(self.inner.runtime.clone())
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(PartitionKeyAggregate::default()))
            .with_physical_optimizer_rule(Arc::new(crate::sql::plan::yielding_joins::YieldingJoins))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let mut relations = Vec::new();
        let cutoffs = fleetflow_tables::retention::read_cutoffs(&self.inner.data_dir);
        for table in Table::ALL {
            let retained = crate::sql::retention_scope::retained(
                table.name(),
                self.history_table(table)?,
                cutoffs.first_day(table),
            )?;
            let scoped = scoped(table.name(), retained, principal)?;
            if let Some((name, latest)) = crate::sql::derived_views::view_of(table, &scoped)? {
                relations.push((name, Relation::View, latest.schema()));
                ctx.register_table(name, latest)?;
            }
            relations.push((table.name(), Relation::Table, scoped.schema()));
            ctx.register_table(table.name(), scoped)?;
        }
        let live = self
            .inner
            .live
            .as_ref()
            .map(|store| LiveSnapshotOnce::new(store.clone(), principal.clone()));
        if let Some(snapshot) = &live {
            for table in LiveTable::ALL {
                let provider = live_table(table, snapshot.clone());
                let scoped = scoped(table.name(), provider, principal)?;
                relations.push((table.name(), Relation::View, scoped.schema()));
                ctx.register_table(table.name(), scoped)?;
            }
        }
        for table in &self.inner.supplied {
            let provider = ScanTimeTable::supplied(table.clone());
            let scoped = scoped(table.name(), provider, principal)?;
            relations.push((table.name(), Relation::Table, scoped.schema()));
            ctx.register_table(table.name(), scoped)?;
        }
        let catalog = match self.inner.pg_catalog.get() {
            Some(catalog) => catalog.clone(),
            None => {
                let built = pg_catalog::schema(&relations)?;
                self.inner.pg_catalog.get_or_init(|| built).clone()
            }
        };
        pg_catalog::register(&ctx, catalog)?;
        Ok((ctx, live))
    }

    fn history_table(&self, table: Table) -> DfResult<Arc<dyn TableProvider>> {
        let dir = self.inner.data_dir.join(table.name());
        let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(PARTITION_COLUMN.to_owned(), DataType::Date32)]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(table.schema());
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// Runs one read-only statement as `principal`, returning at most `limit` rows (capped at
    /// `max_rows`), within the timeout.
    pub async fn query(
        &self,
        principal: &Principal,
        sql: &str,
        limit: Option<usize>,
    ) -> Result<SqlAnswer, QueryError> {
        self.query_with(principal, sql, Arc::from([]), limit).await
    }

    /// [`SqlEngine::query`] with values for the statement's `$1`, `$2`, ... placeholders.
    pub async fn query_with(
        &self,
        principal: &Principal,
        sql: &str,
        params: Arc<[Param]>,
        limit: Option<usize>,
    ) -> Result<SqlAnswer, QueryError> {
        let sql: Arc<str> = sql.into();
        let engine = self.clone();
        let caller = principal.clone();
        let principal = principal.clone();
        self.answer(&caller, limit, move || {
            let (engine, principal, sql) = (engine.clone(), principal.clone(), sql.clone());
            let params = params.clone();
            Box::pin(async move {
                let (df, live) = engine.plan(&principal, &sql).await?;
                Ok((bind(df, &params)?, live))
            })
        })
        .await
    }

    /// What `sql` would answer, without running it: the columns, and the types its
    /// placeholders take (`None` where the plan does not fix one).
    pub async fn describe(
        &self,
        principal: &Principal,
        sql: &str,
    ) -> Result<(SchemaRef, Vec<Option<DataType>>), QueryError> {
        // Planned on the query threads, whose stack fits the deepest expression allowed.
        let timeout = Duration::from_secs(self.inner.config.timeout_secs);
        let deadline = tokio::time::Instant::now() + timeout;
        let slot = self.company_slot(principal, deadline).await?;
        let (engine, principal, sql) = (self.clone(), principal.clone(), sql.to_owned());
        let threads = self.inner.threads.as_ref().expect("taken only on drop");
        let task = threads.spawn(async move {
            let _slot = slot;
            let (df, _) = engine.plan(&principal, &sql).await?;
            let types = parameter_types(df.logical_plan())?;
            Ok((df.schema().inner().clone(), types))
        });
        let _abort = AbortOnDrop(task.abort_handle());
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(result)) => result.map_err(|e| classify(e, &self.inner.data_dir)),
            Ok(Err(join)) => Err(QueryError::Internal(format!("describe task: {join}"))),
            Err(_) => Err(QueryError::Timeout(timeout)),
        }
    }

    /// Runs the DataFrame `build` makes in `principal`'s session (the REST routes' plans), with
    /// the same limit and timeout as SQL.
    pub async fn frame<F>(
        &self,
        principal: &Principal,
        limit: Option<usize>,
        build: F,
    ) -> Result<SqlAnswer, QueryError>
    where
        F: Fn(SessionContext) -> BoxFuture<'static, DfResult<DataFrame>> + Send + Sync + 'static,
    {
        let engine = self.clone();
        let caller = principal.clone();
        let principal = principal.clone();
        self.answer(&caller, limit, move || {
            let (ctx, live) = match engine.session(&principal) {
                Ok(session) => session,
                Err(e) => return Box::pin(async move { Err(e) }),
            };
            let df = build(ctx);
            Box::pin(async move { Ok((df.await?, live)) })
        })
        .await
    }

    /// Plans with `plan` (again if a compaction swapped files under the first try) and runs it
    /// on the query threads, within the timeout.
    async fn answer<P>(
        &self,
        principal: &Principal,
        limit: Option<usize>,
        plan: P,
    ) -> Result<SqlAnswer, QueryError>
    where
        P: Fn() -> BoxFuture<'static, DfResult<Planned>> + Send + Sync + 'static,
    {
        let limit = limit
            .unwrap_or(self.inner.config.max_rows)
            .min(self.inner.config.max_rows);
        let timeout = Duration::from_secs(self.inner.config.timeout_secs);
        let deadline = tokio::time::Instant::now() + timeout;
        let slot = self.company_slot(principal, deadline).await?;
        let threads = self.inner.threads.as_ref().expect("taken only on drop");
        let data_dir = self.inner.data_dir.clone();
        let company = matches!(principal, Principal::Company(_));
        let task = threads.spawn(async move {
            let _slot = slot;
            // A compaction that swaps a partition between our listing and our reads makes a
            // listed file vanish: list again, as any glob reader must.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let result = match plan().await {
                    Ok((df, live)) => collect(df, live, limit, &data_dir, company).await,
                    Err(e) => Err(e),
                };
                match result {
                    Err(e) if attempt < 5 && crate::sql::error::is_vanished_file(&e) => continue,
                    other => return other,
                }
            }
        });
        // The query stops when its caller stops waiting: after the timeout, or when the caller
        // is dropped (an HTTP client gone, a Postgres cancel request).
        let _abort = AbortOnDrop(task.abort_handle());
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(result)) => result.map_err(|e| classify(e, &self.inner.data_dir)),
            Ok(Err(join)) => Err(QueryError::Internal(format!("query task: {join}"))),
            Err(_) => Err(QueryError::Timeout(timeout)),
        }
    }

    /// A slot among `principal`'s company's running queries, waited for until `deadline`
    /// (the admin's queries are not counted).
    async fn company_slot(
        &self,
        principal: &Principal,
        deadline: tokio::time::Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, QueryError> {
        let Principal::Company(company) = principal else {
            return Ok(None);
        };
        let slots = self
            .inner
            .company_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(company.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.company_queries)))
            .clone();
        match tokio::time::timeout_at(deadline, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(_closed)) => Err(QueryError::Internal("company query slots closed".into())),
            Err(_) => Err(QueryError::Busy(format!(
                "this company's {} queries at once are all running; retry when one ends",
                self.inner.company_queries
            ))),
        }
    }

    /// Parses, checks and plans `sql` for `principal`: the DataFrame, not yet run.
    pub async fn plan(&self, principal: &Principal, sql: &str) -> DfResult<Planned> {
        self.inner
            .queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (ctx, live) = self.session(principal)?;
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        crate::sql::bounds::check(sql, dialect.as_ref())?;
        let mut statement = state.sql_to_statement(sql, &dialect)?;
        read_only(&statement)?;
        pg_catalog::unqualify_functions(&mut statement);
        let plan = state.statement_to_plan(statement).await?;
        verify_read_only(&plan)?;
        if let (LogicalPlan::Analyze(_), Principal::Company(_)) = (&plan, principal) {
            // Its counters (rows scanned, row groups pruned by statistics) count every
            // company's rows in the files a scan reads: an oracle for another's data.
            return Err(DataFusionError::Plan(
                "EXPLAIN ANALYZE is for the admin token: its counters cover the rows of every \
                 company in the files a scan reads. EXPLAIN (without ANALYZE) is allowed"
                    .to_owned(),
            ));
        }
        Ok((ctx.execute_logical_plan(plan).await?, live))
    }
}

/// Aborts a query task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A query ready to run, and the live snapshot its live tables share.
pub type Planned = (DataFrame, Option<Arc<LiveSnapshotOnce>>);

/// Runs `df`, keeping at most `limit` rows.
async fn collect(
    df: DataFrame,
    live: Option<Arc<LiveSnapshotOnce>>,
    limit: usize,
    data_dir: &Path,
    company: bool,
) -> DfResult<SqlAnswer> {
    let schema = df.schema().inner().clone();
    // One row more than asked, to tell whether the answer was cut (an EXPLAIN stays the root).
    let (df, explain) = match df.logical_plan() {
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => (df, true),
        _ => (df.limit(0, Some(limit + 1))?, false),
    };
    let mut batches = df.collect().await?;
    if explain {
        for batch in &mut batches {
            *batch = redact_plan(batch, data_dir, company)?;
        }
    }
    let mut kept = 0;
    let mut truncated = false;
    for batch in &mut batches {
        if kept + batch.num_rows() > limit {
            *batch = batch.slice(0, limit - kept);
            truncated = true;
        }
        kept += batch.num_rows();
    }
    batches.retain(|b| b.num_rows() > 0);
    Ok(SqlAnswer {
        schema,
        batches,
        truncated,
        upto_ms: live.and_then(|l| l.upto_ms()),
    })
}

/// An `EXPLAIN` answer as a caller may see it. Plans name files by their absolute paths:
/// shown under `<data>`. For a company, the plans with statistics (`EXPLAIN VERBOSE`'s
/// `*_with_stats`) are left out: the files' row counts and min/max values describe every
/// company's rows (the planner still uses them: they order sorted files and prune row groups).
fn redact_plan(batch: &RecordBatch, data_dir: &Path, company: bool) -> DfResult<RecordBatch> {
    let batch = match batch
        .column_by_name("plan_type")
        .map(|c| c.as_any().downcast_ref::<StringArray>())
    {
        Some(Some(plan_type)) if company => {
            let keep: BooleanArray = plan_type
                .iter()
                .map(|t| Some(!t.is_some_and(|t| t.contains("with_stats"))))
                .collect();
            filter_record_batch(batch, &keep)?
        }
        _ => batch.clone(),
    };
    let columns = batch
        .columns()
        .iter()
        .map(
            |column| match column.as_any().downcast_ref::<StringArray>() {
                Some(text) => Arc::new(
                    text.iter()
                        .map(|v| v.map(|v| redact_paths(v, data_dir)))
                        .collect::<StringArray>(),
                ) as ArrayRef,
                None => column.clone(),
            },
        )
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Rejects, before planning, anything but a query (`fleetflow SQL is read-only`).
fn read_only(statement: &DfStatement) -> DfResult<()> {
    let refused = |what: String| {
        Err(DataFusionError::Plan(format!(
            "{what} is not allowed: fleetflow SQL is read-only ({ALLOWED})"
        )))
    };
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::Query(_) | SqlStatement::ShowTables { .. } => Ok(()),
            SqlStatement::ShowColumns { .. } => Ok(()),
            // Settings are the server's, fixed for every session: nothing to show or set.
            SqlStatement::ShowVariable { .. } | SqlStatement::ShowVariables { .. } => {
                Err(DataFusionError::Plan(format!(
                    "SHOW of settings is not available: a session's settings are fixed by the \
                     server (this door answers {ALLOWED})"
                )))
            }
            SqlStatement::Explain { statement, .. } => {
                read_only(&DfStatement::Statement(statement.clone()))
            }
            other => refused(keyword(&other.to_string())),
        },
        DfStatement::Explain(e) => read_only(&e.statement),
        DfStatement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE".into()),
        DfStatement::CopyTo(_) => refused("COPY".into()),
        DfStatement::Reset(_) => refused("RESET".into()),
    }
}

/// The statement's leading keywords, for the error message (`INSERT`, `CREATE TABLE`).
fn keyword(sql: &str) -> String {
    let words: Vec<&str> = sql
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .take(2)
        .collect();
    match words.as_slice() {
        [first, second] if ["CREATE", "DROP", "ALTER"].contains(first) => {
            format!("{first} {second}")
        }
        [first, ..] => (*first).to_owned(),
        [] => "this statement".to_owned(),
    }
}

/// The second line: whatever the statement was, its plan may not define, write or set.
fn verify_read_only(plan: &LogicalPlan) -> DfResult<()> {
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
}
