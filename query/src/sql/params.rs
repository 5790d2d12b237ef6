//! Values for a statement's `$1`, `$2`, ... placeholders (Postgres wire's extended protocol).
//!
//! A client sends each value as text, as a typed binary value, or as NULL, and often without
//! a type. The plan knows what each placeholder must be where it is compared with a column or
//! passed to a function, so a value is cast to that type here; a text value the plan leaves
//! untyped stays text.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;

/// One placeholder's value as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    /// Text format: cast to the placeholder's type.
    Text(String),
    /// Binary format, decoded by its wire type.
    Value(ScalarValue),
}

/// The type of `$1`, `$2`, ... in order (`None` where the plan does not fix one).
pub fn parameter_types(plan: &LogicalPlan) -> DfResult<Vec<Option<DataType>>> {
    let named = plan.get_parameter_types()?;
    let mut types = Vec::new();
    for (name, data_type) in named {
        let index = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "placeholder {name}: only positional placeholders ($1, $2, ...) are supported"
                ))
            })?;
        if types.len() < index {
            types.resize(index, None);
        }
        types[index - 1] = data_type;
    }
    Ok(types)
}

/// `df` with its placeholders replaced by `params`.
pub fn bind(df: DataFrame, params: &[Param]) -> DfResult<DataFrame> {
    let types = parameter_types(df.logical_plan())?;
    if params.len() != types.len() {
        return Err(DataFusionError::Plan(format!(
            "the statement has {} placeholder(s) but {} value(s) were bound",
            types.len(),
            params.len()
        )));
    }
    if params.is_empty() {
        return Ok(df);
    }
    let values = params
        .iter()
        .zip(&types)
        .enumerate()
        .map(|(i, (param, want))| {
            value(param, want.as_ref()).map_err(|e| {
                DataFusionError::Plan(format!("parameter ${}: {}", i + 1, e.message()))
            })
        })
        .collect::<DfResult<Vec<_>>>()?;
    df.with_param_values(values)
}

fn value(param: &Param, want: Option<&DataType>) -> DfResult<ScalarValue> {
    let given = match param {
        Param::Null => {
            return match want {
                Some(t) => ScalarValue::try_from(t),
                None => Ok(ScalarValue::Null),
            };
        }
        Param::Text(text) => ScalarValue::Utf8(Some(text.clone())),
        Param::Value(v) => v.clone(),
    };
    match want {
        Some(t) if *t != given.data_type() => given.cast_to(t),
        _ => Ok(given),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_the_placeholder_type() {
        let int = DataType::Int64;
        assert_eq!(
            value(&Param::Text("42".into()), Some(&int)).expect("casts"),
            ScalarValue::Int64(Some(42))
        );
        assert_eq!(
            value(&Param::Value(ScalarValue::Int32(Some(7))), Some(&int)).expect("casts"),
            ScalarValue::Int64(Some(7))
        );
        assert_eq!(
            value(&Param::Null, Some(&int)).expect("typed null"),
            ScalarValue::Int64(None)
        );
        assert_eq!(
            value(&Param::Text("x".into()), None).expect("stays text"),
            ScalarValue::Utf8(Some("x".into()))
        );
        assert!(value(&Param::Text("x".into()), Some(&int)).is_err());
    }
}
