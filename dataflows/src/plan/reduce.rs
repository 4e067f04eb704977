//! Grouping and aggregation plans.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::expr::ScalarExpr;
use crate::value::DataType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// The only value of a one-column relation: NULL when empty, an error when it has more
    /// than one row (scalar subqueries).
    Single,
}

impl AggFunc {
    /// The result type for an argument of type `arg`.
    pub fn output_type(&self, arg: DataType) -> DataType {
        match self {
            AggFunc::CountStar | AggFunc::Count => DataType::Int,
            AggFunc::Avg if arg == DataType::Interval => DataType::Interval,
            AggFunc::Avg => DataType::Float,
            AggFunc::Sum | AggFunc::Min | AggFunc::Max | AggFunc::Single => arg,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateExpr {
    pub func: AggFunc,
    pub expr: ScalarExpr,
    pub distinct: bool,
    /// The type of `expr`, which decides integer or float arithmetic for sums.
    pub arg_type: DataType,
}

/// Group the input by `key` and compute `aggregates` per group. With `global`, an empty input
/// still yields one row (count 0, other aggregates NULL), as SQL requires without GROUP BY.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReducePlan {
    pub input: Box<Plan>,
    pub key: Vec<ScalarExpr>,
    pub aggregates: Vec<AggregateExpr>,
    pub global: bool,
}
