//! Rows: the records every collection holds.
//!
//! A row is its values packed into bytes, in an encoding whose byte order is the values'
//! order (see [`encode`]): comparing, hashing and testing two rows for equality is comparing
//! bytes, with no per-value dispatch and no pointer to follow. Rows of up to 15 encoded bytes
//! are stored inline in the 16-byte `Row` itself (integers take one to nine bytes by
//! magnitude, so a key, a count and a sum fit), so the records that differential sorts,
//! merges and clones by the million are copied, not reference counted; longer rows share one
//! heap allocation behind a thin pointer. Sixteen bytes rather than 24 make a keyed update
//! `((Row, Row), time, diff)` 48 bytes instead of 64, which is what differential's sorts and
//! merges move, and turn a comparison into two word compares.
//!
//! Callers see values, never bytes: `get` and `iter` decode, `concat` and `project` work on
//! the bytes directly.
//!
//! Serialized, a row is its encoded bytes in binary formats (timely's exchange between
//! processes of one cluster, all running the same build) and its list of values in
//! human-readable ones. Stored data (the durable log, snapshots) keeps the list of values
//! through [`stored`], so the encoding can change without touching data directories.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use ordered_float::OrderedFloat;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use triomphe::ThinArc;

use crate::value::{DataType, Value};

mod scratch;

use scratch::{short_chunk, Scratch};

/// Encoded bytes a row keeps inline.
const INLINE: usize = 15;

/// An inline row's length. An enum rather than a `u8` so that its unused values (16 to 255)
/// tag the heap variant, and [`Bytes`] needs no tag byte of its own: 16 bytes in all.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Len {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
    L6,
    L7,
    L8,
    L9,
    L10,
    L11,
    L12,
    L13,
    L14,
    L15,
}

impl Len {
    const ALL: [Len; INLINE + 1] = [
        Len::L0,
        Len::L1,
        Len::L2,
        Len::L3,
        Len::L4,
        Len::L5,
        Len::L6,
        Len::L7,
        Len::L8,
        Len::L9,
        Len::L10,
        Len::L11,
        Len::L12,
        Len::L13,
        Len::L14,
        Len::L15,
    ];
}

/// A row's encoded values. Inline bytes past `len` are zero (see [`Bytes::words`]). Heap
/// bytes sit behind a thin (one-word) shared pointer, so both variants fit in 16 bytes.
#[derive(Clone)]
enum Bytes {
    Inline { len: Len, data: [u8; INLINE] },
    Heap(ThinArc<(), u8>),
}

/// An ordered tuple of values, packed (see the module docs).
#[derive(Clone)]
pub struct Row(Bytes);

// Tags, in the order of `Value`'s variants (which is the order of values of different types).
// Each 64-bit integer type has a range of 17 tags: its value's byte length and sign (see
// [`encode_i64`]).
const NULL: u8 = 1;
const BOOL: u8 = 2;
const INT: u8 = 3;
const INT_END: u8 = INT + 16;
const FLOAT: u8 = INT_END + 1;
const TEXT: u8 = FLOAT + 1;
const TIMESTAMP: u8 = TEXT + 1;
const TIMESTAMP_END: u8 = TIMESTAMP + 16;
const DATE: u8 = TIMESTAMP_END + 1;
const INTERVAL: u8 = DATE + 1;
const INTERVAL_END: u8 = INTERVAL + 16;
const NUMERIC: u8 = INTERVAL_END + 1;
// A numeric's sign, the byte after its tag.
const NUMERIC_NEG: u8 = 1;
const NUMERIC_ZERO: u8 = 2;
const NUMERIC_POS: u8 = 3;

/// A float's order-preserving bits: -0.0 is 0.0 and every NaN one NaN above everything, as
/// `OrderedFloat` orders and equates them.
fn float_bits(f: f64) -> u64 {
    if f.is_nan() {
        return u64::MAX;
    }
    let bits = if f == 0.0 { 0u64 } else { f.to_bits() };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn float_of(bits: u64) -> f64 {
    if bits == u64::MAX {
        return f64::NAN;
    }
    f64::from_bits(if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    })
}

/// Appends `value`'s encoding: its tag, then a payload whose bytes order as the values do.
/// Integers are their shortest bytes after a tag that gives length and sign ([`encode_i64`]);
/// floats and dates are big-endian with the sign bit flipped; text is its bytes with each 0
/// written as `0 1`, ended by `0 0`, so a string sorts before every longer one it starts.
fn encode(value: &Value, out: &mut Scratch) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(b) => out.put_array([BOOL, u8::from(*b)]),
        Value::Int(x) => encode_i64(INT, *x, out),
        Value::Float(f) => encode_float(f.0, out),
        Value::Text(t) => encode_text(t, out),
        Value::Timestamp(x) => encode_i64(TIMESTAMP, *x, out),
        Value::Date(d) => encode_date(*d, out),
        Value::Interval(x) => encode_i64(INTERVAL, *x, out),
        Value::Numeric(d) => encode_numeric(d, out),
    }
}

/// A (normalized) decimal as its sign, then for non-zero values `0.D × 10^E` as the exponent
/// `E` and the digits `D` (no trailing zeros) two to a byte (`1 + 10 a + b`, a last lone
/// digit paired with 0), ended by 0. Exponent first, then digits, orders magnitudes; a
/// negative value's bytes after the sign are complemented (its end is then 255), which
/// reverses that order. `12.34` takes six bytes.
fn encode_numeric(d: &rust_decimal::Decimal, out: &mut Scratch) {
    out.push(NUMERIC);
    if d.is_zero() {
        out.push(NUMERIC_ZERO);
        return;
    }
    let negative = d.is_sign_negative();
    let digits = d.mantissa().unsigned_abs().to_string();
    let exponent = digits.len() as i64 - d.scale() as i64;
    let digits = digits.trim_end_matches('0').as_bytes();
    let flip = |b: u8| if negative { !b } else { b };
    out.push(if negative { NUMERIC_NEG } else { NUMERIC_POS });
    // Digits 1 to 29, scale 0 to 28: the exponent lies in -27..=29.
    out.push(flip((exponent + 64) as u8));
    for pair in digits.chunks(2) {
        let (a, b) = (pair[0] - b'0', pair.get(1).map_or(0, |b| b - b'0'));
        out.push(flip(1 + a * 10 + b));
    }
    out.push(flip(0));
}

