//! Arrangements formed by freshet's own chunker and merger, which put ordered input together in
//! bulk.
//!
//! Differential's merge batcher sorts each small chunk of incoming updates and then merges
//! chains of chunks update by update, each update about log(chunks) times. Much of what freshet
//! arranges arrives already in order: a join emits its matches key by key, `count` emits its
//! changes key by key, an aggregate's result rows lead with the group key, and with more
//! workers each peer's share of those is still in order. Merged update by update, ordered
//! chains cost as much as random ones.
//!
//! [`RunChunker`] turns a container that arrives in order into (part of) a chunk without
//! sorting it. [`RunMerger`] merges chains with three shortcuts, none of which changes the
//! result:
//!
//! - two chains that do not overlap are concatenated, chunks untouched;
//! - a chunk whose remaining updates all come before the other chain's next update moves whole;
//! - after a run of updates taken from one side, the rest of that run is found by exponential
//!   search and moved in bulk (galloping, as in timsort), so nearly ordered chains cost little
//!   more.
//!
//! Extracting the updates before a frontier moves whole chunks whose updates all go the same
//! way. The ladder of chains, sealing into batches and the spine stay differential's.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::marker::PhantomData;

use differential_dataflow::batcher::merge::{Extractor, MergeBatcher, Merger};
use differential_dataflow::difference::Semigroup;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ord_neu::{VecOrdKeyBuilder, VecOrdValBuilder};
use differential_dataflow::trace::implementations::{KeySpine, ValSpine};
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use timely::container::{ContainerBuilder, PushInto};
use timely::dataflow::channels::pact::Exchange;
use timely::progress::frontier::{Antichain, AntichainRef};
use timely::progress::Timestamp;
use timely::PartialOrder;

use crate::plan::Diff;
use crate::row::Row;

/// A batcher for arrangements of keys (`KeySpine`).
pub type KeyBatcher<K, T, R> =
    MergeBatcher<RunChunker<(K, ()), T, R>, RunMerger<(K, ()), T, R>, VecOrdKeyBuilder<K, T, R>>;

/// A batcher for arrangements of `(key, value)` pairs (`ValSpine`).
pub type ValBatcher<K, V, T, R> =
    MergeBatcher<RunChunker<(K, V), T, R>, RunMerger<(K, V), T, R>, VecOrdValBuilder<K, V, T, R>>;

/// `keys` arranged by themselves and spread over workers by their hash (differential's
/// `arrange_by_self_named`, with [`RunMerger`]).
pub fn by_self<'s, K, T, R>(
    keys: VecCollection<'s, T, K, R>,
    name: &str,
) -> Arranged<'s, TraceAgent<KeySpine<K, T, R>>>
where
    K: ExchangeData + Hashable,
    T: Timestamp + Lattice + Ord,
    R: ExchangeData + Semigroup,
{
    // The same spreading as differential's `arrange_by_self` (`plan::placement` relies on it).
    let exchange = Exchange::new(|(k, _, _): &(K, T, R)| k.hashed().into());
    arrange_core::<_, _, KeyBatcher<K, T, R>, KeySpine<K, T, R>>(
        keys.inner,
        exchange,
        name,
        KeyBatcher::new,
    )
}

/// `pairs` arranged by their keys (differential's `arrange_by_key_named`, with [`RunMerger`]).
pub fn by_key<'s, K, V, T, R>(
    pairs: VecCollection<'s, T, (K, V), R>,
    name: &str,
) -> Arranged<'s, TraceAgent<ValSpine<K, V, T, R>>>
where
    K: ExchangeData + Hashable,
    V: ExchangeData,
    T: Timestamp + Lattice + Ord,
    R: ExchangeData + Semigroup,
{
    pairs.arrange_named::<ValBatcher<K, V, T, R>, _>(name, ValBatcher::new)
}

