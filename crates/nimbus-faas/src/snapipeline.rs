//! Snapipeline (SoCC'24): "Accelerating Snapshot Startup for FaaS
//! Containers", for real on page images.
//!
//! Mechanism:
//! 1. Snapshot compression with deduplication that extends to
//!    file-mapped pages: a zero page is stored as a marker; a page equal
//!    to its backing file at its offset is stored as that (file, offset)
//!    reference and restored from the page cache; every other page is
//!    content-hashed (BLAKE3) and stored once across all snapshots, new
//!    pages appended to LZ4-compressed chunks.
//! 2. Pipelined restore: pages are stored and restored hot-first, in the
//!    order the function first touched them, and restore runs as three
//!    concurrent stages (decompress chunks → install pages → execute the
//!    function), so execution starts as soon as its first pages are in
//!    place and decompression leaves the critical path.
//!
//! Baseline: a CRIU-style snapshot compressed whole in address order
//! ([`crate::snapshot::CompressedImage`]) restored serially (decompress
//! everything, then run). [`Store::restore_serial`] restores the
//! deduplicated format without the pipeline, to separate the two effects.
//!
//! Real: dedup, compression, restore and the function's first run (it
//! hashes its hot pages) run on real bytes, in threads; restores are
//! checked byte for byte. Deviations: pages are installed by copying into
//! a buffer, not through userfaultfd into a mapped address space (the
//! workspace forbids `unsafe`), so an execution waits on a channel of
//! installed pages rather than on page faults; images are synthetic by
//! default ([`crate::snapshot::synthetic_images`]) or captured from a live
//! process; zstd is not offered (LZ4 only, to stay pure Rust).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use crate::snapshot::{Execution, FileRef, FileSet, MemoryImage, PAGE, Restored, SnapshotError};

/// Where a page's contents come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRef {
    /// All zero.
    Zero,
    /// Equal to this file page.
    File(FileRef),
    /// In this slot of this stored chunk.
    Stored {
        /// Chunk index.
        chunk: u32,
        /// Page within the chunk.
        slot: u16,
    },
}

/// One function's snapshot: a page table into a [`Store`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    pages: Vec<PageRef>,
    /// Restore order: the hot pages in first-access order, then the rest.
    order: Vec<u32>,
}

impl Snapshot {
    /// Bytes of its page table (8 per page).
    pub fn table_bytes(&self) -> u64 {
        8 * self.pages.len() as u64
    }

    /// How many pages are zero, file references and stored.
    pub fn census(&self) -> (usize, usize, usize) {
        let zero = self.pages.iter().filter(|p| **p == PageRef::Zero).count();
        let file = self.pages.iter().filter(|p| matches!(p, PageRef::File(_))).count();
        (zero, file, self.pages.len() - zero - file)
    }
}

/// What the store deduplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dedup {
    /// Store pages equal to their backing file as references.
    pub file_pages: bool,
    /// Store identical pages once (across snapshots too).
    pub content: bool,
}

/// Compressed, deduplicated page storage shared by many snapshots.
#[derive(Debug, Clone)]
pub struct Store {
    chunk_pages: usize,
    dedup: Dedup,
    chunks: Vec<Vec<u8>>,
    open: Vec<u8>,
    by_hash: BTreeMap<[u8; 32], (u32, u16)>,
}

impl Store {
    /// An empty store with chunks of `chunk_pages` pages.
    pub fn new(chunk_pages: usize, dedup: Dedup) -> Self {
        let chunk_pages = chunk_pages.clamp(1, usize::from(u16::MAX));
        Store { chunk_pages, dedup, chunks: Vec::new(), open: Vec::new(), by_hash: BTreeMap::new() }
    }

