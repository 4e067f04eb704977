//! Rendering: plans transcribed into differential dataflow operators.
//!
//! Each plan node becomes a [`Bundle`]: the collection of result rows (`oks`) and, beside it,
//! the collection of evaluation errors (`errs`). Errors flow as data: a row that divides by
//! zero adds an error, and retracting that row retracts the error. The modules mirror
//! `plan/`: `join.rs`, `reduce.rs`, `threshold.rs`, `top_k.rs`, `flat_map.rs`, `temporal.rs`,
//! `recursive.rs`.
//!
//! Rendering is generic over the timestamp so that the same code runs inside the iterative
//! scope of `WITH RECURSIVE` (timestamps `Product<u64, u64>`). It never fails: everything that
//! could fail was checked when the plan was made, because every worker must build exactly the
//! same dataflow.

mod accumulate;
pub mod arrange;
mod flat_map;
mod frame;
mod join;
pub mod prefix;
pub mod read;
mod recursive;
mod reduce;
mod temporal;
mod threshold;
mod top_k;
mod totals;
pub mod walk;

use std::collections::BTreeMap;

use differential_dataflow::collection::AsCollection;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::implementations::KeySpine;
use differential_dataflow::VecCollection;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::vec::ToStream;
use timely::dataflow::Scope;
use timely::progress::Timestamp;

use crate::error::EvalError;
use crate::plan::{Diff, GlobalId, LocalId, Plan};
use crate::row::Row;
use read::{Split, SplitAs};

pub use recursive::RenderTime;

/// The engine's logical time: milliseconds since the Unix epoch.
pub type Time = u64;
/// An arrangement of rows, keyed by the whole row.
pub type RowSpine = KeySpine<Row, Time, Diff>;
pub type RowTrace = TraceAgent<RowSpine>;
/// An arrangement of evaluation errors.
pub type ErrSpine = KeySpine<EvalError, Time, Diff>;
pub type ErrTrace = TraceAgent<ErrSpine>;

pub type Rows<'s, T> = VecCollection<'s, T, Row, Diff>;
pub type Errs<'s, T> = VecCollection<'s, T, EvalError, Diff>;

/// Result rows and evaluation errors of one plan node.
#[derive(Clone)]
pub struct Bundle<'s, T: Timestamp> {
    pub oks: Rows<'s, T>,
    pub errs: Errs<'s, T>,
}

impl<'s, T: Timestamp + Lattice> Bundle<'s, T> {
    pub fn new(oks: Rows<'s, T>, errs: Errs<'s, T>) -> Self {
        Bundle { oks, errs }
    }
}

/// A function from a row (read in place) to what an operator keeps of it: a row, or a keyed
/// pair (a join side, a group's key and arguments).
pub type ReadFn<D> = Box<dyn FnMut(&Row) -> Option<Result<D, EvalError>>>;

/// A read that may make several results of one row (the copies a table function makes), each
/// given to its second argument: what [`ReadFn`]s become when reads are fused
/// ([`Context::read_each`]).
pub type ReadEach<D> = Box<dyn FnMut(&Row, &mut dyn FnMut(Result<D, EvalError>))>;

/// A read that can take in the steps below it ([`Context::read_each`]).
pub trait Fuse<D>: read::Read<D> + Sized {
    /// This read of the rows a map-filter-project makes, as a read of its input rows.
    fn after_mfp(self, eval: crate::plan::mfp::MfpEval) -> Self;
    /// This read as one that may make several results of a row.
    fn into_each(self) -> ReadEach<D>;
}

