//! Arrow columns as Postgres types, rows as Postgres `DataRow`s, and bound parameters as
//! [`Param`]s.
//!
//! Each Arrow type maps to the Postgres type a client expects for it (`Int32` → `int4`,
//! `Timestamp(_, UTC)` → `timestamptz`, `Date32` → `date`, ...); anything without a natural
//! counterpart (intervals, decimals, lists) goes out as `text`, in Arrow's display form. Rows
//! are encoded in the format each column was asked in (text, or binary in the extended
//! protocol).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    TimeUnit, TimestampMicrosecondType,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use datafusion::common::ScalarValue;
use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{DataRowEncoder, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

use crate::sql::params::Param;

/// The Postgres type a column of `data_type` is sent as.
pub fn pg_type(data_type: &DataType) -> Type {
    match wire_type(data_type) {
        Wire::Bool => Type::BOOL,
        Wire::Int2 => Type::INT2,
        Wire::Int4 => Type::INT4,
        Wire::Int8 => Type::INT8,
        Wire::Float4 => Type::FLOAT4,
        Wire::Float8 => Type::FLOAT8,
        Wire::Text | Wire::Display => Type::TEXT,
        Wire::Bytea => Type::BYTEA,
        Wire::Date => Type::DATE,
        Wire::Timestamp => Type::TIMESTAMP,
        Wire::Timestamptz => Type::TIMESTAMPTZ,
    }
}

/// The row description of `schema`, each column in the format `format` asks for.
pub fn fields(schema: &SchemaRef, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                pg_type(f.data_type()),
                format.format_for(i),
            )
        })
        .collect()
}

/// How a column goes on the wire; the Arrow column is first cast to the one type named in
/// [`Wire::arrow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Bytea,
    Date,
    Timestamp,
    Timestamptz,
    /// No Postgres counterpart: Arrow's display text.
    Display,
}

fn wire_type(data_type: &DataType) -> Wire {
    use DataType as D;
    match data_type {
        D::Boolean => Wire::Bool,
        D::Int8 | D::Int16 | D::UInt8 => Wire::Int2,
        D::Int32 | D::UInt16 => Wire::Int4,
        D::Int64 | D::UInt32 | D::UInt64 => Wire::Int8,
        D::Float16 | D::Float32 => Wire::Float4,
        D::Float64 => Wire::Float8,
        D::Utf8 | D::LargeUtf8 | D::Utf8View | D::Null => Wire::Text,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => Wire::Bytea,
        D::Date32 | D::Date64 => Wire::Date,
        D::Timestamp(_, None) => Wire::Timestamp,
        D::Timestamp(_, Some(_)) => Wire::Timestamptz,
        _ => Wire::Display,
    }
}

impl Wire {
    /// The Arrow type values are read from (`None`: formatted for display).
    fn arrow(self, original: &DataType) -> Option<DataType> {
        Some(match self {
            Wire::Bool => DataType::Boolean,
            Wire::Int2 => DataType::Int16,
            Wire::Int4 => DataType::Int32,
            Wire::Int8 => DataType::Int64,
            Wire::Float4 => DataType::Float32,
            Wire::Float8 => DataType::Float64,
            Wire::Text => DataType::Utf8,
            Wire::Bytea => DataType::Binary,
            Wire::Date => DataType::Date32,
            Wire::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Wire::Timestamptz => match original {
                DataType::Timestamp(_, tz) => {
                    DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                }
                _ => return None,
            },
            Wire::Display => return None,
        })
    }
}

/// One column of a batch, cast for the wire.
struct WireColumn {
    wire: Wire,
    values: ArrayRef,
}

impl WireColumn {
    fn new(column: &ArrayRef) -> PgWireResult<WireColumn> {
        let wire = wire_type(column.data_type());
        let values = match wire.arrow(column.data_type()) {
            Some(t) if t == *column.data_type() => column.clone(),
            // Not `safe`: a u64 beyond int8 is an error, not a silent NULL.
            Some(t) => cast_with_options(column, &t, &CastOptions::default()).map_err(api)?,
            None => display(column)?,
        };
        Ok(WireColumn { wire, values })
    }

