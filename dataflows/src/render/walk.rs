//! The first rows of each group in an order, found by walking the group's arrangement.
//!
//! Differential's `reduce` recomputes a changed group from all of its rows, so `ORDER BY …
//! LIMIT 5` over a million rows sorted a million rows for every write (1.7 s), and `max` per
//! group read the whole group (13 ms per write to a group of 100,000 rows). Here each row is
//! arranged by its group beside its [`SortKey`], so a group's values lie in the query's order,
//! and for each group a batch changes, at each time it changes, the operator walks the group
//! from its first value until it has the rows it wants: `offset + limit` rows for a top-k,
//! the rows ranked up to the limit for `row_number`/`rank`/`dense_rank` with `rn <= k`, one
//! value per aggregate for `min`/`max` (each aggregate's values led by its own byte, so one
//! arrangement serves them all). A write costs the rows walked, not the group's size. Rows
//! retracted but not yet compacted away are stepped over.
//!
//! The result before a time is walked again rather than stored: the operator keeps no state
//! besides the arrangement, whose compaction follows the operator's progress (and, for `count`
//! and integer `sum`/`avg` beside `min`/`max`, each group's running totals: [`Totals`]).
//! Timestamps must be totally ordered (the walk asks which updates are at or before a time),
//! so loops, whose times are pairs, keep the `reduce` (`RenderTime::walk`).

use std::collections::HashMap;

use differential_dataflow::difference::IsZero;
use differential_dataflow::trace::cursor::{cursor_list, Cursor, Navigable};
use differential_dataflow::trace::TraceReader;
use differential_dataflow::{AsCollection, VecCollection};
use smallvec::SmallVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{CapabilitySet, Operator};
use timely::progress::Antichain;

use super::accumulate::{self, Accums};
use super::top_k::Ranker;
use super::Time;
use crate::error::EvalError;
use crate::plan::reduce::{AggFunc, AggregateExpr};
use crate::plan::top_k::RankKind;
use crate::plan::Diff;
use crate::row::{Row, RowPacker};
use crate::sort_key::SortKey;
use crate::value::Value;

/// Which rows of each group the walk picks, and what it makes of them.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// `ORDER BY … LIMIT`: rows `offset .. offset + limit` of each group, in order; the output
    /// is those rows (the arranged values' rows).
    First { offset: usize, limit: usize },
    /// `min` / `max` per group: for each of `count` aggregates, whose values' sort keys lead
    /// with its index as a byte, the first value's row (one column; NULL sorts last, so a
    /// NULL first means all are NULL). The output is the group key followed by those columns.
    Extremes { count: usize },
    /// `row_number`, `rank` or `dense_rank` cut to the ranks up to `limit` (a filter
    /// `rn <= limit` on the ranking): each group's rows in order with their rank appended,
    /// until a rank passes the limit. Rows tie when their sort keys are equal.
    Ranks { kind: RankKind, limit: i64 },
}

/// A group's picked rows with their multiplicities.
type Picked = SmallVec<[(Row, Diff); 4]>;

/// `count`, `count(*)` and integer `sum`/`avg` kept beside walked `min`/`max`, so a group
/// with both kinds of aggregates changes at the cost of the rows walked and the rows changed.
///
/// The first extreme's values (lead byte 0) carry, after their own column, the arguments of
/// the aggregates kept here, so every input row is seen once in the changes of a batch. The
/// operator keeps each group's totals ([`Accums`]) as of the batches it has seen, adds the
/// contributions of the new ones time by time, and builds the result row from the walked
/// extremes and the totals. A total outside `bigint` is an evaluation error for its group.
#[derive(Clone, Debug)]
pub struct Totals {
    /// The aggregates kept as totals, in the query's order among themselves.
    pub aggs: Vec<AggregateExpr>,
    /// For each of `aggs`, whether its argument is the first extreme's column (not carried).
    pub shared: Vec<bool>,
    /// For each of the query's aggregates, in order: `Some(i)` the `i`th extreme, `None` the
    /// next aggregate of `aggs`.
    pub order: Vec<Option<usize>>,
}

impl Totals {
    /// Slots of the totals (`accumulate::Accums`): the rows, then each aggregate's.
    fn width(&self) -> usize {
        1 + self.aggs.iter().map(accumulate::slots).sum::<usize>()
    }