    /// Compressed bytes held.
    pub fn stored_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum::<u64>() + self.open.len() as u64
    }

    fn seal(&mut self) {
        if !self.open.is_empty() {
            self.chunks.push(lz4_flex::block::compress(&self.open));
            self.open.clear();
        }
    }

    /// Snapshots `image`, adding its new pages, hot pages first.
    pub fn add(&mut self, image: &MemoryImage, files: &FileSet) -> Snapshot {
        let pages = image.pages();
        let mut hot_mark = vec![false; pages];
        let mut order: Vec<u32> = Vec::with_capacity(pages);
        for &p in &image.hot {
            if (p as usize) < pages && !hot_mark[p as usize] {
                hot_mark[p as usize] = true;
                order.push(p);
            }
        }
        order.extend((0..pages as u32).filter(|&p| !hot_mark[p as usize]));
        let mut table = vec![PageRef::Zero; pages];
        for &p in &order {
            let page = image.page(p as usize);
            if page.iter().all(|&b| b == 0) {
                continue;
            }
            if self.dedup.file_pages
                && let Some(r) = image.backing[p as usize]
                && files.full_page(r).map_or_else(|| files.page(r).is_some_and(|f| f[..] == *page), |f| f == page)
            {
                table[p as usize] = PageRef::File(r);
                continue;
            }
            let hash = *blake3::hash(page).as_bytes();
            if self.dedup.content
                && let Some(&(chunk, slot)) = self.by_hash.get(&hash)
            {
                table[p as usize] = PageRef::Stored { chunk, slot };
                continue;
            }
            let (chunk, slot) = (self.chunks.len() as u32, (self.open.len() / PAGE) as u16);
            self.open.extend_from_slice(page);
            if self.dedup.content {
                self.by_hash.insert(hash, (chunk, slot));
            }
            table[p as usize] = PageRef::Stored { chunk, slot };
            if self.open.len() == self.chunk_pages * PAGE {
                self.seal();
            }
        }
        self.seal();
        Snapshot { pages: table, order }
    }

    fn decompress(&self, chunk: u32) -> Result<Vec<u8>, SnapshotError> {
        let data =
            self.chunks.get(chunk as usize).ok_or_else(|| SnapshotError::Corrupt(format!("no chunk {chunk}")))?;
        lz4_flex::block::decompress(data, self.chunk_pages * PAGE).map_err(|e| SnapshotError::Corrupt(e.to_string()))
    }

    fn install(
        &self,
        r: PageRef,
        out: &mut [u8],
        files: &FileSet,
        chunk: Option<&Vec<u8>>,
    ) -> Result<(), SnapshotError> {
        match r {
            PageRef::Zero => out.fill(0),
            PageRef::File(f) => match files.full_page(f) {
                Some(page) => out.copy_from_slice(page),
                None => out.copy_from_slice(&files.page(f).ok_or(SnapshotError::UnknownFile(f.file))?),
            },
            PageRef::Stored { slot, .. } => {
                let data = chunk.ok_or_else(|| SnapshotError::Corrupt("chunk not decompressed".into()))?;
                let at = usize::from(slot) * PAGE;
                let page = data.get(at..at + PAGE).ok_or_else(|| SnapshotError::Corrupt("short chunk".into()))?;
                out.copy_from_slice(page);
            }
        }
        Ok(())
    }

    fn check_hot(snapshot: &Snapshot, hot: &[u32]) -> Result<(), SnapshotError> {
        match hot.iter().find(|&&p| p as usize >= snapshot.pages.len()) {
            Some(&p) => Err(SnapshotError::PageOutOfRange(p as usize)),
            None => Ok(()),
        }
    }

    /// Restores `snapshot` serially in its hot-first order, then runs the
    /// function over `hot`.
    pub fn restore_serial(
        &self,
        snapshot: &Snapshot,
        files: &FileSet,
        hot: &[u32],
        clock: &(dyn Fn() -> Duration + Sync),
    ) -> Result<Restored, SnapshotError> {
        Self::check_hot(snapshot, hot)?;
        let mut bytes = vec![0u8; snapshot.pages.len() * PAGE];
        let mut chunks: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for &p in &snapshot.order {
            let r = snapshot.pages[p as usize];
            if let PageRef::Stored { chunk, .. } = r
                && !chunks.contains_key(&chunk)
            {
                chunks.insert(chunk, self.decompress(chunk)?);
            }
            let chunk = match r {
                PageRef::Stored { chunk, .. } => chunks.get(&chunk),
                _ => None,
            };
            let at = p as usize * PAGE;
            self.install(r, &mut bytes[at..at + PAGE], files, chunk)?;
        }
        let restore_done = clock();
        let digest = Execution::over(&bytes, hot)?;
        Ok(Restored { digest, first_response: clock(), restore_done, bytes })
    }

    /// Restores `snapshot` as a three-stage pipeline: a thread decompresses
    /// chunks in the order the hot-first restore needs them, a thread
    /// installs pages and hands them on in batches of `batch` pages, and
    /// the calling thread runs the function over `hot` as its pages
    /// arrive.
    pub fn restore_pipelined(
        &self,
        snapshot: &Snapshot,
        files: &FileSet,
        hot: &[u32],
        batch: usize,
        clock: &(dyn Fn() -> Duration + Sync),
    ) -> Result<Restored, SnapshotError> {
        Self::check_hot(snapshot, hot)?;
        let pages = snapshot.pages.len();
        let batch = batch.max(1);
        let mut chunk_order = Vec::new();
        let mut listed = BTreeMap::new();
        for &p in &snapshot.order {
            if let PageRef::Stored { chunk, .. } = snapshot.pages[p as usize]
                && listed.insert(chunk, ()).is_none()
            {
                chunk_order.push(chunk);
            }
        }
        let mut bytes = vec![0u8; pages * PAGE];
        let (digest, first_response, restore_done) = std::thread::scope(|scope| {
            let (chunk_tx, chunk_rx) = mpsc::sync_channel::<(u32, Result<Vec<u8>, SnapshotError>)>(4);
            scope.spawn(move || {
                for chunk in chunk_order {
                    if chunk_tx.send((chunk, self.decompress(chunk))).is_err() {
                        break;
                    }
                }
            });
            let (page_tx, page_rx) = mpsc::channel::<Vec<(u32, &[u8])>>();
            let target = &mut bytes;
            let installer = scope.spawn(move || -> Result<Duration, SnapshotError> {
                let mut slots: Vec<Option<&mut [u8]>> = target.chunks_mut(PAGE).map(Some).collect();
                let mut chunks: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
                let mut out: Vec<(u32, &[u8])> = Vec::with_capacity(batch);
                for &p in &snapshot.order {
                    let r = snapshot.pages[p as usize];
                    if let PageRef::Stored { chunk, .. } = r {
                        while !chunks.contains_key(&chunk) {
                            // Hand on what is installed before waiting.
                            if !out.is_empty() {
                                let _ = page_tx.send(std::mem::take(&mut out));
                            }
                            let (c, data) = chunk_rx
                                .recv()
                                .map_err(|_| SnapshotError::Corrupt(format!("chunk {chunk} never arrived")))?;
                            chunks.insert(c, data?);
                        }
                    }
                    let chunk = match r {
                        PageRef::Stored { chunk, .. } => chunks.get(&chunk),
                        _ => None,
                    };
                    let slot = slots[p as usize].take().ok_or(SnapshotError::PageOutOfRange(p as usize))?;
                    self.install(r, slot, files, chunk)?;
                    let installed: &[u8] = slot;
                    out.push((p, installed));
                    if out.len() >= batch {
                        // The function may have finished and hung up; keep restoring.
                        let _ = page_tx.send(std::mem::take(&mut out));
                    }
                }
                if !out.is_empty() {
                    let _ = page_tx.send(out);
                }
                Ok(clock())
            });
            let mut arrived: Vec<Option<&[u8]>> = vec![None; pages];
            let mut run = Execution::new();
            let mut missing = None;
            'run: for &p in hot {
                while arrived[p as usize].is_none() {
                    match page_rx.recv() {
                        Ok(pages) => pages.into_iter().for_each(|(i, page)| arrived[i as usize] = Some(page)),
                        Err(_) => {
                            missing = Some(p);
                            break 'run;
                        }
                    }
                }
                if let Some(page) = arrived[p as usize] {
                    run.touch(page);
                }
            }
            let first_response = clock();
            drop(page_rx);
            let done = installer.join().unwrap_or_else(|_| Err(SnapshotError::Corrupt("installer panicked".into())));
            match (done, missing) {
                (Err(e), _) => Err(e),
                (Ok(_), Some(p)) => Err(SnapshotError::PageOutOfRange(p as usize)),
                (Ok(done), None) => Ok((run.finish(), first_response, done)),
            }
        })?;
        Ok(Restored { bytes, digest, first_response, restore_done })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Composition, synthetic_images};

    const ALL: Dedup = Dedup { file_pages: true, content: true };

    #[test]
    fn dedup_by_hand() {
        // Page 0 zero; 1 equals file page 1; 2 and 3 identical; 4 mapped
        // but changed.
        let mut file = vec![0u8; 2 * PAGE];
        file[PAGE..].fill(7);
        let files = FileSet { files: vec![("lib.so".into(), file)] };
        let mut bytes = vec![0u8; 5 * PAGE];
        bytes[PAGE..2 * PAGE].fill(7);
        bytes[2 * PAGE..4 * PAGE].fill(3);
        bytes[4 * PAGE..].fill(9);
        let backing = vec![
            None,
            Some(FileRef { file: 0, offset: PAGE as u64 }),
            None,
            None,
            Some(FileRef { file: 0, offset: 0 }),
        ];
        let image = MemoryImage { name: "f".into(), bytes, backing, hot: vec![3, 1] };
        let mut store = Store::new(4, ALL);
        let snap = store.add(&image, &files);
        assert_eq!(snap.census(), (1, 1, 3));
        assert_eq!(snap.order, [3, 1, 0, 2, 4]);
        // Hot page 3 is stored first; page 2 is its duplicate.
        assert_eq!(snap.pages[3], PageRef::Stored { chunk: 0, slot: 0 });
        assert_eq!(snap.pages[2], PageRef::Stored { chunk: 0, slot: 0 });
        assert_eq!(snap.pages[4], PageRef::Stored { chunk: 0, slot: 1 });
        // A second identical image adds no page.
        let before = store.stored_bytes();
        let again = store.add(&image, &files);
        assert_eq!(store.stored_bytes(), before);
        assert_eq!(again.pages, snap.pages);
        // Without file-page dedup, page 1 is stored by content.
        let mut plain = Store::new(4, Dedup { file_pages: false, content: true });
        assert_eq!(plain.add(&image, &files).census(), (1, 0, 4));
        for restored in [
            store.restore_serial(&snap, &files, &image.hot, &|| Duration::ZERO).expect("valid"),
            store.restore_pipelined(&snap, &files, &image.hot, 1, &|| Duration::ZERO).expect("valid"),
        ] {
            assert_eq!(restored.bytes, image.bytes);
            assert_eq!(restored.digest, Execution::expected(&image));
        }
    }

    #[test]
    fn restores_are_byte_identical_and_sharing_shrinks_the_store() {
        let names = ["a", "b", "c"];
        let (files, images) = synthetic_images(&names, 300, Composition::PYTHON, 3);
        let mut store = Store::new(16, ALL);
        let snaps: Vec<Snapshot> = images.iter().map(|i| store.add(i, &files)).collect();
        let mut no_files = Store::new(16, Dedup { file_pages: false, content: true });
        images.iter().for_each(|i| {
            no_files.add(i, &files);
        });
        let mut none = Store::new(16, Dedup { file_pages: false, content: false });
        images.iter().for_each(|i| {
            none.add(i, &files);
        });
        assert!(store.stored_bytes() < no_files.stored_bytes());
        assert!(no_files.stored_bytes() < none.stored_bytes());
        for (image, snap) in images.iter().zip(&snaps) {
            for batch in [1, 7, 64] {
                let r = store.restore_pipelined(snap, &files, &image.hot, batch, &|| Duration::ZERO).expect("valid");
                assert_eq!(r.bytes, image.bytes);
                assert_eq!(r.digest, Execution::expected(image));
            }
            let r = store.restore_serial(snap, &files, &image.hot, &|| Duration::ZERO).expect("valid");
            assert_eq!(r.bytes, image.bytes);
        }
    }

    #[test]
    fn corrupt_or_inconsistent_snapshots_are_errors_not_panics() {
        let (files, images) = synthetic_images(&["a"], 64, Composition::PYTHON, 5);
        let mut store = Store::new(8, ALL);
        let snap = store.add(&images[0], &files);
        let clock = || Duration::ZERO;
        assert!(matches!(
            store.restore_pipelined(&snap, &files, &[9999], 4, &clock),
            Err(SnapshotError::PageOutOfRange(9999))
        ));
        assert!(matches!(
            store.restore_serial(&snap, &FileSet::default(), &[], &clock),
            Err(SnapshotError::UnknownFile(_))
        ));
        assert!(store.restore_pipelined(&snap, &FileSet::default(), &images[0].hot, 4, &clock).is_err());
        let mut broken = store.clone();
        broken.chunks[0].truncate(3);
        assert!(matches!(
            broken.restore_pipelined(&snap, &files, &images[0].hot, 4, &clock),
            Err(SnapshotError::Corrupt(_))
        ));
        assert!(matches!(broken.restore_serial(&snap, &files, &images[0].hot, &clock), Err(SnapshotError::Corrupt(_))));
    }
}
