//! Memory snapshots of function sandboxes, for real: page images, the
//! files their mapped pages come from, a CRIU-style compressed snapshot
//! (the baseline that [`crate::snapipeline`] is compared against) and the
//! function's first run, which touches its hot pages in recorded order.
//!
//! A [`MemoryImage`] is a sandbox's memory flattened page by page, with
//! each page's file backing where it is file-mapped and the order in which
//! the function first touched its pages (its working set, as REAP and
//! FaaSnap record it). Images are either synthetic ([`synthetic_images`],
//! deterministic, the default) or captured from a live process
//! ([`capture_process`], Linux `/proc/<pid>/{maps,mem}`).
//!
//! Restores here are plain copies into a fresh buffer: the sandbox's
//! address space, page faults and userfaultfd are not modelled (the
//! workspace forbids `unsafe`), so a restore's cost is its decompression
//! and copying.

use std::time::Duration;

use nimbus_sim::{RngStreams, SimRng};

/// Bytes per page.
pub const PAGE: usize = 4096;

/// A page's file backing: the page equals (or was mapped from) this
/// page-aligned offset of this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    /// Index into the [`FileSet`].
    pub file: u32,
    /// Byte offset, a multiple of [`PAGE`].
    pub offset: u64,
}

/// The files that images map (shared libraries, interpreters), as the
/// host's page cache holds them.
#[derive(Debug, Clone, Default)]
pub struct FileSet {
    /// (path, contents).
    pub files: Vec<(String, Vec<u8>)>,
}

impl FileSet {
    /// The page at `r` when the file holds all of it (no copy).
    pub fn full_page(&self, r: FileRef) -> Option<&[u8]> {
        let (_, bytes) = self.files.get(r.file as usize)?;
        let start = usize::try_from(r.offset).ok()?;
        bytes.get(start..start.checked_add(PAGE)?)
    }

    /// The page at `r`, zero-padded past the end of the file; `None` when
    /// the file is unknown.
    pub fn page(&self, r: FileRef) -> Option<[u8; PAGE]> {
        let (_, bytes) = self.files.get(r.file as usize)?;
        let mut page = [0u8; PAGE];
        let start = (r.offset as usize).min(bytes.len());
        let end = (start + PAGE).min(bytes.len());
        page[..end - start].copy_from_slice(&bytes[start..end]);
        Some(page)
    }
}

/// One sandbox's memory.
#[derive(Debug, Clone)]
pub struct MemoryImage {
    /// Function name.
    pub name: String,
    /// Contents, a whole number of pages.
    pub bytes: Vec<u8>,
    /// Per page: where it is mapped from, if file-backed.
    pub backing: Vec<Option<FileRef>>,
    /// Pages the function touches on its first run, in first-access order.
    pub hot: Vec<u32>,
}

impl MemoryImage {
    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.bytes.len() / PAGE
    }

    /// Page `i`.
    pub fn page(&self, i: usize) -> &[u8] {
        &self.bytes[i * PAGE..(i + 1) * PAGE]
    }
}

/// The function's first run after a restore: reads its hot pages in order
/// and hashes them (BLAKE3), so a wrong or missing page changes the result.
pub struct Execution {
    hasher: blake3::Hasher,
}

impl Execution {
    /// A new run.
    pub fn new() -> Self {
        Execution { hasher: blake3::Hasher::new() }
    }

    /// Touches one page.
    pub fn touch(&mut self, page: &[u8]) {
        self.hasher.update(page);
    }

    /// The run's result.
    pub fn finish(self) -> [u8; 32] {
        *self.hasher.finalize().as_bytes()
    }

    /// The first run over memory already in place: touches `hot` pages of
    /// `bytes` in order.
    pub fn over(bytes: &[u8], hot: &[u32]) -> Result<[u8; 32], SnapshotError> {
        let mut run = Execution::new();
        for &p in hot {
            let p = p as usize;
            run.touch(bytes.get(p * PAGE..(p + 1) * PAGE).ok_or(SnapshotError::PageOutOfRange(p))?);
        }
        Ok(run.finish())
    }