/// Cuts incoming updates into sorted, consolidated chunks for the merge ladder.
///
/// Differential's chunker gathers updates into a buffer and sorts it when full. Containers
/// that arrive in order (an operator's output, or one peer's share of it) need no sort: they
/// are checked in one pass and appended to the chunk they continue. Containers out of order
/// are gathered and sorted as differential's are.
pub struct RunChunker<D, T, R> {
    /// Updates for the next chunk: sorted and consolidated while `sorted`.
    pending: Vec<(D, T, R)>,
    sorted: bool,
    ready: VecDeque<Vec<(D, T, R)>>,
    /// The chunk last handed out by `extract` or `finish`.
    current: Vec<(D, T, R)>,
    /// Bare keys paired with `()` on their way in (see the `PushInto` for keys below).
    paired: Vec<(D, T, R)>,
}

impl<D, T, R> Default for RunChunker<D, T, R> {
    fn default() -> Self {
        RunChunker {
            pending: Vec::new(),
            sorted: true,
            ready: VecDeque::new(),
            current: Vec::new(),
            paired: Vec::new(),
        }
    }
}

/// Adds up equal neighbours of a sorted `updates[from..]` (and the one before it), dropping
/// those that come to zero.
fn consolidate_sorted<D: Ord, T: Ord, R: Semigroup>(updates: &mut Vec<(D, T, R)>, from: usize) {
    let mut write = from;
    for read in from..updates.len() {
        if write > 0 && order(&updates[write - 1], &updates[read]).is_eq() {
            let (head, tail) = updates.split_at_mut(read);
            head[write - 1].2.plus_equals(&tail[0].2);
            if head[write - 1].2.is_zero() {
                write -= 1;
            }
        } else if !updates[read].2.is_zero() {
            updates.swap(write, read);
            write += 1;
        }
    }
    updates.truncate(write);
}

impl<D: Ord, T: Ord, R: Semigroup> RunChunker<D, T, R> {
    fn capacity() -> usize {
        timely::container::buffer::default_capacity::<(D, T, R)>()
    }

    /// Moves `pending` to the ready chunks if it is large enough to stand as one.
    fn seal_pending(&mut self, at_least: usize) {
        if !self.sorted {
            differential_dataflow::consolidation::consolidate_updates(&mut self.pending);
            self.sorted = true;
        }
        if !self.pending.is_empty() && self.pending.len() >= at_least {
            self.ready.push_back(std::mem::take(&mut self.pending));
        }
    }
}

impl<D: Ord, T: Ord, R: Semigroup> PushInto<&mut Vec<(D, T, R)>> for RunChunker<D, T, R> {
    fn push_into(&mut self, container: &mut Vec<(D, T, R)>) {
        let capacity = Self::capacity();
        let Some(first) = container.first() else {
            return;
        };
        let ordered = container.windows(2).all(|w| order(&w[0], &w[1]).is_le());
        let mut continues = match self.pending.last() {
            None => true,
            Some(last) => self.sorted && order(last, first).is_le(),
        };
        if ordered && !continues && self.sorted && self.pending.len() >= capacity / 2 {
            // An ordered container after an ordered chunk it does not continue: a new chunk.
            self.seal_pending(0);
            continues = true;
        }
        let from = self.pending.len().saturating_sub(1);
        self.pending.append(container);
        if ordered && self.sorted && continues {
            consolidate_sorted(&mut self.pending, from);
        } else {
            self.sorted = false;
        }
        if self.pending.len() >= capacity {
            self.seal_pending(capacity / 2);
        }
    }
}

/// Keys arranged by themselves come as bare keys: each is paired with `()` here, as it enters
/// its chunk, rather than by a `map` operator in front of the arrangement that would copy and
/// push every update once more ([`by_self`], and the arrangements of rows in `prefix` and
/// `totals`).
impl<K: Ord, T: Ord, R: Semigroup> PushInto<&mut Vec<(K, T, R)>> for RunChunker<(K, ()), T, R> {
    fn push_into(&mut self, container: &mut Vec<(K, T, R)>) {
        let mut paired = std::mem::take(&mut self.paired);
        paired.extend(container.drain(..).map(|(k, t, r)| ((k, ()), t, r)));
        self.push_into(&mut paired);
        self.paired = paired;
    }
}

impl<D, T, R> ContainerBuilder for RunChunker<D, T, R>
where
    D: Ord + 'static,
    T: Ord + 'static,
    R: Semigroup + 'static,
{
    type Container = Vec<(D, T, R)>;

    fn extract(&mut self) -> Option<&mut Self::Container> {
        self.current = self.ready.pop_front()?;
        Some(&mut self.current)
    }

    fn finish(&mut self) -> Option<&mut Self::Container> {
        self.seal_pending(0);
        self.extract()
    }
}

