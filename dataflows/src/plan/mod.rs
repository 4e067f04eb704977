//! Plans: the relational algebra the SQL front end produces and the renderer transcribes.
//!
//! `sql/` builds a plan from a query with `Map`/`Filter`/`Project` steps and joins that carry
//! their whole `ON` condition. `lower` then makes the decisions that rendering should not:
//! it fuses map/filter/project chains into one `Mfp` operator, extracts equi-join keys (which
//! decide the arrangements each join builds), and orders multi-way inner joins so that every
//! step has keys when the query allows it. The renderer (`render/`) mirrors the node kinds one
//! to one: `plan/join.rs` ↔ `render/join.rs` and so on.

mod demand;
mod explain;
pub mod flat_map;
mod group_keys;
mod implied;
pub mod index;
pub mod join;
pub mod lower;
pub mod mfp;
mod narrow;
pub mod placement;
mod qual_order;
pub mod reduce;
pub mod temporal;
pub mod top_k;

use serde::{Deserialize, Serialize};

use crate::expr::ScalarExpr;
use crate::row::Row;

pub use flat_map::{FlatMapPlan, TableFunc};
pub use join::JoinKind;
pub use mfp::Mfp;
pub use reduce::{AggFunc, AggregateExpr};
pub use temporal::{BoundOp, TemporalFilterPlan, TimeBound};
pub use top_k::OrderKey;

/// Identifies a catalog item (table, view, source) on every worker.
pub type GlobalId = u64;
/// Identifies a binding local to one plan (a recursive CTE).
pub type LocalId = u64;
/// A multiplicity.
pub type Diff = isize;

/// A relational plan. Every node knows its output arity through [`Plan::arity`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Plan {
    /// The contents of a catalog item.
    Get { id: GlobalId, arity: usize },
    /// A binding introduced by an enclosing `LetRec`.
    LocalGet { id: LocalId, arity: usize },
    /// Fixed rows, present from the beginning of time.
    Constant {
        rows: Vec<(Row, Diff)>,
        arity: usize,
    },
    /// Append computed columns.
    Map {
        input: Box<Plan>,
        exprs: Vec<ScalarExpr>,
    },
    /// Keep rows for which every predicate is true.
    Filter {
        input: Box<Plan>,
        predicates: Vec<ScalarExpr>,
    },
    /// Keep the listed columns, in order (repetition allowed).
    Project { input: Box<Plan>, cols: Vec<usize> },
    /// Fused map, filter and project (produced by lowering).
    Mfp { input: Box<Plan>, mfp: Mfp },
    /// One output row per value of a table function, the value appended (hopping windows).
    FlatMap(flat_map::FlatMapPlan),
    /// Keep each row during the logical times where its `now()` bounds hold.
    TemporalFilter(temporal::TemporalFilterPlan),
    /// A binary join; output is the left columns then the right columns.
    Join(join::JoinPlan),
    /// Group by `key` and compute `aggregates`; output is key columns then aggregate columns.
    Reduce(reduce::ReducePlan),
    /// Remove duplicates.
    Distinct { input: Box<Plan> },
    /// Bag union.
    Union { inputs: Vec<Plan> },
    /// Multiply every multiplicity by -1.
    Negate { input: Box<Plan> },
    /// Clamp negative multiplicities to zero (`EXCEPT ALL` = threshold(l - r)).
    Threshold { input: Box<Plan> },
    /// Per group, the first `limit` rows after `offset` in `order`.
    TopK(top_k::TopKPlan),
    /// A recursive binding: `id` is the fixed point of `base ∪ step(id)`; `body` may use it.
    LetRec {
        id: LocalId,
        base: Box<Plan>,
        step: Box<Plan>,
        distinct: bool,
        body: Box<Plan>,
    },
}

impl Plan {
    /// Number of columns this plan produces.
    pub fn arity(&self) -> usize {
        match self {
            Plan::Get { arity, .. }
            | Plan::LocalGet { arity, .. }
            | Plan::Constant { arity, .. } => *arity,
            Plan::Map { input, exprs } => input.arity() + exprs.len(),
            Plan::Filter { input, .. }
            | Plan::Distinct { input }
            | Plan::Negate { input }
            | Plan::Threshold { input } => input.arity(),
            Plan::Project { cols, .. } => cols.len(),
            Plan::Mfp { input, mfp } => mfp.output_arity(input.arity()),
            Plan::FlatMap(f) => f.input.arity() + 1,
            Plan::TemporalFilter(t) => t.input.arity(),
            Plan::Join(j) => j.left.arity() + j.right.arity(),
            Plan::Reduce(r) => r.key.len() + r.aggregates.len(),
            Plan::Union { inputs } => inputs.first().map(Plan::arity).unwrap_or(0),
            Plan::TopK(t) => t.input.arity() + usize::from(t.rank.is_some()),
            Plan::LetRec { body, .. } => body.arity(),
        }
    }

    pub fn map(self, exprs: Vec<ScalarExpr>) -> Plan {
        if exprs.is_empty() {
            return self;
        }
        Plan::Map {
            input: Box::new(self),
            exprs,
        }
    }

    pub fn filter(self, mut predicates: Vec<ScalarExpr>) -> Plan {
        // `WHERE true` (and the `HAVING true` that keeps a grouping set's empty set a group)
        // keeps every row.
        predicates.retain(|p| *p != ScalarExpr::Literal(crate::value::Value::Bool(true)));
        if predicates.is_empty() {
            return self;
        }
        Plan::Filter {
            input: Box::new(self),
            predicates,
        }
    }

    pub fn project(self, cols: Vec<usize>) -> Plan {
        if cols.len() == self.arity() && cols.iter().enumerate().all(|(i, c)| i == *c) {
            return self;
        }
        Plan::Project {
            input: Box::new(self),
            cols,
        }
    }

    pub fn distinct(self) -> Plan {
        Plan::Distinct {
            input: Box::new(self),
        }
    }

    pub fn negate(self) -> Plan {
        Plan::Negate {
            input: Box::new(self),
        }
    }

    pub fn threshold(self) -> Plan {
        Plan::Threshold {
            input: Box::new(self),
        }
    }

    pub fn union(self, other: Plan) -> Plan {
        Plan::Union {
            inputs: vec![self, other],
        }
    }

    /// Catalog items this plan reads.
    pub fn dependencies(&self, out: &mut Vec<GlobalId>) {
        self.visit(&mut |p| {
            if let Plan::Get { id, .. } = p {
                if !out.contains(id) {
                    out.push(*id);
                }
            }
        });
    }

    /// Calls `f` on every node, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&Plan)) {
        f(self);
        match self {
            Plan::Get { .. } | Plan::LocalGet { .. } | Plan::Constant { .. } => {}
            Plan::Map { input, .. }
            | Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Mfp { input, .. }
            | Plan::Distinct { input }
            | Plan::Negate { input }
            | Plan::Threshold { input } => input.visit(f),
            Plan::Join(j) => {
                j.left.visit(f);
                j.right.visit(f);
            }
            Plan::Reduce(r) => r.input.visit(f),
            Plan::FlatMap(m) => m.input.visit(f),
            Plan::TemporalFilter(t) => t.input.visit(f),
            Plan::Union { inputs } => inputs.iter().for_each(|i| i.visit(f)),
            Plan::TopK(t) => t.input.visit(f),
            Plan::LetRec {
                base, step, body, ..
            } => {
                base.visit(f);
                step.visit(f);
                body.visit(f);
            }
        }
    }
}
