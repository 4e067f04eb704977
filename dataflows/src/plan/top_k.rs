//! ORDER BY … LIMIT kept incrementally.

use serde::{Deserialize, Serialize};

use super::Plan;

/// One ORDER BY key: a column, its direction, and where NULLs go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderKey {
    pub column: usize,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Per group of `group_key`, the rows ranked `offset .. offset + limit` by `order`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopKPlan {
    pub input: Box<Plan>,
    pub group_key: Vec<usize>,
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// Compares two rows by `order` with SQL NULL placement.
pub fn compare_rows(
    a: &[crate::value::Value],
    b: &[crate::value::Value],
    order: &[OrderKey],
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for k in order {
        let (x, y) = (&a[k.column], &b[k.column]);
        let ord = match (x.is_null(), y.is_null()) {
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