/// `pairs` reduced by key (differential's `reduce_named`, its input arranged with
/// [`RunMerger`]): `logic` maps a key's values to its output values.
pub fn reduce<'s, T, V2, R2, L>(
    pairs: VecCollection<'s, T, (Row, Row), Diff>,
    name: &str,
    logic: L,
) -> VecCollection<'s, T, (Row, V2), R2>
where
    T: Timestamp + Lattice + Ord,
    V2: differential_dataflow::Data,
    R2: Ord + differential_dataflow::difference::Abelian + 'static,
    L: FnMut(&Row, &[(&Row, Diff)], &mut Vec<(V2, R2)>) + 'static,
{
    use differential_dataflow::trace::implementations::ValBuilder;
    by_key(pairs, &format!("Arrange: {name}"))
        .reduce_abelian::<_, ValBuilder<_, _, _, _>, ValSpine<Row, V2, _, _>, _, _>(
            name,
            logic,
            |out, key, updates| {
                out.clear();
                out.extend(updates.drain(..).map(|(v, t, r)| ((key.clone(), v), t, r)));
            },
        )
        .as_collection(|k, v| (k.clone(), v.clone()))
}

/// Merges and splits chains of sorted, consolidated `Vec<(data, time, diff)>` chunks.
pub struct RunMerger<D, T, R>(PhantomData<(D, T, R)>);

impl<D, T, R> Default for RunMerger<D, T, R> {
    fn default() -> Self {
        RunMerger(PhantomData)
    }
}

/// Consecutive updates taken from one side after which the merge looks for a longer run.
const GALLOP_AFTER: usize = 8;

/// How many of `updates` come before `pivot`, found by probing 1, 2, 4, … ahead and then
/// searching the last interval: the cost grows with the run found, not with the chunk.
fn run_before<D: Ord, T: Ord, R>(updates: &[(D, T, R)], pivot: &(D, T, R)) -> usize {
    let mut done = 0;
    let mut step = 1;
    while done + step <= updates.len() && order(&updates[done + step - 1], pivot).is_lt() {
        done += step;
        step *= 2;
    }
    let end = (done + step).min(updates.len());
    done + updates[done..end].partition_point(|u| order(u, pivot).is_lt())
}

/// The order updates are merged in: by data, then time.
fn order<D: Ord, T: Ord, R>(a: &(D, T, R), b: &(D, T, R)) -> Ordering {
    (&a.0, &a.1).cmp(&(&b.0, &b.1))
}

impl<D, T, R> RunMerger<D, T, R> {
    /// Updates per output chunk: differential's buffer size, as a power of two.
    fn capacity() -> usize {
        timely::container::buffer::default_capacity::<(D, T, R)>().next_power_of_two()
    }

    /// An empty chunk of the output capacity, recycled from `stash` when one fits.
    fn empty(stash: &mut Vec<Vec<(D, T, R)>>) -> Vec<(D, T, R)> {
        let capacity = Self::capacity();
        match stash.pop() {
            Some(mut chunk) if chunk.capacity() == capacity => {
                chunk.clear();
                chunk
            }
            _ => Vec::with_capacity(capacity),
        }
    }
}

/// The first and last update of a chain, when it has any.
fn ends<U>(chain: &[Vec<U>]) -> Option<(&U, &U)> {
    let first = chain.iter().find_map(|chunk| chunk.first())?;
    let last = chain.iter().rev().find_map(|chunk| chunk.last())?;
    Some((first, last))
}

/// One chain being merged: its current chunk, partly taken, and the chunks after it.
struct Cursor<U> {
    head: std::vec::IntoIter<U>,
    rest: std::vec::IntoIter<Vec<U>>,
    /// Whether `head` is a chunk not yet looked at.
    fresh: bool,
}

impl<U> Cursor<U> {
    fn new(chain: Vec<Vec<U>>) -> Self {
        Cursor {
            head: Vec::new().into_iter(),
            rest: chain.into_iter(),
            fresh: false,
        }
    }

