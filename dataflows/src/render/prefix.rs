//! Joins that read an imported arrangement of whole rows by its leading columns, in place.
//!
//! Tables, sources and views are arranged by whole row, and a row's bytes order rows by their
//! first column, then by the next (each value's encoding delimits itself, see `row/mod.rs`, so the
//! first byte where two rows differ lies in the first column where they differ). Such an
//! arrangement is therefore already in the order of its first `n` columns: it *is* a join side
//! keyed by them, without a second arrangement holding `(key, row)` copies. A join on a table's
//! leading columns reads the table's own batches here, so the join costs no memory beyond the
//! table and sends no update through differential's batcher a second time.
//!
//! Differential's `join_core` needs both sides to present the same key type, which a row
//! arrangement (key: the row) and a key arrangement (key: the key row) do not. The join here
//! drives differential's own join operator (`join_with_tactic`: frontiers, capabilities and
//! trace compaction) with a tactic of ours that merges the two sides by key *bytes*: the
//! leading fields of a row on a [`PrefixSide`], the key row's bytes on a keyed side.
//!
//! With several workers, a join side must lie where its key places it. Tables, sources, views
//! and indexes spread their rows over workers by the hash of their first column
//! ([`arrange_by_first_column`]), hashed as a one-column key row is, so rows with equal leading
//! columns lie on one worker: a side keyed anew that faces one of them is spread by its key's
//! first field ([`arrange_key_by_first_field`]), and equal keys meet.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use differential_dataflow::consolidation::{consolidate_updates, ConsolidatingContainerBuilder};
use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::join::{join_with_tactic, Fresh, JoinTactic};
use differential_dataflow::trace::cursor::{cursor_list, CursorList};
use differential_dataflow::trace::implementations::ord_neu::{OrdKeyBatch, OrdValBatch};
use differential_dataflow::trace::implementations::{KeySpine, ValSpine, Vector};
use differential_dataflow::trace::{Cursor, Navigable};
use differential_dataflow::{AsCollection, Data, VecCollection};
use timely::container::{ContainerBuilder, PushInto};

use super::{RenderTime, Rows, Time};
use crate::plan::Diff;
use crate::row::Row;
use timely::dataflow::channels::pact::{Exchange, Pipeline};

/// An arrangement of `(key, row)` pairs: a join side keyed by evaluated key expressions.
pub type PairSpine<T> = ValSpine<Row, Row, T, Diff>;
pub type PairArranged<'s, T> = Arranged<'s, TraceAgent<PairSpine<T>>>;
/// An arrangement of whole rows (a table's, a source's, a view's) at time `T`.
pub type RowArranged<'s, T> = Arranged<'s, TraceAgent<KeySpine<Row, T, Diff>>>;

// The batch types of those arrangements, named (not projected) so each gets its own reader.
type RowBatch<T> = Rc<OrdKeyBatch<Vector<((Row, ()), T, Diff)>>>;
type PairBatch<T> = Rc<OrdValBatch<Vector<((Row, Row), T, Diff)>>>;

/// Which rows a join side keeps (its `WHERE` predicates on the table, say).
pub type KeepFn = Box<dyn FnMut(&Row) -> bool>;

/// An imported arrangement of whole rows read as a join side keyed by its first `n` columns.
/// Rows `keep` drops, and rows with a NULL among those columns (NULL never equals anything),
/// are passed over. An index's rows start with `skip` indexed columns before the item's own:
/// the side's rows (what `keep` sees and the join emits) are what follows them.
pub struct PrefixSide<'s, T: RenderTime> {
    pub arranged: RowArranged<'s, T>,
    pub n: usize,
    pub skip: usize,
    pub keep: Option<KeepFn>,
}