    /// Adds `d` times a row's contributions to `acc`, from the first extreme's value row (its
    /// column, then the arguments of `aggs` but `count(*)`'s and the shared ones).
    fn add(&self, value: &Row, d: Diff, acc: &mut [i128]) {
        let mut own: SmallVec<[i128; 8]> = SmallVec::new();
        own.push(1);
        let fields = value.fields();
        let mut args = fields.iter().skip(1);
        for (a, shared) in self.aggs.iter().zip(&self.shared) {
            if a.func == AggFunc::CountStar {
                continue;
            }
            let field = if *shared { fields.first() } else { args.next() };
            let field = field.filter(|f| !Row::field_is_null(f));
            if a.func == AggFunc::Count {
                // A count looks at the tag only (its argument may be text).
                own.push(i128::from(field.is_some()));
                continue;
            }
            let v = field.map(|f| Row::decode_field(f)).unwrap_or(Value::Null);
            accumulate::contribution(a.func, &v, &mut own);
        }
        for (slot, x) in acc.iter_mut().zip(own) {
            *slot += x * d as i128;
        }
    }

    /// The result row of a group from the walk's (group key, then the extremes) and the
    /// group's totals.
    fn assemble(
        &self,
        extremes: usize,
        picked: Picked,
        acc: &Accums,
    ) -> SmallVec<[(Result<Row, EvalError>, Diff); 4]> {
        picked
            .into_iter()
            .map(|(row, m)| {
                let result = accumulate::finish(&self.aggs, acc).map(|totals| {
                    let fields = row.fields();
                    let key = fields.len() - extremes;
                    let mut packer = RowPacker::new();
                    for f in &fields[..key] {
                        packer.push_field(f);
                    }
                    let mut totals = totals.iter();
                    for slot in &self.order {
                        match slot {
                            Some(i) => packer.push_field(fields[key + i]),
                            None => packer.push(totals.next().unwrap_or(&Value::Null)),
                        }
                    }
                    packer.finish()
                });
                (result, m)
            })
            .collect()
    }
}

/// Rows keyed by group, each beside its sort key, walked per group as `pick` says.
pub fn render<'s>(
    pairs: VecCollection<'s, Time, (Row, (SortKey, Row)), Diff>,
    pick: Pick,
    name: &str,
) -> VecCollection<'s, Time, Row, Diff> {
    walk(pairs, pick, None, name, |picked, _| picked)
}

/// `min`/`max` of `count` aggregates walked as [`Pick::Extremes`], beside `totals`; a group's
/// row, or the error its totals make.
pub fn render_with_totals<'s>(
    pairs: VecCollection<'s, Time, (Row, (SortKey, Row)), Diff>,
    count: usize,
    totals: Totals,
    name: &str,
) -> VecCollection<'s, Time, Result<Row, EvalError>, Diff> {
    let kept = totals.clone();
    walk(
        pairs,
        Pick::Extremes { count },
        Some(totals),
        name,
        move |picked, acc| kept.assemble(count, picked, acc),
    )
}

