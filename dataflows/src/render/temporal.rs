//! Temporal filters on the timely stream under a collection.
//!
//! For each update `(row, t, d)` the row's bounds give the logical times `[lower, upper)` it is
//! present (`plan/temporal.rs`). The update becomes `(row, t ⊔ lower, d)` and, when there is an
//! upper bound, `(row, t ⊔ upper, -d)`: both may lie in the future. Timely allows data times at
//! or after the message's time, and differential's operators (arrangements, reductions, the
//! subscription sink) hold such updates until the frontier reaches them. The engine's clock
//! advances every input's frontier each tick, so rows are retracted on time even when nothing
//! is written, and once compaction passes `upper` the row leaves the view's state entirely.

use differential_dataflow::collection::AsCollection;
use timely::dataflow::operators::vec::Map;

use super::{split, Bundle, Context, RenderTime};
use crate::plan::temporal::TemporalFilterPlan;

pub fn render<'s, T: RenderTime>(
    ctx: &mut Context<'s, T>,
    plan: &TemporalFilterPlan,
) -> Bundle<'s, T> {
    let input = ctx.render(&plan.input);
    let bounds = plan.bounds.clone();
    let support = crate::expr::Support::of(bounds.iter().map(|b| &b.expr));
    let mut values = Vec::new();
    let results = input
        .oks
        .inner
        .flat_map(move |(row, t, d)| {
            let mut out = Vec::new();
            support.decode(&row, &mut values);
            match TemporalFilterPlan::validity(&bounds, &values) {
                Err(e) => out.push((Err(e), t, d)),
                Ok(None) => {}
                Ok(Some(v)) => {
                    let start = t.join(&T::from_millis(v.lower));
                    match v.upper.map(|u| t.join(&T::from_millis(u))) {
                        // Present from `start` until `end`, if that is not empty.
                        Some(end) if start.less_than(&end) => {
                            out.push((Ok(row.clone()), start, d));
                            out.push((Ok(row), end, -d));
                        }
                        Some(_) => {}
                        None => out.push((Ok(row), start, d)),
                    }
                }
            }
            out
        })
        .as_collection();
    let (oks, errs) = split(results);
    Bundle::new(oks, input.errs.concat(errs))
}
