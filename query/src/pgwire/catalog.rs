//! The part of the Postgres system catalog that clients read on their own: psql's `\dt`,
//! `\dv`, `\dn` and `\l`, drivers' `SELECT version()`, `current_setting(..)` and `SHOW ..`, and
//! database tools listing tables and columns.
//!
//! - `pg_catalog.pg_namespace`, `pg_class`, `pg_attribute`, `pg_type`, `pg_database`,
//!   `pg_am`, `pg_settings` and an empty `pg_description`, built once per engine from the
//!   tables every session registers (the same names and columns for every caller; no row of
//!   any company's data is in them, and `reltuples` is -1, "unknown", so not even sizes leak).
//!   History tables are relkind `r`; `trips_latest` and the live tables are views (`v`).
//! - Functions (any function may be called as `pg_catalog.name`, see
//!   [`unqualify_functions`]): `version()`, `current_database()`,
//!   `current_schema()`, `current_setting(name)`, `pg_table_is_visible(oid)`,
//!   `pg_get_userbyid(oid)`, `format_type(oid, typmod)`, `pg_encoding_to_char(n)`,
//!   `obj_description(..)` and `col_description(..)` (always null: no comments),
//!   `array_to_string(list, separator)`.
//! - [`SETTINGS`]: the server settings `SHOW` answers (the wire answers it, see
//!   [`crate::pgwire::server`]), as a session of a read-only Postgres 16 would report them.
//!
//! Not here: the rest of the catalog (`pg_index`, `pg_constraint`, `pg_proc`, casts to
//! `regclass`, ...), so psql's `\d table` is not answered; `information_schema.columns`
//! describes a table's columns.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Int16Array, Int32Array, ListArray,
    RecordBatch, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, visit_expressions_mut};
use pgwire::api::Type;

use crate::pgwire::types::pg_type;

/// The schema the catalog is registered as.
pub const SCHEMA: &str = "pg_catalog";
/// The database name clients see (`current_database()`, `pg_database`).
pub const DATABASE: &str = "fleetflow";
/// The Postgres version fleetflow answers as (a read-only 16): `SHOW server_version`, the
/// `server_version` sent at login, `version()`.
pub const SERVER_VERSION: &str = "16.0";
/// The owner of everything (`pg_get_userbyid`).
const OWNER: &str = "fleetflow";
const OWNER_OID: i32 = 10;
const PG_CATALOG_OID: i32 = 11;
const PUBLIC_OID: i32 = 2200;
const INFORMATION_SCHEMA_OID: i32 = 13_000;
const DATABASE_OID: i32 = 16_383;
/// The first table's oid; the rest follow in registration order.
const FIRST_TABLE_OID: i32 = 16_384;
/// `pg_am`'s row for ordinary tables.
const HEAP_AM_OID: i32 = 2;

/// A server setting: its name for `SHOW` and `current_setting`, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub value: &'static str,
}

/// What `SHOW` and `current_setting` answer. Sessions cannot change them (`SET` is accepted and
/// ignored, see [`crate::pgwire::server`]); the transaction is always read-only.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "server_version",
        value: SERVER_VERSION,
    },
    Setting {
        name: "server_version_num",
        value: "160000",
    },
    Setting {
        name: "server_encoding",
        value: "UTF8",
    },
    Setting {
        name: "client_encoding",
        value: "UTF8",
    },
    Setting {
        name: "datestyle",
        value: "ISO, MDY",
    },
    Setting {
        name: "intervalstyle",
        value: "postgres",
    },
    Setting {
        name: "timezone",
        value: "UTC",
    },
    Setting {
        name: "integer_datetimes",
        value: "on",
    },
    Setting {
        name: "standard_conforming_strings",
        value: "on",
    },
    Setting {
        name: "transaction_isolation",
        value: "read committed",
    },
    Setting {
        name: "default_transaction_isolation",
        value: "read committed",
    },
    Setting {
        name: "transaction_read_only",
        value: "on",
    },
    Setting {
        name: "default_transaction_read_only",
        value: "on",
    },
    Setting {
        name: "search_path",
        value: "public",
    },
    Setting {
        name: "is_superuser",
        value: "off",
    },
    Setting {
        name: "max_identifier_length",
        value: "63",
    },
    Setting {
        name: "lc_collate",
        value: "C",
    },
    Setting {
        name: "lc_ctype",
        value: "C",
    },
];