impl<D: 'static> Fuse<D> for ReadFn<D> {
    fn after_mfp(mut self, eval: crate::plan::mfp::MfpEval) -> Self {
        let mut scratch = Vec::new();
        Box::new(move |row| match eval.apply(row, &mut scratch) {
            Ok(Some(row)) => self(&row),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    fn into_each(mut self) -> ReadEach<D> {
        Box::new(move |row, out| {
            if let Some(result) = self(row) {
                out(result)
            }
        })
    }
}

impl<D: 'static> Fuse<D> for ReadEach<D> {
    fn after_mfp(mut self, eval: crate::plan::mfp::MfpEval) -> Self {
        let mut scratch = Vec::new();
        Box::new(move |row, out| match eval.apply(row, &mut scratch) {
            Ok(Some(row)) => self(&row, out),
            Ok(None) => {}
            Err(e) => out(Err(e)),
        })
    }

    fn into_each(self) -> ReadEach<D> {
        self
    }
}

/// An arrangement imported into a dataflow, not yet turned into a collection.
///
/// Operators that only read rows (a map-filter-project, group keys) read them in place from
/// the arrangement's batches ([`Context::map_rows`]); turning the arrangement into a
/// collection first would clone every row (for a row on the heap, a reference count touched
/// twice on memory the operator otherwise reads once).
pub struct Imported<'s, T: Timestamp + Lattice> {
    /// The rows as a collection, cloned out.
    pub rows: Box<dyn Fn() -> Rows<'s, T> + 's>,
    /// The arrangement itself, for joins on its leading columns that read it in place (see
    /// [`prefix`]): its rows are spread over workers by their first column.
    pub whole: prefix::RowArranged<'s, T>,
    /// When this is an index: what it arranges, and by which columns.
    pub index: Option<crate::plan::index::IndexOn>,
    pub errs: Errs<'s, T>,
}

/// The collections a plan can refer to while it is rendered.
pub struct Context<'s, T: Timestamp + Lattice> {
    pub scope: Scope<'s, T>,
    /// Collections by id; imported arrangements join them when first read as collections.
    pub gets: BTreeMap<GlobalId, Bundle<'s, T>>,
    pub imported: BTreeMap<GlobalId, Imported<'s, T>>,
    pub locals: BTreeMap<LocalId, Bundle<'s, T>>,
    /// Subplans already rendered in this dataflow, shared when one appears again (a query
    /// that names the same subquery twice, as Nexmark q5 does, computes it once).
    rendered: Vec<(Plan, Bundle<'s, T>)>,
}

impl<'s, T: RenderTime> Context<'s, T> {
    pub fn new(scope: Scope<'s, T>) -> Self {
        Context {
            scope,
            gets: BTreeMap::new(),
            imported: BTreeMap::new(),
            locals: BTreeMap::new(),
            rendered: Vec::new(),
        }
    }