/// The decimal [`encode_numeric`] wrote (tag included).
fn decode_numeric(bytes: &[u8]) -> rust_decimal::Decimal {
    use rust_decimal::Decimal;
    let negative = match bytes[1] {
        NUMERIC_ZERO => return Decimal::ZERO,
        sign => sign == NUMERIC_NEG,
    };
    let flip = |b: u8| if negative { !b } else { b };
    let exponent = flip(bytes[2]) as i64 - 64;
    let mut mantissa: i128 = 0;
    let mut digits = 0i64;
    let body = &bytes[3..bytes.len() - 1];
    for (i, byte) in body.iter().enumerate() {
        let pair = flip(*byte) - 1;
        let (a, b) = (pair / 10, pair % 10);
        mantissa = mantissa * 10 + a as i128;
        digits += 1;
        // A last pair ending in 0 holds one digit: the digits have no trailing zeros.
        if i + 1 < body.len() || b != 0 {
            mantissa = mantissa * 10 + b as i128;
            digits += 1;
        }
    }
    let mut scale = digits - exponent;
    if scale < 0 {
        mantissa *= 10i128.pow((-scale) as u32);
        scale = 0;
    }
    if negative {
        mantissa = -mantissa;
    }
    Decimal::try_from_i128_with_scale(mantissa, scale as u32).expect("an encoded decimal fits")
}

/// The length of a numeric's encoding at the start of `bytes`, if it is whole.
fn numeric_len(bytes: &[u8]) -> Option<usize> {
    let end = match *bytes.get(1)? {
        NUMERIC_ZERO => return Some(2),
        NUMERIC_NEG => 255,
        NUMERIC_POS => 0,
        _ => return None,
    };
    bytes
        .get(3..)?
        .iter()
        .position(|b| *b == end)
        .map(|at| 3 + at + 1)
}

/// An integer as its shortest big-endian two's complement bytes, after a tag (`base` plus 0
/// to 16) that says how many and the sign: zero is the tag alone, `base + 8 + n` marks `n`
/// bytes of a positive value, `base + 8 - n` of a negative one. Longer positives are larger
/// and longer negatives smaller, so the tag orders by magnitude and the bytes within it.
/// Small integers (keys, counts) take 2 or 3 bytes instead of 9, which keeps rows of several
/// of them inline.
fn encode_i64(base: u8, x: i64, out: &mut Scratch) {
    let n = match x >= 0 {
        true => 8 - (x.leading_zeros() / 8) as usize,
        false => (8 - (x.leading_ones() / 8) as usize).max(1),
    };
    let tag = match x >= 0 {
        true => base + 8 + n as u8,
        false => base + 8 - n as u8,
    };
    // The tag and the low `n` bytes, big-endian: the bytes shifted to the front of eight.
    let low = if n == 0 { 0 } else { x << (8 * (8 - n)) };
    out.put_tagged(tag, low.to_be_bytes(), n);
}

/// The integer whose encoding (tag included) [`encode_i64`] wrote with this `base`.
fn decode_i64(base: u8, bytes: &[u8]) -> i64 {
    let d = bytes[0] - base;
    let payload = &bytes[1..];
    let mut x: u64 = if d >= 8 { 0 } else { u64::MAX };
    for b in payload {
        x = x << 8 | u64::from(*b);
    }
    x as i64
}

/// The base tag of the integer type `tag` is one of, if any.
fn int_base(tag: u8) -> Option<u8> {
    match tag {
        INT..=INT_END => Some(INT),
        TIMESTAMP..=TIMESTAMP_END => Some(TIMESTAMP),
        INTERVAL..=INTERVAL_END => Some(INTERVAL),
        _ => None,
    }
}

/// The payload length of an integer with this tag and base.
fn int_len(tag: u8, base: u8) -> usize {
    (tag - base).abs_diff(8) as usize
}

fn encode_float(f: f64, out: &mut Scratch) {
    out.push(FLOAT);
    out.put_array(float_bits(f).to_be_bytes());
}

fn encode_date(d: i32, out: &mut Scratch) {
    out.push(DATE);
    out.put_array(((d as u32) ^ (1 << 31)).to_be_bytes());
}

fn encode_text(t: &str, out: &mut Scratch) {
    out.push(TEXT);
    let mut rest = t.as_bytes();
    while let Some(at) = memchr::memchr(0, rest) {
        out.put(&rest[..=at]);
        out.push(1);
        rest = &rest[at + 1..];
    }
    out.put(rest);
    out.put_array([0, 0]);
}

/// The length of the encoded value at the start of `bytes`.
fn encoded_len(bytes: &[u8]) -> usize {
    let tag = bytes[0];
    match tag {
        NULL => 1,
        BOOL => 2,
        FLOAT => 9,
        DATE => 5,
        NUMERIC => numeric_len(bytes).expect("a numeric ends"),
        TEXT => {
            // The end is the first 0 followed by another 0; a 0 followed by 1 is an escape.
            let mut i = 1;
            loop {
                i += first_zero(&bytes[i..]).expect("text ends with 0 0");
                if bytes[i + 1] == 0 {
                    return i + 2;
                }
                i += 2;
            }
        }
        _ => 1 + int_len(tag, int_base(tag).expect("an integer's tag")),
    }
}