/// The setting `name` names (case-insensitive; `SHOW TRANSACTION ISOLATION LEVEL` is the
/// standard's spelling of `transaction_isolation`).
pub fn setting(name: &str) -> Option<&'static Setting> {
    let name = name.trim().to_ascii_lowercase();
    let name = match name.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["transaction", "isolation", "level"] => "transaction_isolation".to_owned(),
        _ => name,
    };
    SETTINGS.iter().find(|s| s.name == name)
}

/// How a table appears in `pg_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Table,
    View,
}

impl Relation {
    fn relkind(self) -> &'static str {
        match self {
            Relation::Table => "r",
            Relation::View => "v",
        }
    }
}

/// The types `pg_type` lists (every type a column goes out as, and the catalog's own), with
/// `typlen` (-1: variable length) and `format_type`'s spelling.
fn types() -> [(Type, i16, &'static str); 15] {
    [
        (Type::BOOL, 1, "boolean"),
        (Type::BYTEA, -1, "bytea"),
        (Type::CHAR, 1, "\"char\""),
        (Type::NAME, 64, "name"),
        (Type::INT8, 8, "bigint"),
        (Type::INT2, 2, "smallint"),
        (Type::INT4, 4, "integer"),
        (Type::TEXT, -1, "text"),
        (Type::OID, 4, "oid"),
        (Type::FLOAT4, 4, "real"),
        (Type::FLOAT8, 8, "double precision"),
        (Type::VARCHAR, -1, "character varying"),
        (Type::DATE, 4, "date"),
        (Type::TIMESTAMP, 8, "timestamp without time zone"),
        (Type::TIMESTAMPTZ, 8, "timestamp with time zone"),
    ]
}

/// The `pg_catalog` schema over `tables` (in `public`, in this order).
pub fn schema(tables: &[(&str, Relation, SchemaRef)]) -> DfResult<Arc<dyn SchemaProvider>> {
    let provider = MemorySchemaProvider::new();
    let add = |name: &str, columns: Vec<(&str, ArrayRef)>| -> DfResult<()> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )?;
        provider.register_table(
            name.to_owned(),
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
        Ok(())
    };
    let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let int4 = |v: Vec<i32>| -> ArrayRef { Arc::new(Int32Array::from(v)) };
    let int2 = |v: Vec<i16>| -> ArrayRef { Arc::new(Int16Array::from(v)) };
    let boolean = |v: Vec<bool>| -> ArrayRef { Arc::new(BooleanArray::from(v)) };
    let oid = |i: usize| FIRST_TABLE_OID + i32::try_from(i).expect("a handful of tables");

    add(
        "pg_namespace",
        vec![
            (
                "oid",
                int4(vec![PG_CATALOG_OID, PUBLIC_OID, INFORMATION_SCHEMA_OID]),
            ),
            (
                "nspname",
                text(vec![SCHEMA, "public", "information_schema"]),
            ),
            ("nspowner", int4(vec![OWNER_OID; 3])),
            ("nspacl", text(vec![""; 3])),
        ],
    )?;

    let n = tables.len();
    add(
        "pg_class",
        vec![
            ("oid", int4((0..n).map(oid).collect())),
            ("relname", text(tables.iter().map(|t| t.0).collect())),
            ("relnamespace", int4(vec![PUBLIC_OID; n])),
            ("reltype", int4(vec![0; n])),
            ("relowner", int4(vec![OWNER_OID; n])),
            (
                "relam",
                int4(
                    tables
                        .iter()
                        .map(|t| {
                            if t.1 == Relation::Table {
                                HEAP_AM_OID
                            } else {
                                0
                            }
                        })
                        .collect(),
                ),
            ),
            ("reltuples", Arc::new(Float32Array::from(vec![-1.0; n]))),
            ("relhasindex", boolean(vec![false; n])),
            ("relpersistence", text(vec!["p"; n])),
            (
                "relkind",
                text(tables.iter().map(|t| t.1.relkind()).collect()),
            ),
            (
                "relnatts",
                int2(
                    tables
                        .iter()
                        .map(|t| i16::try_from(t.2.fields().len()).unwrap_or(i16::MAX))
                        .collect(),
                ),
            ),
            ("relispartition", boolean(vec![false; n])),
        ],
    )?;

    let columns: Vec<(i32, i16, &Field)> = tables
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.2.fields()
                .iter()
                .enumerate()
                .map(move |(j, f)| (oid(i), i16::try_from(j + 1).unwrap_or(i16::MAX), f.as_ref()))
        })
        .collect();
    let m = columns.len();
    let column_type = |f: &Field| pg_type(f.data_type());
    add(
        "pg_attribute",
        vec![
            ("attrelid", int4(columns.iter().map(|c| c.0).collect())),
            (
                "attname",
                text(columns.iter().map(|c| c.2.name().as_str()).collect()),
            ),
            (
                "atttypid",
                int4(
                    columns
                        .iter()
                        .map(|c| type_oid(&column_type(c.2)))
                        .collect(),
                ),
            ),
            ("attnum", int2(columns.iter().map(|c| c.1).collect())),
            (
                "attlen",
                int2(
                    columns
                        .iter()
                        .map(|c| type_len(&column_type(c.2)))
                        .collect(),
                ),
            ),
            ("atttypmod", int4(vec![-1; m])),
            (
                "attnotnull",
                boolean(columns.iter().map(|c| !c.2.is_nullable()).collect()),
            ),
            ("atthasdef", boolean(vec![false; m])),
            ("attisdropped", boolean(vec![false; m])),
            ("attidentity", text(vec![""; m])),
            ("attgenerated", text(vec![""; m])),
            ("attcollation", int4(vec![0; m])),
        ],
    )?;

    let types = types();
    let t = types.len();
    add(
        "pg_type",
        vec![
            ("oid", int4(types.iter().map(|t| type_oid(&t.0)).collect())),
            ("typname", text(types.iter().map(|t| t.0.name()).collect())),
            ("typnamespace", int4(vec![PG_CATALOG_OID; t])),
            ("typowner", int4(vec![OWNER_OID; t])),
            ("typlen", int2(types.iter().map(|t| t.1).collect())),
            ("typtype", text(vec!["b"; t])),
            ("typnotnull", boolean(vec![false; t])),
            ("typbasetype", int4(vec![0; t])),
            ("typelem", int4(vec![0; t])),
            ("typrelid", int4(vec![0; t])),
        ],
    )?;

    add(
        "pg_database",
        vec![
            ("oid", int4(vec![DATABASE_OID])),
            ("datname", text(vec![DATABASE])),
            ("datdba", int4(vec![OWNER_OID])),
            ("encoding", int4(vec![6])),
            ("datcollate", text(vec!["C"])),
            ("datctype", text(vec!["C"])),
            ("datlocprovider", text(vec!["c"])),
            ("daticulocale", Arc::new(StringArray::new_null(1))),
            ("datistemplate", boolean(vec![false])),
            ("datallowconn", boolean(vec![true])),
            ("datconnlimit", int4(vec![-1])),
            (
                "datacl",
                Arc::new(ListArray::new_null(
                    Arc::new(Field::new_list_field(DataType::Utf8, true)),
                    1,
                )),
            ),
        ],
    )?;

    add(
        "pg_am",
        vec![
            ("oid", int4(vec![HEAP_AM_OID])),
            ("amname", text(vec!["heap"])),
            ("amtype", text(vec!["t"])),
        ],
    )?;

    add(
        "pg_settings",
        vec![
            ("name", text(SETTINGS.iter().map(|s| s.name).collect())),
            ("setting", text(SETTINGS.iter().map(|s| s.value).collect())),
        ],
    )?;

    add(
        "pg_description",
        vec![
            ("objoid", int4(Vec::new())),
            ("classoid", int4(Vec::new())),
            ("objsubid", int4(Vec::new())),
            ("description", text(Vec::new())),
        ],
    )?;

    Ok(Arc::new(provider))
}