/// One side of an equi-join.
pub enum Side<'s, T: RenderTime> {
    /// Arranged anew as `(key, row)` pairs.
    Keyed(PairArranged<'s, T>),
    /// Read in place from an arrangement of whole rows.
    Prefix(PrefixSide<'s, T>),
}

/// The matches of `left` and `right` on equal keys, each the left row followed by the right.
pub fn join<'s, T: RenderTime>(left: Side<'s, T>, right: Side<'s, T>) -> Rows<'s, T> {
    match (left, right) {
        (Side::Keyed(l), Side::Keyed(r)) => {
            l.join_core(r, |_k, l: &Row, r: &Row| Some(l.concat(r)))
        }
        (left, right) => join_map(left, right, |l: &Row, r: &Row| Some((l.concat(r), 1))),
    }
}

/// The matches of `left` and `right` on equal keys as `emit` maps them from the left row and
/// the right: a record and its difference for one copy of the match (multiplied by the sides'
/// multiplicities). An operator that takes the joined row apart again (an aggregate reading
/// its key and arguments) gets what it needs without the joined row being built.
pub fn join_map<'s, T, D, R, F>(
    left: Side<'s, T>,
    right: Side<'s, T>,
    emit: F,
) -> VecCollection<'s, T, D, R>
where
    T: RenderTime,
    D: Data + Ord,
    R: Data + Semigroup + Multiply<Diff, Output = R>,
    F: FnMut(&Row, &Row) -> Option<(D, R)> + Clone + 'static,
{
    match (left, right) {
        (Side::Keyed(l), Side::Keyed(r)) => {
            let mut emit = emit;
            l.join_core(r, move |_k, l: &Row, r: &Row| emit(l, r))
                .explode(|(d, r)| Some((d, r)))
        }
        (Side::Prefix(l), Side::Keyed(r)) => {
            let (l, lp) = prefix_params(l);
            let tactic = BytesTactic::<RowBatch<T>, PairBatch<T>, T, F>::new(lp, (), emit);
            join_with_tactic(l, r, "JoinByPrefix", tactic).as_collection()
        }
        (Side::Keyed(l), Side::Prefix(r)) => {
            let (r, rp) = prefix_params(r);
            let tactic = BytesTactic::<PairBatch<T>, RowBatch<T>, T, F>::new((), rp, emit);
            join_with_tactic(l, r, "JoinByPrefix", tactic).as_collection()
        }
        (Side::Prefix(l), Side::Prefix(r)) => {
            let ((l, lp), (r, rp)) = (prefix_params(l), prefix_params(r));
            let tactic = BytesTactic::<RowBatch<T>, RowBatch<T>, T, F>::new(lp, rp, emit);
            join_with_tactic(l, r, "JoinByPrefix", tactic).as_collection()
        }
    }
}

/// `rows` arranged by whole row and spread over workers by their first column, hashed as the
/// one-column key row of that value is (so `arrange_by_key` on such keys places a key where
/// its rows are). With `placed`, the rows already lie there (see `plan::placement`) and are
/// arranged where they are, without an exchange.
pub fn arrange_by_first_column<'s>(
    rows: Rows<'s, Time>,
    name: &str,
    placed: bool,
) -> RowArranged<'s, Time> {
    use super::arrange::KeyBatcher;
    use differential_dataflow::operators::arrange::arrangement::arrange_core;
    if placed {
        return arrange_in_place(rows, name);
    }
    let exchange = Exchange::new(|(row, _, _): &(Row, Time, Diff)| row.placement_hash());
    arrange_core::<_, _, KeyBatcher<Row, Time, Diff>, KeySpine<Row, Time, Diff>>(
        rows.inner,
        exchange,
        name,
        KeyBatcher::new,
    )
}

/// `updates` unchanged; in debug builds, each checked to lie on the worker that `hash` places
/// it on, as the exchange it is spared would have put it (`plan::placement`'s rules, checked
/// by every test with several workers).
pub fn check_placed<'s, T, D, R>(
    updates: VecCollection<'s, T, D, R>,
    hash: impl Fn(&D) -> u64 + 'static,
) -> VecCollection<'s, T, D, R>
where
    T: timely::progress::Timestamp + Lattice,
    D: Data,
    R: Semigroup + 'static,
{
    if !cfg!(debug_assertions) {
        return updates;
    }
    let scope = updates.inner.scope();
    let (index, peers) = (scope.index(), scope.peers() as u64);
    updates.inspect(move |(d, _, _)| {
        assert_eq!(
            (hash(d) % peers) as usize,
            index,
            "an update arranged in place lies on another worker"
        );
    })
}