/// The position of the first 0 byte. Text values in rows are mostly short (names, cities), so
/// this looks at eight bytes at a time inline, where a call to `memchr` costs more than the
/// search; long text goes to `memchr`.
#[inline]
fn first_zero(bytes: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= bytes.len() && i < 64 {
        let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
        let zeros = word.wrapping_sub(LOW) & !word & HIGH;
        if zeros != 0 {
            return Some(i + (zeros.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i < 64 {
        return bytes[i..].iter().position(|b| *b == 0).map(|p| i + p);
    }
    memchr::memchr(0, &bytes[i..]).map(|p| i + p)
}

/// The type of the value whose encoding starts with `tag` (`Null` for NULL), as
/// [`Value::data_type`] gives for the decoded value.
fn tag_type(tag: u8) -> DataType {
    match tag {
        NULL => DataType::Null,
        BOOL => DataType::Bool,
        INT..=INT_END => DataType::Int,
        FLOAT => DataType::Float,
        TEXT => DataType::Text,
        TIMESTAMP..=TIMESTAMP_END => DataType::Timestamp,
        DATE => DataType::Date,
        INTERVAL..=INTERVAL_END => DataType::Interval,
        NUMERIC => DataType::Numeric,
        tag => unreachable!("row byte {tag} is no value's tag"),
    }
}

/// Decodes one value's encoding, exactly (as [`encoded_len`] delimits it).
fn decode(bytes: &[u8]) -> Value {
    match bytes[0] {
        NULL => Value::Null,
        BOOL => Value::Bool(bytes[1] != 0),
        INT..=INT_END => Value::Int(decode_i64(INT, bytes)),
        FLOAT => {
            let word = u64::from_be_bytes(bytes[1..9].try_into().expect("eight bytes"));
            Value::Float(OrderedFloat(float_of(word)))
        }
        TEXT => {
            let body = &bytes[1..bytes.len() - 2];
            if body.contains(&0) {
                let mut raw = Vec::with_capacity(body.len());
                let mut i = 0;
                while i < body.len() {
                    raw.push(body[i]);
                    i += if body[i] == 0 { 2 } else { 1 };
                }
                Value::Text(Arc::from(String::from_utf8(raw).expect("rows hold UTF-8")))
            } else {
                Value::Text(Arc::from(
                    std::str::from_utf8(body).expect("rows hold UTF-8"),
                ))
            }
        }
        TIMESTAMP..=TIMESTAMP_END => Value::Timestamp(decode_i64(TIMESTAMP, bytes)),
        DATE => {
            let x = u32::from_be_bytes(bytes[1..5].try_into().expect("four bytes"));
            Value::Date((x ^ (1 << 31)) as i32)
        }
        INTERVAL..=INTERVAL_END => Value::Interval(decode_i64(INTERVAL, bytes)),
        NUMERIC => Value::Numeric(decode_numeric(bytes)),
        tag => unreachable!("row byte {tag} is no value's tag"),
    }
}

impl Bytes {
    fn new(bytes: &[u8]) -> Bytes {
        if bytes.len() <= INLINE {
            Bytes::Inline {
                len: Len::ALL[bytes.len()],
                data: padded(bytes),
            }
        } else {
            Bytes::Heap(ThinArc::from_header_and_slice((), bytes))
        }
    }

    /// The bytes built in `s`. A short row is cut from the scratch's first 16 bytes by a mask
    /// (the stale bytes past its end become the zero padding), with no copy of run-time length.
    #[inline]
    fn from_scratch(s: &Scratch) -> Bytes {
        match s.short() {
            Some((head, len)) if len <= INLINE => {
                let mask = (1u128 << (8 * len)) - 1;
                let padded = (u128::from_le_bytes(*head) & mask).to_le_bytes();
                Bytes::Inline {
                    len: Len::ALL[len],
                    data: padded[..INLINE].try_into().expect("15 bytes"),
                }
            }
            _ => Bytes::new(s.as_slice()),
        }
    }

    /// Inline bytes as two big-endian words, zero-padded. Comparing words compares the
    /// bytes: where one row's bytes are a prefix of the other's, the longer one has a tag
    /// (never 0) where the shorter one has padding, since every value's encoding delimits
    /// itself. Comparing two words is much cheaper than a call to `memcmp`.
    fn words(data: &[u8; INLINE]) -> (u64, u64) {
        let head = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        let mut tail = [0u8; 8];
        tail[..INLINE - 8].copy_from_slice(&data[8..]);
        (head, u64::from_be_bytes(tail))
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline { len, data } => &data[..*len as usize],
            Bytes::Heap(b) => &b.slice,
        }
    }
}

// Binary formats (the exchange between processes) carry the encoded bytes as they are;
// human-readable ones the values. See the module docs.
impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match s.is_human_readable() {
            true => self.serialize_values(s),
            false => s.serialize_bytes(self.bytes()),
        }
    }
}

impl Row {
    /// Serializes the row as its list of values (as `Vec<Value>` serializes).
    fn serialize_values<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let fields = self.fields();
        let mut seq = s.serialize_seq(Some(fields.len()))?;
        for f in fields {
            seq.serialize_element(&EncodedValue(f))?;
        }
        seq.end()
    }
}

/// One encoded value, serialized exactly as its `Value` is (the derived impl: a variant index
/// and payload), but straight from the bytes: text that holds no 0 is borrowed, not copied.
/// Rows cross processes this way, so sending one costs no allocation per text value.
struct EncodedValue<'a>(&'a [u8]);

impl Serialize for EncodedValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match borrowed_text(self.0) {
            Some(text) => s.serialize_newtype_variant("Value", 4, "Text", text),
            None => decode(self.0).serialize(s),
        }
    }
}

/// A text value's string, borrowed from its encoding when it has no escaped 0 (nearly
/// always); `None` for other values, which serializers decode instead.
fn borrowed_text(field: &[u8]) -> Option<&str> {
    if field[0] != TEXT {
        return None;
    }
    let body = &field[1..field.len() - 2];
    match body.contains(&0) {
        true => None,
        false => std::str::from_utf8(body).ok(),
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        match d.is_human_readable() {
            true => d.deserialize_seq(RowVisitor),
            false => d.deserialize_bytes(EncodedVisitor),
        }
    }
}

/// Reads a row's encoded bytes, as a binary format carries them. The bytes are checked to
/// delimit whole values (a cut or garbled message is an error, not a panic later), but not
/// decoded: they come from a peer process of the same build.
struct EncodedVisitor;

impl serde::de::Visitor<'_> for EncodedVisitor {
    type Value = Row;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row's encoded bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Row, E> {
        match well_formed(bytes) {
            true => Ok(Row(Bytes::new(bytes))),
            false => Err(E::custom("bytes that are not a row's encoding")),
        }
    }
}

/// Whether `bytes` are a sequence of whole encoded values (tags known, lengths in bounds).
fn well_formed(mut bytes: &[u8]) -> bool {
    while let Some(&tag) = bytes.first() {
        let len = match tag {
            NULL | BOOL | FLOAT | DATE => encoded_len(bytes),
            NUMERIC => match numeric_len(bytes) {
                Some(len) => len,
                None => return false,
            },
            TEXT => match memchr::memmem::find(&bytes[1..], &[0, 0]) {
                Some(at) => at + 3,
                None => return false,
            },
            _ => match int_base(tag) {
                Some(base) => 1 + int_len(tag, base),
                None => return false,
            },
        };
        if len > bytes.len() {
            return false;
        }
        bytes = &bytes[len..];
    }
    true
}

/// Reads a list of values (as `Vec<Value>` serializes) straight into a row's encoding: no
/// `Value` is built, and text is copied once, from the input into the row.
struct RowVisitor;

impl<'de> serde::de::Visitor<'de> for RowVisitor {
    type Value = Row;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of values")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Row, A::Error> {
        let mut packer = RowPacker::new();
        while seq.next_element_seed(ValueSeed(&mut packer))?.is_some() {}
        Ok(packer.finish())
    }
}

/// `Value`'s variants, by index (bincode) or name (self-describing formats). Not `DataType`:
/// the indexes must be `Value`'s, whose order differs (NULL first).
#[derive(Deserialize)]
#[serde(variant_identifier)]
enum Variant {
    Null,
    Bool,
    Int,
    Float,
    Text,
    Timestamp,
    Date,
    Interval,
    Numeric,
}

const VARIANTS: &[&str] = &[
    "Null",
    "Bool",
    "Int",
    "Float",
    "Text",
    "Timestamp",
    "Date",
    "Interval",
    "Numeric",
];

/// Reads one value, as `Value`'s derived impl wrote it, onto the end of a row.
struct ValueSeed<'p>(&'p mut RowPacker);