    /// The result a correct restore of `image` must give.
    pub fn expected(image: &MemoryImage) -> [u8; 32] {
        Self::over(&image.bytes, &image.hot).expect("an image's hot pages lie inside it")
    }
}

impl Default for Execution {
    fn default() -> Self {
        Self::new()
    }
}

/// What a restore produced and when (by the caller's clock).
#[derive(Debug, Clone)]
pub struct Restored {
    /// The restored memory.
    pub bytes: Vec<u8>,
    /// The first run's result.
    pub digest: [u8; 32],
    /// When the first run finished (time to first response).
    pub first_response: Duration,
    /// When every page was in place.
    pub restore_done: Duration,
}

/// A CRIU-style snapshot: the whole image compressed in fixed chunks, in
/// address order, without deduplication.
#[derive(Debug, Clone)]
pub struct CompressedImage {
    chunks: Vec<Vec<u8>>,
    chunk_pages: usize,
    len: usize,
}

impl CompressedImage {
    /// Compresses `image` (LZ4) in chunks of `chunk_pages` pages.
    pub fn new(image: &MemoryImage, chunk_pages: usize) -> Self {
        let chunk_bytes = chunk_pages.max(1) * PAGE;
        let chunks = image.bytes.chunks(chunk_bytes).map(lz4_flex::block::compress).collect();
        CompressedImage { chunks, chunk_pages: chunk_pages.max(1), len: image.bytes.len() }
    }

    /// Stored bytes.
    pub fn stored_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    /// Serial restore: decompress everything into place, then run.
    pub fn restore(&self, hot: &[u32], clock: &(dyn Fn() -> Duration + Sync)) -> Result<Restored, SnapshotError> {
        let mut bytes = vec![0u8; self.len];
        let chunk_bytes = self.chunk_pages * PAGE;
        for (chunk, out) in self.chunks.iter().zip(bytes.chunks_mut(chunk_bytes)) {
            let n = lz4_flex::block::decompress_into(chunk, out).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
            if n != out.len() {
                return Err(SnapshotError::Corrupt(format!("a chunk decompressed to {n} bytes, not {}", out.len())));
            }
        }
        let restore_done = clock();
        let digest = Execution::over(&bytes, hot)?;
        Ok(Restored { digest, first_response: clock(), restore_done, bytes })
    }
}

/// Why a snapshot cannot be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Stored data does not decompress to what was stored.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// A hot page lies outside the image.
    #[error("page {0} is outside the image")]
    PageOutOfRange(usize),
    /// A file-backed page names a file the set does not hold.
    #[error("page refers to unknown file {0}")]
    UnknownFile(u32),
    /// Reading a live process failed.
    #[error("{0}")]
    Io(String),
}

/// How synthetic images are composed, as shares of their pages (inferred
/// from the make-up of Python runtime processes; not measured).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Composition {
    /// Pages mapped from shared library files of the runtime.
    pub library: f64,
    /// Of those, pages written after mapping (relocations), so they differ
    /// from the file.
    pub library_dirty: f64,
    /// Runtime heap identical across functions (interpreter and standard
    /// library state after start-up).
    pub runtime_heap: f64,
    /// Of those, pages the function changed.
    pub runtime_dirty: f64,
    /// Zero pages.
    pub zero: f64,
    /// The rest is the function's own data; this share of it is
    /// structured (compresses about 3×), the remainder random.
    pub structured: f64,
    /// Share of pages the first run touches.
    pub hot: f64,
}

impl Composition {
    /// The default make-up.
    pub const PYTHON: Composition = Composition {
        library: 0.30,
        library_dirty: 0.08,
        runtime_heap: 0.25,
        runtime_dirty: 0.05,
        zero: 0.15,
        structured: 0.5,
        hot: 0.25,
    };
}

