//! A join side keyed by the leading columns of an imported arrangement, without sorting.
//!
//! Tables, sources and views are arranged by whole row, and a row's bytes order rows by their
//! first column, then by the next (each value's encoding delimits itself, see `row.rs`, so the
//! first byte where two rows differ lies in the first column where they differ). A batch of
//! such an arrangement is therefore already in the order of `(first n columns, row)`, the
//! order a join side keyed by those columns needs. [`by_prefix`] keys each batch in one pass
//! into a batch builder, where arranging the side anew (`arrange_by_key`) would send every
//! update through differential's batcher again: sorted in chunks, then merged chain by chain.
//!
//! The batches keep their descriptions (lower, upper, since), so the keyed trace is the source
//! trace batch for batch. The source's stream carries only batches with updates; the gaps
//! between them are sealed with empty batches as the next one arrives. The keyed trace's upper
//! may lag the source's until then, which is safe: the join reads a trace only up to the
//! batches it has received on that trace's stream.

use differential_dataflow::operators::arrange::{Arranged, TraceAgent, TraceWriter};
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::trace::{Builder, Cursor, Navigable, Span, Trace, TraceReader};
use std::rc::Rc;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::progress::Antichain;

use super::{RowTrace, Time};
use crate::plan::Diff;
use crate::row::Row;

/// An arrangement of `(key, row)` pairs: a join side.
pub type PairSpine<T> = ValSpine<Row, Row, T, Diff>;
pub type PairArranged<'s, T> = Arranged<'s, TraceAgent<PairSpine<T>>>;

/// Which rows a join side keeps (its `WHERE` predicates on the table, say). Filtering keeps
/// the order.
pub type KeepFn = Box<dyn FnMut(&Row) -> bool>;

/// `source`'s rows that `keep` keeps, keyed by their first `n` columns, as `(key, row)`
/// pairs; rows with a NULL among those columns are left out (NULL never equals anything).
pub fn by_prefix<'s>(
    source: Arranged<'s, RowTrace>,
    n: usize,
    mut keep: Option<KeepFn>,
    name: &str,
) -> PairArranged<'s, Time> {
    let mut reader: Option<TraceAgent<PairSpine<Time>>> = None;
    let reader_ref = &mut reader;
    let scope = source.stream.scope();
    let stream = source
        .stream
        .unary(Pipeline, name, move |_capability, info| {
            let activator = Some(scope.activator_for(Rc::clone(&info.address)));
            let mut empty = PairSpine::<Time>::new(info.clone(), None, activator);
            if let Some(logic) = scope
                .worker()
                .config()
                .get::<differential_dataflow::trace::ExertionLogic>(
                    "differential/default_exert_logic",
                )
                .cloned()
            {
                empty.set_exert_logic(logic);
            }
            let (agent, mut writer) = TraceAgent::new(empty, info, None);
            *reader_ref = Some(agent);
            let mut upper = Antichain::from_elem(0);
            move |input, output| {
                input.for_each(|cap, spans| {
                    let caps = cap.retain_stamp(0);
                    let mut session = output.session(&caps);
                    for span in spans.drain(..) {
                        let keyed = key_span(&span, n, &mut keep);
                        insert(&mut writer, &mut upper, keyed.clone(), cap.stamp().clone());
                        session.give(keyed);
                    }
                });
                writer.exert();
            }
        });
    Arranged {
        stream,
        trace: reader.expect("the operator's constructor ran"),
    }
}

/// Seals the gap before `span` (the source sent no batch for it) and inserts `span`.
fn insert(
    writer: &mut TraceWriter<PairSpine<Time>>,
    upper: &mut Antichain<Time>,
    span: Span<Time, <PairSpine<Time> as TraceReader>::Batch>,
    stamp: timely::progress::Stamp<Time>,
) {
    if upper != span.lower() {
        writer.seal(span.lower().clone());
    }
    upper.clone_from(span.upper());
    writer.insert(span, stamp);
}

/// One batch of whole rows as a batch of `(prefix, row)` pairs, in the order it already has.
fn key_span(
    span: &Span<Time, <RowTrace as TraceReader>::Batch>,
    n: usize,
    keep: &mut Option<KeepFn>,
) -> Span<Time, <PairSpine<Time> as TraceReader>::Batch> {
    let mut builder = ValBuilder::<Row, Row, Time, Diff>::default();
    let mut chunk = Vec::new();
    if let Some(batch) = span.inner.as_ref() {
        let mut cursor = batch.cursor();
        while let Some(row) = cursor.get_key(batch) {
            let key = row.prefix(n);
            if !key.has_null() && keep.as_mut().is_none_or(|keep| keep(row)) {
                // A batch of whole rows has one (empty) value per row.
                while cursor.get_val(batch).is_some() {
                    cursor.map_times(batch, |t, d| {
                        chunk.push(((key.clone(), row.clone()), *t, *d));
                    });
                    cursor.step_val(batch);
                }
                if chunk.len() >= CHUNK {
                    builder.push(&mut chunk);
                    chunk.clear();
                }
            }
            cursor.step_key(batch);
        }
    }
    builder.push(&mut chunk);
    Span::new(span.desc.clone(), builder.done().map(Rc::new))
}

/// Updates handed to the builder at a time.
const CHUNK: usize = 1024;