fn type_oid(t: &Type) -> i32 {
    i32::try_from(t.oid()).unwrap_or(0)
}

/// `typlen`: the fixed width in bytes, -1 for variable-length types.
fn type_len(t: &Type) -> i16 {
    types()
        .iter()
        .find(|(known, ..)| known == t)
        .map_or(-1, |(_, len, _)| *len)
}

/// Drops the `pg_catalog.` qualifier from function names (`pg_catalog.array_to_string(..)`,
/// as psql writes them): every function lives in one namespace here, and Postgres finds the
/// unqualified name in `pg_catalog` first as well.
pub fn unqualify_functions(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(statement) => {
            let _ = visit_expressions_mut(statement.as_mut(), |expr| {
                if let Expr::Function(function) = expr
                    && function.name.0.len() == 2
                    && function.name.0[0]
                        .as_ident()
                        .is_some_and(|schema| schema.value.eq_ignore_ascii_case(SCHEMA))
                {
                    function.name.0.remove(0);
                }
                ControlFlow::<()>::Continue(())
            });
        }
        DfStatement::Explain(explain) => unqualify_functions(&mut explain.statement),
        DfStatement::CreateExternalTable(_) | DfStatement::CopyTo(_) | DfStatement::Reset(_) => {}
    }
}

/// Registers the catalog schema and functions in `ctx` (whose default catalog is
/// [`DATABASE`]).
pub fn register(ctx: &SessionContext, schema: Arc<dyn SchemaProvider>) -> DfResult<()> {
    let Some(catalog) = ctx.catalog(DATABASE) else {
        return exec_err!("the session has no {DATABASE} catalog");
    };
    catalog.register_schema(SCHEMA, schema)?;
    for function in Function::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(CatalogFunction::new(function)));
    }
    Ok(())
}

