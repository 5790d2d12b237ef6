//! What a failed query tells its caller: DataFusion's errors classified, by an exhaustive
//! match, into the caller's mistake (400, with where in the SQL when known), a busy server
//! (503) or an internal failure (500, details logged, never sent).

use std::path::Path;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use crate::error::QueryError;

/// The client-facing error for `e`. Paths under the data directory are not shown.
pub fn classify(e: DataFusionError, data_dir: &Path) -> QueryError {
    let (line, column) = position(&e);
    let redact = |message: String| redact_paths(&message, data_dir);
    let root = e.find_root();
    let mistake = match root {
        // The SQL does not parse, names something that is not there, or asks for something
        // unsupported or refused (read-only).
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_) => true,
        // Running it failed on the data: a cast, a division by zero, an overflow.
        DataFusionError::Execution(_) => true,
        DataFusionError::ArrowError(arrow, _) => user_arrow_error(arrow),
        DataFusionError::ResourcesExhausted(message) => {
            return QueryError::Busy(format!(
                "the query needs more memory than is free now ({}); narrow it or retry",
                redact(message.clone())
            ));
        }
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_)
        | DataFusionError::Internal(_)
        | DataFusionError::ExecutionJoin(_)
        | DataFusionError::External(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Ffi(_) => false,
        // find_root looks through these; a collection's first error speaks for it.
        DataFusionError::Context(..)
        | DataFusionError::Diagnostic(..)
        | DataFusionError::Shared(_)
        | DataFusionError::Collection(_) => true,
    };
    if !mistake {
        return QueryError::Internal(e.to_string());
    }
    let message = match (e.diagnostic(), root) {
        (Some(d), _) => d.message.clone(),
        (None, DataFusionError::SQL(parser, _)) => parser.to_string(),
        (None, root) => root.message().into_owned(),
    };
    QueryError::Sql {
        message: redact(message),
        line,
        column,
    }
}

/// `text` with the data directory, as given or absolute, shown as `<data>` (plans show paths
/// without the leading '/'): no answer tells where the server keeps its files.
pub fn redact_paths(text: &str, data_dir: &Path) -> String {
    // Tables are listed at the canonical path (the engine canonicalizes its data dir), and
    // plans may show it as a URL path: spaces and non-ASCII characters percent-encoded.
    let absolute = std::fs::canonicalize(data_dir)
        .or_else(|_| std::path::absolute(data_dir))
        .unwrap_or_else(|_| data_dir.to_owned());
    let dir = absolute.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    if dir.trim_start_matches('/').is_empty() {
        return text.to_owned();
    }
    let encoded: String = dir
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut text = text.to_owned();
    for form in [dir, encoded.as_str()] {
        text = text
            .replace(form, "<data>")
            .replace(form.trim_start_matches('/'), "<data>");
    }
    text
}

fn user_arrow_error(e: &ArrowError) -> bool {
    match e {
        ArrowError::CastError(_)
        | ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::ParseError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::SchemaError(_)
        | ArrowError::NotYetImplemented(_) => true,
        ArrowError::ExternalError(_)
        | ArrowError::MemoryError(_)
        | ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::AvroError(_)
        | ArrowError::IoError(..)
        | ArrowError::IpcError(_)
        | ArrowError::ParquetError(_)
        | ArrowError::CDataInterface(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError
        | ArrowError::OffsetOverflowError(_) => false,
    }
}

/// Where in the SQL the error is (1-based line and column), from the planner's diagnostic or
/// the parser's `at Line: l, Column: c`.
fn position(e: &DataFusionError) -> (Option<u64>, Option<u64>) {
    if let Some(span) = e.diagnostic().and_then(|d| d.span)
        && span.start.line > 0
    {
        return (Some(span.start.line), Some(span.start.column));
    }
    let text = e.to_string();
    let number_after = |label: &str| -> Option<u64> {
        let rest = &text[text.rfind(label)? + label.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    (number_after("Line:"), number_after("Column:"))
}

/// Whether the query failed because a file it had listed is gone (a compaction swapped its
/// partition in between): listing again answers it.
pub fn is_vanished_file(e: &DataFusionError) -> bool {
    let not_found = |e: &DataFusionError| match e {
        DataFusionError::IoError(io) => io.kind() == std::io::ErrorKind::NotFound,
        DataFusionError::ObjectStore(os) => os.to_string().contains("not found"),
        DataFusionError::ParquetError(p) => p.to_string().contains("No such file"),
        DataFusionError::External(x) => x.to_string().contains("No such file"),
        _ => false,
    };
    not_found(e) || not_found(e.find_root()) || e.to_string().contains("No such file or directory")
}
