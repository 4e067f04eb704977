//! A list of expressions evaluated into a new row: join keys, group keys.
//!
//! Keys are nearly always plain column references, and they are computed for every update
//! that reaches a join or a reduce. For those, [`RowExprs`] copies the columns' encoded bytes
//! straight into the new row instead of decoding the row and evaluating each expression.

use super::ScalarExpr;
use crate::error::EvalError;
use crate::row::Row;
use crate::value::Value;

/// The columns some expressions read, so that a row is decoded only where it is read: long
/// text columns are often most of a row, and most expressions never look at them.
#[derive(Clone, Debug, Default)]
pub struct Support(Vec<bool>);

impl Support {
    pub fn of<'a>(exprs: impl IntoIterator<Item = &'a ScalarExpr>) -> Support {
        let mut cols = Vec::new();
        for e in exprs {
            e.support(&mut cols);
        }
        Support::columns(cols)
    }

    /// The columns at `cols` (in any order, repeats allowed).
    pub fn columns(cols: Vec<usize>) -> Support {
        let mut needed = vec![false; cols.iter().max().map_or(0, |m| m + 1)];
        for c in cols {
            needed[c] = true;
        }
        Support(needed)
    }

    /// Replaces `out`'s contents with `row`'s values, the unread ones as NULL.
    pub fn decode(&self, row: &Row, out: &mut Vec<Value>) {
        row.unpack_some(&self.0, out);
    }

    /// `row`'s values, the unread ones as NULL.
    pub fn decoded(&self, row: &Row) -> Vec<Value> {
        let mut out = Vec::new();
        self.decode(row, &mut out);
        out
    }
}

/// Expressions to evaluate into a row, with the positions they read when all are columns.
#[derive(Clone, Debug)]
pub struct RowExprs {
    exprs: Vec<ScalarExpr>,
    columns: Option<Vec<usize>>,
    support: Support,
}

impl RowExprs {
    pub fn new(exprs: Vec<ScalarExpr>) -> RowExprs {
        let columns = exprs
            .iter()
            .map(|e| match e {
                ScalarExpr::Column(c) => Some(*c),
                _ => None,
            })
            .collect();
        let support = Support::of(&exprs);
        RowExprs {
            exprs,
            columns,
            support,
        }
    }

    /// The values of the expressions on `row`.
    pub fn eval(&self, row: &Row) -> Result<Row, EvalError> {
        if let Some(projected) = self.columns.as_ref().and_then(|c| row.try_project(c)) {
            return Ok(projected);
        }
        let values = self.support.decoded(row);
        self.exprs
            .iter()
            .map(|e| e.eval(&values))
            .collect::<Result<Vec<Value>, EvalError>>()
            .map(Row::new)
    }

    /// As [`RowExprs::eval`], but `None` when a value is NULL (SQL equality never holds).
    pub fn eval_not_null(&self, row: &Row) -> Option<Result<Row, EvalError>> {
        if let Some(projected) = self.columns.as_ref().and_then(|c| row.try_project(c)) {
            return (!projected.has_null()).then_some(Ok(projected));
        }
        let values = self.support.decoded(row);
        let mut k = Vec::with_capacity(self.exprs.len());
        for e in &self.exprs {
            match e.eval(&values) {
                Ok(Value::Null) => return None,
                Ok(v) => k.push(v),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(Row::new(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinaryFunc;

    #[test]
    fn columns_and_expressions_agree() {
        let row = Row::new(vec![Value::Int(1), Value::Null, Value::Int(3)]);
        let cols = RowExprs::new(vec![ScalarExpr::Column(2), ScalarExpr::Column(0)]);
        assert_eq!(
            cols.eval(&row),
            Ok(Row::new(vec![Value::Int(3), Value::Int(1)]))
        );
        let null = RowExprs::new(vec![ScalarExpr::Column(1)]);
        assert_eq!(null.eval_not_null(&row), None);
        let sum = RowExprs::new(vec![
            ScalarExpr::Column(0).call_binary(BinaryFunc::Add, ScalarExpr::Column(2))
        ]);
        assert_eq!(sum.eval(&row), Ok(Row::new(vec![Value::Int(4)])));
        assert_eq!(
            sum.eval_not_null(&row),
            Some(Ok(Row::new(vec![Value::Int(4)])))
        );
    }
}