/// The catalog functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    Version,
    CurrentDatabase,
    CurrentSchema,
    CurrentSetting,
    TableIsVisible,
    GetUserById,
    FormatType,
    EncodingToChar,
    ObjDescription,
    ColDescription,
    ArrayToString,
}

impl Function {
    const ALL: [Function; 11] = [
        Function::Version,
        Function::CurrentDatabase,
        Function::CurrentSchema,
        Function::CurrentSetting,
        Function::TableIsVisible,
        Function::GetUserById,
        Function::FormatType,
        Function::EncodingToChar,
        Function::ObjDescription,
        Function::ColDescription,
        Function::ArrayToString,
    ];

    fn name(self) -> &'static str {
        match self {
            Function::Version => "version",
            Function::CurrentDatabase => "current_database",
            Function::CurrentSchema => "current_schema",
            Function::CurrentSetting => "current_setting",
            Function::TableIsVisible => "pg_table_is_visible",
            Function::GetUserById => "pg_get_userbyid",
            Function::FormatType => "format_type",
            Function::EncodingToChar => "pg_encoding_to_char",
            Function::ObjDescription => "obj_description",
            Function::ColDescription => "col_description",
            Function::ArrayToString => "array_to_string",
        }
    }

    fn signature(self) -> Signature {
        let v = Volatility::Stable;
        match self {
            Function::Version | Function::CurrentDatabase | Function::CurrentSchema => {
                Signature::nullary(v)
            }
            Function::CurrentSetting
            | Function::TableIsVisible
            | Function::GetUserById
            | Function::EncodingToChar => Signature::any(1, v),
            Function::FormatType | Function::ColDescription | Function::ArrayToString => {
                Signature::any(2, v)
            }
            Function::ObjDescription => Signature::variadic_any(v),
        }
    }

    fn returns(self) -> DataType {
        match self {
            Function::TableIsVisible => DataType::Boolean,
            _ => DataType::Utf8,
        }
    }
}

/// One catalog function as a DataFusion UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CatalogFunction {
    function: Function,
    signature: Signature,
}

