//! The arrangement that keeps an aggregate's running totals, stored compactly.
//!
//! `count` over [`Accums`] keeps one update per group in its input arrangement: the group's
//! key, a time and its totals as the difference. Differential's default layout stores each
//! difference as the 32-byte `Accums` and each time as 8 bytes, so the totals of a group of
//! `count(*), sum(x)` cost more than its key and its result row together. Here they are
//! stored as they are read: each group's totals as a run of varints (a handful of bytes for
//! small counts and sums) and times once for a run of equal ones (merged batches hold one time,
//! the compaction frontier, for nearly all of their updates). Keys, offsets, the batcher and
//! the spine stay differential's.

use std::cmp::Ordering;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::operators::CountTotal;
use differential_dataflow::trace::implementations::ord_neu::{OrdKeyBatch, OrdKeyBuilder};
use differential_dataflow::trace::implementations::spine_fueled::Spine;
use differential_dataflow::trace::implementations::{BatchContainer, OffsetList};
use differential_dataflow::{Hashable, VecCollection};
use smallvec::SmallVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};

use super::accumulate::{Accums, NARROW};
use super::arrange::{RunChunker, RunMerger};
use super::Time;
use crate::row::Row;

/// Keys in a `Vec`, times stored once per run, totals packed, offsets differential's.
type TotalsLayout = (Vec<Row>, Vec<()>, SameTimes<Time>, PackedTotals, OffsetList);

type Update = ((Row, ()), Time, Accums);
type TotalsBuilder = OrdKeyBuilder<TotalsLayout, Vec<Update>>;
type TotalsBatcher = differential_dataflow::batcher::merge::MergeBatcher<
    RunChunker<(Row, ()), Time, Accums>,
    RunMerger<(Row, ()), Time, Accums>,
    TotalsBuilder,
>;
type TotalsSpine = Spine<std::rc::Rc<OrdKeyBatch<TotalsLayout>>>;

/// Each group key with its accumulated totals: `(key, totals)` with multiplicity 1 while the
/// totals are not zero, its old totals retracted when they change (differential's
/// `count_total` over the compact arrangement). With `placed`, each key already lies on the
/// worker its hash places it on (see `plan::placement`) and is arranged there.
pub fn count_totals<'s>(
    keys: VecCollection<'s, Time, Row, Accums>,
    placed: bool,
) -> VecCollection<'s, Time, (Row, Accums), isize> {
    let arranged = if placed {
        let keys = super::prefix::check_placed(keys, Row::hashed);
        arrange_core::<_, _, TotalsBatcher, TotalsSpine>(
            keys.inner,
            Pipeline,
            "Arrange: CountTotal",
            TotalsBatcher::new,
        )
    } else {
        let exchange = Exchange::new(|(row, _, _): &(Row, Time, Accums)| row.hashed());
        arrange_core::<_, _, TotalsBatcher, TotalsSpine>(
            keys.inner,
            exchange,
            "Arrange: CountTotal",
            TotalsBatcher::new,
        )
    };
    arranged.count_total()
}

/// A group's totals as stored: the number of slots, then each slot, all as zigzag LEB128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotalsRef<'a>(&'a [u8]);

impl TotalsRef<'_> {
    /// The slots, in order.
    fn slots(self) -> SmallVec<[i128; 4]> {
        let mut bytes = self.0;
        let n = read_varint(&mut bytes) as usize;
        (0..n).map(|_| unzigzag(read_varint(&mut bytes))).collect()
    }

    fn to_accums(self) -> Accums {
        // Most totals are up to three small slots: decoded straight into the inline form.
        let mut bytes = self.0;
        let n = read_varint(&mut bytes) as usize;
        let mut vals = [0i64; NARROW];
        if n > NARROW {
            return Accums::from_slots(&self.slots());
        }
        for v in &mut vals[..n] {
            match i64::try_from(unzigzag(read_varint(&mut bytes))) {
                Ok(x) => *v = x,
                Err(_) => return Accums::from_slots(&self.slots()),
            }
        }
        Accums::from_inline(n, vals)
    }
}

impl Ord for TotalsRef<'_> {
    /// The order of the totals' values, as `Accums` orders them.
    fn cmp(&self, other: &Self) -> Ordering {
        self.slots().cmp(&other.slots())
    }
}

