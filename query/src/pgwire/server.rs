//! The Postgres wire protocol: psql, psycopg, pandas and other Postgres clients query the same
//! engine as `POST /v1/sql`, with the same scoping, read-only checks, timeout and row limit.
//!
//! - Login: user = company id (or `admin`), password = a token ([`crate::pgwire::auth`]).
//! - Simple and extended protocol. Extended statements may have `$1`, `$2`, ... placeholders;
//!   values come as text or binary and are cast to the type the plan gives the placeholder
//!   ([`crate::sql::params`]). Results go out in the format each column is asked in.
//! - Session commands drivers send on their own are answered without touching data:
//!   `BEGIN`/`START TRANSACTION`, `COMMIT`/`END`, `ROLLBACK`/`ABORT` (every statement reads
//!   committed files, so a transaction changes nothing), and `SET`/`RESET`/`DISCARD`, which
//!   are accepted and ignored (a session's settings are fixed).
//! - `SHOW <setting>` for the server settings drivers ask about (`server_version`,
//!   `standard_conforming_strings`, `transaction isolation level`, ...; [`crate::pgwire::catalog`]),
//!   and an empty statement (`;`, a comment: drivers' pings) gets `EmptyQueryResponse`.
//! - A cancel request (psql's Ctrl-C) stops the connection's running query (SQLSTATE 57014).
//! - An answer longer than `[query] max_rows` is an error (SQLSTATE 54000), not a silently
//!   cut result: the wire has no way to say "truncated".
//! - Errors carry SQLSTATEs (42601 for the caller's SQL, with the position psql points at;
//!   25006 for a write; 57014 after the timeout; 53000 when short of memory; XX000, without
//!   detail, for internal failures).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use fleetflow_model::{Principal, Tenants};
use futures::{Sink, stream};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::PgWireFrontendMessage;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::error::QueryError;
use crate::pgwire::auth::{TokenStartup, connection_principal};
use crate::pgwire::catalog::{self as pg_catalog, Setting};
use crate::pgwire::types::{data_rows, fields, params, pg_type};
use crate::sql::engine::{SqlAnswer, SqlEngine};
use crate::sql::params::Param;

/// Everything a connection needs: the engine and the tenants its logins are checked against.
#[derive(Debug)]
pub struct PgServer {
    startup: Arc<TokenStartup>,
    queries: Arc<PgQueries>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgServer {
    pub fn new(engine: SqlEngine, tenants: Arc<Tenants>) -> PgServer {
        let connections = Arc::new(ConnectionManager::new());
        PgServer {
            cancel: Arc::new(DefaultCancelHandler::new(connections.clone())),
            startup: Arc::new(TokenStartup::new(
                tenants,
                connections,
                engine.config().postgres_connections,
            )),
            queries: Arc::new(PgQueries {
                engine,
                parser: Arc::new(PgParser),
            }),
        }
    }
}

impl PgWireServerHandlers for PgServer {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// A client must log in this soon after connecting, or its connection is closed: a
/// connection that never sends a start-up message holds no slot, but it holds a socket.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// Connections accepted and not yet logged in; beyond this, new ones are closed at once.
const MAX_STARTING: usize = 1024;

/// One connection's handlers: the server's, and a start-up handler that says when the client
/// has logged in (which ends its start-up deadline).
struct Connection {
    server: Arc<PgServer>,
    startup: Arc<ConnectionStartup>,
}

struct ConnectionStartup {
    shared: Arc<TokenStartup>,
    logged_in: Arc<Notify>,
}

#[async_trait]
impl StartupHandler for ConnectionStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.shared.on_startup(client, message).await?;
        if connection_principal(client).is_ok() {
            self.logged_in.notify_one();
        }
        Ok(())
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.server.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.server.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.server.cancel.clone()
    }
}

