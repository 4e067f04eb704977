//! Map-filter-project: the row-at-a-time work fused into one operator.
//!
//! Steps run in the order the query wrote them, so an expression after a filter never sees
//! (and never fails on) a row the filter removed: `WHERE x <> 0` then `1 / x` is safe.

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::expr::{ScalarExpr, VariadicFunc};
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
        self.steps.is_empty() && self.keeps_columns(input_arity)
    }

    /// Whether this only filters rows of `input_arity` columns: no map, no projection.
    pub fn is_filter(&self, input_arity: usize) -> bool {
        self.steps.iter().all(|s| matches!(s, MfpStep::Filter(_)))
            && self.keeps_columns(input_arity)
    }

    /// Whether the projection keeps all `input_arity` input columns in their order.
    fn keeps_columns(&self, input_arity: usize) -> bool {
        self.project.len() == input_arity && self.project.iter().enumerate().all(|(i, c)| i == *c)
    }

    /// Whether no step can raise an evaluation error ([`ScalarExpr::cannot_fail`]).
    pub fn cannot_fail(&self) -> bool {
        self.steps.iter().all(|s| match s {
            MfpStep::Map(e) | MfpStep::Filter(e) => e.cannot_fail(),
        })
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

    /// Composes a filter step (predicates read this mfp's output columns). The filters after
    /// the last map, and the parts of each that is a conjunction, are then tested cheapest
    /// first, as PostgreSQL tests them (`qual_order.rs`).
    pub fn then_filter(&mut self, predicates: &[ScalarExpr]) {
        let proj = self.project.clone();
        for p in predicates {
            self.steps.push(MfpStep::Filter(
                p.substitute(&|c| ScalarExpr::Column(proj[c])),
            ));
        }
        let start = self
            .steps
            .iter()
            .rposition(|s| matches!(s, MfpStep::Map(_)))
            .map_or(0, |m| m + 1);
        let mut run: Vec<ScalarExpr> = self
            .steps
            .drain(start..)
            .map(|s| match s {
                MfpStep::Filter(mut p) => {
                    if let ScalarExpr::Variadic(VariadicFunc::And, parts) = &mut p {
                        super::qual_order::order(parts);
                    }
                    p
                }
                MfpStep::Map(_) => unreachable!("after the last map"),
            })
            .collect();
        super::qual_order::order(&mut run);
        self.steps.extend(run.into_iter().map(MfpStep::Filter));
    }

    /// Composes a projection.
    pub fn then_project(&mut self, cols: &[usize]) {
        self.project = cols.iter().map(|c| self.project[*c]).collect();
    }

    /// The same steps over rows with `n` more columns in front (an index's indexed columns,
    /// see `plan::index`), which the result leaves out.
    pub fn shifted(&self, n: usize) -> Mfp {
        let shift = |e: &ScalarExpr| e.substitute(&|c| ScalarExpr::Column(c + n));
        Mfp {
            steps: self
                .steps
                .iter()
                .map(|s| match s {
                    MfpStep::Map(e) => MfpStep::Map(shift(e)),
                    MfpStep::Filter(e) => MfpStep::Filter(shift(e)),
                })
                .collect(),
            project: self.project.iter().map(|c| c + n).collect(),
        }
    }

    /// The same without the maps nothing reads (which are never evaluated anyway).
    pub fn without_unread_maps(&self, input_arity: usize) -> Mfp {
        let working = self.working_arity(input_arity);
        let mut read = vec![false; working];
        for &c in &self.project {
            read[c] = true;
        }
        // Last to first: a map is read by the project or by a later step that stays.
        let mut keep = vec![true; self.steps.len()];
        let mut column = working;
        for (i, step) in self.steps.iter().enumerate().rev() {
            if let MfpStep::Map(_) = step {
                column -= 1;
                if !read[column] {
                    keep[i] = false;
                    continue;
                }
            }
            let (MfpStep::Map(e) | MfpStep::Filter(e)) = step;
            let mut cols = Vec::new();
            e.support(&mut cols);
            for c in cols {
                read[c] = true;
            }
        }
        // New positions of the working columns that stay.
        let mut position = (0..input_arity).map(Some).collect::<Vec<_>>();
        let mut next = input_arity;
        for (step, &k) in self.steps.iter().zip(&keep) {
            if let MfpStep::Map(_) = step {
                position.push(k.then_some(next));
                next += usize::from(k);
            }
        }
        let at = |c: usize| ScalarExpr::Column(position[c].expect("read columns stay"));
        Mfp {
            steps: self
                .steps
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(s, _)| match s {
                    MfpStep::Map(e) => MfpStep::Map(e.substitute(&at)),
                    MfpStep::Filter(e) => MfpStep::Filter(e.substitute(&at)),
                })
                .collect(),
            project: self
                .project
                .iter()
                .map(|&c| position[c].expect("projected"))
                .collect(),
        }
    }

    /// Its maps' expressions, in the order their columns follow the input's.
    pub fn maps(&self) -> Vec<&ScalarExpr> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                MfpStep::Map(e) => Some(e),
                MfpStep::Filter(_) => None,
            })
            .collect()
    }

    /// Its filters' predicates.
    pub fn predicates(&self) -> impl Iterator<Item = &ScalarExpr> {
        self.steps.iter().filter_map(|s| match s {
            MfpStep::Filter(p) => Some(p),
            MfpStep::Map(_) => None,
        })
    }

    /// This mfp ready to run on rows of `input_arity` columns.
    pub fn evaluator(&self, input_arity: usize) -> MfpEval {
        let mut cols = Vec::new();
        for step in &self.steps {
            match step {
                MfpStep::Map(e) | MfpStep::Filter(e) => e.support(&mut cols),
            }
        }
        cols.retain(|c| *c < input_arity);
        let mut needed = vec![false; input_arity];
        for &c in &cols {
            needed[c] = true;
        }
        let reach = cols
            .iter()
            .chain(self.project.iter().filter(|c| **c < input_arity))
            .max()
            .map_or(0, |c| c + 1);
        // A map whose value nothing keeps or reads later is not evaluated: its errors never
        // surface, as PostgreSQL never evaluates an unused column of a subquery.
        let mut read: Vec<usize> = self.project.clone();
        let mut live = vec![true; self.steps.len()];
        let mut at = self.working_arity(input_arity);
        for (i, step) in self.steps.iter().enumerate().rev() {
            match step {
                MfpStep::Map(e) => {
                    at -= 1;
                    live[i] = read.contains(&at);
                    if live[i] {
                        e.support(&mut read);
                    }
                }
                MfpStep::Filter(p) => p.support(&mut read),
            }
        }
        MfpEval {
            mfp: self.clone(),
            input_arity,
            needed,
            reach,
            live,
        }
    }
}