impl PartialOrd for TotalsRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<'a> Semigroup<TotalsRef<'a>> for Accums {
    fn plus_equals(&mut self, rhs: &TotalsRef<'a>) {
        self.plus_equals(&rhs.to_accums());
    }
}

fn zigzag(x: i128) -> u128 {
    ((x << 1) ^ (x >> 127)) as u128
}

fn unzigzag(x: u128) -> i128 {
    ((x >> 1) as i128) ^ -((x & 1) as i128)
}

fn write_varint(mut x: u128, out: &mut Vec<u8>) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Reads one varint from the front of `bytes`. The container wrote every varint it reads, so
/// running out of bytes cannot happen; it would read as zero rather than panic.
#[inline]
fn read_varint(bytes: &mut &[u8]) -> u128 {
    match bytes.split_first() {
        Some((&b, rest)) if b < 0x80 => {
            *bytes = rest;
            u128::from(b)
        }
        _ => read_long_varint(bytes),
    }
}

fn read_long_varint(bytes: &mut &[u8]) -> u128 {
    let mut x = 0u128;
    let mut shift = 0;
    while let Some((&b, rest)) = bytes.split_first() {
        *bytes = rest;
        if shift < 128 {
            x |= u128::from(b & 0x7f) << shift;
        }
        shift += 7;
        if b < 0x80 {
            break;
        }
    }
    x
}

/// Totals packed back to back; `ends[i]` is where the `i`th ends.
pub struct PackedTotals {
    bytes: Vec<u8>,
    ends: OffsetList,
}

impl PackedTotals {
    fn push_slots(&mut self, slots: impl ExactSizeIterator<Item = i128>) {
        write_varint(slots.len() as u128, &mut self.bytes);
        for x in slots {
            write_varint(zigzag(x), &mut self.bytes);
        }
        self.ends.push(self.bytes.len());
    }
}

impl BatchContainer for PackedTotals {
    type Owned = Accums;
    type ReadItem<'a> = TotalsRef<'a>;

    fn into_owned(item: TotalsRef<'_>) -> Accums {
        item.to_accums()
    }

    fn push_ref(&mut self, item: TotalsRef<'_>) {
        self.bytes.extend_from_slice(item.0);
        self.ends.push(self.bytes.len());
    }

    fn push_own(&mut self, item: &Accums) {
        self.push_slots(item.values());
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn with_capacity(size: usize) -> Self {
        // Small totals take about four bytes: the count, a row count and a short sum.
        PackedTotals {
            bytes: Vec::with_capacity(size * 4),
            ends: OffsetList::with_capacity(size),
        }
    }

    fn merge_capacity(a: &Self, b: &Self) -> Self {
        PackedTotals {
            bytes: Vec::with_capacity(a.bytes.len() + b.bytes.len()),
            ends: OffsetList::with_capacity(a.len() + b.len()),
        }
    }

    fn reborrow<'b, 'a: 'b>(item: TotalsRef<'a>) -> TotalsRef<'b> {
        item
    }

    fn index(&self, index: usize) -> TotalsRef<'_> {
        let start = match index {
            0 => 0,
            i => self.ends.index(i - 1),
        };
        TotalsRef(&self.bytes[start..self.ends.index(index)])
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Times stored once while every time pushed is the same, as a `Vec` from the first that
/// differs.
pub enum SameTimes<T> {
    /// `len` copies of `time` (no time while `len` is 0); `capacity` is what a `Vec` would
    /// be given.
    Same {
        time: Option<T>,
        len: usize,
        capacity: usize,
    },
    Each(Vec<T>),
}

impl<T> SameTimes<T> {
    fn empty(capacity: usize) -> Self {
        SameTimes::Same {
            time: None,
            len: 0,
            capacity,
        }
    }
}

impl<T: Ord + Clone> SameTimes<T> {
    fn push(&mut self, item: T) {
        let each = match self {
            SameTimes::Each(each) => return each.push(item),
            SameTimes::Same { time, len, .. } if time.is_none() || time.as_ref() == Some(&item) => {
                *time = Some(item);
                *len += 1;
                return;
            }
            SameTimes::Same {
                time,
                len,
                capacity,
            } => {
                let mut each = Vec::with_capacity((*capacity).max(*len + 1));
                each.extend(time.iter().cycle().take(*len).cloned());
                each.push(item);
                each
            }
        };
        *self = SameTimes::Each(each);
    }
}

