//! Indexes: an item's rows arranged by some of its columns, which joins and reads use.
//!
//! Every table, view and source is arranged by whole row, which serves joins and point reads on
//! its *leading* columns (rows sorted by their bytes are sorted by their first column, then the
//! next). `CREATE INDEX i ON t (c, d)` adds an arrangement of `(c, d, t's columns…)` rows: the
//! same order for the indexed columns. A join side that reads `t` keyed by `c` (or `c, d`) then
//! reads the index in place instead of arranging `t` again, and every view doing so shares the
//! one arrangement; a read whose filters pin `c` seeks in it.
//!
//! Like every arrangement of rows, an index is spread over workers by its first column (see
//! `render::prefix`), so with several workers too it serves any join key it starts with.
//!
//! The coordinator decides which indexes a view's joins read (they become its dependencies:
//! the index cannot be dropped under it) with [`used_by`], and the renderer finds the same
//! ones with [`serving`] among the arrangements it imported. Both apply the same rule.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::expr::ScalarExpr;
use crate::plan::GlobalId;

/// An index: `on`'s rows arranged by `columns` (positions in `on`'s rows) first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexOn {
    pub on: GlobalId,
    pub columns: Vec<usize>,
}

impl IndexOn {
    /// The index's rows: the indexed columns, then all of `on`'s columns.
    pub fn plan(&self, arity: usize) -> Plan {
        let project = self.columns.iter().copied().chain(0..arity).collect();
        Plan::Mfp {
            input: Box::new(Plan::Get { id: self.on, arity }),
            mfp: super::mfp::Mfp {
                steps: vec![],
                project,
            },
        }
    }
}

/// The item a join side reads, with nothing in between but filters (a `WHERE` on it).
pub fn side_item(side: &Plan) -> Option<GlobalId> {
    match side {
        Plan::Get { id, .. } => Some(*id),
        Plan::Mfp { input, mfp } => match input.as_ref() {
            Plan::Get { id, arity } if mfp.is_filter(*arity) => Some(*id),
            _ => None,
        },
        _ => None,
    }
}

/// The columns a join key names, when it is all plain columns.
pub fn key_columns(key: &[ScalarExpr]) -> Option<Vec<usize>> {
    key.iter()
        .map(|e| match e {
            ScalarExpr::Column(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// Whether `columns` are the leading columns, in order: the whole-row arrangement serves them.
pub fn is_leading(columns: &[usize]) -> bool {
    !columns.is_empty() && columns.iter().enumerate().all(|(i, c)| i == *c)
}

/// The first of `indexes` (`(index id, index)`) on `item` whose columns start with `columns`.
pub fn serving<'a>(
    indexes: impl IntoIterator<Item = (GlobalId, &'a IndexOn)>,
    item: GlobalId,
    columns: &[usize],
) -> Option<(GlobalId, &'a IndexOn)> {
    if columns.is_empty() {
        return None;
    }
    indexes
        .into_iter()
        .find(|(_, ix)| ix.on == item && ix.columns.starts_with(columns))
}

/// The indexes that serve the joins of a lowered `plan` (where the item's own arrangement
/// serves a key of its leading columns, the renderer reads that instead, but the plan depends
/// on the index all the same).
pub fn used_by(plan: &Plan, indexes: &[(GlobalId, IndexOn)]) -> Vec<GlobalId> {
    let mut used = Vec::new();
    plan.visit(&mut |p| {
        let Plan::Join(j) = p else { return };
        for (side, key) in [(&j.left, &j.left_key), (&j.right, &j.right_key)] {
            let (Some(item), Some(cols)) = (side_item(side), key_columns(key)) else {
                continue;
            };
            let found = serving(indexes.iter().map(|(id, ix)| (*id, ix)), item, &cols);
            if let Some((id, _)) = found {
                if !used.contains(&id) {
                    used.push(id);
                }
            }
        }
    });
    used
}