fn fill_random(rng: &mut SimRng, out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let v = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Structured data: 64-byte records from a small vocabulary with a random
/// field, as object headers and strings look in a heap.
fn fill_structured(rng: &mut SimRng, out: &mut [u8]) {
    const WORDS: [&[u8]; 8] =
        [b"__init__", b"self.", b"return ", b"import ", b"numpy.nd", b"<module>", b"PyObject", b"\0\0\0\0\0\0\0\x01"];
    for record in out.chunks_mut(64) {
        let mut at = 0;
        while at < record.len() {
            let w = WORDS[rng.index(WORDS.len())];
            let n = w.len().min(record.len() - at);
            record[at..at + n].copy_from_slice(&w[..n]);
            at += n;
        }
        let field = rng.next_u64().to_le_bytes();
        let n = field.len().min(record.len());
        record[..n].copy_from_slice(&field[..n]);
    }
}

/// Synthetic images of `names`, `pages` pages each, over one runtime
/// whose library files and start-up heap they share. Deterministic in
/// `seed`.
pub fn synthetic_images(names: &[&str], pages: usize, mix: Composition, seed: u64) -> (FileSet, Vec<MemoryImage>) {
    let streams = RngStreams::new(seed);
    let count = |share: f64| ((share * pages as f64).round() as usize).min(pages);
    let library_pages = count(mix.library);
    let heap_pages = count(mix.runtime_heap).min(pages - library_pages);
    let zero_pages = count(mix.zero).min(pages - library_pages - heap_pages);
    // Three library files, the interpreter largest.
    let mut rng = streams.stream("libraries");
    let sizes = [library_pages / 2, library_pages / 3, library_pages - library_pages / 2 - library_pages / 3];
    let mut files = FileSet::default();
    for (i, &n) in sizes.iter().enumerate() {
        let mut bytes = vec![0u8; n * PAGE];
        // Code and read-only data: half structured, half random.
        let (a, b) = bytes.split_at_mut(n / 2 * PAGE);
        fill_structured(&mut rng, a);
        fill_random(&mut rng, b);
        files.files.push((format!("lib{i}.so"), bytes));
    }
    let mut heap = vec![0u8; heap_pages * PAGE];
    fill_structured(&mut streams.stream("runtime-heap"), &mut heap);
    let mut images = Vec::with_capacity(names.len());
    for name in names {
        let mut rng = streams.stream(&format!("image/{name}"));
        let mut bytes = vec![0u8; pages * PAGE];
        let mut backing = vec![None; pages];
        let mut page = 0usize;
        for (f, (_, file)) in files.files.iter().enumerate() {
            for k in 0..file.len() / PAGE {
                let out = &mut bytes[page * PAGE..(page + 1) * PAGE];
                out.copy_from_slice(&file[k * PAGE..(k + 1) * PAGE]);
                if rng.bernoulli(mix.library_dirty) {
                    let at = rng.index(PAGE - 8);
                    out[at..at + 8].copy_from_slice(&rng.next_u64().to_le_bytes());
                }
                backing[page] = Some(FileRef { file: f as u32, offset: (k * PAGE) as u64 });
                page += 1;
            }
        }
        for k in 0..heap_pages {
            let out = &mut bytes[page * PAGE..(page + 1) * PAGE];
            out.copy_from_slice(&heap[k * PAGE..(k + 1) * PAGE]);
            if rng.bernoulli(mix.runtime_dirty) {
                fill_structured(&mut rng, &mut out[..256]);
            }
            page += 1;
        }
        // The function's heap: zero pages scattered through its own data.
        let own = pages - page;
        let mut zero = vec![false; own];
        zero[..zero_pages.min(own)].iter_mut().for_each(|z| *z = true);
        rng.shuffle(&mut zero);
        for &is_zero in &zero {
            if !is_zero {
                let out = &mut bytes[page * PAGE..(page + 1) * PAGE];
                if rng.bernoulli(mix.structured) {
                    fill_structured(&mut rng, out);
                } else {
                    fill_random(&mut rng, out);
                }
            }
            page += 1;
        }
        // The working set: runs of 1 to 16 pages, in random order.
        let target = count(mix.hot);
        let mut taken = vec![false; pages];
        let mut hot = Vec::with_capacity(target);
        while hot.len() < target {
            let start = rng.index(pages);
            let run = 1 + rng.index(16);
            let end = (start + run).min(pages);
            for (p, seen) in taken[start..end].iter_mut().enumerate() {
                if !*seen && hot.len() < target {
                    *seen = true;
                    hot.push((start + p) as u32);
                }
            }
        }
        images.push(MemoryImage { name: name.to_string(), bytes, backing, hot });
    }
    (files, images)
}

/// Captures the memory of a live process (Linux): every readable private
/// mapping from `/proc/<pid>/maps`, read through `/proc/<pid>/mem`;
/// file-mapped pages keep their file and offset, and the files join
/// `files`. The hot set is every page that is not zero, in address order
/// (no access recording for a live process). Needs permission to read the
/// process's memory (a child of the caller, or ptrace rights).
pub fn capture_process(pid: u32, files: &mut FileSet) -> Result<MemoryImage, SnapshotError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |what: &str, e: std::io::Error| SnapshotError::Io(format!("{what}: {e}"));
    let maps_path = format!("/proc/{pid}/maps");
    let maps = std::fs::read_to_string(&maps_path).map_err(|e| io(&maps_path, e))?;
    let mem_path = format!("/proc/{pid}/mem");
    let mut mem = std::fs::File::open(&mem_path).map_err(|e| io(&mem_path, e))?;
    let mut bytes = Vec::new();
    let mut backing = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms), Some(offset)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let path = fields.nth(2).unwrap_or("");
        if !perms.starts_with('r') || path.starts_with("[v") {
            continue; // unreadable, or the kernel's vsyscall/vvar/vdso pages
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end), Ok(offset)) =
            (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16), u64::from_str_radix(offset, 16))
        else {
            continue;
        };
        let mut region = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut region).is_err() {
            continue; // pages that cannot be read (guard pages)
        }
        let file = if path.starts_with('/') {
            let index = match files.files.iter().position(|(p, _)| p == path) {
                Some(i) => Some(i),
                None => std::fs::read(path).ok().map(|contents| {
                    files.files.push((path.to_string(), contents));
                    files.files.len() - 1
                }),
            };
            index.map(|i| i as u32)
        } else {
            None
        };
        for k in 0..region.len() / PAGE {
            backing.push(file.map(|f| FileRef { file: f, offset: offset + (k * PAGE) as u64 }));
        }
        bytes.extend_from_slice(&region);
    }
    let hot =
        (0..bytes.len() / PAGE).filter(|&p| bytes[p * PAGE..(p + 1) * PAGE].iter().any(|&b| b != 0)).map(|p| p as u32);
    Ok(MemoryImage { name: format!("pid{pid}"), hot: hot.collect(), bytes, backing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_images_follow_their_composition() {
        let (files, images) = synthetic_images(&["a", "b"], 400, Composition::PYTHON, 7);
        let img = &images[0];
        assert_eq!(img.pages(), 400);
        let mapped = img.backing.iter().filter(|b| b.is_some()).count();
        assert_eq!(mapped, 120);
        let zero = (0..400).filter(|&p| img.page(p).iter().all(|&b| b == 0)).count();
        assert_eq!(zero, 60);
        assert_eq!(img.hot.len(), 100);
        let mut hot = img.hot.clone();
        hot.sort_unstable();
        hot.dedup();
        assert_eq!(hot.len(), 100, "the working set has no repeats");
        // Most mapped pages equal their file page; the two images share
        // their runtime heap pages where neither changed them.
        let clean = (0..400)
            .filter(|&p| img.backing[p].is_some_and(|r| files.page(r).is_some_and(|f| f[..] == *img.page(p))))
            .count();
        assert!(clean > 100 && clean < 120, "{clean}");
        let shared = (120..220).filter(|&p| images[0].page(p) == images[1].page(p)).count();
        assert!(shared > 85, "{shared}");
        // Deterministic.
        let (_, again) = synthetic_images(&["a", "b"], 400, Composition::PYTHON, 7);
        assert_eq!(again[1].bytes, images[1].bytes);
    }

    #[test]
    fn serial_restore_is_byte_identical() {
        let (_, images) = synthetic_images(&["f"], 200, Composition::PYTHON, 1);
        let snap = CompressedImage::new(&images[0], 16);
        assert!(snap.stored_bytes() < images[0].bytes.len() as u64);
        let restored = snap.restore(&images[0].hot, &|| Duration::ZERO).expect("valid");
        assert_eq!(restored.bytes, images[0].bytes);
        assert_eq!(restored.digest, Execution::expected(&images[0]));
    }
}
