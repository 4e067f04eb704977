//! Table functions (hopping windows) as differential `flat_map`s.
//!
//! Each input row becomes one row per value of the function, the value appended; an error
//! evaluating the function goes to the error collection instead. Copies carry the input row's
//! time and multiplicity, so retracting the row retracts every copy.

use super::{split, Bundle, Context, RenderTime};
use crate::plan::flat_map::FlatMapPlan;
use crate::row::Row;

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, plan: &FlatMapPlan) -> Bundle<'s, T> {
    let input = ctx.render(&plan.input);
    let func = plan.func.clone();
    let results = input.oks.flat_map(move |row: Row| match func.eval(&row) {
        Ok(values) => values
            .into_iter()
            .map(|v| Ok(row.concat(&Row::new(vec![v]))))
            .collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    let (oks, errs) = split(results);
    Bundle::new(oks, input.errs.concat(errs))
}
