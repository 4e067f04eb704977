//! ORDER BY … LIMIT kept incrementally, and window functions (ROW_NUMBER, RANK, DENSE_RANK,
//! LAG, LEAD, aggregates and values over frames OVER (PARTITION BY … ORDER BY …)), which are
//! the same per-group ordering with the function's value appended as a column.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::value::DataType;

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
    /// `(rank - 1) / (rows - 1)`, from 0 to 1 (0 for a group of one row).
    PercentRank,
    /// The fraction of the group's rows up to the current row's last peer.
    CumeDist,
    /// `ntile(n)`: the group cut into `n` buckets of sizes that differ by at most one (larger
    /// first), numbered from 1, in order.
    Ntile(u64),
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
    /// A function of each row's window frame: an aggregate (`sum(x) OVER (…)`) or the value
    /// of one of the frame's rows (`first_value`, `last_value`, `nth_value`). `value` is the
    /// argument's column of the stage input (unused by `count(*)`), `arg` its type.
    Window {
        func: FrameFunc,
        value: usize,
        arg: DataType,
        frame: Frame,
    },
}

/// What a window function computes over a row's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    FirstValue,
    LastValue,
    /// The frame's n-th row (from 1).
    NthValue(u64),
    /// `string_agg(value, delimiter)`: the frame's non-NULL values joined in its order, each
    /// after the first preceded by its own row's `delimiter` column (of the stage input).
    StringAgg {
        delimiter: usize,
    },
}

impl FrameFunc {
    pub fn name(self) -> &'static str {
        match self {
            FrameFunc::CountStar | FrameFunc::Count => "count",
            FrameFunc::Sum => "sum",
            FrameFunc::Avg => "avg",
            FrameFunc::Min => "min",
            FrameFunc::Max => "max",
            FrameFunc::FirstValue => "first_value",
            FrameFunc::LastValue => "last_value",
            FrameFunc::NthValue(_) => "nth_value",
            FrameFunc::StringAgg { .. } => "string_agg",
        }
    }
}

/// How a frame's bounds count: rows, peers (rows equal under ORDER BY), or groups of peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameUnits {
    Rows,
    Range,
    Groups,
}

/// One end of a frame. Offsets count rows (`Rows`), peer groups (`Groups`), or, in `Range`
/// frames, are the distance from the current row's ORDER BY value: an integer (bigint,
/// timestamp and interval values and intervals share their unit), or an `f64`'s bits where
/// the frame is `float`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameBound {
    UnboundedPreceding,
    Preceding(u64),
    CurrentRow,
    Following(u64),
    UnboundedFollowing,
}

/// The rows of its partition a row's window function sees: from `start` to `end`, in the
/// partition's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub units: FrameUnits,
    pub start: FrameBound,
    pub end: FrameBound,
    /// `Range` offsets are `f64` bits (the ORDER BY value is a double).
    pub float: bool,
}

impl Frame {
    /// SQL's default: the partition's start to the current row and its peers.
    pub const DEFAULT: Frame = Frame {
        units: FrameUnits::Range,
        start: FrameBound::UnboundedPreceding,
        end: FrameBound::CurrentRow,
        float: false,
    };
}

impl Frame {
    fn bound(&self, b: FrameBound) -> String {
        let offset = |n: u64| match self.float {
            true => f64::from_bits(n).to_string(),
            false => n.to_string(),
        };
        match b {
            FrameBound::UnboundedPreceding => "UNBOUNDED PRECEDING".into(),
            FrameBound::Preceding(n) => format!("{} PRECEDING", offset(n)),
            FrameBound::CurrentRow => "CURRENT ROW".into(),
            FrameBound::Following(n) => format!("{} FOLLOWING", offset(n)),
            FrameBound::UnboundedFollowing => "UNBOUNDED FOLLOWING".into(),
        }
    }
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let units = match self.units {
            FrameUnits::Rows => "ROWS",
            FrameUnits::Range => "RANGE",
            FrameUnits::Groups => "GROUPS",
        };
        write!(
            f,
            "{units} BETWEEN {} AND {}",
            self.bound(self.start),
            self.bound(self.end)
        )
    }
}

impl RankKind {
    pub fn name(self) -> &'static str {
        match self {
            RankKind::RowNumber => "row_number",
            RankKind::Rank => "rank",
            RankKind::DenseRank => "dense_rank",
            RankKind::PercentRank => "percent_rank",
            RankKind::CumeDist => "cume_dist",
            RankKind::Ntile(_) => "ntile",
            RankKind::Lag { .. } => "lag",
            RankKind::Lead { .. } => "lead",
            RankKind::Window { func, .. } => func.name(),
        }
    }

    /// The stage input's columns the function reads besides the group and order keys.
    pub fn columns(self) -> Vec<usize> {
        match self {
            RankKind::Lag { value, default, .. } | RankKind::Lead { value, default, .. } => {
                std::iter::once(value).chain(default).collect()
            }
            RankKind::Window {
                func: FrameFunc::CountStar,
                ..
            } => Vec::new(),
            RankKind::Window {
                func: FrameFunc::StringAgg { delimiter },
                value,
                ..
            } => vec![value, delimiter],
            RankKind::Window { value, .. } => vec![value],
            RankKind::RowNumber
            | RankKind::Rank
            | RankKind::DenseRank
            | RankKind::PercentRank
            | RankKind::CumeDist
            | RankKind::Ntile(_) => Vec::new(),
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