/// `rows` arranged by whole row where they lie, each already on the worker that the hash of
/// its first column places it on (`plan::placement`; checked in debug builds).
pub fn arrange_in_place<'s, T: RenderTime>(
    rows: VecCollection<'s, T, Row, Diff>,
    name: &str,
) -> Arranged<'s, TraceAgent<KeySpine<Row, T, Diff>>> {
    use super::arrange::KeyBatcher;
    use differential_dataflow::operators::arrange::arrangement::arrange_core;
    let rows = check_placed(rows, Row::placement_hash);
    arrange_core::<_, _, KeyBatcher<Row, T, Diff>, KeySpine<Row, T, Diff>>(
        rows.inner,
        Pipeline,
        name,
        KeyBatcher::new,
    )
}

/// `pairs` arranged by their keys and spread over workers by the key's first field, as
/// [`arrange_by_first_column`] spreads rows: a join side that meets one read in place. With
/// `placed`, every pair already lies there (`plan::placement`) and is arranged where it is.
pub fn arrange_key_by_first_field<'s, T: RenderTime>(
    pairs: VecCollection<'s, T, (Row, Row), Diff>,
    name: &str,
    placed: bool,
) -> PairArranged<'s, T> {
    use super::arrange::ValBatcher;
    use differential_dataflow::operators::arrange::arrangement::arrange_core;
    if placed {
        let pairs = check_placed(pairs, |(key, _)| key.placement_hash());
        return arrange_core::<_, _, ValBatcher<Row, Row, T, Diff>, PairSpine<T>>(
            pairs.inner,
            Pipeline,
            name,
            ValBatcher::new,
        );
    }
    let exchange = Exchange::new(|((key, _), _, _): &((Row, Row), T, Diff)| key.placement_hash());
    arrange_core::<_, _, ValBatcher<Row, Row, T, Diff>, PairSpine<T>>(
        pairs.inner,
        exchange,
        name,
        ValBatcher::new,
    )
}

/// Splits a prefix side into its arrangement and what its readers share.
fn prefix_params<T: RenderTime>(side: PrefixSide<'_, T>) -> (RowArranged<'_, T>, PrefixParams) {
    let keep = side.keep.map(|keep| Rc::new(RefCell::new(keep)));
    (side.arranged, (side.n, side.skip, keep))
}

/// A prefix side's key width, leading columns to skip and filter, shared by every work unit of
/// its join.
type PrefixParams = (usize, usize, Option<Rc<RefCell<KeepFn>>>);

/// The batches of one side of a join, read by key bytes.
trait SideBatch<T>: Sized + 'static {
    type Params: Clone + 'static;
    type Reader: SideReader<T> + 'static;
    fn reader(batches: Vec<Self>, params: &Self::Params) -> Self::Reader;
}

/// A position in one side's batches, one join key at a time, in key byte order.
trait SideReader<T> {
    /// The current key's bytes; `None` once every key has been read.
    fn key(&self) -> Option<&[u8]>;
    /// Moves to the first key at or after `key`.
    fn seek(&mut self, key: &[u8]);
    /// Appends the current key's `(row, time, diff)` updates (times joined with `meet` when
    /// given) to `into`, and moves to the next key.
    fn load(&mut self, meet: Option<&T>, into: &mut Vec<(Row, T, Diff)>);
}

/// Batches of whole rows, keyed by their first `n` fields.
struct PrefixReader<T: RenderTime> {
    cursor: CursorList<<RowBatch<T> as Navigable>::Cursor>,
    storage: Vec<RowBatch<T>>,
    n: usize,
    skip: usize,
    keep: Option<Rc<RefCell<KeepFn>>>,
    /// The length of the current row's key bytes.
    key_len: usize,
}

impl<T: RenderTime> SideBatch<T> for RowBatch<T> {
    type Params = PrefixParams;
    type Reader = PrefixReader<T>;
    fn reader(batches: Vec<Self>, (n, skip, keep): &PrefixParams) -> PrefixReader<T> {
        let (cursor, storage) = cursor_list(batches);
        let mut reader = PrefixReader {
            cursor,
            storage,
            n: *n,
            skip: *skip,
            keep: keep.clone(),
            key_len: 0,
        };
        reader.settle();
        reader
    }
}

