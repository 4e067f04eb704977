//! Table functions (hopping windows): each row read into its copies and errors in one operator.
//!
//! Each input row becomes one row per value of the function, the value appended; an error
//! evaluating the function goes to the error collection instead. Copies carry the input row's
//! time and multiplicity, so retracting the row retracts every copy. The copies are made in
//! the operator that reads the input ([`Context::read_each`]), and where the function's
//! reader is a group key or a join side, in that reader's operator: a copy is then read and
//! dropped at once, never pushed into a collection.

use super::{Bundle, Context, ReadEach, RenderTime};
use crate::error::EvalError;
use crate::expr::Support;
use crate::plan::flat_map::{FlatMapPlan, TableFunc};
use crate::row::Row;
use crate::value::Value;

pub fn render<'s, T: RenderTime>(ctx: &mut Context<'s, T>, plan: &FlatMapPlan) -> Bundle<'s, T> {
    let mut copies = Copies::new(&plan.func);
    let read: ReadEach<Row> = Box::new(move |row, out| copies.each(row, out));
    let (oks, errs) = ctx.read_each(&plan.input, read, |row, r| (row, r));
    Bundle::new(oks, errs)
}

/// Makes a row's copies: the function's arguments decoded, each value appended to the row.
pub struct Copies {
    func: TableFunc,
    support: Support,
    values: Vec<Value>,
}

impl Copies {
    pub fn new(func: &TableFunc) -> Self {
        let mut cols = Vec::new();
        func.support(&mut cols);
        Copies {
            func: func.clone(),
            support: Support::columns(cols),
            values: Vec::new(),
        }
    }

    /// Gives `out` each copy of `row`, or the error evaluating the function on it.
    pub fn each(&mut self, row: &Row, out: &mut dyn FnMut(Result<Row, EvalError>)) {
        self.support.decode(row, &mut self.values);
        match self.func.eval(&self.values) {
            Ok(values) => {
                for v in values {
                    out(Ok(row.append([&v])));
                }
            }
            Err(e) => out(Err(e)),
        }
    }
}
