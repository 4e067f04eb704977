//! Scalar expressions over a row, evaluated with SQL semantics.
//!
//! Expressions are bound: columns are positions, every function is resolved and every operand
//! already has the type the function expects (the planner inserts casts). Evaluation returns
//! `Result<Value, EvalError>`: errors are values that the renderer routes into a view's error
//! collection, so nothing here may panic on user data.

mod func;
mod like;
mod row_exprs;

use serde::{Deserialize, Serialize};

pub use func::{BinaryFunc, UnaryFunc, VariadicFunc};
pub use like::like_match;
pub use row_exprs::{RowExprs, Support};

use crate::error::EvalError;
use crate::value::{DataType, Value};

/// A bound scalar expression.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScalarExpr {
    Column(usize),
    Literal(Value),
    Unary(UnaryFunc, Box<ScalarExpr>),
    Binary(BinaryFunc, Box<ScalarExpr>, Box<ScalarExpr>),
    Variadic(VariadicFunc, Vec<ScalarExpr>),
    /// `CASE WHEN cond THEN then ELSE els END`; `cond` NULL counts as false.
    If {
        cond: Box<ScalarExpr>,
        then: Box<ScalarExpr>,
        els: Box<ScalarExpr>,
    },
}

impl ScalarExpr {
    pub fn column(i: usize) -> ScalarExpr {
        ScalarExpr::Column(i)
    }

    pub fn literal(v: Value) -> ScalarExpr {
        ScalarExpr::Literal(v)
    }

    pub fn call_unary(self, f: UnaryFunc) -> ScalarExpr {
        ScalarExpr::Unary(f, Box::new(self))
    }

    pub fn call_binary(self, f: BinaryFunc, other: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Binary(f, Box::new(self), Box::new(other))
    }

    /// Conjunction of `exprs` (TRUE when empty).
    pub fn and_all(mut exprs: Vec<ScalarExpr>) -> ScalarExpr {
        match exprs.len() {
            0 => ScalarExpr::Literal(Value::Bool(true)),
            1 => exprs.pop().expect("one"),
            _ => ScalarExpr::Variadic(VariadicFunc::And, exprs),
        }
    }

    /// Evaluates against `row`.
    pub fn eval(&self, row: &[Value]) -> Result<Value, EvalError> {
        match self {
            ScalarExpr::Column(i) => Ok(row.get(*i).cloned().unwrap_or(Value::Null)),
            ScalarExpr::Literal(v) => Ok(v.clone()),
            ScalarExpr::Unary(f, e) => f.eval(e.eval(row)?),
            ScalarExpr::Binary(f, a, b) => f.eval(a, b, row),
            ScalarExpr::Variadic(f, es) => f.eval(es, row),
            ScalarExpr::If { cond, then, els } => {
                if cond.eval(row)?.is_true() {
                    then.eval(row)
                } else {
                    els.eval(row)
                }
            }
        }
    }

    /// Column positions this expression reads.
    pub fn support(&self, out: &mut Vec<usize>) {
        self.visit(&mut |e| {
            if let ScalarExpr::Column(c) = e {
                out.push(*c);
            }
        });
    }

    /// The largest column position read, plus one (0 when no column is read).
    pub fn arity_needed(&self) -> usize {
        let mut cols = Vec::new();
        self.support(&mut cols);
        cols.into_iter().max().map(|m| m + 1).unwrap_or(0)
    }

    fn visit(&self, f: &mut impl FnMut(&ScalarExpr)) {
        f(self);
        match self {
            ScalarExpr::Column(_) | ScalarExpr::Literal(_) => {}
            ScalarExpr::Unary(_, e) => e.visit(f),
            ScalarExpr::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            ScalarExpr::Variadic(_, es) => es.iter().for_each(|e| e.visit(f)),
            ScalarExpr::If { cond, then, els } => {
                cond.visit(f);
                then.visit(f);
                els.visit(f);
            }
        }
    }

    /// Rewrites column references through `map` (old position → new expression).
    pub fn substitute(&self, map: &impl Fn(usize) -> ScalarExpr) -> ScalarExpr {
        match self {
            ScalarExpr::Column(c) => map(*c),
            ScalarExpr::Literal(_) => self.clone(),
            ScalarExpr::Unary(f, e) => ScalarExpr::Unary(f.clone(), Box::new(e.substitute(map))),
            ScalarExpr::Binary(f, a, b) => ScalarExpr::Binary(
                f.clone(),
                Box::new(a.substitute(map)),
                Box::new(b.substitute(map)),
            ),
            ScalarExpr::Variadic(f, es) => {
                ScalarExpr::Variadic(f.clone(), es.iter().map(|e| e.substitute(map)).collect())
            }
            ScalarExpr::If { cond, then, els } => ScalarExpr::If {
                cond: Box::new(cond.substitute(map)),
                then: Box::new(then.substitute(map)),
                els: Box::new(els.substitute(map)),
            },
        }
    }