impl<T: RenderTime> PrefixReader<T> {
    /// Moves past rows the side does not keep, to the next one it does (or the end).
    fn settle(&mut self) {
        loop {
            let Some(row) = self.cursor.get_key(&self.storage) else {
                return;
            };
            let kept = match row.leading_len(self.n) {
                Some(len) => {
                    self.key_len = len;
                    match &self.keep {
                        None => true,
                        Some(keep) if self.skip == 0 => (keep.borrow_mut())(row),
                        Some(keep) => (keep.borrow_mut())(&row.skip_fields(self.skip)),
                    }
                }
                None => false,
            };
            if kept {
                return;
            }
            self.cursor.step_key(&self.storage);
        }
    }
}

impl<T: RenderTime> SideReader<T> for PrefixReader<T> {
    fn key(&self) -> Option<&[u8]> {
        let row = self.cursor.get_key(&self.storage)?;
        Some(&row.encoded_bytes()[..self.key_len])
    }

    fn seek(&mut self, key: &[u8]) {
        // Rows whose first `n` fields are `key` start with those bytes, so they sort at or
        // after the row of `key` alone, and rows with a smaller key before it.
        self.cursor.seek_key(&self.storage, &Row::from_encoded(key));
        self.settle();
    }

    fn load(&mut self, meet: Option<&T>, into: &mut Vec<(Row, T, Diff)>) {
        let Some(first) = self.cursor.get_key(&self.storage) else {
            return;
        };
        // The current row is kept (`settle`); its key's later rows are checked here.
        let key = Row::from_encoded(&first.encoded_bytes()[..self.key_len]);
        let mut checked = true;
        while let Some(row) = self.cursor.get_key(&self.storage) {
            if !row.starts_with(&key) {
                break;
            }
            // The side's row: an index's without its leading indexed columns.
            let own = match self.skip {
                0 => row.clone(),
                skip => row.skip_fields(skip),
            };
            let kept = checked
                || self
                    .keep
                    .as_ref()
                    .is_none_or(|keep| (keep.borrow_mut())(&own));
            checked = false;
            if kept {
                while self.cursor.get_val(&self.storage).is_some() {
                    self.cursor.map_times(&self.storage, |t, d| {
                        into.push((own.clone(), advanced(t, meet), *d));
                    });
                    self.cursor.step_val(&self.storage);
                }
            }
            self.cursor.step_key(&self.storage);
        }
        self.settle();
    }
}

/// Batches of `(key, row)` pairs.
struct PairReader<T: RenderTime> {
    cursor: CursorList<<PairBatch<T> as Navigable>::Cursor>,
    storage: Vec<PairBatch<T>>,
}

impl<T: RenderTime> SideBatch<T> for PairBatch<T> {
    type Params = ();
    type Reader = PairReader<T>;
    fn reader(batches: Vec<Self>, _: &()) -> PairReader<T> {
        let (cursor, storage) = cursor_list(batches);
        PairReader { cursor, storage }
    }
}

impl<T: RenderTime> SideReader<T> for PairReader<T> {
    fn key(&self) -> Option<&[u8]> {
        Some(self.cursor.get_key(&self.storage)?.encoded_bytes())
    }

    fn seek(&mut self, key: &[u8]) {
        self.cursor.seek_key(&self.storage, &Row::from_encoded(key));
    }

    fn load(&mut self, meet: Option<&T>, into: &mut Vec<(Row, T, Diff)>) {
        while let Some(row) = self.cursor.get_val(&self.storage) {
            self.cursor.map_times(&self.storage, |t, d| {
                into.push((row.clone(), advanced(t, meet), *d));
            });
            self.cursor.step_val(&self.storage);
        }
        self.cursor.step_key(&self.storage);
    }
}

fn advanced<T: RenderTime>(t: &T, meet: Option<&T>) -> T {
    match meet {
        Some(meet) => t.join(meet),
        None => t.clone(),
    }
}

/// Joins batches of two sides by merging them on key bytes; `emit` makes each match's output.
struct BytesTactic<B0: SideBatch<T>, B1: SideBatch<T>, T, F> {
    params0: B0::Params,
    params1: B1::Params,
    emit: F,
}

impl<B0: SideBatch<T>, B1: SideBatch<T>, T, F> BytesTactic<B0, B1, T, F> {
    fn new(params0: B0::Params, params1: B1::Params, emit: F) -> Self {
        BytesTactic {
            params0,
            params1,
            emit,
        }
    }
}

