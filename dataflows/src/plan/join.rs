//! Join plans: which keys each side is arranged by, and what is checked after matching.

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::expr::ScalarExpr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// `left ⋈ right` on `left_key[i] = right_key[i]` for all i, then `residual` on the
/// concatenated row. Empty keys make a cross join (all rows meet on one worker). Rows whose key
/// contains NULL never match (SQL equality), but outer joins still emit them padded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinPlan {
    pub left: Box<Plan>,
    pub right: Box<Plan>,
    pub kind: JoinKind,
    pub left_key: Vec<ScalarExpr>,
    pub right_key: Vec<ScalarExpr>,
    /// Predicates over the concatenated row (left columns, then right columns).
    pub residual: Vec<ScalarExpr>,
}