    /// The current chunk's remaining updates, moving on to the next chunk when it is used up;
    /// `None` when the chain is.
    fn current(&mut self) -> Option<&[U]> {
        while self.head.as_slice().is_empty() {
            self.head = self.rest.next()?.into_iter();
            self.fresh = true;
        }
        Some(self.head.as_slice())
    }

    /// Every remaining update, as chunks.
    fn drain_into(self, output: &mut Vec<Vec<U>>) {
        if !self.head.as_slice().is_empty() {
            output.push(self.head.collect());
        }
        output.extend(self.rest.filter(|chunk| !chunk.is_empty()));
    }
}

/// Makes an empty output chunk, recycling one from the stash when it can.
type Empty<U> = fn(&mut Vec<Vec<U>>) -> Vec<U>;

/// Output chunks being filled, with the stash their empty chunks come from.
struct Output<'a, U> {
    chunk: Vec<U>,
    capacity: usize,
    output: &'a mut Vec<Vec<U>>,
    stash: &'a mut Vec<Vec<U>>,
    empty: Empty<U>,
}

impl<U> Output<'_, U> {
    #[inline]
    fn push(&mut self, update: U) {
        self.chunk.push(update);
        if self.chunk.len() == self.capacity {
            self.output
                .push(std::mem::replace(&mut self.chunk, (self.empty)(self.stash)));
        }
    }

    /// The next `n` updates of `from`, moved in bulk.
    fn take(&mut self, from: &mut std::vec::IntoIter<U>, mut n: usize) {
        while n > 0 {
            let k = n.min(self.capacity - self.chunk.len());
            self.chunk.extend(from.by_ref().take(k));
            n -= k;
            if self.chunk.len() == self.capacity {
                self.output
                    .push(std::mem::replace(&mut self.chunk, (self.empty)(self.stash)));
            }
        }
    }

    /// Ends the partly filled chunk, so a whole chunk can follow it.
    fn close(&mut self) {
        if !self.chunk.is_empty() {
            self.output
                .push(std::mem::replace(&mut self.chunk, (self.empty)(self.stash)));
        }
    }
}

impl<D: Ord, T: Ord, R> Output<'_, (D, T, R)> {
    /// Takes the next update of `from`, which comes before `pivot`, the `streak`th in a row
    /// from that side; from the `GALLOP_AFTER`th on, every update of `from` before `pivot` at
    /// once. The streak after it.
    fn take_before(
        &mut self,
        from: &mut std::vec::IntoIter<(D, T, R)>,
        pivot: &(D, T, R),
        streak: usize,
    ) -> usize {
        if streak < GALLOP_AFTER {
            self.push(from.next().expect("an update before the pivot"));
            return streak;
        }
        let n = run_before(from.as_slice(), pivot);
        self.take(from, n);
        0
    }
}

impl<D, T, R> Merger for RunMerger<D, T, R>
where
    D: Ord + Clone + 'static,
    T: Ord + Clone + PartialOrder + 'static,
    R: Semigroup + 'static,
{
    type Chunk = Vec<(D, T, R)>;

    fn merge(
        &mut self,
        list1: Vec<Self::Chunk>,
        list2: Vec<Self::Chunk>,
        output: &mut Vec<Self::Chunk>,
        stash: &mut Vec<Self::Chunk>,
    ) {
        // Chains that do not overlap are put one after the other.
        let (first, second) = match (ends(&list1), ends(&list2)) {
            (None, _) | (_, None) => {
                let all = list1.into_iter().chain(list2);
                output.extend(all.filter(|chunk| !chunk.is_empty()));
                return;
            }
            (Some((_, last1)), Some((first2, _))) if order(last1, first2).is_lt() => (list1, list2),
            (Some((first1, _)), Some((_, last2))) if order(last2, first1).is_lt() => (list2, list1),
            _ => return merge_overlapping(list1, list2, output, stash),
        };
        output.extend(first.into_iter().filter(|chunk| !chunk.is_empty()));
        output.extend(second.into_iter().filter(|chunk| !chunk.is_empty()));
    }

    fn len(chunk: &Self::Chunk) -> usize {
        chunk.len()
    }
}

