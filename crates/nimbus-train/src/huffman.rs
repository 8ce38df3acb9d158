//! Canonical Huffman codes over byte symbols, length-limited to 15 bits,
//! with table-driven encoding (a code and length per symbol) and decoding
//! (one lookup of the next `max_len` bits).
//!
//! Construction is deterministic: ties between equal weights break by the
//! smaller symbol (or the earlier-made internal node). When a code would
//! exceed 15 bits the counts are halved (keeping every used symbol at ≥ 1)
//! and the code rebuilt, which bounds the loss against the optimum to a few
//! hundredths of a bit per symbol on gradient exponents.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::bits::{BitReader, BitWriter, Truncated};

/// Longest code.
pub const MAX_LEN: u8 = 15;

/// A canonical code: the length of every symbol's code (0 = unused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codebook {
    lengths: [u8; 256],
    codes: [u16; 256],
    /// Lookup by the next `max_len` bits: (symbol, length).
    table: Vec<(u8, u8)>,
    max_len: u8,
}

/// Why a code-length table is not a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Lengths over-subscribe the code space or exceed 15.
    #[error("code lengths do not form a prefix code")]
    Invalid,
    /// No symbol has a code.
    #[error("empty code")]
    Empty,
}

impl Codebook {
    /// The optimal length-limited code for these symbol counts (at least
    /// one non-zero). A single used symbol gets a 1-bit code.
    pub fn from_counts(counts: &[u64; 256]) -> Result<Codebook, CodeError> {
        let mut weights = *counts;
        loop {
            let lengths = huffman_lengths(&weights);
            if lengths.iter().all(|&l| l <= MAX_LEN) {
                return Codebook::from_lengths(&lengths);
            }
            for w in weights.iter_mut().filter(|w| **w > 0) {
                *w = (*w / 2).max(1);
            }
        }
    }

    /// The canonical code with these lengths.
    pub fn from_lengths(lengths: &[u8; 256]) -> Result<Codebook, CodeError> {
        let max_len = lengths.iter().copied().max().unwrap_or(0);
        if max_len == 0 {
            return Err(CodeError::Empty);
        }
        if max_len > MAX_LEN {
            return Err(CodeError::Invalid);
        }
        // Kraft sum in units of 2^-max_len.
        let kraft: u64 = lengths.iter().filter(|&&l| l > 0).map(|&l| 1u64 << (max_len - l)).sum();
        if kraft > 1u64 << max_len {
            return Err(CodeError::Invalid);
        }
        let mut codes = [0u16; 256];
        let mut table = vec![(0u8, 0u8); 1 << max_len];
        let mut next = 0u32;
        for len in 1..=max_len {
            for sym in 0..256usize {
                if lengths[sym] == len {
                    codes[sym] = next as u16;
                    let shift = max_len - len;
                    let start = (next << shift) as usize;
                    for entry in &mut table[start..start + (1usize << shift)] {
                        *entry = (sym as u8, len);
                    }
                    next += 1;
                }
            }
            next <<= 1;
        }
        Ok(Codebook { lengths: *lengths, codes, table, max_len })
    }

    /// Code lengths by symbol.
    pub fn lengths(&self) -> &[u8; 256] {
        &self.lengths
    }

    /// Whether every symbol with a count has a code.
    pub fn covers(&self, counts: &[u64; 256]) -> bool {
        counts.iter().zip(&self.lengths).all(|(&c, &l)| c == 0 || l > 0)
    }

    /// Bits to code these counts (`u64::MAX` if a symbol has no code).
    pub fn cost_bits(&self, counts: &[u64; 256]) -> u64 {
        if !self.covers(counts) {
            return u64::MAX;
        }
        counts.iter().zip(&self.lengths).map(|(&c, &l)| c * u64::from(l)).sum()
    }

    /// Writes `symbol`'s code; the symbol must have one.
    #[inline]
    pub fn encode(&self, symbol: u8, out: &mut BitWriter) {
        let s = usize::from(symbol);
        out.write(u32::from(self.codes[s]), u32::from(self.lengths[s]));
    }

    /// Reads one symbol.
    #[inline]
    pub fn decode(&self, input: &mut BitReader<'_>) -> Result<u8, Truncated> {
        let (sym, len) = self.table[input.peek(u32::from(self.max_len)) as usize];
        if len == 0 {
            // Bits that no code starts with (an incomplete code).
            return Err(Truncated);
        }
        input.skip(u32::from(len))?;
        Ok(sym)
    }

    /// The lengths as 128 bytes, two 4-bit lengths per byte.
    pub fn to_nibbles(&self) -> [u8; 128] {
        std::array::from_fn(|i| (self.lengths[2 * i] << 4) | self.lengths[2 * i + 1])
    }

