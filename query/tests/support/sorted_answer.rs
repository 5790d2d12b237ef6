//! A query's answer as sorted table lines (row order does not matter), with its physical plan:
//! how the reference tests compare an operator's answers with another plan's.

use arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;

/// The answer to `sql` as sorted lines, and the physical plan that gave it.
pub async fn answer(ctx: &SessionContext, sql: &str) -> (Vec<String>, String) {
    let df = ctx.sql(sql).await.expect(sql);
    let plan = df.clone().create_physical_plan().await.expect(sql);
    let plan = displayable(plan.as_ref()).indent(true).to_string();
    let batches = df.collect().await.expect(sql);
    let text = pretty_format_batches(&batches).expect("format").to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    (lines, plan)
}