/// An [`Mfp`] ready to run on rows of a known arity. It walks each row only as far as the
/// last column it reads or projects, decodes only the columns its expressions read, and
/// copies projected input columns as bytes: rows with long text columns at the end (Nexmark's
/// `extra`) cost nothing for those columns.
pub struct MfpEval {
    mfp: Mfp,
    input_arity: usize,
    needed: Vec<bool>,
    reach: usize,
    /// Per step: whether it is evaluated (a map nothing reads is not; it gives NULL).
    live: Vec<bool>,
}

impl MfpEval {
    /// Evaluates on one row: `None` when filtered out. `scratch` is reused between rows.
    pub fn apply(&self, row: &Row, scratch: &mut Vec<Value>) -> Result<Option<Row>, EvalError> {
        let fields = row.fields_to(self.reach);
        scratch.clear();
        if !self.mfp.steps.is_empty() {
            self.decode(&fields, scratch);
        }
        for (step, live) in self.mfp.steps.iter().zip(&self.live) {
            match step {
                MfpStep::Map(e) => {
                    let v = if *live { e.eval(scratch)? } else { Value::Null };
                    scratch.push(v);
                }
                MfpStep::Filter(p) => {
                    if !p.eval(scratch)?.is_true() {
                        return Ok(None);
                    }
                }
            }
        }
        let computed = scratch.get(self.input_arity..).unwrap_or_default();
        Ok(Some(Row::assemble(
            &fields,
            self.input_arity,
            &self.mfp.project,
            computed,
        )))
    }