    /// Reads lengths written by [`Codebook::to_nibbles`].
    pub fn from_nibbles(bytes: &[u8; 128]) -> Result<Codebook, CodeError> {
        let lengths: [u8; 256] =
            std::array::from_fn(|s| if s % 2 == 0 { bytes[s / 2] >> 4 } else { bytes[s / 2] & 15 });
        Codebook::from_lengths(&lengths)
    }
}

/// Unlimited Huffman code lengths for the non-zero counts.
fn huffman_lengths(counts: &[u64; 256]) -> [u8; 256] {
    let mut lengths = [0u8; 256];
    let used: Vec<usize> = (0..256).filter(|&s| counts[s] > 0).collect();
    match used.len() {
        0 => return lengths,
        1 => {
            lengths[used[0]] = 1;
            return lengths;
        }
        _ => {}
    }
    // Nodes 0..256 are symbols; internal nodes follow. Ties break by id.
    let mut parent = vec![usize::MAX; 512];
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = used.iter().map(|&s| Reverse((counts[s], s))).collect();
    let mut next = 256;
    while heap.len() > 1 {
        let (Some(Reverse((wa, a))), Some(Reverse((wb, b)))) = (heap.pop(), heap.pop()) else { break };
        parent[a] = next;
        parent[b] = next;
        heap.push(Reverse((wa + wb, next)));
        next += 1;
    }
    for &s in &used {
        let (mut depth, mut node) = (0u32, s);
        while parent[node] != usize::MAX {
            node = parent[node];
            depth += 1;
        }
        lengths[s] = depth.min(255) as u8;
    }
    lengths
}

/// Shannon entropy of the counts, bits per symbol.
pub fn entropy_bits(counts: &[u64; 256]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / t) * (c as f64 / t).log2()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Counts 1, 1, 2, 4 give lengths 3, 3, 2, 1 and canonical codes
    /// 110, 111, 10, 0.
    #[test]
    fn hand_computed_code() {
        let mut counts = [0u64; 256];
        counts[10] = 1;
        counts[11] = 1;
        counts[12] = 2;
        counts[13] = 4;
        let book = Codebook::from_counts(&counts).expect("code");
        assert_eq!((book.lengths[10], book.lengths[11], book.lengths[12], book.lengths[13]), (3, 3, 2, 1));
        assert_eq!((book.codes[13], book.codes[12], book.codes[10], book.codes[11]), (0b0, 0b10, 0b110, 0b111));
        assert_eq!(book.cost_bits(&counts), 3 + 3 + 4 + 4);
    }

    #[test]
    fn fibonacci_counts_are_limited_to_15_bits() {
        let mut counts = [0u64; 256];
        let (mut a, mut b) = (1u64, 1u64);
        for c in counts.iter_mut().take(40) {
            *c = a;
            (a, b) = (b, a + b);
        }
        let book = Codebook::from_counts(&counts).expect("code");
        assert!(book.lengths.iter().all(|&l| l <= MAX_LEN));
        assert!(book.covers(&counts));
    }

    #[test]
    fn bad_length_tables_are_refused() {
        let mut lengths = [0u8; 256];
        assert_eq!(Codebook::from_lengths(&lengths), Err(CodeError::Empty));
        lengths[..3].copy_from_slice(&[1, 1, 1]);
        assert_eq!(Codebook::from_lengths(&lengths), Err(CodeError::Invalid));
        lengths[..3].copy_from_slice(&[16, 0, 0]);
        assert_eq!(Codebook::from_lengths(&lengths), Err(CodeError::Invalid));
    }

    proptest! {
        #[test]
        fn symbols_round_trip_and_cost_is_near_entropy(symbols in proptest::collection::vec(0u8..40, 1..2000)) {
            let mut counts = [0u64; 256];
            for &s in &symbols {
                counts[usize::from(s)] += 1;
            }
            let book = Codebook::from_counts(&counts).expect("code");
            let back = Codebook::from_nibbles(&book.to_nibbles()).expect("nibbles");
            prop_assert_eq!(&back, &book);
            let mut w = BitWriter::new();
            for &s in &symbols {
                book.encode(s, &mut w);
            }
            prop_assert_eq!(w.bits(), book.cost_bits(&counts));
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &s in &symbols {
                prop_assert_eq!(book.decode(&mut r), Ok(s));
            }
            // Huffman is within one bit per symbol of the entropy.
            let h = entropy_bits(&counts) * symbols.len() as f64;
            prop_assert!((book.cost_bits(&counts) as f64) < h + symbols.len() as f64 + 1.0);
        }
    }
}