    /// An empty error collection in this scope.
    pub fn no_errors(&self) -> Errs<'s, T> {
        Vec::<(EvalError, T, Diff)>::new()
            .to_stream(self.scope)
            .as_collection()
    }

    /// Rows present from the beginning of time, introduced by worker 0 only.
    pub fn constant(&self, rows: Vec<(Row, Diff)>) -> Rows<'s, T> {
        let rows = if self.scope.index() == 0 {
            rows
        } else {
            Vec::new()
        };
        rows.into_iter()
            .map(|(r, d)| (r, T::minimum(), d))
            .to_stream(self.scope)
            .as_collection()
    }

    /// Renders `plan`, or returns the collections of an equal subplan rendered before.
    ///
    /// Only self-contained subplans are shared: one that refers to a recursive binding means
    /// different collections inside and outside its `WITH RECURSIVE`. Leaves are cheap to
    /// render again and are left out so the list stays short.
    pub fn render(&mut self, plan: &Plan) -> Bundle<'s, T> {
        if !shareable(plan) {
            return self.render_node(plan);
        }
        if let Some((_, bundle)) = self.rendered.iter().find(|(p, _)| p == plan) {
            return bundle.clone();
        }
        let bundle = self.render_node(plan);
        self.rendered.push((plan.clone(), bundle.clone()));
        bundle
    }

    /// The collections of `id`, turning an imported arrangement into them on first use.
    pub fn get(&mut self, id: GlobalId) -> Option<Bundle<'s, T>> {
        if let Some(b) = self.gets.get(&id) {
            return Some(b.clone());
        }
        let imported = self.imported.get(&id)?;
        let bundle = Bundle::new((imported.rows)(), imported.errs.clone());
        self.gets.insert(id, bundle.clone());
        Some(bundle)
    }

    /// Every imported arrangement as collections (for a scope that enters them all).
    pub fn materialize_imports(&mut self) {
        let ids: Vec<GlobalId> = self.imported.keys().copied().collect();
        for id in ids {
            self.get(id);
        }
    }

    /// `f` applied to each row of `plan`: what it made, and beside it `plan`'s errors and
    /// those `f` raised. In place when `plan` reads an imported arrangement, on the rendered
    /// collection otherwise (`read.rs`).
    pub fn map_rows<D: Clone + 'static>(&mut self, plan: &Plan, f: ReadFn<D>) -> Split<'s, T, D> {
        self.read_each(plan, f, |d, r| (d, r))
    }

    /// `f` applied to each row of `plan`, in one operator with the map-filter-projects and
    /// table functions below it that nothing else has rendered: their rows are made, read
    /// and dropped one at a time instead of being pushed into a collection between two
    /// operators (a hopping window's copies of every row, say, each a new row). At the
    /// bottom, an imported arrangement is read in place or a rendered collection is read.
    /// Each result and its row's multiplicity are made an update by `weigh`.
    pub fn read_each<D, D2, R2, F>(
        &mut self,
        plan: &Plan,
        f: F,
        weigh: impl FnMut(D, Diff) -> (D2, R2) + 'static,
    ) -> SplitAs<'s, T, D2, R2>
    where
        D: Clone + 'static,
        D2: Clone + 'static,
        R2: Semigroup + 'static,
        F: Fuse<D>,
    {
        match plan {
            Plan::Get { id, .. } if !self.gets.contains_key(id) => {
                if let Some(imported) = self.imported.get(id) {
                    let (oks, errs) = read::arranged(&imported.whole, f, weigh);
                    return (oks, imported.errs.clone().concat(errs));
                }
            }
            Plan::Mfp { input, mfp } if !self.is_rendered(plan) => {
                let fused = f.after_mfp(mfp.evaluator(input.arity()));
                return self.read_each(input, fused, weigh);
            }
            Plan::FlatMap(flat) if !self.is_rendered(plan) => {
                let mut f = f.into_each();
                let mut copies = flat_map::Copies::new(&flat.func);
                let fused: ReadEach<D> = Box::new(move |row, out| {
                    copies.each(row, &mut |copy| match copy {
                        Ok(copy) => f(&copy, out),
                        Err(e) => out(Err(e)),
                    })
                });
                return self.read_each(&flat.input, fused, weigh);
            }
            _ => {}
        }
        let input = self.render(plan);
        let (oks, errs) = read::collection(input.oks, f, weigh);
        (oks, input.errs.concat(errs))
    }

    /// Whether `plan` was rendered before in this dataflow (and is read from its collection).
    fn is_rendered(&self, plan: &Plan) -> bool {
        shareable(plan) && self.rendered.iter().any(|(p, _)| p == plan)
    }

    fn render_node(&mut self, plan: &Plan) -> Bundle<'s, T> {
        match plan {
            Plan::Get { id, .. } => self.get(*id).unwrap_or_else(|| {
                // Unreachable when the coordinator checked dependencies; stay empty rather
                // than panic so every worker still builds the same graph.
                tracing::error!(id, "plan refers to an unknown collection");
                Bundle::new(self.constant(vec![]), self.no_errors())
            }),
            Plan::LocalGet { id, .. } => self.locals.get(id).cloned().unwrap_or_else(|| {
                tracing::error!(id, "plan refers to an unknown local binding");
                Bundle::new(self.constant(vec![]), self.no_errors())
            }),
            Plan::Constant { rows, .. } => {
                Bundle::new(self.constant(rows.clone()), self.no_errors())
            }
            Plan::Mfp {
                input: input_plan,
                mfp,
            } => {
                let eval = mfp.evaluator(input_plan.arity());
                let mut scratch = Vec::new();
                let (oks, errs) = self.map_rows(
                    input_plan,
                    Box::new(move |row| eval.apply(row, &mut scratch).transpose()),
                );
                Bundle::new(oks, errs)
            }
            // Unlowered steps render through their fused equivalent.
            Plan::Map { .. } | Plan::Filter { .. } | Plan::Project { .. } => {
                let lowered = crate::plan::lower::lower(plan.clone());
                self.render(&lowered)
            }
            Plan::Join(j) => join::render(self, j),
            Plan::Reduce(r) => reduce::render(self, r),
            Plan::FlatMap(f) => flat_map::render(self, f),
            Plan::TemporalFilter(t) => temporal::render(self, t),
            Plan::TopK(t) => top_k::render(self, t),
            Plan::Distinct { input } => {
                let input = self.render(input);
                Bundle::new(threshold::distinct(input.oks), input.errs)
            }
            Plan::Threshold { input } => {
                let input = self.render(input);
                Bundle::new(threshold::clamp_negative(input.oks), input.errs)
            }
            Plan::Negate { input } => {
                let input = self.render(input);
                Bundle::new(input.oks.negate(), input.errs)
            }
            Plan::Union { inputs } => {
                let mut oks = Vec::new();
                let mut errs = Vec::new();
                for i in inputs {
                    let b = self.render(i);
                    oks.push(b.oks);
                    errs.push(b.errs);
                }
                let scope = self.scope;
                Bundle::new(
                    differential_dataflow::collection::concatenate(scope, oks),
                    differential_dataflow::collection::concatenate(scope, errs),
                )
            }
            Plan::LetRec {
                id,
                base,
                step,
                distinct,
                body,
            } => {
                let base = self.render(base);
                let fixed = T::render_letrec(self, *id, base, step, *distinct);
                self.locals.insert(*id, fixed);
                let out = self.render(body);
                self.locals.remove(id);
                out
            }
        }
    }
}

