//! ORDER BY … LIMIT kept incrementally, and the ranking window functions (ROW_NUMBER, RANK,
//! DENSE_RANK OVER (PARTITION BY … ORDER BY …)), which are the same per-group ordering with
//! the rank appended as a column.

use serde::{Deserialize, Serialize};

use super::Plan;

/// One ORDER BY key: a column, its direction, and where NULLs go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderKey {
    pub column: usize,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Which rank a ranking window function gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RankKind {
    /// 1, 2, 3, … : every row its own number (ties in an order fixed by the whole row).
    RowNumber,
    /// 1, 1, 3, … : ties share a rank, and the next rank skips past them.
    Rank,
    /// 1, 1, 2, … : ties share a rank, with no gaps.
    DenseRank,
    /// `lag(value, offset, default)`: the `value` column of the row `offset` places before
    /// in the group's order, or this row's `default` column (NULL without one) where there
    /// is none. Columns are the stage input's.
    Lag {
        value: usize,
        offset: usize,
        default: Option<usize>,
    },
    /// `lead(…)`: as `Lag`, the row `offset` places after.
    Lead {
        value: usize,
        offset: usize,
        default: Option<usize>,
    },
    /// `first_value(value)`: the `value` column of the group's first row.
    FirstValue { value: usize },
}

impl RankKind {
    pub fn name(self) -> &'static str {
        match self {
            RankKind::RowNumber => "row_number",
            RankKind::Rank => "rank",
            RankKind::DenseRank => "dense_rank",
            RankKind::Lag { .. } => "lag",
            RankKind::Lead { .. } => "lead",
            RankKind::FirstValue { .. } => "first_value",
        }
    }

    /// Whether the appended column is a rank (which a filter `rank <= k` can bound).
    pub fn is_rank(self) -> bool {
        matches!(
            self,
            RankKind::RowNumber | RankKind::Rank | RankKind::DenseRank
        )
    }
}

/// Per group of `group_key`, the rows ranked `offset .. offset + limit` by `order`. With
/// `rank`, every row of the group is kept (up to `limit`: ranks ≤ limit) with its rank
/// appended as a last column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopKPlan {
    pub input: Box<Plan>,
    pub group_key: Vec<usize>,
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: usize,
    pub rank: Option<RankKind>,
}

/// Sorts `rows` by `order` (stable), decoding each row once.
pub fn sort_rows(rows: &mut Vec<crate::row::Row>, order: &[OrderKey]) {
    let mut keyed: Vec<_> = rows.drain(..).map(|r| (r.unpack(), r)).collect();
    keyed.sort_by(|a, b| compare_rows(&a.0, &b.0, order));
    rows.extend(keyed.into_iter().map(|(_, r)| r));
}

/// Compares two rows' values by `order` with SQL NULL placement.
pub fn compare_rows(
    a: &[crate::value::Value],
    b: &[crate::value::Value],
    order: &[OrderKey],
) -> std::cmp::Ordering {
    compare_by(a, b, order, crate::value::Value::is_null)
}

/// As [`compare_rows`], on the rows' encoded values ([`crate::row::Row::fields`]), which
/// order as the values do: nothing decoded, no text copied.
pub fn compare_fields(a: &[&[u8]], b: &[&[u8]], order: &[OrderKey]) -> std::cmp::Ordering {
    compare_by(a, b, order, |f| crate::row::Row::field_is_null(f))
}

fn compare_by<V: Ord>(
    a: &[V],
    b: &[V],
    order: &[OrderKey],
    is_null: impl Fn(&V) -> bool,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for k in order {
        let (x, y) = (&a[k.column], &b[k.column]);
        let ord = match (is_null(x), is_null(y)) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = x.cmp(y);
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}