    /// The input columns the expressions read, decoded; NULL for the others.
    fn decode(&self, fields: &[&[u8]], scratch: &mut Vec<Value>) {
        for (c, need) in self.needed.iter().enumerate() {
            scratch.push(match (need, fields.get(c)) {
                (true, Some(f)) => Row::decode_field(f),
                _ => Value::Null,
            });
        }
    }

    /// Whether `row` passes the filters, for an mfp that only filters ([`Mfp::is_filter`]):
    /// `apply` without building the output row.
    pub fn passes(&self, row: &Row, scratch: &mut Vec<Value>) -> Result<bool, EvalError> {
        debug_assert!(self.mfp.is_filter(self.input_arity));
        if self.mfp.steps.is_empty() {
            return Ok(true);
        }
        scratch.clear();
        self.decode(&row.fields_to(self.reach), scratch);
        for step in &self.mfp.steps {
            if let MfpStep::Filter(p) = step {
                if !p.eval(scratch)?.is_true() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// The value `predicates` pin each input column to (`#c = literal`, over input columns of
/// `types`), for columns of types whose equal values encode equally (not floats, where
/// `-0 = 0`); `None` for the others. The pinned leading values (of an item, or of an index on
/// it) are a prefix of every row the predicates keep, by which a read can seek in an
/// arrangement sorted by row.
pub fn pinned_columns<'a>(
    predicates: impl IntoIterator<Item = &'a ScalarExpr>,
    types: &[crate::value::DataType],
) -> Vec<Option<Value>> {
    use crate::expr::BinaryFunc;
    use crate::value::DataType;
    let mut pinned: Vec<Option<Value>> = vec![None; types.len()];
    let mut conjuncts = Vec::new();
    for p in predicates {
        p.clone().into_conjuncts(&mut conjuncts);
    }
    for c in &conjuncts {
        let ScalarExpr::Binary(BinaryFunc::Eq, a, b) = c else {
            continue;
        };
        let (col, v) = match (&**a, &**b) {
            (ScalarExpr::Column(i), ScalarExpr::Literal(v))
            | (ScalarExpr::Literal(v), ScalarExpr::Column(i)) => (*i, v),
            _ => continue,
        };
        let exact = !matches!(
            types.get(col),
            None | Some(DataType::Float | DataType::Null)
        );
        if exact && !v.is_null() && v.data_type() == types[col] {
            pinned[col] = Some(v.clone());
        }
    }
    pinned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinaryFunc;

    /// The pinned values of the leading columns, as a read seeks by them.
    fn pinned_prefix<'a>(
        predicates: impl IntoIterator<Item = &'a ScalarExpr>,
        types: &[crate::value::DataType],
    ) -> Option<Row> {
        let values: Vec<Value> = pinned_columns(predicates, types)
            .into_iter()
            .map_while(|v| v)
            .collect();
        (!values.is_empty()).then(|| Row::new(values))
    }

    #[test]
    fn pinned_prefix_takes_leading_equalities_of_exact_types() {
        use crate::expr::VariadicFunc;
        use crate::value::DataType;
        let eq = |c: usize, v: Value| {
            ScalarExpr::Column(c).call_binary(BinaryFunc::Eq, ScalarExpr::literal(v))
        };
        let types = [DataType::Text, DataType::Int, DataType::Float];
        let both = ScalarExpr::Variadic(
            VariadicFunc::And,
            vec![eq(1, Value::Int(2)), eq(0, Value::text("b"))],
        );
        let prefix = pinned_prefix([&both], &types).expect("pinned");
        assert_eq!(prefix, Row::new(vec![Value::text("b"), Value::Int(2)]));
        // Rows with those leading values start with it; others do not.
        let row = |k: &str, n: i64| Row::new(vec![Value::text(k), Value::Int(n), Value::Null]);
        assert!(row("b", 2).starts_with(&prefix));
        assert!(!row("b", 20).starts_with(&prefix) && !row("bb", 2).starts_with(&prefix));
        assert!(row("b", 20) > Row::new(vec![Value::text("b")]));
        // A gap stops it; floats, NULLs and mistyped literals never pin.
        assert_eq!(pinned_prefix([&eq(1, Value::Int(2))], &types), None);
        let f = ScalarExpr::Variadic(
            VariadicFunc::And,
            vec![
                eq(0, Value::text("b")),
                eq(1, Value::Int(1)),
                eq(2, Value::Float(0.0.into())),
            ],
        );
        assert_eq!(pinned_prefix([&f], &types).map(|r| r.len()), Some(2));
        assert_eq!(pinned_prefix([&eq(0, Value::Null)], &types), None);
        assert_eq!(pinned_prefix([&eq(0, Value::Int(1))], &types), None);
    }

    #[test]
    fn comparisons_cannot_fail_and_arithmetic_can() {
        use crate::expr::VariadicFunc;
        let eq =
            ScalarExpr::Column(0).call_binary(BinaryFunc::Eq, ScalarExpr::literal(Value::Int(1)));
        let null = ScalarExpr::Column(1).call_unary(crate::expr::UnaryFunc::IsNull);
        let mut mfp = Mfp::identity(2);
        mfp.then_filter(&[ScalarExpr::Variadic(VariadicFunc::Or, vec![eq, null])]);
        assert!(mfp.is_filter(2) && mfp.cannot_fail());
        let div =
            ScalarExpr::literal(Value::Int(10)).call_binary(BinaryFunc::Div, ScalarExpr::Column(0));
        mfp.then_filter(&[div.call_binary(BinaryFunc::Gt, ScalarExpr::literal(Value::Int(1)))]);
        assert!(mfp.is_filter(2) && !mfp.cannot_fail());
        let mut scratch = Vec::new();
        let eval = mfp.evaluator(2);
        let row = |a: i64| Row::new(vec![Value::Int(a), Value::Null]);
        assert_eq!(eval.passes(&row(1), &mut scratch), Ok(true));
        assert_eq!(eval.passes(&row(20), &mut scratch), Ok(false));
        assert!(eval.passes(&row(0), &mut scratch).is_err());
        mfp.then_project(&[1]);
        assert!(!mfp.is_filter(2));
    }

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
        let eval = mfp.evaluator(1);
        let mut scratch = Vec::new();
        assert_eq!(
            eval.apply(&Row::new(vec![Value::Int(0)]), &mut scratch),
            Ok(None)
        );
        assert_eq!(
            eval.apply(&Row::new(vec![Value::Int(5)]), &mut scratch),
            Ok(Some(Row::new(vec![Value::Int(2)])))
        );
    }
}

#[cfg(test)]
mod unread_map_tests {
    use super::*;
    use crate::expr::BinaryFunc;
    use crate::value::Value;

