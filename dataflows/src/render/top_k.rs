//! ORDER BY … LIMIT as an incremental top-k per group.
//!
//! Each group's rows are re-ranked when the group changes. Large single groups would benefit
//! from a hierarchy of partial top-k's (as Materialize builds); the benchmark says when.

use super::{Bundle, Context, RenderTime};
use crate::plan::top_k::{compare_rows, TopKPlan};
use crate::row::Row;

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, t: &TopKPlan) -> Bundle<'s, T> {
    let input = ctx.render(&t.input);
    let group_key = t.group_key.clone();
    let order = t.order.clone();
    let (limit, offset) = (t.limit, t.offset);
    let oks = input
        .oks
        .map(move |row| (row.project(&group_key), row))
        .reduce_named(
            "TopK",
            move |_key, vals: &[(&Row, isize)], out: &mut Vec<(Row, isize)>| {
                let mut rows: Vec<(&Row, isize)> = vals
                    .iter()
                    .filter(|(_, m)| *m > 0)
                    .map(|(r, m)| (*r, *m))
                    .collect();
                rows.sort_by(|a, b| {
                    compare_rows(a.0.as_slice(), b.0.as_slice(), &order).then_with(|| a.0.cmp(b.0))
                });
                let mut skip = offset.min(isize::MAX as usize) as isize;
                let mut take = limit
                    .map(|l| l.min(isize::MAX as usize) as isize)
                    .unwrap_or(isize::MAX);
                for (row, mut m) in rows {
                    if take == 0 {
                        break;
                    }
                    if skip > 0 {
                        let s = skip.min(m);
                        skip -= s;
                        m -= s;
                    }
                    let n = m.min(take);
                    if n > 0 {
                        out.push((row.clone(), n));
                        take -= n;
                    }
                }
            },
        )
        .map(|(_key, row)| row);
    Bundle::new(oks, input.errs)
}