impl CatalogFunction {
    fn new(function: Function) -> CatalogFunction {
        CatalogFunction {
            function,
            signature: function.signature(),
        }
    }
}

impl ScalarUDFImpl for CatalogFunction {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.function.returns())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let text = |s: Option<&str>| ColumnarValue::Scalar(ScalarValue::Utf8(s.map(str::to_owned)));
        Ok(match self.function {
            Function::Version => text(Some(&version())),
            Function::CurrentDatabase => text(Some(DATABASE)),
            Function::CurrentSchema => text(Some("public")),
            Function::GetUserById => text(Some(OWNER)),
            Function::EncodingToChar => text(Some("UTF8")),
            Function::ObjDescription | Function::ColDescription => text(None),
            Function::ArrayToString => array_to_string(&args)?,
            Function::TableIsVisible => ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))),
            Function::CurrentSetting => map_text(&args.args[0], args.number_rows, |name| {
                match setting(name) {
                    Some(s) => Ok(Some(s.value.to_owned())),
                    None => exec_err!("unrecognized configuration parameter \"{name}\""),
                }
            })?,
            Function::FormatType => {
                let oids = args.args[0]
                    .cast_to(&DataType::Int32, None)?
                    .into_array(args.number_rows)?;
                let types = types();
                let names: StringArray = oids
                    .as_primitive::<Int32Type>()
                    .iter()
                    .map(|oid| {
                        let oid = u32::try_from(oid?).ok()?;
                        types
                            .iter()
                            .find(|(t, ..)| t.oid() == oid)
                            .map(|(_, _, display)| *display)
                    })
                    .collect();
                ColumnarValue::Array(Arc::new(names))
            }
        })
    }
}

/// `array_to_string(list, separator)`: the list's non-null elements as text, joined (the
/// catalog's ACL lists; the build leaves out DataFusion's array functions).
fn array_to_string(args: &ScalarFunctionArgs) -> DfResult<ColumnarValue> {
    let rows = args.number_rows;
    let lists = args.args[0].clone().into_array(rows)?;
    let separators = args.args[1]
        .cast_to(&DataType::Utf8, None)?
        .into_array(rows)?;
    let separators = separators.as_string::<i32>();
    let Some(lists) = lists.as_list_opt::<i32>() else {
        return exec_err!("array_to_string expects a list, got {}", lists.data_type());
    };
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        if lists.is_null(row) || separators.is_null(row) {
            out.push(None);
            continue;
        }
        let values = cast(&lists.value(row), &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let joined: Vec<&str> = values.iter().flatten().collect();
        out.push(Some(joined.join(separators.value(row))));
    }
    Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
}

/// `f` applied to each value of a text argument (null stays null).
fn map_text(
    value: &ColumnarValue,
    rows: usize,
    f: impl Fn(&str) -> DfResult<Option<String>>,
) -> DfResult<ColumnarValue> {
    if let ColumnarValue::Scalar(scalar) = value {
        let name = scalar.cast_to(&DataType::Utf8)?;
        let ScalarValue::Utf8(name) = name else {
            return exec_err!("expected text, got {name:?}");
        };
        return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(match name {
            Some(name) => f(&name)?,
            None => None,
        })));
    }
    let names = value.cast_to(&DataType::Utf8, None)?.into_array(rows)?;
    let out = names
        .as_string::<i32>()
        .iter()
        .map(|name| name.map(&f).transpose().map(Option::flatten))
        .collect::<DfResult<StringArray>>()?;
    Ok(ColumnarValue::Array(Arc::new(out)))
}

/// `version()`: a Postgres-shaped string (drivers parse the number after `PostgreSQL`).
pub fn version() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (fleetflow {}, Apache DataFusion)",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_by_their_names_and_the_standard_spelling() {
        assert_eq!(
            setting("Standard_Conforming_Strings").map(|s| s.value),
            Some("on")
        );
        assert_eq!(
            setting("transaction  isolation level").map(|s| s.name),
            Some("transaction_isolation")
        );
        assert_eq!(setting("DateStyle").map(|s| s.value), Some("ISO, MDY"));
        assert!(setting("shared_buffers").is_none());
    }
}
