//! Table functions (hopping windows): each row read into its copies and errors in one operator.
//!
//! Each input row becomes one row per value of the function, the value appended; an error
//! evaluating the function goes to the error collection instead. Copies carry the input row's
//! time and multiplicity, so retracting the row retracts every copy.

use super::{Bundle, Context, RenderTime};
use crate::plan::flat_map::FlatMapPlan;
use crate::row::Row;

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, plan: &FlatMapPlan) -> Bundle<'s, T> {
    let input = ctx.render(&plan.input);
    let func = plan.func.clone();
    let mut cols = Vec::new();
    func.support(&mut cols);
    let support = crate::expr::Support::columns(cols);
    let mut values = Vec::new();
    let rows = move |row: Row| {
        support.decode(&row, &mut values);
        func_rows(&func, &values, row)
    };
    let (oks, errs) = super::read::collection_many(input.oks, rows, |row, r| (row, r));
    Bundle::new(oks, input.errs.concat(errs))
}

/// `row` once per value of `func` on its decoded `values`, the value appended.
fn func_rows(
    func: &crate::plan::flat_map::TableFunc,
    values: &[crate::value::Value],
    row: Row,
) -> Vec<Result<Row, crate::error::EvalError>> {
    match func.eval(values) {
        Ok(values) => values
            .into_iter()
            .map(|v| Ok(row.append([&v])))
            .collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    }
}