/// Accepts Postgres connections on `listener` until `shutdown` completes. A connection must log
/// in within [`STARTUP_DEADLINE`]; `[query] postgres_connections` bounds those logged in (a
/// login past it is refused with SQLSTATE 53300), so clients that connect and say nothing
/// cannot take the slots of those who log in.
pub async fn serve_postgres(
    listener: TcpListener,
    server: Arc<PgServer>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let starting = Arc::new(Semaphore::new(MAX_STARTING));
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: keep serving the connections we have.
                    tracing::warn!(error = %e, "accepting a postgres connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let Ok(start) = starting.clone().try_acquire_owned() else {
            tracing::warn!(peer = %peer, "postgres: {MAX_STARTING} connections are logging in; closing a new one");
            continue;
        };
        let logged_in = Arc::new(Notify::new());
        let connection = Connection {
            server: server.clone(),
            startup: Arc::new(ConnectionStartup {
                shared: server.startup.clone(),
                logged_in: logged_in.clone(),
            }),
        };
        tokio::spawn(async move {
            let process = pgwire::tokio::process_socket(socket, None, connection);
            tokio::pin!(process);
            let ended = tokio::select! {
                ended = &mut process => Some(ended),
                () = logged_in.notified() => None,
                () = tokio::time::sleep(STARTUP_DEADLINE) => {
                    tracing::debug!(peer = %peer, "postgres connection closed: no login within {STARTUP_DEADLINE:?}");
                    return;
                }
            };
            drop(start);
            let ended = match ended {
                Some(ended) => ended,
                None => process.await,
            };
            if let Err(e) = ended {
                tracing::debug!(peer = %peer, error = %e, "postgres connection ended");
            }
        });
    }
}

/// A statement as the wire sees it.
#[derive(Debug, Clone)]
pub enum PgStatement {
    /// Nothing but blanks, `;` and comments (a driver's ping: lib/pq sends `;`, pgx
    /// `-- ping`): answered with `EmptyQueryResponse`, as Postgres does.
    Empty,
    /// A transaction or settings command, answered with this tag and no data.
    Session(SessionCommand),
    /// `SHOW <server setting>`: one row, one column named after the setting.
    Show(&'static Setting),
    Sql(Arc<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    Begin,
    Commit,
    Rollback,
    Set,
    Reset,
    Discard,
}

impl PgStatement {
    pub fn new(sql: &str) -> PgStatement {
        if is_empty(sql) {
            return PgStatement::Empty;
        }
        let words: Vec<String> = sql
            .split_whitespace()
            .take(2)
            .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
            .collect();
        let first = words.first().map(String::as_str).unwrap_or_default();
        let second = words.get(1).map(String::as_str).unwrap_or_default();
        let session = match (first, second) {
            ("BEGIN", _) | ("START", "TRANSACTION") => Some(SessionCommand::Begin),
            ("COMMIT" | "END", _) => Some(SessionCommand::Commit),
            ("ROLLBACK" | "ABORT", _) => Some(SessionCommand::Rollback),
            ("SET", _) => Some(SessionCommand::Set),
            ("RESET", _) => Some(SessionCommand::Reset),
            ("DISCARD", _) => Some(SessionCommand::Discard),
            _ => None,
        };
        if let Some(command) = session {
            return PgStatement::Session(command);
        }
        if first == "SHOW" {
            // `SHOW TABLES` and `SHOW COLUMNS` are SQL; a server setting is answered here.
            let rest = sql.trim().trim_end_matches(';');
            if let Some(setting) = rest.get(4..).and_then(pg_catalog::setting) {
                return PgStatement::Show(setting);
            }
        }
        PgStatement::Sql(sql.into())
    }
}

/// The statements of a simple-protocol message, split at the `;` between them by the tokenizer
/// (flat, unlike parsing: this runs on the serving threads, whose stack is not sized for deep
/// expressions; each statement is parsed, after its bounds are checked, on the query threads).
/// A message of one statement is kept as sent.
fn split_statements(query: &str) -> Vec<String> {
    let dialect = datafusion::sql::sqlparser::dialect::GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, query).tokenize_with_location() else {
        return vec![query.to_owned()];
    };
    // Token locations are (line, column), 1-based, columns in characters.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(query.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(column).ok()?.checked_sub(1)?;
        query[start..]
            .char_indices()
            .nth(column)
            .map(|(i, _)| start + i)
    };
    let mut statements = Vec::new();
    let mut from = 0;
    for token in tokens.iter().filter(|t| t.token == Token::SemiColon) {
        let Some(at) = offset(token.span.start.line, token.span.start.column) else {
            return vec![query.to_owned()];
        };
        statements.push(query[from..at].to_owned());
        from = at + 1;
    }
    statements.push(query[from..].to_owned());
    statements.retain(|s| !is_empty(s));
    if statements.len() > 1 {
        statements
    } else {
        vec![query.to_owned()]
    }
}