impl<'de> serde::de::DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_enum("Value", VARIANTS, self)
    }
}

impl<'de> serde::de::Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a value")
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        let (variant, access) = data.variant::<Variant>()?;
        let p = self.0;
        match variant {
            Variant::Null => {
                access.unit_variant()?;
                p.push_null();
            }
            Variant::Bool => p.push_bool(access.newtype_variant()?),
            Variant::Int => p.push_int(access.newtype_variant()?),
            Variant::Float => p.push_float(access.newtype_variant()?),
            Variant::Text => access.newtype_variant_seed(TextSeed(p))?,
            Variant::Timestamp => p.push_timestamp(access.newtype_variant()?),
            Variant::Date => p.push_date(access.newtype_variant()?),
            Variant::Interval => p.push_interval(access.newtype_variant()?),
            Variant::Numeric => p.push_numeric(&access.newtype_variant()?),
        }
        Ok(())
    }
}

/// Reads a string onto the end of a row, borrowing it from the input where the format can.
struct TextSeed<'p>(&'p mut RowPacker);

impl<'de> serde::de::DeserializeSeed<'de> for TextSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TextSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.0.push_text(s);
        Ok(())
    }
}

/// Rows in stored data (the durable log, snapshots) as their lists of values, whatever the
/// format: `#[serde(with = "crate::row::stored")]` on a field holding rows with other data.
/// The bytes are those of the same data with `Vec<Value>` in place of each row, so data
/// directories do not depend on the in-memory encoding.
pub mod stored {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Row, RowVisitor};

    /// Data whose rows are stored as lists of values.
    pub trait Stored: Sized {
        fn store<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
        fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    }

    pub fn serialize<T: Stored, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        value.store(s)
    }

    pub fn deserialize<'de, T: Stored, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::load(d)
    }

    /// A row, serialized as its values.
    struct Values<'a>(&'a Row);

    impl Serialize for Values<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.serialize_values(s)
        }
    }

    /// A row, deserialized from its values.
    struct Loaded(Row);

    impl<'de> Deserialize<'de> for Loaded {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loaded, D::Error> {
            d.deserialize_seq(RowVisitor).map(Loaded)
        }
    }

    impl<A: Serialize + DeserializeOwned> Stored for Vec<(Row, A)> {
        fn store<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.iter().map(|(r, a)| (Values(r), a)))
        }
        fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let v = Vec::<(Loaded, A)>::deserialize(d)?;
            Ok(v.into_iter().map(|(r, a)| (r.0, a)).collect())
        }
    }

    impl<A, B> Stored for Vec<(Row, A, B)>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
    {
        fn store<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.iter().map(|(r, a, b)| (Values(r), a, b)))
        }
        fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let v = Vec::<(Loaded, A, B)>::deserialize(d)?;
            Ok(v.into_iter().map(|(r, a, b)| (r.0, a, b)).collect())
        }
    }

    /// Rows grouped under keys (a snapshot's tables): `#[serde(with = "crate::row::stored::keyed")]`.
    pub mod keyed {
        use super::*;

        type Keyed<K, A> = Vec<(K, Vec<(Row, A)>)>;

        /// One group's rows, serialized as values.
        struct Group<'a, A>(&'a Vec<(Row, A)>);

        impl<A: Serialize + DeserializeOwned> Serialize for Group<'_, A> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.store(s)
            }
        }

        struct LoadedGroup<A>(Vec<(Row, A)>);

        impl<'de, A: Serialize + DeserializeOwned> Deserialize<'de> for LoadedGroup<A> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Stored::load(d).map(LoadedGroup)
            }
        }

        pub fn serialize<K, A, S>(value: &Keyed<K, A>, s: S) -> Result<S::Ok, S::Error>
        where
            K: Serialize,
            A: Serialize + DeserializeOwned,
            S: Serializer,
        {
            s.collect_seq(value.iter().map(|(k, rows)| (k, Group(rows))))
        }

        pub fn deserialize<'de, K, A, D>(d: D) -> Result<Keyed<K, A>, D::Error>
        where
            K: DeserializeOwned,
            A: Serialize + DeserializeOwned,
            D: Deserializer<'de>,
        {
            let v = Vec::<(K, LoadedGroup<A>)>::deserialize(d)?;
            Ok(v.into_iter().map(|(k, g)| (k, g.0)).collect())
        }
    }
}

/// Builds a row value by value, encoding as it goes, so a source that parses text pushes a
/// `&str` without making a `Value` (and an `Arc<str>`) first. `finish` hands the row over and
/// leaves the packer empty for the next one.
#[derive(Default)]
pub struct RowPacker {
    buf: Scratch,
}

impl RowPacker {
    pub fn new() -> RowPacker {
        RowPacker::default()
    }

    pub fn push(&mut self, value: &Value) {
        encode(value, &mut self.buf);
    }

    /// Appends a value's encoding as it is (from [`Row::fields`]).
    pub(crate) fn push_field(&mut self, field: &[u8]) {
        self.buf.put(field);
    }

    pub fn push_null(&mut self) {
        self.buf.push(NULL);
    }

    pub fn push_bool(&mut self, b: bool) {
        self.buf.put_array([BOOL, u8::from(b)]);
    }

    pub fn push_int(&mut self, x: i64) {
        encode_i64(INT, x, &mut self.buf);
    }

    pub fn push_float(&mut self, f: f64) {
        encode_float(f, &mut self.buf);
    }

    pub fn push_text(&mut self, t: &str) {
        encode_text(t, &mut self.buf);
    }

    /// Microseconds since the Unix epoch, as `Value::Timestamp`.
    pub fn push_timestamp(&mut self, micros: i64) {
        encode_i64(TIMESTAMP, micros, &mut self.buf);
    }

    /// Days since the Unix epoch, as `Value::Date`.
    pub fn push_date(&mut self, days: i32) {
        encode_date(days, &mut self.buf);
    }

    /// Microseconds, as `Value::Interval`.
    pub fn push_interval(&mut self, micros: i64) {
        encode_i64(INTERVAL, micros, &mut self.buf);
    }

    /// Pushes a numeric (normalized here, as [`Value::numeric`] does).
    pub fn push_numeric(&mut self, d: &rust_decimal::Decimal) {
        encode_numeric(&d.normalize(), &mut self.buf);
    }