    fn encode(&self, row: usize, encoder: &mut DataRowEncoder) -> PgWireResult<()> {
        let v = &self.values;
        if v.is_null(row) {
            return encoder.encode_field(&None::<i16>);
        }
        match self.wire {
            Wire::Bool => encoder.encode_field(&v.as_boolean().value(row)),
            Wire::Int2 => encoder.encode_field(&v.as_primitive::<Int16Type>().value(row)),
            Wire::Int4 => encoder.encode_field(&v.as_primitive::<Int32Type>().value(row)),
            Wire::Int8 => encoder.encode_field(&v.as_primitive::<Int64Type>().value(row)),
            Wire::Float4 => encoder.encode_field(&v.as_primitive::<Float32Type>().value(row)),
            Wire::Float8 => encoder.encode_field(&v.as_primitive::<Float64Type>().value(row)),
            Wire::Text | Wire::Display => encoder.encode_field(&v.as_string::<i32>().value(row)),
            Wire::Bytea => encoder.encode_field(&v.as_binary::<i32>().value(row)),
            Wire::Date => {
                let date = v.as_primitive::<Date32Type>().value_as_date(row);
                encoder.encode_field(&date)
            }
            Wire::Timestamp => {
                let at = v.as_primitive::<TimestampMicrosecondType>();
                encoder.encode_field(&at.value_as_datetime(row))
            }
            Wire::Timestamptz => {
                let micros = v.as_primitive::<TimestampMicrosecondType>().value(row);
                encoder.encode_field(&DateTime::<Utc>::from_timestamp_micros(micros))
            }
        }
    }
}

/// `column` as display text (its nulls kept).
fn display(column: &ArrayRef) -> PgWireResult<ArrayRef> {
    let formatter =
        ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default()).map_err(api)?;
    let mut out = StringBuilder::with_capacity(column.len(), column.len() * 8);
    for i in 0..column.len() {
        if column.is_null(i) {
            out.append_null();
        } else {
            out.append_value(formatter.value(i).to_string());
        }
    }
    Ok(Arc::new(out.finish()) as ArrayRef)
}

/// Every row of `batches` as a `DataRow` described by `fields`.
pub fn data_rows(
    batches: &[RecordBatch],
    fields: Arc<Vec<FieldInfo>>,
) -> PgWireResult<Vec<DataRow>> {
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let mut encoder = DataRowEncoder::new(fields);
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(WireColumn::new)
            .collect::<PgWireResult<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            for column in &columns {
                column.encode(row, &mut encoder)?;
            }
            rows.push(encoder.take_row());
        }
    }
    Ok(rows)
}

/// The values bound to a portal. `types` are the placeholders' types: the client's where it
/// named them, else the plan's (a binary value needs one to be decoded).
pub fn params<S: Clone>(portal: &Portal<S>, types: &[Type]) -> PgWireResult<Vec<Param>> {
    (0..portal.parameter_len())
        .map(|i| {
            let Some(bytes) = &portal.parameters[i] else {
                return Ok(Param::Null);
            };
            if portal.parameter_format.is_text(i) {
                let text = std::str::from_utf8(bytes).map_err(|_| {
                    user_error("22021", format!("parameter ${}: not valid UTF-8", i + 1))
                })?;
                return Ok(Param::Text(text.to_owned()));
            }
            let ty = types.get(i).cloned().unwrap_or(Type::UNKNOWN);
            binary_param(portal, i, &ty).map(Param::Value)
        })
        .collect()
}

fn binary_param<S: Clone>(portal: &Portal<S>, i: usize, ty: &Type) -> PgWireResult<ScalarValue> {
    let value = match *ty {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, ty)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, ty)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, ty)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, ty)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, ty)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, ty)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            ScalarValue::Utf8(portal.parameter::<String>(i, ty)?)
        }
        Type::DATE => {
            let date = portal.parameter::<NaiveDate>(i, ty)?;
            ScalarValue::Date32(date.map(Date32Type::from_naive_date))
        }
        Type::TIMESTAMP => {
            let at = portal.parameter::<NaiveDateTime>(i, ty)?;
            ScalarValue::TimestampMicrosecond(at.map(|t| t.and_utc().timestamp_micros()), None)
        }
        Type::TIMESTAMPTZ => {
            let at = portal.parameter::<DateTime<FixedOffset>>(i, ty)?;
            ScalarValue::TimestampMicrosecond(at.map(|t| t.timestamp_micros()), Some("UTC".into()))
        }
        _ => {
            return Err(user_error(
                "0A000",
                format!(
                    "parameter ${}: {} in binary format is not supported; send it as text",
                    i + 1,
                    ty.name()
                ),
            ));
        }
    };
    Ok(value)
}

/// An error the client caused, with its SQLSTATE.
pub fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message,
    )))
}

fn api(e: arrow::error::ArrowError) -> PgWireError {
    user_error("22000", e.to_string())
}
