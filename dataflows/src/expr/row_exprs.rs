//! A list of expressions evaluated into a new row: join keys, group keys.
//!
//! Keys are nearly always plain column references, and they are computed for every update
//! that reaches a join or a reduce. For those, [`RowExprs`] copies the columns' encoded bytes
//! straight into the new row; it decodes only the columns the other expressions read, and
//! walks each row only as far as the last column it needs. A group key such as
//! `(id, name, tumble(date_time, …))` copies `name` as bytes and decodes only `date_time`.

use super::ScalarExpr;
use crate::error::EvalError;
use crate::row::{Row, RowPacker};
use crate::value::Value;
use smallvec::SmallVec;

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

/// Expressions to evaluate into a row (see the module docs).
#[derive(Clone, Debug)]
pub struct RowExprs {
    exprs: Vec<ScalarExpr>,
    /// Per expression, the column it copies if it is a plain column reference.
    columns: Vec<Option<usize>>,
    /// Per input column, whether an expression other than a plain column reads it.
    decode: Vec<bool>,
    /// How many leading columns of a row to walk: past every column read or copied.
    reach: usize,
}

impl RowExprs {
    pub fn new(exprs: Vec<ScalarExpr>) -> RowExprs {
        let columns: Vec<Option<usize>> = exprs
            .iter()
            .map(|e| match e {
                ScalarExpr::Column(c) => Some(*c),
                _ => None,
            })
            .collect();
        let computed = exprs
            .iter()
            .zip(&columns)
            .filter(|(_, c)| c.is_none())
            .map(|(e, _)| e);
        let decode = Support::of(computed).0;
        let reach = columns
            .iter()
            .flatten()
            .map(|c| c + 1)
            .chain([decode.len()])
            .max()
            .unwrap_or(0);
        RowExprs {
            exprs,
            columns,
            decode,
            reach,
        }
    }

    /// The values of the expressions on `row`.
    pub fn eval(&self, row: &Row) -> Result<Row, EvalError> {
        self.eval_inner(row, false)
            .expect("NULLs are kept when not skipped")
    }

    /// As [`RowExprs::eval`], but `None` when a value is NULL (SQL equality never holds).
    pub fn eval_not_null(&self, row: &Row) -> Option<Result<Row, EvalError>> {
        self.eval_inner(row, true)
    }

    fn eval_inner(&self, row: &Row, skip_null: bool) -> Option<Result<Row, EvalError>> {
        let fields = row.fields_to(self.reach);
        let mut values: SmallVec<[Value; 8]> = SmallVec::new();
        for (c, need) in self.decode.iter().enumerate() {
            values.push(match (need, fields.get(c)) {
                (true, Some(f)) => Row::decode_field(f),
                _ => Value::Null,
            });
        }
        let mut out = RowPacker::new();
        for (e, column) in self.exprs.iter().zip(&self.columns) {
            match column.and_then(|c| fields.get(c)) {
                Some(f) => {
                    if skip_null && Row::field_is_null(f) {
                        return None;
                    }
                    out.push_field(f);
                }
                // A column past the row's end (never, for a planned query) reads as NULL.
                None if column.is_some() => {
                    if skip_null {
                        return None;
                    }
                    out.push_null();
                }
                None => match e.eval(&values) {
                    Ok(Value::Null) if skip_null => return None,
                    Ok(v) => out.push(&v),
                    Err(err) => return Some(Err(err)),
                },
            }
        }
        Some(Ok(out.finish()))
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
