//! Grouping and aggregation plans.

use serde::{Deserialize, Serialize};

use super::top_k::OrderKey;
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
    /// `string_agg(value, delimiter ORDER BY …)`: the non-NULL values joined, each after the
    /// first preceded by its own row's delimiter (see [`AggregateExpr::extra`]).
    StringAgg,
}

impl AggFunc {
    /// The result type for an argument of type `arg`.
    pub fn output_type(&self, arg: DataType) -> DataType {
        match self {
            AggFunc::CountStar | AggFunc::Count => DataType::Int,
            AggFunc::Avg if arg == DataType::Interval => DataType::Interval,
            AggFunc::Avg if arg == DataType::Numeric => DataType::Numeric,
            AggFunc::Avg => DataType::Float,
            AggFunc::Sum | AggFunc::Min | AggFunc::Max | AggFunc::Single => arg,
            AggFunc::StringAgg => DataType::Text,
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
    /// Arguments after the first, evaluated on the input rows beside `expr`: for `string_agg`
    /// the delimiter, then the aggregate's own ORDER BY expressions.
    #[serde(default)]
    pub extra: Vec<ScalarExpr>,
    /// The aggregate's own ORDER BY (`string_agg(x, ',' ORDER BY y DESC)`); each key's
    /// `column` is a position in `extra`. Empty: the values' own order.
    #[serde(default)]
    pub order: Vec<OrderKey>,
}

impl AggregateExpr {
    /// A one-argument aggregate, with no ORDER BY of its own.
    pub fn new(func: AggFunc, expr: ScalarExpr, distinct: bool, arg_type: DataType) -> Self {
        AggregateExpr {
            func,
            expr,
            distinct,
            arg_type,
            extra: Vec::new(),
            order: Vec::new(),
        }
    }
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