    /// Shifts every column reference by `offset`.
    pub fn shift(&self, offset: isize) -> ScalarExpr {
        self.substitute(&|c| ScalarExpr::Column((c as isize + offset) as usize))
    }

    /// Splits a conjunction into its conjuncts.
    pub fn into_conjuncts(self, out: &mut Vec<ScalarExpr>) {
        match self {
            ScalarExpr::Variadic(VariadicFunc::And, es) => {
                for e in es {
                    e.into_conjuncts(out);
                }
            }
            ScalarExpr::Literal(Value::Bool(true)) => {}
            e => out.push(e),
        }
    }

    /// True when this is a literal.
    pub fn is_literal(&self) -> bool {
        matches!(self, ScalarExpr::Literal(_))
    }

    /// Evaluates expressions with no column references at plan time, keeping errors for runtime.
    pub fn reduce_constants(&self) -> ScalarExpr {
        let reduced = match self {
            ScalarExpr::Column(_) | ScalarExpr::Literal(_) => return self.clone(),
            ScalarExpr::Unary(f, e) => ScalarExpr::Unary(f.clone(), Box::new(e.reduce_constants())),
            ScalarExpr::Binary(f, a, b) => ScalarExpr::Binary(
                f.clone(),
                Box::new(a.reduce_constants()),
                Box::new(b.reduce_constants()),
            ),
            ScalarExpr::Variadic(f, es) => {
                ScalarExpr::Variadic(f.clone(), es.iter().map(|e| e.reduce_constants()).collect())
            }
            ScalarExpr::If { cond, then, els } => ScalarExpr::If {
                cond: Box::new(cond.reduce_constants()),
                then: Box::new(then.reduce_constants()),
                els: Box::new(els.reduce_constants()),
            },
        };
        if reduced.arity_needed() == 0 && !reduced.is_volatile() {
            if let Ok(v) = reduced.eval(&[]) {
                return ScalarExpr::Literal(v);
            }
        }
        reduced
    }

    /// Whether evaluation can never raise an error: comparisons, boolean logic, NULL tests
    /// and `CASE` over columns and literals (the planner has checked their types). Anything
    /// else (arithmetic, casts, functions) counts as fallible.
    pub fn cannot_fail(&self) -> bool {
        use func::{BinaryFunc as B, UnaryFunc as U, VariadicFunc as V};
        match self {
            ScalarExpr::Column(_) | ScalarExpr::Literal(_) => true,
            ScalarExpr::Unary(U::Not | U::IsNull | U::IsNotNull | U::IsTrue | U::IsFalse, e) => {
                e.cannot_fail()
            }
            ScalarExpr::Binary(B::Eq | B::NotEq | B::Lt | B::Lte | B::Gt | B::Gte, a, b) => {
                a.cannot_fail() && b.cannot_fail()
            }
            ScalarExpr::Variadic(V::And | V::Or | V::Coalesce | V::Greatest | V::Least, es) => {
                es.iter().all(ScalarExpr::cannot_fail)
            }
            ScalarExpr::If { cond, then, els } => {
                cond.cannot_fail() && then.cannot_fail() && els.cannot_fail()
            }
            // A window's end, from a start that `tumble` made (and checked).
            ScalarExpr::Binary(B::WindowEnd, start, size) => {
                start.cannot_fail() && size.cannot_fail()
            }
            _ => false,
        }
    }

    /// Whether evaluation depends on something other than the row (none do yet).
    pub fn is_volatile(&self) -> bool {
        false
    }
}

impl std::fmt::Display for ScalarExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScalarExpr::Column(c) => write!(f, "#{c}"),
            ScalarExpr::Literal(Value::Text(s)) => write!(f, "'{s}'"),
            ScalarExpr::Literal(v) => write!(f, "{v}"),
            ScalarExpr::Unary(func, e) => write!(f, "{func:?}({e})"),
            ScalarExpr::Binary(func, a, b) => match func.infix() {
                Some(op) => write!(f, "({a} {op} {b})"),
                None => write!(f, "{func:?}({a}, {b})"),
            },
            ScalarExpr::Variadic(func, es) => {
                let parts: Vec<String> = es.iter().map(|e| e.to_string()).collect();
                match func {
                    VariadicFunc::And => write!(f, "({})", parts.join(" AND ")),
                    VariadicFunc::Or => write!(f, "({})", parts.join(" OR ")),
                    _ => write!(f, "{func:?}({})", parts.join(", ")),
                }
            }
            ScalarExpr::If { cond, then, els } => {
                write!(f, "CASE WHEN {cond} THEN {then} ELSE {els} END")
            }
        }
    }
}

/// A type and nullability, computed by the planner alongside each expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnType {
    pub ty: DataType,
    pub nullable: bool,
}