    /// The row of the values pushed since the last `finish`.
    pub fn finish(&mut self) -> Row {
        let row = Row(Bytes::from_scratch(&self.buf));
        self.buf.clear();
        row
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for Row {
    fn default() -> Row {
        Row::empty()
    }
}

impl std::hash::Hash for Row {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match &self.0 {
            Bytes::Inline { data, .. } => hash_inline(data, state),
            Bytes::Heap(b) => b.slice.hash(state),
        }
    }
}

/// At most [`INLINE`] bytes, zero-padded as an inline row keeps them.
fn padded(bytes: &[u8]) -> [u8; INLINE] {
    short_chunk(bytes)[..INLINE].try_into().expect("15 bytes")
}

/// An inline row's hash input: its padded bytes as two words.
fn hash_inline<H: std::hash::Hasher>(data: &[u8; INLINE], state: &mut H) {
    let (a, b) = Bytes::words(data);
    state.write_u64(a);
    state.write_u64(b);
}

/// Hashes `bytes` as [`Row`]'s `Hash` hashes a row of those bytes, without building it.
fn hash_as_row<H: std::hash::Hasher>(bytes: &[u8], state: &mut H) {
    use std::hash::Hash;
    if bytes.len() <= INLINE {
        hash_inline(&padded(bytes), state);
    } else {
        bytes.hash(state);
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        match (&self.0, &other.0) {
            // Equal padding: equal arrays mean equal lengths too.
            (Bytes::Inline { data: a, .. }, Bytes::Inline { data: b, .. }) => a == b,
            (Bytes::Heap(a), Bytes::Heap(b)) => a.slice == b.slice,
            _ => false,
        }
    }
}

impl Eq for Row {}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Row {
    fn cmp(&self, other: &Row) -> Ordering {
        match (&self.0, &other.0) {
            (Bytes::Inline { data: a, .. }, Bytes::Inline { data: b, .. }) => {
                Bytes::words(a).cmp(&Bytes::words(b))
            }
            _ => self.bytes().cmp(other.bytes()),
        }
    }
}

/// Decodes a row's values in order.
pub struct RowIter<'a> {
    rest: &'a [u8],
}

impl Iterator for RowIter<'_> {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        if self.rest.is_empty() {
            return None;
        }
        let (field, rest) = self.rest.split_at(encoded_len(self.rest));
        self.rest = rest;
        Some(decode(field))
    }
}

impl Row {
    pub fn new(values: Vec<Value>) -> Row {
        Row::pack(&values)
    }

    /// The row of `values`, in order.
    pub fn pack<V: Borrow<Value>>(values: impl IntoIterator<Item = V>) -> Row {
        Row::build(&[], values)
    }

    /// The row of the encoded `prefix` followed by `values`: every constructor ends here.
    fn build<V: Borrow<Value>>(prefix: &[u8], values: impl IntoIterator<Item = V>) -> Row {
        let mut buf = Scratch::new();
        buf.put(prefix);
        for v in values {
            encode(v.borrow(), &mut buf);
        }
        Row(Bytes::from_scratch(&buf))
    }

    pub fn empty() -> Row {
        Row(Bytes::new(&[]))
    }