/// Merges two chains that overlap, moving whole chunks and long runs in bulk where it can.
fn merge_overlapping<D, T, R>(
    list1: Vec<Vec<(D, T, R)>>,
    list2: Vec<Vec<(D, T, R)>>,
    output: &mut Vec<Vec<(D, T, R)>>,
    stash: &mut Vec<Vec<(D, T, R)>>,
) where
    D: Ord,
    T: Ord,
    R: Semigroup,
{
    let empty = RunMerger::<D, T, R>::empty;
    let mut out = Output {
        chunk: empty(stash),
        capacity: RunMerger::<D, T, R>::capacity(),
        output,
        stash,
        empty,
    };
    let (mut a, mut b) = (Cursor::new(list1), Cursor::new(list2));
    // How many updates in a row each side has given.
    let (mut wins_a, mut wins_b) = (0usize, 0usize);
    loop {
        if a.current().is_none() || b.current().is_none() {
            break;
        }
        let (sa, sb) = (a.head.as_slice(), b.head.as_slice());
        let (first_a, first_b) = (&sa[0], &sb[0]);
        // A new chunk that ends before the other side's next update moves whole.
        if std::mem::take(&mut a.fresh) && order(&sa[sa.len() - 1], first_b).is_lt() {
            out.close();
            out.output.push(std::mem::take(&mut a.head).collect());
            continue;
        }
        if std::mem::take(&mut b.fresh) && order(&sb[sb.len() - 1], first_a).is_lt() {
            out.close();
            out.output.push(std::mem::take(&mut b.head).collect());
            continue;
        }
        // Merge until either chunk runs out.
        while let (Some(x), Some(y)) = (a.head.as_slice().first(), b.head.as_slice().first()) {
            match order(x, y) {
                Ordering::Less => {
                    wins_b = 0;
                    wins_a = out.take_before(&mut a.head, y, wins_a + 1);
                }
                Ordering::Greater => {
                    wins_a = 0;
                    wins_b = out.take_before(&mut b.head, x, wins_b + 1);
                }
                Ordering::Equal => {
                    let (d, t, mut r) = a.head.next().expect("first");
                    let (_, _, r2) = b.head.next().expect("first");
                    r.plus_equals(&r2);
                    if !r.is_zero() {
                        out.push((d, t, r));
                    }
                }
            }
        }
    }
    out.close();
    a.drain_into(out.output);
    b.drain_into(out.output);
}

