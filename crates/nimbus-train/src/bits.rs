//! Bit-level writing and reading, most significant bit first.

/// Appends bits to a byte vector.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> BitWriter {
        BitWriter::default()
    }

    /// Writes the low `n` bits of `value` (n ≤ 32), high bit first.
    #[inline]
    pub fn write(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || value >> n == 0));
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | u64::from(value);
        self.filled += n;
        while self.filled >= 8 {
            self.filled -= 8;
            self.bytes.push((self.acc >> self.filled) as u8);
        }
        self.acc &= (1u64 << self.filled) - 1;
    }

    /// Bits written so far.
    pub fn bits(&self) -> u64 {
        self.bytes.len() as u64 * 8 + u64::from(self.filled)
    }

    /// The bytes, the last one padded with zero bits.
    pub fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.bytes.push((self.acc << (8 - self.filled)) as u8);
        }
        self.bytes
    }
}

/// Reads bits from a byte slice; reading past the end is an error.
#[derive(Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next bit position.
    pos: u64,
}

/// The input ended inside a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `bytes`.
    pub fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader { bytes, pos: 0 }
    }

    /// Bits left.
    pub fn remaining(&self) -> u64 {
        self.bytes.len() as u64 * 8 - self.pos
    }

    /// The next `n` bits (n ≤ 32) without consuming them, zero-padded past
    /// the end.
    #[inline]
    pub fn peek(&self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let byte = (self.pos / 8) as usize;
        let window = match self.bytes.get(byte..byte + 8) {
            Some(b) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => {
                let mut w = 0u64;
                for i in 0..8 {
                    w = (w << 8) | u64::from(self.bytes.get(byte + i).copied().unwrap_or(0));
                }
                w
            }
        };
        let shift = 64 - (self.pos % 8) as u32 - n;
        ((window >> shift) & ((1u64 << n) - 1)) as u32
    }

    /// Consumes `n` bits.
    #[inline]
    pub fn skip(&mut self, n: u32) -> Result<(), Truncated> {
        if u64::from(n) > self.remaining() {
            return Err(Truncated);
        }
        self.pos += u64::from(n);
        Ok(())
    }

    /// Reads `n` bits (n ≤ 32).
    #[inline]
    pub fn read(&mut self, n: u32) -> Result<u32, Truncated> {
        let v = self.peek(n);
        self.skip(n)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn written_values_read_back(values in proptest::collection::vec((any::<u32>(), 0u32..=32), 0..200)) {
            let mut w = BitWriter::new();
            let masked: Vec<(u32, u32)> = values
                .iter()
                .map(|&(v, n)| (if n == 32 { v } else { v & ((1u32 << n) - 1) }, n))
                .collect();
            for &(v, n) in &masked {
                w.write(v, n);
            }
            let total = w.bits();
            let bytes = w.finish();
            prop_assert_eq!(bytes.len() as u64, total.div_ceil(8));
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &masked {
                prop_assert_eq!(r.read(n), Ok(v));
            }
            prop_assert!(r.remaining() < 8);
            prop_assert_eq!(r.read(8), Err(Truncated));
        }
    }
}
