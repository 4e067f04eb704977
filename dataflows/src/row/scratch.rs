//! The bytes of a row while it is built.
//!
//! Every row the engine makes (a write's, a source record's, a join's output, a group key, an
//! aggregate's result) is encoded value by value into a buffer and then copied into the
//! `Row`. The values are short (an integer's encoding is one to nine bytes), and a copy whose
//! length is known only at run time is a call to `memcpy`; `SmallVec::extend_from_slice`
//! made two calls per value (`memmove` for a tail it never has, then `memcpy`). [`Scratch`]
//! keeps 16 bytes of room past its 64, so a short value is written as a fixed 16-byte copy
//! and the length then advanced by its own length: no call, no loop. Rows longer than 64
//! bytes continue on the heap.

/// Bytes kept on the stack.
const STACK: usize = 64;
/// Room past [`STACK`] for a fixed-size write that overshoots the value it carries.
const SLACK: usize = 16;

/// A row's encoded bytes being built: on the stack while they fit in 64 bytes, on the heap
/// after.
pub(super) struct Scratch {
    data: [u8; STACK + SLACK],
    len: usize,
    /// Every byte once the row outgrew the stack (empty until then).
    heap: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            data: [0; STACK + SLACK],
            len: 0,
            heap: Vec::new(),
        }
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch::default()
    }

    /// The bytes so far.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self.heap.is_empty() {
            true => &self.data[..self.len],
            false => &self.heap,
        }
    }

    /// The bytes so far and the zeros or stale bytes after them, when the row is on the
    /// stack and at most 16 bytes long: what a fixed-size copy into an inline row reads.
    #[inline]
    pub fn short(&self) -> Option<(&[u8; 16], usize)> {
        match self.heap.is_empty() && self.len <= 16 {
            true => Some((self.data[..16].try_into().expect("16 bytes"), self.len)),
            false => None,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }

    #[inline]
    pub fn push(&mut self, byte: u8) {
        self.put_array([byte]);
    }

    /// Appends the first `n` bytes of `bytes` (`n <= N <= 16`).
    #[inline]
    pub fn put_prefix<const N: usize>(&mut self, bytes: [u8; N], n: usize) {
        debug_assert!(n <= N && N <= SLACK);
        if self.heap.is_empty() && self.len + n <= STACK {
            self.data[self.len..self.len + N].copy_from_slice(&bytes);
            self.len += n;
        } else {
            self.put_slow(&bytes[..n]);
        }
    }

    /// Appends `tag` and the first `n` bytes of `payload` (`n <= 8`), as two stores: an
    /// integer's encoding. (Built as one array first, it would be stored in two parts and
    /// loaded as one, which the processor cannot forward from its store buffer.)
    #[inline]
    pub fn put_tagged(&mut self, tag: u8, payload: [u8; 8], n: usize) {
        debug_assert!(n <= 8);
        if self.heap.is_empty() && self.len + 1 + n <= STACK {
            self.data[self.len] = tag;
            self.data[self.len + 1..self.len + 9].copy_from_slice(&payload);
            self.len += 1 + n;
        } else {
            self.put_slow(&[tag]);
            self.put_slow(&payload[..n]);
        }
    }

    /// Appends a value of fixed length (`N <= 16`).
    #[inline]
    pub fn put_array<const N: usize>(&mut self, bytes: [u8; N]) {
        self.put_prefix(bytes, N);
    }

    /// Appends `bytes`.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if n <= SLACK && self.heap.is_empty() && self.len + n <= STACK {
            self.data[self.len..self.len + SLACK].copy_from_slice(&short_chunk(bytes));
            self.len += n;
        } else {
            self.put_slow(bytes);
        }
    }

    /// Appends past the stack: the bytes so far move to the heap first.
    #[cold]
    fn put_slow(&mut self, bytes: &[u8]) {
        if self.heap.is_empty() {
            if self.len + bytes.len() <= STACK {
                self.data[self.len..self.len + bytes.len()].copy_from_slice(bytes);
                self.len += bytes.len();
                return;
            }
            self.heap.reserve(2 * STACK + bytes.len());
            self.heap.extend_from_slice(&self.data[..self.len]);
        }
        self.heap.extend_from_slice(bytes);
    }
}

/// `bytes` (at most 16) at the start of 16 zeroed bytes, by two fixed-size copies that may
/// overlap instead of one whose length is known only at run time (a call to `memcpy`).
#[inline]
pub(super) fn short_chunk(bytes: &[u8]) -> [u8; 16] {
    let n = bytes.len();
    let mut c = [0u8; 16];
    if n >= 8 {
        c[..8].copy_from_slice(&bytes[..8]);
        c[n - 8..n].copy_from_slice(&bytes[n - 8..]);
    } else if n >= 4 {
        c[..4].copy_from_slice(&bytes[..4]);
        c[n - 4..n].copy_from_slice(&bytes[n - 4..]);
    } else if n > 0 {
        c[0] = bytes[0];
        c[n / 2] = bytes[n / 2];
        c[n - 1] = bytes[n - 1];
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_copies_match_plain_ones() {
        let bytes: Vec<u8> = (1..=16).collect();
        for n in 0..=16 {
            let mut want = [0u8; 16];
            want[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(short_chunk(&bytes[..n]), want, "length {n}");
        }
    }

    #[test]
    fn appends_cross_from_stack_to_heap() {
        let bytes: Vec<u8> = (1..=40).collect();
        let mut s = Scratch::new();
        let mut want = Vec::new();
        for round in 0..3 {
            for n in (0..=17).chain([25, 40]).cycle().skip(round).take(30) {
                s.put(&bytes[..n]);
                want.extend_from_slice(&bytes[..n]);
                s.push(7);
                want.push(7);
                s.put_prefix([9, 8, 7, 6, 5, 4, 3, 2], n % 9);
                want.extend_from_slice(&[9, 8, 7, 6, 5, 4, 3, 2][..n % 9]);
                s.put_tagged(1, [2, 3, 4, 5, 6, 7, 8, 9], n % 9);
                want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9][..1 + n % 9]);
                assert_eq!(s.as_slice(), want.as_slice());
                if let Some((head, len)) = s.short() {
                    assert_eq!(&head[..len], want.as_slice());
                }
            }
            s.clear();
            want.clear();
            assert!(s.as_slice().is_empty());
        }
    }
}