type Output<D, T, R> = Vec<(D, T, R)>;
type Builder<D, T, R> = ConsolidatingContainerBuilder<Output<D, T, R>>;

impl<B0, B1, T, D, R, F> JoinTactic<T, B0, B1, Output<D, T, R>> for BytesTactic<B0, B1, T, F>
where
    B0: SideBatch<T>,
    B1: SideBatch<T>,
    T: RenderTime,
    D: Data + Ord,
    R: Data + Semigroup + Multiply<Diff, Output = R>,
    F: FnMut(&Row, &Row) -> Option<(D, R)> + Clone + 'static,
{
    fn prep(
        &mut self,
        input0: Vec<B0>,
        input1: Vec<B1>,
        fresh: Fresh,
        meet: T,
    ) -> Box<dyn Iterator<Item = Output<D, T, R>>> {
        // The side that is not the fresh batch is a trace read through older batches: its
        // times are advanced to `meet` (a lower bound of the fresh side's times, so of every
        // output time) to consolidate them, as differential's own join does.
        let advance0 = matches!(fresh, Fresh::Input1);
        Box::new(Matches::<B0::Reader, B1::Reader, T, D, R, F> {
            side0: B0::reader(input0, &self.params0),
            side1: B1::reader(input1, &self.params1),
            meet,
            advance0,
            updates0: Vec::new(),
            updates1: Vec::new(),
            builder: Builder::<D, T, R>::default(),
            emit: self.emit.clone(),
            ready: VecDeque::new(),
            done: false,
        })
    }
}

/// The matches of one work unit, produced a container at a time so the join operator can
/// stop when its fuel runs out and resume on its next activation.
struct Matches<R0, R1, T: RenderTime, D, R, F> {
    side0: R0,
    side1: R1,
    meet: T,
    advance0: bool,
    updates0: Vec<(Row, T, Diff)>,
    updates1: Vec<(Row, T, Diff)>,
    builder: Builder<D, T, R>,
    ready: VecDeque<Output<D, T, R>>,
    emit: F,
    done: bool,
}

impl<R0, R1, T, D, R, F> Iterator for Matches<R0, R1, T, D, R, F>
where
    R0: SideReader<T>,
    R1: SideReader<T>,
    T: RenderTime,
    D: Data + Ord,
    R: Data + Semigroup + Multiply<Diff, Output = R>,
    F: FnMut(&Row, &Row) -> Option<(D, R)>,
{
    type Item = Output<D, T, R>;

    fn next(&mut self) -> Option<Output<D, T, R>> {
        use std::cmp::Ordering;
        if let Some(container) = self.ready.pop_front() {
            return Some(container);
        }
        if self.done {
            return None;
        }
        let (meet0, meet1) = match self.advance0 {
            true => (Some(&self.meet), None),
            false => (None, Some(&self.meet)),
        };
        while self.ready.is_empty() {
            let (Some(key0), Some(key1)) = (self.side0.key(), self.side1.key()) else {
                self.done = true;
                while let Some(container) = self.builder.finish() {
                    self.ready.push_back(std::mem::take(container));
                }
                break;
            };
            match key0.cmp(key1) {
                Ordering::Less => self.side0.seek(key1),
                Ordering::Greater => self.side1.seek(key0),
                Ordering::Equal => {
                    self.side0.load(meet0, &mut self.updates0);
                    self.side1.load(meet1, &mut self.updates1);
                    if meet0.is_some() {
                        consolidate_updates(&mut self.updates0);
                    }
                    if meet1.is_some() {
                        consolidate_updates(&mut self.updates1);
                    }
                    for (r0, t0, d0) in &self.updates0 {
                        for (r1, t1, d1) in &self.updates1 {
                            if let Some((d, r)) = (self.emit)(r0, r1) {
                                let r = r.multiply(&(d0 * d1));
                                self.builder.push_into((d, t0.join(t1), r));
                            }
                        }
                    }
                    self.updates0.clear();
                    self.updates1.clear();
                    while let Some(container) = self.builder.extract() {
                        self.ready.push_back(std::mem::take(container));
                    }
                }
            }
        }
        self.ready.pop_front()
    }
}