/// Whether `plan` is worth sharing and means the same wherever it appears in a dataflow.
fn shareable(plan: &Plan) -> bool {
    if matches!(
        plan,
        Plan::Get { .. } | Plan::LocalGet { .. } | Plan::Constant { .. }
    ) {
        return false;
    }
    let mut local = false;
    plan.visit(&mut |p| local |= matches!(p, Plan::LocalGet { .. } | Plan::LetRec { .. }));
    !local
}

/// `f` applied to every update's data and the results split into rows and errors, in one
/// operator (a `map` before [`split`] would copy and push every update once more).
pub fn map_split<'s, T, D, D2, F>(
    data: VecCollection<'s, T, D, Diff>,
    mut f: F,
) -> (VecCollection<'s, T, D2, Diff>, Errs<'s, T>)
where
    T: Timestamp + Lattice,
    D: Clone + 'static,
    D2: Clone + 'static,
    F: FnMut(D) -> Result<D2, EvalError> + 'static,
{
    let (oks, errs) = data.inner.ok_err(move |(x, t, d)| match f(x) {
        Ok(y) => Ok((y, t, d)),
        Err(e) => Err((e, t, d)),
    });
    (oks.as_collection(), errs.as_collection())
}

/// Splits a collection of results into rows and errors.
pub fn split<'s, T: Timestamp + Lattice, D: Clone + 'static>(
    results: VecCollection<'s, T, Result<D, EvalError>, Diff>,
) -> (VecCollection<'s, T, D, Diff>, Errs<'s, T>) {
    map_split(results, |r| r)
}