/// Whether `sql` holds no statement: only whitespace, `;`, `--` and `/* */` comments.
fn is_empty(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            match comment.split_once("*/") {
                Some((_, after)) => rest = after,
                None => return false,
            }
        } else {
            return rest.is_empty();
        }
    }
}

/// A setting's value as a one-row answer.
fn show(setting: &Setting) -> SqlAnswer {
    let schema = Arc::new(Schema::new(vec![Field::new(
        setting.name,
        DataType::Utf8,
        false,
    )]));
    let column: ArrayRef = Arc::new(StringArray::from(vec![setting.value]));
    let batch = RecordBatch::try_new(schema.clone(), vec![column]).expect("one text column");
    SqlAnswer {
        schema,
        batches: vec![batch],
        truncated: false,
        upto_ms: None,
    }
}

impl SessionCommand {
    fn response(self) -> Response {
        match self {
            SessionCommand::Begin => Response::TransactionStart(Tag::new("BEGIN")),
            SessionCommand::Commit => Response::TransactionEnd(Tag::new("COMMIT")),
            SessionCommand::Rollback => Response::TransactionEnd(Tag::new("ROLLBACK")),
            SessionCommand::Set => Response::Execution(Tag::new("SET")),
            SessionCommand::Reset => Response::Execution(Tag::new("RESET")),
            SessionCommand::Discard => Response::Execution(Tag::new("DISCARD ALL")),
        }
    }
}

/// Statements are kept as text; planning happens per principal at describe and execute.
#[derive(Debug)]
pub struct PgParser;