/// The walking operator; `finish` makes the output of a group's picked rows (and its totals,
/// zero without `totals`).
fn walk<'s, D, F>(
    pairs: VecCollection<'s, Time, (Row, (SortKey, Row)), Diff>,
    pick: Pick,
    totals: Option<Totals>,
    name: &str,
    finish: F,
) -> VecCollection<'s, Time, D, Diff>
where
    D: timely::ExchangeData + Clone + Ord,
    F: Fn(Picked, &Accums) -> SmallVec<[(D, Diff); 4]> + 'static,
{
    let arranged = super::arrange::by_key(pairs, &format!("Arrange: {name}"));
    let mut trace = arranged.trace.clone();
    arranged
        .stream
        .unary_frontier(Pipeline, name, move |_, _| {
            let mut lower = Antichain::from_elem(0);
            let mut upper = Antichain::from_elem(0);
            let mut times: Vec<Time> = Vec::new();
            let mut changes: Vec<(D, Diff)> = Vec::new();
            // Each group's totals as of `lower` (with `totals`).
            let mut state: HashMap<Row, Accums> = HashMap::new();
            let width = totals.as_ref().map_or(0, Totals::width);
            let mut slots: SmallVec<[i128; 8]> = SmallVec::new();
            move |(input, _frontier), output| {
                lower.clone_from(&upper);
                let mut caps = CapabilitySet::new();
                let mut fresh = Vec::new();
                input.for_each(|capability, spans| {
                    for capability in capability.retain_stamp(0).iter() {
                        caps.insert(capability.clone());
                    }
                    for span in spans.drain(..) {
                        // Spans arrive in order.
                        upper.clone_from(span.upper());
                        fresh.extend(span.inner);
                    }
                });
                if !caps.is_empty() && !fresh.is_empty() {
                    let mut session = output.session(&caps);
                    let mut all = trace
                        .batches_through(lower.borrow())
                        .expect("the trace holds what came before the new batches");
                    let history = all.len();
                    all.extend(fresh.iter().cloned());
                    let (mut changed, changed_storage) = cursor_list(fresh);
                    let mut group = Group::new(&all, history);
                    // The new rows of the current group, by time (with `totals`).
                    let mut deltas: Vec<(Time, Diff, &Row)> = Vec::new();
                    while let Some(key) = changed.get_key(&changed_storage) {
                        times.clear();
                        deltas.clear();
                        while let Some(val) = changed.get_val(&changed_storage) {
                            let counted = totals.is_some() && val.0.lead() == Some(0);
                            changed.map_times(&changed_storage, |t, d| {
                                times.push(*t);
                                if counted {
                                    deltas.push((*t, *d, &val.1));
                                }
                            });
                            changed.step_val(&changed_storage);
                        }
                        times.sort_unstable();
                        times.dedup();
                        deltas.sort_unstable_by_key(|(t, _, _)| *t);
                        group.seek_key(key);
                        let first = times[0];
                        let mut acc = match totals {
                            Some(_) => state.get(key).cloned().unwrap_or_default(),
                            None => Accums::default(),
                        };
                        slots.clear();
                        slots.extend((0..width).map(|i| acc.get(i)));
                        let mut before = finish(group.pick(key, pick, |t| t < first), &acc);
                        let mut next = 0;
                        for &t in &times {
                            if let Some(totals) = &totals {
                                let from = next;
                                while let Some((_, d, row)) = deltas.get(next).filter(|x| x.0 <= t)
                                {
                                    totals.add(row, *d, &mut slots);
                                    next += 1;
                                }
                                if next > from {
                                    acc = Accums::from_slots(&slots);
                                }
                            }
                            let now = finish(group.pick(key, pick, |u| u <= t), &acc);
                            if now != before {
                                changes.clear();
                                changes.extend(before.drain(..).map(|(r, m)| (r, -m)));
                                changes.extend(now.iter().cloned());
                                differential_dataflow::consolidation::consolidate(&mut changes);
                                for (row, m) in changes.drain(..) {
                                    session.give((row, t, m));
                                }
                            }
                            before = now;
                        }
                        if totals.is_some() {
                            if acc.is_zero() {
                                state.remove(key);
                            } else {
                                state.insert(key.clone(), acc);
                            }
                        }
                        changed.step_key(&changed_storage);
                    }
                }
                trace.advance_upper(&mut upper);
                trace.set_logical_compaction(upper.borrow());
                trace.set_physical_compaction(upper.borrow());
            }
        })
        .as_collection()
}

/// The groups of one activation's batches, visited in key order, each group's values walked
/// in order: a cursor per batch, moved forward from key to key (as differential's reduce
/// moves its cursors), and for the current key the values of the batches that hold it merged
/// value by value. (Differential's `CursorList` seeks values in every batch, also those whose
/// cursor has passed the key, which fails.) Each part knows whether its batch came before the
/// new ones: those count whatever their times, which compaction may have advanced as far as
/// the new batches' lower bound.
struct Group<'a, B: Navigable> {
    parts: Vec<(B::Cursor, &'a B, bool)>,
    /// The parts at the current key.
    active: SmallVec<[usize; 16]>,
}

