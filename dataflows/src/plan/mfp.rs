//! Map-filter-project: the row-at-a-time work fused into one operator.
//!
//! Steps run in the order the query wrote them, so an expression after a filter never sees
//! (and never fails on) a row the filter removed: `WHERE x <> 0` then `1 / x` is safe.

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::expr::ScalarExpr;
use crate::row::Row;
use crate::value::Value;

/// One step over the working row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MfpStep {
    /// Append the value of the expression to the working row.
    Map(ScalarExpr),
    /// Drop the row unless the predicate is true.
    Filter(ScalarExpr),
}

/// Steps over the working row (the input row plus appended columns), then a projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mfp {
    pub steps: Vec<MfpStep>,
    pub project: Vec<usize>,
}

impl Mfp {
    /// The identity on rows of `arity` columns.
    pub fn identity(arity: usize) -> Mfp {
        Mfp {
            steps: vec![],
            project: (0..arity).collect(),
        }
    }

    pub fn output_arity(&self, _input_arity: usize) -> usize {
        self.project.len()
    }

    fn working_arity(&self, input_arity: usize) -> usize {
        input_arity
            + self
                .steps
                .iter()
                .filter(|s| matches!(s, MfpStep::Map(_)))
                .count()
    }

    pub fn is_identity(&self, input_arity: usize) -> bool {
        self.steps.is_empty()
            && self.project.len() == input_arity
            && self.project.iter().enumerate().all(|(i, c)| i == *c)
    }

    /// Composes a map step (`exprs` read this mfp's output columns and earlier `exprs`).
    pub fn then_map(&mut self, input_arity: usize, exprs: &[ScalarExpr]) {
        let out_len = self.project.len();
        let mut appended = Vec::new();
        for e in exprs {
            let proj = self.project.clone();
            let earlier = appended.clone();
            let rewritten = e.substitute(&|c| {
                if c < out_len {
                    ScalarExpr::Column(proj[c])
                } else {
                    ScalarExpr::Column(earlier[c - out_len])
                }
            });
            let pos = self.working_arity(input_arity);
            self.steps.push(MfpStep::Map(rewritten));
            appended.push(pos);
        }
        self.project.extend(appended);
    }

    /// Composes a filter step (predicates read this mfp's output columns).
    pub fn then_filter(&mut self, predicates: &[ScalarExpr]) {
        let proj = self.project.clone();
        for p in predicates {
            self.steps.push(MfpStep::Filter(
                p.substitute(&|c| ScalarExpr::Column(proj[c])),
            ));
        }
    }

    /// Composes a projection.
    pub fn then_project(&mut self, cols: &[usize]) {
        self.project = cols.iter().map(|c| self.project[*c]).collect();
    }

    /// The input columns the steps read (the projection copies bytes and needs none decoded).
    pub fn support(&self) -> crate::expr::Support {
        crate::expr::Support::of(self.steps.iter().map(|s| match s {
            MfpStep::Map(e) | MfpStep::Filter(e) => e,
        }))
    }

    /// Evaluates on one row (`support` from [`Mfp::support`]): `None` when filtered out.
    pub fn apply(
        &self,
        row: &Row,
        support: &crate::expr::Support,
        scratch: &mut Vec<Value>,
    ) -> Result<Option<Row>, EvalError> {
        if self.steps.is_empty() {
            // A projection alone moves encoded values; nothing to decode.
            return Ok(Some(row.project(&self.project)));
        }
        support.decode(row, scratch);
        let arity = scratch.len();
        for step in &self.steps {
            match step {
                MfpStep::Map(e) => {
                    let v = e.eval(scratch)?;
                    scratch.push(v);
                }
                MfpStep::Filter(p) => {
                    if !p.eval(scratch)?.is_true() {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(row.project_extended(&self.project, &scratch[arity..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinaryFunc;

    #[test]
    fn filter_before_map_protects_the_map() {
        // WHERE #0 <> 0, then #0 / ... : the division never sees the zero row.
        let mut mfp = Mfp::identity(1);
        mfp.then_filter(&[ScalarExpr::Column(0)
            .call_binary(BinaryFunc::NotEq, ScalarExpr::literal(Value::Int(0)))]);
        mfp.then_map(
            1,
            &[ScalarExpr::literal(Value::Int(10))
                .call_binary(BinaryFunc::Div, ScalarExpr::Column(0))],
        );
        mfp.then_project(&[1]);
        let mut scratch = Vec::new();
        assert_eq!(
            mfp.apply(&Row::new(vec![Value::Int(0)]), &mfp.support(), &mut scratch),
            Ok(None)
        );
        assert_eq!(
            mfp.apply(&Row::new(vec![Value::Int(5)]), &mfp.support(), &mut scratch),
            Ok(Some(Row::new(vec![Value::Int(2)])))
        );
    }
}