    #[test]
    fn maps_nothing_reads_go_and_later_columns_move_up() {
        let plus = |c, n| {
            ScalarExpr::Column(c).call_binary(BinaryFunc::Add, ScalarExpr::Literal(Value::Int(n)))
        };
        // Input of 1 column; maps #1 = #0 + 1 (unread), #2 = #0 + 2, then filter #2 > 0, and
        // #3 = #2 + 3; projected (#3, #0).
        let gt =
            ScalarExpr::Column(2).call_binary(BinaryFunc::Gt, ScalarExpr::Literal(Value::Int(0)));
        let mfp = Mfp {
            steps: vec![
                MfpStep::Map(plus(0, 1)),
                MfpStep::Map(plus(0, 2)),
                MfpStep::Filter(gt),
                MfpStep::Map(plus(2, 3)),
            ],
            project: vec![3, 0],
        };
        let lean = mfp.without_unread_maps(1);
        let gt =
            ScalarExpr::Column(1).call_binary(BinaryFunc::Gt, ScalarExpr::Literal(Value::Int(0)));
        assert_eq!(
            lean.steps,
            vec![
                MfpStep::Map(plus(0, 2)),
                MfpStep::Filter(gt),
                MfpStep::Map(plus(1, 3))
            ]
        );
        assert_eq!(lean.project, vec![2, 0]);
    }
}
