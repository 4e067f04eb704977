//! Sort keys: the columns of an ORDER BY as bytes that compare as the order does.
//!
//! An arrangement sorts its values by their own `Ord`. Where an operator wants a group's rows
//! in an ORDER BY's order (ascending or descending per column, NULLs first or last), each row
//! is arranged beside its [`SortKey`]: walking the arrangement then meets the rows in that
//! order, so the first `k` are found without reading the rest of the group
//! (`render::walk`).
//!
//! A row's fields already compare as their values do and each delimits itself (see
//! `crate::row`). A sort key is, per ORDER BY column, a marker byte (NULL before values, a
//! value, NULL after values) followed, for a value, by its field's bytes, complemented for a
//! descending column. Complementing reverses the order of self-delimiting encodings, and the
//! keys of one order never start with one another, so comparing whole keys compares column by
//! column. The bytes are stored as a [`Row`]'s (inline up to 15 bytes) but are not values:
//! nothing decodes them.

use serde::{Deserialize, Serialize};

use crate::plan::top_k::OrderKey;
use crate::row::Row;

/// Marker of a NULL that sorts before every value.
const NULL_FIRST: u8 = 1;
/// Marker of a value.
const VALUE: u8 = 2;
/// Marker of a NULL that sorts after every value.
const NULL_LAST: u8 = 3;

/// A row's position in an order, as bytes (see the module docs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SortKey(Row);

impl SortKey {
    /// The key of the fields `fields` (one per column of a row) under `order`, after the
    /// bytes `lead` (which tell apart several orders kept in one arrangement).
    pub fn of(lead: &[u8], fields: &[&[u8]], order: &[OrderKey]) -> SortKey {
        let mut buf: smallvec::SmallVec<[u8; 32]> = smallvec::SmallVec::new();
        buf.extend_from_slice(lead);
        for k in order {
            let field = fields[k.column];
            if Row::field_is_null(field) {
                buf.push(if k.nulls_first { NULL_FIRST } else { NULL_LAST });
            } else {
                buf.push(VALUE);
                match k.desc {
                    true => buf.extend(field.iter().map(|b| !b)),
                    false => buf.extend_from_slice(field),
                }
            }
        }
        SortKey(Row::from_encoded(&buf))
    }

    /// The least key that starts with `lead`: where a walk of the keys led by `lead` starts.
    pub fn leading(lead: &[u8]) -> SortKey {
        SortKey(Row::from_encoded(lead))
    }

    /// The key's first byte (see `lead` in [`SortKey::of`]).
    pub fn lead(&self) -> Option<u8> {
        self.bytes().first().copied()
    }

    fn bytes(&self) -> &[u8] {
        self.0.encoded_bytes()
    }
}

impl std::fmt::Debug for SortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SortKey(")?;
        for b in self.bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Serialize for SortKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.bytes())
    }
}

impl<'de> Deserialize<'de> for SortKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SortKey, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SortKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sort key's bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SortKey, E> {
                Ok(SortKey(Row::from_encoded(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SortKey, A::Error> {
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(SortKey(Row::from_encoded(&bytes)))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::top_k::compare_fields;
    use crate::value::Value;
    use rand::{Rng, SeedableRng};
    use std::cmp::Ordering;

    /// Two rows' fields compared by `order` through their sort keys.
    fn compare(a: &[&[u8]], b: &[&[u8]], order: &[OrderKey]) -> Ordering {
        SortKey::of(&[], a, order).cmp(&SortKey::of(&[], b, order))
    }

    fn value(rng: &mut impl Rng, column: usize) -> Value {
        if rng.random_range(0..6) == 0 {
            return Value::Null;
        }
        match column {
            0 => {
                Value::Int(rng.random_range(-300..300) * [1, 1_000_000_007][rng.random_range(0..2)])
            }
            1 => Value::text(
                &(0..rng.random_range(0..4))
                    .map(|_| ['a', 'b', '\0', 'é'][rng.random_range(0..4)])
                    .collect::<String>(),
            ),
            2 => Value::float(
                [
                    -0.0,
                    0.0,
                    1.5,
                    -2.25,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ][rng.random_range(0..7)],
            ),
            _ => Value::numeric(rust_decimal::Decimal::new(rng.random_range(-5000..5000), 2)),
        }
    }

    #[test]
    fn orders_as_the_order_by_does() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let rows: Vec<Row> = (0..300)
            .map(|_| Row::new((0..4).map(|c| value(&mut rng, c)).collect()))
            .collect();
        for _ in 0..40 {
            let order: Vec<OrderKey> = (0..rng.random_range(1..4))
                .map(|_| OrderKey {
                    column: rng.random_range(0..4),
                    desc: rng.random(),
                    nulls_first: rng.random(),
                })
                .collect();
            for a in &rows {
                let b = &rows[rng.random_range(0..rows.len())];
                let (fa, fb) = (a.fields(), b.fields());
                assert_eq!(
                    compare(&fa, &fb, &order),
                    compare_fields(&fa, &fb, &order),
                    "{a:?} against {b:?} by {order:?}"
                );
            }
        }
    }

    #[test]
    fn keys_led_by_a_byte_start_after_its_leading_key() {
        let row = Row::new(vec![Value::Null, Value::Int(-3)]);
        let order = [OrderKey {
            column: 1,
            desc: true,
            nulls_first: false,
        }];
        for lead in 0..3u8 {
            let key = SortKey::of(&[lead], &row.fields(), &order);
            assert!(SortKey::leading(&[lead]) < key);
            assert!(key < SortKey::leading(&[lead + 1]));
        }
    }

    #[test]
    fn crosses_processes_as_bytes() {
        let row = Row::new(vec![Value::text(
            "a long enough text to leave the inline bytes",
        )]);
        let order = [OrderKey {
            column: 0,
            desc: true,
            nulls_first: true,
        }];
        let key = SortKey::of(&[7], &row.fields(), &order);
        let bytes = bincode::serialize(&key).expect("serializes");
        let back: SortKey = bincode::deserialize(&bytes).expect("deserializes");
        assert_eq!(back, key);
    }
}