#[async_trait]
impl QueryParser for PgParser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Ok(Some(PgStatement::new(sql)))
    }

    fn get_parameter_types(&self, _stmt: &PgStatement) -> PgWireResult<Vec<Type>> {
        Ok(Vec::new())
    }

    fn get_result_schema(
        &self,
        _stmt: &PgStatement,
        _format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

/// Runs statements for both protocols.
#[derive(Debug)]
pub struct PgQueries {
    engine: SqlEngine,
    parser: Arc<PgParser>,
}

impl PgQueries {
    /// Runs `sql` with `params` and shapes the answer for the wire. pgwire races this against
    /// the connection's cancel request (the handle [`TokenStartup`] registers) and drops it on
    /// a cancel, which aborts the query's task (SQLSTATE 57014).
    async fn run(
        &self,
        principal: &Principal,
        sql: &str,
        params: Vec<Param>,
        format: &Format,
    ) -> Result<Response, PgWireError> {
        let answer = self
            .engine
            .query_with(principal, sql, params.into(), None)
            .await
            .map_err(|e| wire_error(e, sql))?;
        self.respond(answer, format)
    }

    /// `sql`'s columns and placeholder types, planned as the connection's principal.
    async fn describe<C: ClientInfo>(
        &self,
        client: &C,
        sql: &str,
    ) -> PgWireResult<(SchemaRef, Vec<Option<DataType>>)> {
        let principal = connection_principal(client)?;
        self.engine
            .describe(&principal, sql)
            .await
            .map_err(|e| wire_error(e, sql))
    }

    fn respond(&self, answer: SqlAnswer, format: &Format) -> PgWireResult<Response> {
        if answer.truncated {
            let max = self.engine.config().max_rows;
            return Err(crate::pgwire::types::user_error(
                "54000",
                format!(
                    "the answer has more than {max} rows ([query] max_rows): narrow it with WHERE, aggregate it, or add LIMIT"
                ),
            ));
        }
        let fields = Arc::new(fields(&answer.schema, format));
        let rows = data_rows(&answer.batches, fields.clone())?;
        Ok(Response::Query(QueryResponse::new(
            fields,
            stream::iter(rows.into_iter().map(Ok)),
        )))
    }
}

#[async_trait]
impl SimpleQueryHandler for PgQueries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let principal = connection_principal(client)?;
        // Several statements in one message run one after another, stopping at the first
        // error, as Postgres does; one statement keeps its text (and error positions) as sent.
        let statements = split_statements(query);
        let mut responses = Vec::with_capacity(statements.len());
        for sql in statements {
            let response = match PgStatement::new(&sql) {
                PgStatement::Empty => Ok(Response::EmptyQuery),
                PgStatement::Session(command) => Ok(command.response()),
                PgStatement::Show(setting) => self.respond(show(setting), &Format::UnifiedText),
                PgStatement::Sql(sql) => {
                    self.run(&principal, &sql, Vec::new(), &Format::UnifiedText)
                        .await
                }
            };
            match response {
                Ok(response) => responses.push(response),
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for PgQueries {
    type Statement = PgStatement;
    type QueryParser = PgParser;

    fn query_parser(&self) -> Arc<PgParser> {
        self.parser.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<PgStatement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PgStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = match &target.statement {
            PgStatement::Sql(sql) => sql,
            PgStatement::Show(setting) => {
                let fields = fields(&show(setting).schema, &Format::UnifiedText);
                return Ok(DescribeStatementResponse::new(Vec::new(), fields));
            }
            PgStatement::Empty | PgStatement::Session(_) => {
                return Ok(DescribeStatementResponse::no_data());
            }
        };
        let (schema, planned) = self.describe(client, sql).await?;
        // The client's types where it named them, else the plan's; untyped ones are text.
        let count = planned.len().max(target.parameter_types.len());
        let types = (0..count)
            .map(|i| {
                let client = target.parameter_types.get(i).cloned().flatten();
                let plan = planned.get(i).cloned().flatten().map(|t| pg_type(&t));
                client.or(plan).unwrap_or(Type::TEXT)
            })
            .collect();
        Ok(DescribeStatementResponse::new(
            types,
            fields(&schema, &Format::UnifiedText),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PgStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = match &portal.statement.statement {
            PgStatement::Sql(sql) => sql,
            PgStatement::Show(setting) => {
                let schema = show(setting).schema;
                return Ok(DescribePortalResponse::new(fields(
                    &schema,
                    &portal.result_column_format,
                )));
            }
            PgStatement::Empty | PgStatement::Session(_) => {
                return Ok(DescribePortalResponse::no_data());
            }
        };
        let (schema, _) = self.describe(client, sql).await?;
        Ok(DescribePortalResponse::new(fields(
            &schema,
            &portal.result_column_format,
        )))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PgStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = match &portal.statement.statement {
            PgStatement::Empty => return Ok(Response::EmptyQuery),
            PgStatement::Session(command) => return Ok(command.response()),
            PgStatement::Show(setting) => {
                return self.respond(show(setting), &portal.result_column_format);
            }
            PgStatement::Sql(sql) => sql.clone(),
        };
        let principal = connection_principal(client)?;
        let types: Vec<Type> = portal
            .statement
            .parameter_types
            .iter()
            .map(|t| t.clone().unwrap_or(Type::UNKNOWN))
            .collect();
        let values = params(portal, &types)?;
        self.run(&principal, &sql, values, &portal.result_column_format)
            .await
    }
}

/// `e` as a Postgres error, with its SQLSTATE and, for a mistake in `sql`, the position.
pub fn wire_error(e: QueryError, sql: &str) -> PgWireError {
    let code = match &e {
        QueryError::Sql { message, .. } if message.contains("read-only") => "25006",
        QueryError::Sql { .. } => "42601",
        QueryError::Timeout(_) => "57014",
        QueryError::Busy(_) => "53000",
        QueryError::Unauthorized => "28000",
        QueryError::BadParameter { .. } => "22023",
        QueryError::NotFound(_) => "42704",
        QueryError::CursorExpired { .. } | QueryError::Unavailable => "55000",
        QueryError::Internal(_) => "XX000",
    };
    let message = match &e {
        QueryError::Internal(detail) => {
            tracing::error!(detail = %detail, "internal query error (postgres wire)");
            "internal error".to_owned()
        }
        other => other.to_string(),
    };
    let mut info = ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message);
    if let QueryError::Sql {
        line: Some(line),
        column: Some(column),
        ..
    } = e
    {
        info.position = position(sql, line, column).map(|p| p.to_string());
    }
    PgWireError::UserError(Box::new(info))
}

/// The 1-based character index of (`line`, `column`) in `sql`, as Postgres reports positions.
fn position(sql: &str, line: u64, column: u64) -> Option<usize> {
    let mut index = 0;
    for (n, text) in sql.split('\n').enumerate() {
        if n as u64 + 1 == line {
            let column = usize::try_from(column).ok()?;
            return (column >= 1 && column <= text.chars().count() + 1).then_some(index + column);
        }
        index += text.chars().count() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_commands_are_recognised() {
        for (sql, command) in [
            ("BEGIN", SessionCommand::Begin),
            ("start transaction read only", SessionCommand::Begin),
            ("commit;", SessionCommand::Commit),
            ("ROLLBACK", SessionCommand::Rollback),
            ("SET extra_float_digits = 3", SessionCommand::Set),
            ("discard all", SessionCommand::Discard),
        ] {
            assert!(
                matches!(PgStatement::new(sql), PgStatement::Session(c) if c == command),
                "{sql}"
            );
        }
        assert!(matches!(PgStatement::new("SELECT 1"), PgStatement::Sql(_)));
        for empty in ["", " ;", "-- ping", ";\n/* a */ -- b\n"] {
            assert!(
                matches!(PgStatement::new(empty), PgStatement::Empty),
                "{empty:?}"
            );
        }
        assert!(matches!(PgStatement::new("/* open"), PgStatement::Sql(_)));
        assert!(matches!(
            PgStatement::new("SHOW TRANSACTION ISOLATION LEVEL;"),
            PgStatement::Show(s) if s.name == "transaction_isolation"
        ));
        assert!(matches!(
            PgStatement::new("SHOW TABLES"),
            PgStatement::Sql(_)
        ));
        assert!(matches!(
            PgStatement::new("settings_table"),
            PgStatement::Sql(_)
        ));
    }

    #[test]
    fn positions_count_characters_across_lines() {
        let sql = "SELECT a\nFROM  t";
        assert_eq!(position(sql, 1, 1), Some(1));
        assert_eq!(position(sql, 2, 7), Some(16));
        assert_eq!(position(sql, 3, 1), None);
    }
}

#[cfg(test)]
mod split_tests {
    use super::split_statements;

    #[test]
    fn statements_split_at_semicolons_outside_strings_and_comments() {
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
        assert_eq!(split_statements("SELECT 1;"), ["SELECT 1;"]);
        assert_eq!(
            split_statements("SELECT 'a;b''c';\n-- x;\nSELECT \"é;\", 2 ; ;"),
            ["SELECT 'a;b''c'", "\n-- x;\nSELECT \"é;\", 2 "]
        );
        // Flat, however deep the expression: no parse tree is built here.
        let deep = format!("SELECT {}1; SELECT 2", "1+".repeat(500_000));
        assert_eq!(split_statements(&deep).len(), 2);
    }
}
