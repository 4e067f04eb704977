//! Reading rows with a function that may fail, its results and its errors leaving one operator
//! on two outputs.
//!
//! Every map-filter-project, group key and join key is a function from a row to an optional
//! result or evaluation error. Made into a collection of `Result`s and then split, each update
//! was pushed twice, by the reading operator and again by the split. [`arranged`] walks an
//! imported arrangement's batches in place and [`collection`] reads a collection, each giving
//! results and errors straight to their own output.
//!
//! What a read gives can carry weight in its difference (`weigh`): a `count`/`sum` makes each
//! row its group key with the row's contributions as the difference, in the same operator
//! that reads the row.

use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::trace::cursor::{Cursor, Navigable};
use differential_dataflow::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::progress::operate::FrontierInterest;
use timely::progress::Timestamp;

use super::prefix::RowArranged;
use super::{Errs, ReadEach, ReadFn, Rows};
use crate::error::EvalError;
use crate::plan::Diff;
use crate::row::Row;

/// What a read made, and the errors it raised.
pub type Split<'s, T, D> = SplitAs<'s, T, D, Diff>;

/// The same, with what it made weighed in another difference type.
pub type SplitAs<'s, T, D, R> = (
    differential_dataflow::VecCollection<'s, T, D, R>,
    Errs<'s, T>,
);

/// A function that reads a row into what an operator keeps of it: a [`ReadFn`] (at most one
/// result per row) or a [`ReadEach`] (any number). The operators below are generic over it,
/// so a `ReadFn`'s result reaches the output without another call through a pointer.
pub trait Read<D>: 'static {
    /// Gives `out` each result of `row`.
    fn read(&mut self, row: &Row, out: &mut impl FnMut(Result<D, EvalError>));
}

impl<D: 'static> Read<D> for ReadFn<D> {
    #[inline]
    fn read(&mut self, row: &Row, out: &mut impl FnMut(Result<D, EvalError>)) {
        if let Some(result) = self(row) {
            out(result)
        }
    }
}

impl<D: 'static> Read<D> for ReadEach<D> {
    #[inline]
    fn read(&mut self, row: &Row, out: &mut impl FnMut(Result<D, EvalError>)) {
        self(row, out)
    }
}

/// How many rows ahead of the one it reads [`arranged`] asks for a row's bytes: enough to
/// cover a load from memory while the rows between are read.
const PREFETCH_AHEAD: usize = 8;

/// `f` applied to every row of an arrangement, read in place from its batches; each result
/// and its row's multiplicity made an update by `weigh`.
pub fn arranged<'s, T, D, D2, R2>(
    arranged: &RowArranged<'s, T>,
    mut f: impl Read<D>,
    mut weigh: impl FnMut(D, Diff) -> (D2, R2) + 'static,
) -> SplitAs<'s, T, D2, R2>
where
    T: Timestamp + Lattice,
    D: Clone + 'static,
    D2: Clone + 'static,
    R2: Semigroup + 'static,
{
    let stream = arranged.stream.clone();
    let mut builder = OperatorBuilder::new("ReadInPlace".to_owned(), stream.scope());
    let mut input = builder.new_input(stream, Pipeline);
    builder.set_notify_for(0, FrontierInterest::Never);
    let (oks, oks_stream) = builder.new_output();
    let (errs, errs_stream) = builder.new_output();
    let mut oks = OutputBuilder::<_, CapacityContainerBuilder<Vec<(D2, T, R2)>>>::from(oks);
    let mut errs =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(EvalError, T, Diff)>>>::from(errs);
    builder.build(move |_| {
        move |_frontiers| {
            let mut oks = oks.activate();
            let mut errs = errs.activate();
            input.for_each_stamp(|cap, data| {
                let mut ok = oks.session(&cap);
                let mut err = errs.session(&cap);
                for span in data.flat_map(|spans| spans.iter()) {
                    let Some(batch) = span.inner.as_ref() else {
                        continue;
                    };
                    let mut cursor = batch.cursor();
                    // The cursor walks the batch's keys in order, one a step; the rows a few
                    // keys ahead are asked for while this one is read (see `Row::prefetch`).
                    let keys = &batch.storage.keys;
                    let mut ahead = PREFETCH_AHEAD;
                    while let Some(row) = cursor.get_key(batch) {
                        if let Some(next) = keys.get(ahead) {
                            next.prefetch();
                        }
                        ahead += 1;
                        f.read(row, &mut |result| match result {
                            Ok(d) => cursor.map_times(batch, |t, r| {
                                let (d, r) = weigh(d.clone(), *r);
                                ok.give((d, t.clone(), r));
                            }),
                            Err(e) => cursor.map_times(batch, |t, r| {
                                err.give((e.clone(), t.clone(), *r));
                            }),
                        });
                        cursor.step_key(batch);
                    }
                }
            });
        }
    });
    (oks_stream.as_collection(), errs_stream.as_collection())
}

