//! Reed–Solomon coding of values into shards, for erasure-coded
//! replication (Racos, RS-Paxos): a value becomes `data` original shards
//! and `parity` recovery shards, any `data` of which rebuild it. The coder
//! (`reed-solomon-simd`, Leopard-RS) does not detect corrupted shards, so
//! each shard carries a BLAKE3 digest of its index and bytes; a shard that
//! fails its digest is ignored, never decoded.

/// One shard of an encoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// 0..data are original shards, data..data+parity recovery shards.
    pub index: u16,
    /// Contents.
    pub bytes: Vec<u8>,
    /// BLAKE3 of the index and the contents.
    pub digest: [u8; 32],
}

impl Shard {
    fn new(index: u16, bytes: Vec<u8>) -> Self {
        let digest = digest(index, &bytes);
        Shard { index, bytes, digest }
    }

    /// Whether the contents match the digest.
    pub fn is_intact(&self) -> bool {
        digest(self.index, &self.bytes) == self.digest
    }
}

fn digest(index: u16, bytes: &[u8]) -> [u8; 32] {
    // The contents first, so the large update starts on a chunk boundary
    // (BLAKE3 then hashes whole subtrees at once).
    let mut h = blake3::Hasher::new();
    h.update(bytes);
    h.update(&index.to_le_bytes());
    *h.finalize().as_bytes()
}

/// A value's shards and what rebuilding it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The value's length, bytes.
    pub len: usize,
    /// Original shards.
    pub data: usize,
    /// Recovery shards.
    pub parity: usize,
    /// All `data + parity` shards, by index.
    pub shards: Vec<Shard>,
}

/// Why coding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErasureError {
    /// Unusable shard counts.
    #[error("cannot code {data} data + {parity} parity shards (need 1..=32768 of each)")]
    Counts {
        /// Original shards.
        data: usize,
        /// Recovery shards.
        parity: usize,
    },
    /// Fewer intact, distinct shards than `data`.
    #[error("{intact} intact shards, {needed} needed")]
    TooFewShards {
        /// Usable shards given.
        intact: usize,
        /// Shards needed.
        needed: usize,
    },
    /// The coder refused (shards of unequal sizes, say).
    #[error("coder: {0}")]
    Coder(String),
}

/// Bytes per shard for a value of `len` bytes in `data` shards (even, as
/// the coder needs, and at least 2).
pub fn shard_bytes(len: usize, data: usize) -> usize {
    let per = len.div_ceil(data.max(1)).max(2);
    per + per % 2
}

/// Encodes `value` into `data + parity` shards.
pub fn encode(value: &[u8], data: usize, parity: usize) -> Result<Encoded, ErasureError> {
    if !(1..=32_768).contains(&data) || !(1..=32_768).contains(&parity) {
        return Err(ErasureError::Counts { data, parity });
    }
    let size = shard_bytes(value.len(), data);
    let originals: Vec<Vec<u8>> = (0..data)
        .map(|i| {
            let mut shard = vec![0u8; size];
            let start = (i * size).min(value.len());
            let end = ((i + 1) * size).min(value.len());
            shard[..end - start].copy_from_slice(&value[start..end]);
            shard
        })
        .collect();
    let recovery =
        reed_solomon_simd::encode(data, parity, &originals).map_err(|e| ErasureError::Coder(e.to_string()))?;
    let shards =
        originals.into_iter().chain(recovery).enumerate().map(|(i, bytes)| Shard::new(i as u16, bytes)).collect();
    Ok(Encoded { len: value.len(), data, parity, shards })
}

/// Rebuilds a value of `len` bytes from any `data` intact shards (extra,
/// duplicate or corrupted shards are ignored).
pub fn decode<'a>(
    len: usize,
    data: usize,
    parity: usize,
    shards: impl IntoIterator<Item = &'a Shard>,
) -> Result<Vec<u8>, ErasureError> {
    if !(1..=32_768).contains(&data) || !(1..=32_768).contains(&parity) {
        return Err(ErasureError::Counts { data, parity });
    }
    let size = shard_bytes(len, data);
    let mut usable: Vec<Option<&Shard>> = vec![None; data + parity];
    for s in shards {
        let i = usize::from(s.index);
        if i < data + parity && s.bytes.len() == size && s.is_intact() {
            usable[i] = Some(s);
        }
    }
    let intact = usable.iter().flatten().count();
    if intact < data {
        return Err(ErasureError::TooFewShards { intact, needed: data });
    }
    let mut originals: Vec<Option<Vec<u8>>> = (0..data).map(|i| usable[i].map(|s| s.bytes.clone())).collect();
    if originals.iter().any(Option::is_none) {
        let given = (0..data).filter_map(|i| usable[i].map(|s| (i, s.bytes.as_slice())));
        let recovery = (0..parity).filter_map(|j| usable[data + j].map(|s| (j, s.bytes.as_slice())));
        let restored =
            reed_solomon_simd::decode(data, parity, given, recovery).map_err(|e| ErasureError::Coder(e.to_string()))?;
        for (i, bytes) in restored {
            if i < data {
                originals[i] = Some(bytes);
            }
        }
    }
    let mut value = Vec::with_capacity(data * size);
    for shard in originals {
        value.extend_from_slice(&shard.ok_or(ErasureError::TooFewShards { intact, needed: data })?);
    }
    value.truncate(len);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_three_of_five_shards_rebuild_the_value() {
        let value: Vec<u8> = (0..64 * 1024 + 7).map(|i| (i * 31 % 251) as u8).collect();
        let e = encode(&value, 3, 2).expect("valid");
        assert_eq!(e.shards.len(), 5);
        // A third of the value per shard: Racos sends V/3 to each replica.
        assert_eq!(e.shards[0].bytes.len(), shard_bytes(value.len(), 3));
        assert!(e.shards[0].bytes.len() * 3 < value.len() + 6);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let pick = [e.shards[a].clone(), e.shards[b].clone(), e.shards[c].clone()];
                    assert_eq!(decode(e.len, 3, 2, &pick).expect("three shards"), value, "shards {a},{b},{c}");
                }
            }
        }
        assert_eq!(decode(e.len, 3, 2, &e.shards[..2]), Err(ErasureError::TooFewShards { intact: 2, needed: 3 }));
    }

    #[test]
    fn corrupted_shards_are_ignored_not_decoded() {
        let value = b"a value of odd length".to_vec();
        let e = encode(&value, 3, 2).expect("valid");
        let mut shards = e.shards.clone();
        shards[1].bytes[0] ^= 0xff;
        assert!(!shards[1].is_intact());
        // Four intact shards remain: still decodable, and correct.
        assert_eq!(decode(e.len, 3, 2, &shards).expect("four intact"), value);
        // With two corrupted, only three intact remain; with three, too few.
        shards[3].bytes[1] ^= 1;
        assert_eq!(decode(e.len, 3, 2, &shards).expect("three intact"), value);
        shards[4].digest[0] ^= 1;
        assert!(matches!(decode(e.len, 3, 2, &shards), Err(ErasureError::TooFewShards { intact: 2, .. })));
        assert!(matches!(encode(&value, 0, 2), Err(ErasureError::Counts { .. })));
        assert_eq!(decode(0, 3, 2, &encode(&[], 3, 2).expect("empty").shards).expect("empty"), Vec::<u8>::new());
    }
}