impl<D, T, R> Extractor for RunMerger<D, T, R>
where
    D: Ord + Clone + 'static,
    T: Ord + Clone + PartialOrder + 'static,
    R: Semigroup + 'static,
{
    type Time = T;

    fn extract(
        &mut self,
        merged: Vec<Self::Chunk>,
        upper: AntichainRef<T>,
        frontier: &mut Antichain<T>,
        ship: &mut Vec<Self::Chunk>,
        kept: &mut Vec<Self::Chunk>,
        stash: &mut Vec<Self::Chunk>,
    ) {
        let mut keep = Self::empty(stash);
        let mut ready = Self::empty(stash);
        let capacity = Self::capacity();
        for mut chunk in merged {
            let kept_here = chunk.iter().filter(|(_, t, _)| upper.less_equal(t)).count();
            if kept_here == 0 {
                // All complete: the chunk goes as it is, after what was split before it.
                if !ready.is_empty() {
                    ship.push(std::mem::replace(&mut ready, Self::empty(stash)));
                }
                ship.push(chunk);
                continue;
            }
            if kept_here == chunk.len() {
                for (_, t, _) in &chunk {
                    frontier.insert_with(t, |t| t.clone());
                }
                if !keep.is_empty() {
                    kept.push(std::mem::replace(&mut keep, Self::empty(stash)));
                }
                kept.push(chunk);
                continue;
            }
            for (data, time, diff) in chunk.drain(..) {
                if upper.less_equal(&time) {
                    frontier.insert_with(&time, |time| time.clone());
                    keep.push((data, time, diff));
                    if keep.len() == capacity {
                        kept.push(std::mem::replace(&mut keep, Self::empty(stash)));
                    }
                } else {
                    ready.push((data, time, diff));
                    if ready.len() == capacity {
                        ship.push(std::mem::replace(&mut ready, Self::empty(stash)));
                    }
                }
            }
            if chunk.capacity() == capacity {
                stash.push(chunk);
            }
        }
        if !keep.is_empty() {
            kept.push(keep);
        }
        if !ready.is_empty() {
            ship.push(ready);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::batcher::merge::Merger;
    use rand::{Rng, SeedableRng};

    type U = (u64, u64, i64);

    /// Sorted, consolidated chunks of `updates` (as the chunker makes them), `size` per chunk.
    fn chain(mut updates: Vec<U>, size: usize) -> Vec<Vec<U>> {
        updates.sort();
        let mut consolidated: Vec<U> = Vec::new();
        for (d, t, r) in updates {
            match consolidated.last_mut() {
                Some(last) if (last.0, last.1) == (d, t) => last.2 += r,
                _ => consolidated.push((d, t, r)),
            }
            if consolidated.last().is_some_and(|u| u.2 == 0) {
                consolidated.pop();
            }
        }
        consolidated.chunks(size).map(|c| c.to_vec()).collect()
    }

    fn reference(a: &[Vec<U>], b: &[Vec<U>]) -> Vec<U> {
        chain(a.iter().chain(b).flatten().copied().collect(), usize::MAX)
            .into_iter()
            .flatten()
            .collect()
    }

    /// Random chains, ordered chains, chains that overlap at their ends, long runs from one
    /// side, and cancelling updates: the merge equals sorting both and consolidating.
    #[test]
    fn merges_equal_a_sort_of_both() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for case in 0..2000 {
            let gen = |rng: &mut rand::rngs::StdRng, base: u64, span: u64| -> Vec<U> {
                let n = rng.random_range(0..400);
                (0..n)
                    .map(|_| {
                        let d = base + rng.random_range(0..span.max(1));
                        (
                            d,
                            rng.random_range(0..3),
                            [1, -1, 2][rng.random_range(0..3)],
                        )
                    })
                    .collect()
            };
            let (base2, span) = match case % 4 {
                0 => (0, 1000),    // interleaved
                1 => (1000, 1000), // one after the other
                2 => (900, 1000),  // overlapping at the ends
                _ => (0, 20),      // many equal updates, cancelling
            };
            let a = chain(gen(&mut rng, 0, span), rng.random_range(1..70));
            let mut b = gen(&mut rng, base2, span);
            if case % 3 == 0 {
                // Chains that touch: one's last update is the other's first, at the same time.
                if let Some(&(d, t, _)) = a.last().and_then(|c| c.last()) {
                    b.retain(|u| (u.0, u.1) > (d, t));
                    b.push((d, t, 1));
                }
            }
            let b = chain(b, rng.random_range(1..70));
            let expected = reference(&a, &b);
            let mut output = Vec::new();
            let mut stash = Vec::new();
            RunMerger::<u64, u64, i64>::default().merge(a, b, &mut output, &mut stash);
            assert!(
                output.iter().all(|c| !c.is_empty()),
                "case {case}: an empty chunk"
            );
            let merged: Vec<U> = output.into_iter().flatten().collect();
            assert_eq!(merged, expected, "case {case}");
        }
    }

    /// Extraction ships the updates before the frontier, keeps the rest, and reports the
    /// frontier of what it kept, whether chunks go whole or are split.
    #[test]
    fn extract_splits_by_frontier() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for case in 0..500 {
            let updates: Vec<U> = (0..rng.random_range(0..300))
                .map(|_| (rng.random_range(0..100), rng.random_range(0..6), 1))
                .collect();
            let merged = chain(updates, rng.random_range(1..40));
            let all: Vec<U> = merged.iter().flatten().copied().collect();
            let upper = rng.random_range(0..7);
            let (mut ship, mut kept, mut frontier) = (Vec::new(), Vec::new(), Antichain::new());
            RunMerger::<u64, u64, i64>::default().extract(
                merged,
                Antichain::from_elem(upper).borrow(),
                &mut frontier,
                &mut ship,
                &mut kept,
                &mut Vec::new(),
            );
            let shipped: Vec<U> = ship.into_iter().flatten().collect();
            let kept: Vec<U> = kept.into_iter().flatten().collect();
            let expect_ship: Vec<U> = all.iter().filter(|u| u.1 < upper).copied().collect();
            let expect_kept: Vec<U> = all.iter().filter(|u| u.1 >= upper).copied().collect();
            assert_eq!(shipped, expect_ship, "case {case}");
            assert_eq!(kept, expect_kept, "case {case}");
            let least = expect_kept.iter().map(|u| u.1).min();
            assert_eq!(frontier.elements().first().copied(), least, "case {case}");
        }
    }

    /// Bare keys are chunked as the same keys paired with `()` would be, containers in and out
    /// of order alike.
    #[test]
    fn bare_keys_chunk_as_their_pairs() {
        use timely::container::{ContainerBuilder, PushInto};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut bare = RunChunker::<(u64, ()), u64, i64>::default();
        let mut paired = RunChunker::<(u64, ()), u64, i64>::default();
        let (mut from_bare, mut from_paired) = (Vec::new(), Vec::new());
        for round in 0..200 {
            let n = rng.random_range(0..400);
            let mut keys: Vec<(u64, u64, i64)> = (0..n)
                .map(|_| {
                    (
                        rng.random_range(0..300),
                        round / 20,
                        [1, -1][rng.random_range(0..2)],
                    )
                })
                .collect();
            if round % 2 == 0 {
                keys.sort();
            }
            let mut pairs: Vec<((u64, ()), u64, i64)> =
                keys.iter().map(|&(k, t, r)| ((k, ()), t, r)).collect();
            bare.push_into(&mut keys);
            paired.push_into(&mut pairs);
            assert!(keys.is_empty() && pairs.is_empty());
            while let Some(chunk) = bare.extract() {
                from_bare.push(std::mem::take(chunk));
            }
            while let Some(chunk) = paired.extract() {
                from_paired.push(std::mem::take(chunk));
            }
        }
        while let Some(chunk) = bare.finish() {
            from_bare.push(std::mem::take(chunk));
        }
        while let Some(chunk) = paired.finish() {
            from_paired.push(std::mem::take(chunk));
        }
        assert!(!from_bare.is_empty());
        assert_eq!(from_bare, from_paired);
    }

    /// Containers in order, out of order, interleaved from two ordered sources, with
    /// cancelling and zero updates: every chunk is sorted, consolidated and not empty, and
    /// together they hold what went in.
    #[test]
    fn chunks_are_sorted_and_hold_the_input() {
        use timely::container::{ContainerBuilder, PushInto};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for case in 0..500 {
            let mut chunker = RunChunker::<u64, u64, i64>::default();
            let mut all = Vec::new();
            let mut chunks = Vec::new();
            let (mut next_a, mut next_b) = (0u64, 0u64);
            for _ in 0..rng.random_range(0..60) {
                let n = rng.random_range(0..300);
                let mut container: Vec<U> = match case % 3 {
                    0 => (0..n)
                        .map(|_| {
                            (
                                rng.random_range(0..500),
                                0,
                                [1, -1, 0][rng.random_range(0..3)],
                            )
                        })
                        .collect(),
                    _ => {
                        // Two ordered sources taking turns (one only, every third case).
                        let next = match case % 3 == 1 || rng.random_bool(0.5) {
                            true => &mut next_a,
                            false => &mut next_b,
                        };
                        (0..n)
                            .map(|_| {
                                *next += rng.random_range(0..3);
                                (*next, 0, [1, -1][rng.random_range(0..2)])
                            })
                            .collect()
                    }
                };
                all.extend(container.iter().copied());
                chunker.push_into(&mut container);
                while let Some(chunk) = chunker.extract() {
                    chunks.push(std::mem::take(chunk));
                }
            }
            while let Some(chunk) = chunker.finish() {
                chunks.push(std::mem::take(chunk));
            }
            for chunk in &chunks {
                assert!(!chunk.is_empty(), "case {case}: an empty chunk");
                assert!(chunk.iter().all(|u| u.2 != 0), "case {case}: a zero update");
                assert!(
                    chunk
                        .windows(2)
                        .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)),
                    "case {case}: unsorted or unconsolidated"
                );
            }
            let got = chain(chunks.into_iter().flatten().collect(), usize::MAX);
            assert_eq!(got, chain(all, usize::MAX), "case {case}");
        }
    }
}