impl<'a, B> Group<'a, B>
where
    B: Navigable,
    B::Cursor: for<'b> Cursor<
        Key<'b> = &'b Row,
        Val<'b> = &'b (SortKey, Row),
        TimeGat<'b> = &'b Time,
        DiffGat<'b> = &'b Diff,
    >,
{
    /// Cursors over `batches`, of which the first `history` came before the new ones.
    fn new(batches: &'a [B], history: usize) -> Self {
        let parts = (batches.iter().enumerate())
            .map(|(i, batch)| (batch.cursor(), batch, i < history))
            .collect();
        Group {
            parts,
            active: SmallVec::new(),
        }
    }

    /// Moves to `key`'s group; keys must come in increasing order.
    fn seek_key(&mut self, key: &Row) {
        self.active.clear();
        for (i, (c, b, _)) in self.parts.iter_mut().enumerate() {
            c.seek_key(b, key);
            if c.get_key(b) == Some(key) {
                self.active.push(i);
            }
        }
    }

    /// The least value at or after every active part's position, if any.
    fn value(&self) -> Option<&'a (SortKey, Row)> {
        (self.active.iter())
            .filter_map(|&i| {
                let (c, b, _) = &self.parts[i];
                c.get_val(b)
            })
            .min()
    }

    /// The multiplicity of `val`, counting the new batches' updates at the times `include`
    /// accepts; steps past it.
    fn count_and_step(&mut self, val: &(SortKey, Row), include: &impl Fn(Time) -> bool) -> Diff {
        let mut n: Diff = 0;
        for &i in &self.active {
            let (c, b, old) = &mut self.parts[i];
            if c.get_val(b) == Some(val) {
                c.map_times(b, |t, d| {
                    if *old || include(*t) {
                        n += *d;
                    }
                });
                c.step_val(b);
            }
        }
        n
    }

    fn seek(&mut self, val: &(SortKey, Row)) {
        for &i in &self.active {
            let (c, b, _) = &mut self.parts[i];
            c.seek_val(b, val);
        }
    }

    /// What `pick` takes from the group (`key`'s), counting the new batches' updates at the
    /// times `include` accepts.
    fn pick(&mut self, key: &Row, pick: Pick, include: impl Fn(Time) -> bool) -> Picked {
        for &i in &self.active {
            let (c, b, _) = &mut self.parts[i];
            c.rewind_vals(b);
        }
        let mut out = Picked::new();
        match pick {
            Pick::First { offset, limit } => {
                let (mut skip, mut take) = (offset as Diff, limit.min(Diff::MAX as usize) as Diff);
                while take > 0 {
                    let Some(val) = self.value() else {
                        break;
                    };
                    let mut n = self.count_and_step(val, &include);
                    if n > 0 {
                        let skipped = skip.min(n);
                        skip -= skipped;
                        n -= skipped;
                        let taken = n.min(take);
                        if taken > 0 {
                            out.push((val.1.clone(), taken));
                            take -= taken;
                        }
                    }
                }
            }
            Pick::Ranks { kind, limit } => {
                let mut ranker = Ranker::new(kind, limit);
                let mut previous: Option<&SortKey> = None;
                while let Some(val) = self.value() {
                    let m = self.count_and_step(val, &include) as i64;
                    if m <= 0 {
                        continue;
                    }
                    let (sort, row) = val;
                    let more = ranker.rank(previous == Some(sort), m, |rank, n| {
                        out.push((row.append(&[Value::Int(rank)]), n))
                    });
                    if !more {
                        break;
                    }
                    previous = Some(sort);
                }
            }
            Pick::Extremes { count: aggs } => {
                let mut fields: SmallVec<[Option<&[u8]>; 4]> = SmallVec::new();
                for agg in 0..aggs {
                    let lead = agg as u8;
                    self.seek(&(SortKey::leading(&[lead]), Row::default()));
                    let mut first = None;
                    while let Some(val) = self.value() {
                        if val.0.lead() != Some(lead) {
                            break;
                        }
                        if self.count_and_step(val, &include) > 0 {
                            // The first extreme's values carry the totals' arguments after
                            // their own column.
                            first = val.1.fields_to(1).first().copied();
                            break;
                        }
                    }
                    fields.push(first);
                }
                // A group with no rows at this time has no result.
                if fields.iter().any(Option::is_some) {
                    let values = Row::from_fields(fields.iter().copied());
                    out.push((key.concat(&values), 1));
                }
            }
        }
        out
    }
}
