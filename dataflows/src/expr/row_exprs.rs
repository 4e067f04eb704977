//! A list of expressions evaluated into a new row: join keys, group keys.
//!
//! Keys are nearly always plain column references, and they are computed for every update
//! that reaches a join or a reduce. For those, [`RowExprs`] copies the columns straight into
//! the new row (one allocation) instead of walking each expression and collecting the values
//! through a `Vec` first.

use super::ScalarExpr;
use crate::error::EvalError;
use crate::row::Row;
use crate::value::Value;

/// Expressions to evaluate into a row, with the positions they read when all are columns.
#[derive(Clone, Debug)]
pub struct RowExprs {
    exprs: Vec<ScalarExpr>,
    columns: Option<Vec<usize>>,
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
        RowExprs { exprs, columns }
    }

    /// The values of the expressions on `row`.
    pub fn eval(&self, row: &Row) -> Result<Row, EvalError> {
        match &self.columns {
            Some(cols) if cols.iter().all(|c| *c < row.len()) => Ok(row.project(cols)),
            _ => self
                .exprs
                .iter()
                .map(|e| e.eval(row.as_slice()))
                .collect::<Result<Vec<Value>, EvalError>>()
                .map(Row::new),
        }
    }

    /// As [`RowExprs::eval`], but `None` when a value is NULL (SQL equality never holds).
    pub fn eval_not_null(&self, row: &Row) -> Option<Result<Row, EvalError>> {
        match &self.columns {
            Some(cols) if cols.iter().all(|c| *c < row.len()) => {
                if cols.iter().any(|c| row.get(*c).is_null()) {
                    None
                } else {
                    Some(Ok(row.project(cols)))
                }
            }
            _ => {
                let mut k = Vec::with_capacity(self.exprs.len());
                for e in &self.exprs {
                    match e.eval(row.as_slice()) {
                        Ok(Value::Null) => return None,
                        Ok(v) => k.push(v),
                        Err(e) => return Some(Err(e)),
                    }
                }
                Some(Ok(Row::new(k)))
            }
        }
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
