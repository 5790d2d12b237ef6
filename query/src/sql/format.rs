//! The formats a SQL answer is sent in: JSON rows (the default), CSV, Arrow IPC stream and
//! Parquet, chosen by `?format=` or else by `Accept`.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::json;

use crate::error::QueryError;
use crate::sql::engine::SqlAnswer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlFormat {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl SqlFormat {
    pub const NAMES: [&str; 4] = ["json", "csv", "arrow", "parquet"];

    pub fn parse(name: &str) -> Option<SqlFormat> {
        match name {
            "json" => Some(SqlFormat::Json),
            "csv" => Some(SqlFormat::Csv),
            "arrow" => Some(SqlFormat::Arrow),
            "parquet" => Some(SqlFormat::Parquet),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            SqlFormat::Json => "application/json",
            SqlFormat::Csv => "text/csv; charset=utf-8",
            SqlFormat::Arrow => "application/vnd.apache.arrow.stream",
            SqlFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// `?format=` wins; else the first `Accept` type we make; else JSON.
    pub fn choose(param: Option<&str>, headers: &HeaderMap) -> Result<SqlFormat, QueryError> {
        if let Some(name) = param {
            return SqlFormat::parse(name).ok_or_else(|| {
                QueryError::bad(
                    "format",
                    format!(
                        "{name:?} is not a format: use one of {:?}",
                        SqlFormat::NAMES
                    ),
                )
            });
        }
        let accept = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let chosen = accept.split(',').find_map(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            [
                SqlFormat::Json,
                SqlFormat::Csv,
                SqlFormat::Arrow,
                SqlFormat::Parquet,
            ]
            .into_iter()
            .find(|f| f.content_type().starts_with(t) && !t.is_empty())
        });
        Ok(chosen.unwrap_or(SqlFormat::Json))
    }

    pub fn encode(self, answer: &SqlAnswer) -> Result<Vec<u8>, ArrowError> {
        match self {
            SqlFormat::Json => json_answer(answer),
            SqlFormat::Csv => {
                let mut out = Vec::new();
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if answer.batches.is_empty() {
                    w.write(&RecordBatch::new_empty(answer.schema.clone()))?;
                }
                for b in &answer.batches {
                    w.write(b)?;
                }
                drop(w);
                Ok(out)
            }
            SqlFormat::Arrow => {
                let mut out = Vec::new();
                let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &answer.schema)?;
                for b in &answer.batches {
                    w.write(b)?;
                }
                w.finish()?;
                drop(w);
                Ok(out)
            }
            SqlFormat::Parquet => parquet_bytes(&answer.schema, &answer.batches)
                .map_err(|e| ArrowError::ExternalError(Box::new(e))),
        }
    }
}

/// The rows as JSON objects (`[{...}, ...]`), nulls written out.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<u8>, ArrowError> {
    let mut rows = Vec::new();
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(&mut rows);
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    if rows.is_empty() {
        rows.extend_from_slice(b"[]");
    }
    Ok(rows)
}

/// `{"columns": [{name, type}], "rows": [...], "row_count", "truncated", "upto_ms"}`.
fn json_answer(answer: &SqlAnswer) -> Result<Vec<u8>, ArrowError> {
    let columns: Vec<_> = answer
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    let head = json!({
        "columns": columns,
        "row_count": answer.rows(),
        "truncated": answer.truncated,
        "upto_ms": answer.upto_ms,
    });
    let mut out = serde_json::to_vec(&head).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    // Splice the rows in as the last member.
    out.pop();
    out.extend_from_slice(b",\"rows\":");
    out.extend_from_slice(&json_rows(&answer.batches)?);
    out.push(b'}');
    Ok(out)
}

fn parquet_bytes(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(out)
}