    /// Whether this row's leading values are `prefix`'s (values encode prefix-free, so a
    /// byte prefix is a prefix of whole values).
    pub fn starts_with(&self, prefix: &Row) -> bool {
        self.bytes().starts_with(prefix.bytes())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Asks the processor to start loading a heap row's first bytes, without waiting for them
    /// and without touching them (a prefetch never faults): a reader that walks rows scattered
    /// over the heap calls it a few rows ahead, so their loads overlap. Inline rows are already
    /// where their `Row` is.
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        if let Bytes::Heap(heap) = &self.0 {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let start = heap.heap_ptr().cast::<i8>();
            // The count and length words, then the first values: four cache lines, which
            // reach past a few text values (a Nexmark auction's `seller` lies 180 bytes in).
            // SAFETY: SSE is part of every x86_64 target, and a prefetch reads nothing: any
            // address is allowed.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(start);
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(64));
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(128));
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(192));
            }
        }
    }

    /// The encoded values, as one slice (rows order as these bytes do).
    pub(crate) fn encoded_bytes(&self) -> &[u8] {
        self.bytes()
    }

    /// The row whose encoded values are `bytes` (from [`Row::encoded_bytes`], or a prefix of
    /// them that ends between values).
    pub(crate) fn from_encoded(bytes: &[u8]) -> Row {
        Row(Bytes::new(bytes))
    }

    /// The length of the first `n` values' encodings (all of them in a shorter row).
    fn fields_len(&self, n: usize) -> usize {
        self.encoded().take(n).map(<[u8]>::len).sum()
    }

    /// The row without its first `n` values (their bytes skipped, the rest copied).
    pub(crate) fn skip_fields(&self, n: usize) -> Row {
        Row(Bytes::new(&self.bytes()[self.fields_len(n)..]))
    }

    /// The length of the first `n` values' encodings, or `None` when one of them is NULL or
    /// the row has fewer.
    pub(crate) fn leading_len(&self, n: usize) -> Option<usize> {
        let mut len = 0;
        let mut fields = self.encoded();
        for _ in 0..n {
            let field = fields.next()?;
            if field[0] == NULL {
                return None;
            }
            len += field.len();
        }
        Some(len)
    }

    /// The encoded values, one slice each.
    fn encoded(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.bytes();
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let n = encoded_len(rest);
            let (v, r) = rest.split_at(n);
            rest = r;
            Some(v)
        })
    }

    pub fn len(&self) -> usize {
        self.encoded().count()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The value at `i`; panics past the end, like indexing.
    pub fn get(&self, i: usize) -> Value {
        let v = self.encoded().nth(i).expect("column within the row");
        decode(v)
    }

    /// Each value's type, read from its tag without decoding it (`Null` for NULL): a write's
    /// rows are checked against the table's columns this way, text included, without
    /// allocating.
    pub fn data_types(&self) -> impl Iterator<Item = DataType> + '_ {
        self.encoded().map(|field| tag_type(field[0]))
    }

    /// The values, decoded in order.
    pub fn iter(&self) -> RowIter<'_> {
        RowIter { rest: self.bytes() }
    }

    /// The values, decoded.
    pub fn unpack(&self) -> Vec<Value> {
        self.iter().collect()
    }

    /// Replaces `out`'s contents with the values (reusing its allocation).
    pub fn unpack_into(&self, out: &mut Vec<Value>) {
        out.clear();
        out.extend(self.iter());
    }

    /// Replaces `out`'s contents with one value per column up to the last one `needed` marks:
    /// those decoded, the others NULL (skipped without decoding, so no text is copied out for
    /// a column nobody reads). Columns past the last needed one are not walked at all.
    pub fn unpack_some(&self, needed: &[bool], out: &mut Vec<Value>) {
        out.clear();
        for (field, need) in self.encoded().zip(needed) {
            out.push(match need {
                true => decode(field),
                false => Value::Null,
            });
        }
    }

    /// The values at `cols`, where a position past this row's last column stands for
    /// `extra[position - len]`: this row's values are copied as bytes, only `extra` is encoded.
    pub fn project_extended(&self, cols: &[usize], extra: &[Value]) -> Row {
        let fields = self.fields();
        Row::assemble(&fields, fields.len(), cols, extra)
    }

    /// A row from encoded `fields` (from [`Row::fields_to`]) of a row with `arity` columns and
    /// values computed beside it: position `c` in `cols` is `fields[c]` below `arity` and
    /// `extra[c - arity]` from there on. A field not walked reads as NULL.
    pub fn assemble(fields: &[&[u8]], arity: usize, cols: &[usize], extra: &[Value]) -> Row {
        let mut buf = Scratch::new();
        for &c in cols {
            match fields.get(c) {
                Some(f) if c < arity => buf.put(f),
                _ if c < arity => buf.push(NULL),
                _ => encode(&extra[c - arity], &mut buf),
            }
        }
        Row(Bytes::from_scratch(&buf))
    }

    /// The encodings of the first `n` values (all of them in a shorter row), walking no
    /// further.
    pub fn fields_to(&self, n: usize) -> SmallVec<[&[u8]; 16]> {
        self.encoded().take(n).collect()
    }

    /// Decodes one value's encoding (from [`Row::fields`]).
    pub fn decode_field(field: &[u8]) -> Value {
        decode(field)
    }

    /// Each value's encoding, in column order. Encodings of two values of one type (or NULL)
    /// compare as the values do, which is what sorting by a column needs.
    pub fn fields(&self) -> SmallVec<[&[u8]; 16]> {
        self.encoded().collect()
    }

    /// Appends the encodings of the first `n` values (all of them in a shorter row) to `out`:
    /// [`Row::fields_to`] without building and returning a vector of its own, for callers
    /// that take a few fields of every row in a hot loop.
    pub fn extend_fields<'a>(&'a self, n: usize, out: &mut SmallVec<[&'a [u8]; 16]>) {
        out.extend(self.encoded().take(n));
    }

    /// The row of these encoded values, in order; `None` stands for NULL.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = Option<&'a [u8]>>) -> Row {
        let mut buf = Scratch::new();
        for f in fields {
            match f {
                Some(f) => buf.put(f),
                None => buf.push(NULL),
            }
        }
        Row(Bytes::from_scratch(&buf))
    }

    /// Whether a value's encoding (from [`Row::fields`]) is NULL's.
    pub fn field_is_null(field: &[u8]) -> bool {
        field[0] == NULL
    }

    pub fn into_values(self) -> Vec<Value> {
        self.unpack()
    }

    /// This row followed by `other` (their bytes, joined).
    pub fn concat(&self, other: &Row) -> Row {
        let mut buf = Scratch::new();
        buf.put(self.bytes());
        buf.put(other.bytes());
        Row(Bytes::from_scratch(&buf))
    }

    /// This row followed by `values`.
    pub fn append<'a>(&self, values: impl IntoIterator<Item = &'a Value>) -> Row {
        Row::build(self.bytes(), values)
    }

    /// The first `n` values (their bytes).
    pub fn prefix(&self, n: usize) -> Row {
        Row(Bytes::new(&self.bytes()[..self.fields_len(n)]))
    }

    /// The hash that places this row on a worker: its first value's, as the one-column key
    /// row of that value hashes (where `arrange_by_key` puts that key). Every arrangement of
    /// rows, every join side facing one, table writes and sink writers place rows by it, so
    /// they must all use this one function (see `render::prefix`).
    pub fn placement_hash(&self) -> u64 {
        self.prefix_hashed(1)
    }

    /// `self.prefix(n).hashed()` (differential's exchange hash), without building the prefix.
    pub fn prefix_hashed(&self, n: usize) -> u64 {
        /// Bytes that hash as a row of them does.
        struct AsRow<'a>(&'a [u8]);
        impl std::hash::Hash for AsRow<'_> {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                hash_as_row(self.0, state)
            }
        }
        differential_dataflow::Hashable::hashed(&AsRow(&self.bytes()[..self.fields_len(n)]))
    }

    /// The values at `cols`, in that order (their bytes, copied); panics past the end, like
    /// indexing.
    pub fn project(&self, cols: &[usize]) -> Row {
        self.try_project(cols).expect("columns within the row")
    }

    /// As [`Row::project`], but `None` when a column is past the end.
    pub fn try_project(&self, cols: &[usize]) -> Option<Row> {
        let fields = self.fields();
        let mut buf = Scratch::new();
        for c in cols {
            buf.put(fields.get(*c)?);
        }
        Some(Row(Bytes::from_scratch(&buf)))
    }

    /// Whether any value is NULL (read from the tags, nothing decoded).
    pub fn has_null(&self) -> bool {
        self.encoded().any(|v| v[0] == NULL)
    }

    /// A row of `n` NULLs.
    pub fn nulls(n: usize) -> Row {
        let mut buf = Scratch::new();
        for _ in 0..n {
            buf.push(NULL);
        }
        Row(Bytes::from_scratch(&buf))
    }

    /// The row as JSON values in column order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.iter().map(|v| v.to_json()).collect())
    }
}

impl Row {
    /// The row as [`Row::to_json`] writes it, serialized straight from the values (no
    /// `serde_json::Value` tree per row: sinks write millions of rows).
    pub fn json(&self) -> JsonRow<'_> {
        JsonRow(self)
    }
}

/// A row serialized as a JSON array (see [`Row::json`]).
pub struct JsonRow<'a>(&'a Row);

impl Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let fields = self.0.fields();
        let mut seq = s.serialize_seq(Some(fields.len()))?;
        for f in fields {
            match borrowed_text(f) {
                Some(text) => seq.serialize_element(text)?,
                None => seq.serialize_element(&JsonValue(&decode(f)))?,
            }
        }
        seq.end()
    }
}

/// One value as [`Value::to_json`] makes it.
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.0.is_finite() => s.serialize_f64(f.0),
            Value::Float(f) => s.collect_str(&f.0),
            Value::Text(t) => s.serialize_str(t),
            other => s.collect_str(other),
        }
    }
}

/// Sorts `updates` by row, sums the diffs of equal rows and drops those that cancel.
pub fn consolidate(updates: &mut Vec<(Row, crate::plan::Diff)>) {
    differential_dataflow::consolidation::consolidate(updates);
}