impl<T: Ord + Clone + 'static> BatchContainer for SameTimes<T> {
    type Owned = T;
    type ReadItem<'a> = &'a T;

    fn into_owned(item: &T) -> T {
        item.clone()
    }

    fn clone_onto(item: &T, other: &mut T) {
        other.clone_from(item);
    }

    fn push_ref(&mut self, item: &T) {
        self.push(item.clone());
    }

    fn push_own(&mut self, item: &T) {
        self.push(item.clone());
    }

    fn clear(&mut self) {
        *self = SameTimes::empty(0);
    }

    fn with_capacity(size: usize) -> Self {
        SameTimes::empty(size)
    }

    fn merge_capacity(a: &Self, b: &Self) -> Self {
        SameTimes::empty(a.len() + b.len())
    }

    fn reborrow<'b, 'a: 'b>(item: &'a T) -> &'b T {
        item
    }

    fn index(&self, index: usize) -> &T {
        match self {
            SameTimes::Same {
                time: Some(time),
                len,
                ..
            } if index < *len => time,
            SameTimes::Same { .. } => panic!("time {index} of {}", self.len()),
            SameTimes::Each(each) => &each[index],
        }
    }

    fn len(&self) -> usize {
        match self {
            SameTimes::Same { len, .. } => *len,
            SameTimes::Each(each) => each.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::difference::Multiply;
    use rand::{Rng, SeedableRng};

    #[test]
    fn totals_round_trip_through_the_packed_form() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut packed = PackedTotals::with_capacity(4);
        let mut expected = Vec::new();
        for i in 0..2_000 {
            let n = rng.random_range(0..6);
            let slots: Vec<i128> = (0..n)
                .map(|_| match rng.random_range(0..4) {
                    0 => rng.random_range(-3..4),
                    1 => rng.random::<i64>() as i128,
                    // Wide totals, small enough that doubling them below cannot overflow.
                    2 => rng.random::<i128>() >> 2,
                    _ => [i128::MIN >> 2, i128::MAX >> 2, i64::MIN as i128, 0][i % 4],
                })
                .collect();
            let acc = Accums::from_slots(&slots);
            packed.push_own(&acc);
            expected.push(acc);
        }
        let mut copy = PackedTotals::merge_capacity(&packed, &packed);
        for i in 0..packed.len() {
            copy.push_ref(packed.index(i));
        }
        for (i, acc) in expected.iter().enumerate() {
            assert_eq!(&PackedTotals::into_owned(packed.index(i)), acc);
            assert_eq!(&PackedTotals::into_owned(copy.index(i)), acc);
            let mut sum = acc.clone();
            sum.plus_equals(&copy.index(i));
            assert_eq!(sum, acc.clone().multiply(&2), "slot {i}");
            let j = (i * 7) % expected.len();
            assert_eq!(packed.index(i).cmp(&packed.index(j)), acc.cmp(&expected[j]));
        }
        // Small totals take a few bytes each, not 32.
        let mut small = PackedTotals::with_capacity(0);
        small.push_own(&Accums::from_slots(&[1, 5_000, 1]));
        assert_eq!(small.bytes.len(), 5);
    }

    #[test]
    fn equal_times_are_stored_once_until_one_differs() {
        let mut times = SameTimes::with_capacity(8);
        for _ in 0..5 {
            times.push_own(&7u64);
        }
        assert!(matches!(times, SameTimes::Same { len: 5, .. }));
        assert_eq!(times.last(), Some(&7));
        times.push_ref(&9);
        times.push_own(&7);
        assert!(matches!(times, SameTimes::Each(_)));
        let read: Vec<u64> = (0..times.len()).map(|i| *times.index(i)).collect();
        assert_eq!(read, [7, 7, 7, 7, 7, 9, 7]);
        times.clear();
        assert!(times.is_empty());
        times.push_own(&3);
        assert_eq!(times.get(0), Some(&3));
        assert_eq!(times.get(1), None);
    }
}