/// `f` applied to every row of a collection; each result and its row's multiplicity made an
/// update by `weigh`.
pub fn collection<'s, T, D, D2, R2>(
    rows: Rows<'s, T>,
    f: impl Read<D>,
    weigh: impl FnMut(D, Diff) -> (D2, R2) + 'static,
) -> SplitAs<'s, T, D2, R2>
where
    T: Timestamp + Lattice,
    D: Clone + 'static,
    D2: Clone + 'static,
    R2: Semigroup + 'static,
{
    each_update(rows, Borrowing(f), weigh)
}

/// [`collection`] for a function that takes the row and makes any number of results (and
/// errors) of it: a join's residual that passes its match on without a copy.
pub fn collection_many<'s, T, D, D2, R2, I>(
    rows: Rows<'s, T>,
    f: impl FnMut(Row) -> I + 'static,
    weigh: impl FnMut(D, Diff) -> (D2, R2) + 'static,
) -> SplitAs<'s, T, D2, R2>
where
    T: Timestamp + Lattice,
    D: Clone + 'static,
    D2: Clone + 'static,
    R2: Semigroup + 'static,
    I: IntoIterator<Item = Result<D, EvalError>>,
{
    each_update(rows, Many(f), weigh)
}

/// A read that takes the row: what [`each_update`] runs.
trait ReadOwned<D>: 'static {
    fn read_owned(&mut self, row: Row, out: &mut impl FnMut(Result<D, EvalError>));
}

/// A [`Read`] given the row it borrows.
struct Borrowing<R>(R);

impl<D, R: Read<D>> ReadOwned<D> for Borrowing<R> {
    #[inline]
    fn read_owned(&mut self, row: Row, out: &mut impl FnMut(Result<D, EvalError>)) {
        self.0.read(&row, out)
    }
}

/// A function from the row to its results.
struct Many<F>(F);

impl<D, I, F> ReadOwned<D> for Many<F>
where
    F: FnMut(Row) -> I + 'static,
    I: IntoIterator<Item = Result<D, EvalError>>,
{
    #[inline]
    fn read_owned(&mut self, row: Row, out: &mut impl FnMut(Result<D, EvalError>)) {
        for result in (self.0)(row) {
            out(result)
        }
    }
}

/// The operator of [`collection`] and [`collection_many`].
fn each_update<'s, T, D, D2, R2>(
    rows: Rows<'s, T>,
    mut f: impl ReadOwned<D>,
    mut weigh: impl FnMut(D, Diff) -> (D2, R2) + 'static,
) -> SplitAs<'s, T, D2, R2>
where
    T: Timestamp + Lattice,
    D: Clone + 'static,
    D2: Clone + 'static,
    R2: Semigroup + 'static,
{
    let stream = rows.inner;
    let mut builder = OperatorBuilder::new("Read".to_owned(), stream.scope());
    let mut input = builder.new_input(stream, Pipeline);
    builder.set_notify_for(0, FrontierInterest::Never);
    let (oks, oks_stream) = builder.new_output();
    let (errs, errs_stream) = builder.new_output();
    let mut oks = OutputBuilder::<_, CapacityContainerBuilder<Vec<(D2, T, R2)>>>::from(oks);
    let mut errs =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(EvalError, T, Diff)>>>::from(errs);
    builder.build(move |_| {
        move |_frontiers| {
            let mut oks = oks.activate();
            let mut errs = errs.activate();
            input.for_each_stamp(|cap, data| {
                let mut ok = oks.session(&cap);
                let mut err = errs.session(&cap);
                for (row, t, r) in data.flat_map(|updates| updates.drain(..)) {
                    f.read_owned(row, &mut |result| match result {
                        Ok(d) => {
                            let (d, r) = weigh(d, r);
                            ok.give((d, t.clone(), r));
                        }
                        Err(e) => err.give((e, t.clone(), r)),
                    });
                }
            });
        }
    });
    (oks_stream.as_collection(), errs_stream.as_collection())
}