impl From<Vec<Value>> for Row {
    fn from(v: Vec<Value>) -> Row {
        Row::new(v)
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        Row::pack(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_built_across_the_stack_buffer() {
        // Every sample, many at a time: rows short, inline, on the stack and past it.
        let values = samples();
        for size in [1, 2, 5, 9, 20] {
            for chunk in values.chunks(size) {
                let row = Row::pack(chunk);
                assert_eq!(row.unpack(), chunk);
                assert_eq!(Row::from_fields(row.fields().into_iter().map(Some)), row);
                let twice = row.concat(&row);
                assert_eq!(twice.unpack(), [chunk, chunk].concat());
                let mut packer = RowPacker::new();
                for v in chunk {
                    packer.push(v);
                }
                assert_eq!(packer.finish(), row);
            }
        }
    }

    /// Values at the edges of every encoding, in no particular order.
    fn samples() -> Vec<Value> {
        let mut v = vec![Value::Null, Value::Bool(false), Value::Bool(true)];
        for x in [
            i64::MIN,
            i64::MIN + 1,
            -(1 << 58) - 1,
            -(1 << 58),
            -(1 << 56) - 1,
            -(1 << 56),
            -65537,
            -65536,
            -257,
            -256,
            -255,
            -129,
            -128,
            -8,
            -1,
            0,
            1,
            7,
            8,
            127,
            128,
            255,
            256,
            65535,
            65536,
            (1 << 56) - 1,
            1 << 56,
            1 << 58,
            i64::MAX - 1,
            i64::MAX,
        ] {
            v.extend([
                Value::Int(x),
                Value::Timestamp(x),
                Value::Interval(x),
                Value::Date(x.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            ]);
        }
        for f in [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            1.5,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ] {
            v.push(Value::float(f));
        }
        for t in [
            "",
            "a",
            "a\0",
            "ab",
            "abcdef",
            "abcdefg",
            "abcdefg\0",
            "abcdefgh",
            "abcdefgz",
            "b",
            "é",
        ] {
            v.push(Value::text(t));
        }
        for d in [
            "-79228162514264337593543950335",
            "-1000",
            "-999.99",
            "-10",
            "-1.5",
            "-1.05",
            "-1",
            "-0.12",
            "-0.1",
            "-0.0000000000000000000000000001",
            "0",
            "0.0000000000000000000000000001",
            "0.1",
            "0.12",
            "0.123",
            "0.2",
            "1",
            "1.05",
            "1.5",
            "10",
            "100",
            "101",
            "999.99",
            "1000",
            "79228162514264337593543950335",
        ] {
            v.push(crate::value::parse_numeric(d).expect("a decimal"));
        }
        v
    }

    #[test]
    fn numerics_order_and_read_back_as_decimals() {
        use rand::{Rng, SeedableRng};
        use rust_decimal::Decimal;
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut values: Vec<Value> = (0..3000)
            .map(|_| {
                let mantissa: i128 = match rng.random_range(0..3) {
                    0 => rng.random_range(-1000..1000),
                    1 => rng.random_range(-(1i128 << 64)..(1i128 << 64)),
                    _ => rng.random_range(-(1i128 << 95)..(1i128 << 95)),
                };
                Value::numeric(Decimal::from_i128_with_scale(
                    mantissa,
                    rng.random_range(0..=28),
                ))
            })
            .collect();
        values.push(Value::numeric(Decimal::new(150, 2)));
        values.push(Value::numeric(Decimal::new(15, 1)));
        let rows: Vec<Row> = values.iter().map(|v| Row::new(vec![v.clone()])).collect();
        for (v, r) in values.iter().zip(&rows) {
            assert_eq!(&r.get(0), v);
        }
        let mut by_value: Vec<usize> = (0..values.len()).collect();
        by_value.sort_by(|a, b| values[*a].cmp(&values[*b]));
        let mut by_row = by_value.clone();
        by_row.sort_by(|a, b| rows[*a].cmp(&rows[*b]));
        let sorted = |order: &[usize]| order.iter().map(|i| values[*i].clone()).collect::<Vec<_>>();
        assert_eq!(sorted(&by_value), sorted(&by_row));
        // 1.50 and 1.5 are one value, with one encoding.
        assert_eq!(rows[values.len() - 1], rows[values.len() - 2]);
    }

    #[test]
    fn types_read_from_tags_are_the_values_types() {
        let values = samples();
        let row = Row::new(values.clone());
        let types: Vec<DataType> = row.data_types().collect();
        let expected: Vec<DataType> = values.iter().map(Value::data_type).collect();
        assert_eq!(types, expected);
        assert!(expected.contains(&DataType::Null) && expected.contains(&DataType::Text));
    }

    #[test]
    fn prefix_hash_is_the_prefix_rows_hash() {
        use differential_dataflow::Hashable;
        let long = Value::text("a text long enough to live on the heap");
        for a in samples().into_iter().chain([long.clone()]) {
            let row = Row::new(vec![a, Value::Int(7), long.clone()]);
            for n in 0..=3 {
                assert_eq!(row.prefix_hashed(n), row.prefix(n).hashed(), "{row:?} {n}");
            }
        }
    }

    #[test]
    fn row_order_is_value_order() {
        let values = samples();
        let mut rows: Vec<Vec<Value>> = vec![vec![]];
        for a in &values {
            rows.push(vec![a.clone()]);
            for b in [
                Value::Null,
                Value::Int(1),
                Value::text("x"),
                Value::float(0.5),
            ] {
                rows.push(vec![a.clone(), b.clone()]);
                rows.push(vec![a.clone(), b.clone(), Value::Int(0)]);
            }
            for b in &values {
                rows.push(vec![Value::Int(1), b.clone()]);
            }
        }
        let packed: Vec<Row> = rows.iter().map(|r| Row::new(r.clone())).collect();
        for (a, ra) in rows.iter().zip(&packed) {
            for (b, rb) in rows.iter().zip(&packed) {
                assert_eq!(ra.cmp(rb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ra == rb, a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn values_read_back_as_written() {
        let values = samples();
        for v in &values {
            let row = Row::new(vec![Value::Int(1), v.clone(), Value::text("z")]);
            assert_eq!(row.len(), 3);
            assert_eq!(row.get(1), *v, "{v:?}");
            assert_eq!(
                row.unpack(),
                vec![Value::Int(1), v.clone(), Value::text("z")]
            );
        }
        let all = Row::new(values.clone());
        assert_eq!(all.unpack(), values);
        assert_eq!(
            all.project(&[3, 0]).unpack(),
            vec![values[3].clone(), values[0].clone()]
        );
        let two = Row::new(vec![Value::text("a\0b"), Value::Null]);
        assert_eq!(all.concat(&two).unpack()[values.len()..], two.unpack()[..]);
        assert_eq!(Row::nulls(2).unpack(), vec![Value::Null, Value::Null]);
        assert!(Row::empty().is_empty());
    }

    #[test]
    fn small_rows_are_inline_in_16_bytes() {
        assert_eq!(std::mem::size_of::<Row>(), 16);
        let row = Row::new(vec![Value::Int(1), Value::Int(-1)]);
        assert!(matches!(row.0, Bytes::Inline { .. }));
        // Integers take as many bytes as their magnitude needs: four keys and counts fit.
        let row = Row::new(vec![
            Value::Int(12_345),
            Value::Int(0),
            Value::Int(-3),
            Value::Int(1 << 40),
        ]);
        assert!(matches!(row.0, Bytes::Inline { .. }));
        // Fifteen bytes stay inline, sixteen go to the heap, and order does not care.
        let fifteen = Row::new(vec![Value::Int(1 << 40), Value::Int(1 << 48)]);
        let sixteen = Row::new(vec![Value::Int(1 << 48), Value::Int(1 << 48)]);
        assert_eq!((fifteen.bytes().len(), sixteen.bytes().len()), (15, 16));
        assert!(matches!(fifteen.0, Bytes::Inline { .. }));
        assert!(matches!(sixteen.0, Bytes::Heap(_)));
        assert_eq!(fifteen.cmp(&sixteen), Ordering::Less);
        assert_eq!(sixteen.cmp(&fifteen), Ordering::Greater);
        assert_eq!(sixteen.clone(), sixteen);
        assert_eq!(sixteen.unpack()[1], Value::Int(1 << 48));
    }

    #[test]
    fn json_writes_what_to_json_builds() {
        let mut values = samples();
        values.extend([
            Value::text("quote \" and \\ and \n"),
            Value::Timestamp(1_732_540_000_123_456),
            Value::Date(20_000),
            Value::Interval(90_061_000_001),
        ]);
        let row = Row::new(values);
        assert_eq!(
            serde_json::to_string(&row.json()).unwrap(),
            row.to_json().to_string()
        );
    }

    #[test]
    fn binary_formats_carry_the_bytes_and_stored_rows_the_values() {
        let mut values = samples();
        values.push(Value::text(
            "long enough to live on the heap, with a \0 inside",
        ));
        let row = Row::new(values);
        let short = Row::new(vec![Value::Int(7), Value::Null]);
        // Between processes: the encoding itself, checked on the way in.
        for r in [&row, &short] {
            let raw = bincode::serialize(r).unwrap();
            assert_eq!(&raw[8..], r.bytes());
            assert_eq!(bincode::deserialize::<Row>(&raw).unwrap(), *r);
        }
        let mut cut = bincode::serialize(&row).unwrap();
        cut.truncate(cut.len() - 1);
        let len = cut.len() as u64 - 8;
        cut[..8].copy_from_slice(&len.to_le_bytes());
        assert!(bincode::deserialize::<Row>(&cut).is_err());
        let garbled = bincode::serialize(&vec![200u8, 1, 2]).unwrap();
        assert!(bincode::deserialize::<Row>(&garbled).is_err());

        // Stored: the bytes of the values (a row keeps -0.0 as 0.0, hence the decoded ones).
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Record {
            #[serde(with = "stored")]
            rows: Vec<(Row, i64)>,
            #[serde(with = "stored")]
            timed: Vec<(Row, u64, i64)>,
            #[serde(with = "stored::keyed")]
            tables: Vec<(u64, Vec<(Row, i64)>)>,
        }
        let record = Record {
            rows: vec![(row.clone(), 1), (short.clone(), -1)],
            timed: vec![(short.clone(), 5, 2)],
            tables: vec![(3, vec![(row.clone(), 1)]), (4, vec![])],
        };
        let as_values = (
            vec![(row.unpack(), 1i64), (short.unpack(), -1)],
            vec![(short.unpack(), 5u64, 2i64)],
            vec![(3u64, vec![(row.unpack(), 1i64)]), (4, vec![])],
        );
        let bytes = bincode::serialize(&record).unwrap();
        assert_eq!(bytes, bincode::serialize(&as_values).unwrap());
        assert_eq!(bincode::deserialize::<Record>(&bytes).unwrap(), record);
    }

    #[test]
    fn packer_and_deserializer_build_the_rows_values_build() {
        let values = samples();
        let mut p = RowPacker::new();
        for v in &values {
            match v {
                Value::Null => p.push_null(),
                Value::Bool(b) => p.push_bool(*b),
                Value::Int(x) => p.push_int(*x),
                Value::Float(f) => p.push_float(f.0),
                Value::Text(t) => p.push_text(t),
                Value::Timestamp(x) => p.push_timestamp(*x),
                Value::Date(d) => p.push_date(*d),
                Value::Interval(x) => p.push_interval(*x),
                Value::Numeric(d) => p.push_numeric(d),
            }
        }
        let row = Row::new(values.clone());
        assert_eq!(p.finish(), row);
        assert!(p.finish().is_empty(), "finish leaves the packer empty");
        // Rows read from their values' serialization in a named format.
        // JSON has no infinities or NaN (serde_json writes them as null).
        let finite: Vec<Value> = values
            .into_iter()
            .filter(|v| !matches!(v, Value::Float(f) if !f.0.is_finite()))
            .collect();
        let from_json: Row =
            serde_json::from_str(&serde_json::to_string(&finite).unwrap()).unwrap();
        assert_eq!(from_json, Row::new(finite));
        assert!(serde_json::from_str::<Row>(r#"[{"Nope": 1}]"#).is_err());
    }

    #[test]
    fn first_zero_finds_the_first_zero() {
        // Every length to past the inline search, with zeros at each place, and bytes that
        // trip a naive word test (0x01 and 0x80 around a zero).
        for len in 0..90 {
            for at in (0..len).chain([usize::MAX]) {
                let mut bytes: Vec<u8> = (0..len).map(|i| [1u8, 0x80, 0xff, 7][i % 4]).collect();
                if at != usize::MAX {
                    bytes[at] = 0;
                    if at + 1 < len {
                        bytes[at + 1] = 0;
                    }
                }
                let want = bytes.iter().position(|b| *b == 0);
                assert_eq!(first_zero(&bytes), want, "len {len}, zero at {at}");
            }
        }
    }

    #[test]
    fn assemble_walks_only_what_it_is_given() {
        let row = Row::new(vec![Value::Int(1), Value::text("b"), Value::text("long")]);
        let fields = row.fields_to(2);
        assert_eq!(fields.len(), 2);
        let out = Row::assemble(&fields, 3, &[1, 3, 0, 2], &[Value::Int(9)]);
        assert_eq!(
            out.unpack(),
            vec![Value::text("b"), Value::Int(9), Value::Int(1), Value::Null]
        );
        let mut some = Vec::new();
        row.unpack_some(&[false, true], &mut some);
        assert_eq!(some, vec![Value::Null, Value::text("b")]);
    }

    #[test]
    fn serializes_as_its_values() {
        let row = Row::new(vec![Value::Int(3), Value::text("x")]);
        let json = serde_json::to_string(&row).unwrap();
        let values: Vec<Value> = vec![Value::Int(3), Value::text("x")];
        assert_eq!(json, serde_json::to_string(&values).unwrap());
        let back: Row = serde_json::from_str(&json).unwrap();
        assert_eq!(back, row);
        assert_eq!(back.cmp(&row), Ordering::Equal);
    }
}
