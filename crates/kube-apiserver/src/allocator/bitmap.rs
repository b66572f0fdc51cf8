//! The allocation bitmap and its stored form: upstream's `RangeAllocation.data` is a
//! `big.Int` in big-endian bytes where bit `i` marks offset `i` as allocated.

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    size: u64,
    words: Vec<u64>,
    dirty: bool,
}

impl Bitmap {
    pub fn new(size: u64) -> Bitmap {
        let words = usize::try_from(size.div_ceil(64)).unwrap_or(0);
        Bitmap {
            size,
            words: vec![0; words],
            dirty: false,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn slot(i: u64) -> (usize, u64) {
        (
            usize::try_from(i / 64).unwrap_or(usize::MAX),
            1u64 << (i % 64),
        )
    }

    pub fn get(&self, i: u64) -> bool {
        let (w, b) = Self::slot(i);
        i < self.size && self.words.get(w).is_some_and(|x| x & b != 0)
    }

    /// Marks `i` allocated; false when it already was (or is out of range).
    pub fn set(&mut self, i: u64) -> bool {
        if i >= self.size || self.get(i) {
            return false;
        }
        let (w, b) = Self::slot(i);
        if let Some(x) = self.words.get_mut(w) {
            *x |= b;
            self.dirty = true;
        }
        true
    }

    /// Frees `i`; false when it was not allocated.
    pub fn clear(&mut self, i: u64) -> bool {
        if !self.get(i) {
            return false;
        }
        let (w, b) = Self::slot(i);
        if let Some(x) = self.words.get_mut(w) {
            *x &= !b;
            self.dirty = true;
        }
        true
    }

    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Whether `set`/`clear` changed anything since creation, decoding or `mark_clean`.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_clean(&mut self) {
        self.dirty = false;
    }

    /// A free offset in `[lo, hi)` not in `skip`, scanning from a random start.
    fn random_free_in(&self, lo: u64, hi: u64, skip: &[u64], rng: &mut impl Rng) -> Option<u64> {
        if hi <= lo {
            return None;
        }
        let span = hi - lo;
        let start = rng.random_range(0..span);
        (0..span)
            .map(|i| lo + (start + i) % span)
            .find(|&o| !self.get(o) && !skip.contains(&o))
    }

    /// Upstream's dynamic strategy: a random free offset from `[band, size)` first, the
    /// low band `[0, band)` (kept for explicit requests) only when the rest is full.
    pub fn random_free(&self, band: u64, skip: &[u64]) -> Option<u64> {
        let mut rng = rand::rng();
        let band = band.min(self.size);
        self.random_free_in(band, self.size, skip, &mut rng)
            .or_else(|| self.random_free_in(0, band, skip, &mut rng))
    }

    /// `big.Int.Bytes()`: big-endian, no leading zero bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let Some(high) = (0..self.words.len()).rev().find(|&w| self.words[w] != 0) else {
            return Vec::new();
        };
        let top_bit = high as u64 * 64 + 63 - u64::from(self.words[high].leading_zeros());
        let len = usize::try_from(top_bit / 8 + 1).unwrap_or(0);
        let mut out = vec![0u8; len];
        for (w, word) in self.words.iter().enumerate().take(high + 1) {
            for byte in 0..8 {
                let idx = w * 8 + byte;
                if idx < len {
                    out[len - 1 - idx] = (word >> (byte * 8)) as u8;
                }
            }
        }
        out
    }

    /// Decodes stored bytes; bits beyond `size` (a range that shrank) are dropped.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Bitmap {
        let mut b = Bitmap::new(size);
        for (j, byte) in bytes.iter().rev().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    b.set(j as u64 * 8 + bit);
                }
            }
        }
        b.dirty = false;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_count() {
        let mut b = Bitmap::new(100);
        assert!(b.set(0));
        assert!(!b.set(0), "already set");
        assert!(b.set(99));
        assert!(!b.set(100), "out of range");
        assert_eq!(b.count(), 2);
        assert!(b.clear(0));
        assert!(!b.clear(0));
        assert_eq!(b.count(), 1);
        assert!(b.is_dirty());
    }

    #[test]
    fn bytes_are_big_int_big_endian() {
        let mut b = Bitmap::new(1000);
        assert_eq!(b.to_bytes(), Vec::<u8>::new());
        b.set(0);
        assert_eq!(b.to_bytes(), vec![0x01]);
        b.set(9);
        assert_eq!(b.to_bytes(), vec![0x02, 0x01]);
        b.set(70);
        let bytes = b.to_bytes();
        assert_eq!(bytes.len(), 9);
        let back = Bitmap::from_bytes(1000, &bytes);
        assert!(back.get(0) && back.get(9) && back.get(70));
        assert_eq!(back.count(), 3);
        assert!(!back.is_dirty());
        // Shrunk range: high bits dropped.
        assert_eq!(Bitmap::from_bytes(10, &bytes).count(), 2);
    }

    #[test]
    fn random_prefers_the_upper_band_and_skips() {
        let mut b = Bitmap::new(64);
        for _ in 0..48 {
            let o = b.random_free(16, &[0]).expect("room");
            assert!(o >= 16, "upper band first, got {o}");
            assert!(b.set(o));
        }
        let o = b.random_free(16, &[0]).expect("low band");
        assert!((1..16).contains(&o));
        for i in 1..16 {
            b.set(i);
        }
        assert_eq!(
            b.random_free(16, &[0]),
            None,
            "offset 0 is never picked at random"
        );
    }
}
