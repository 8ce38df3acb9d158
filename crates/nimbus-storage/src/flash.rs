//! NAND flash behind a page-mapped flash translation layer (FTL).
//!
//! The device: `blocks` erase blocks of `pages_per_block` pages. Pages are
//! programmed once and erased a whole block at a time, so an overwrite
//! goes to a fresh page and leaves the old one invalid. The host sees
//! `physical / (1 + over_provisioning)` pages (over-provisioning is
//! spare capacity over user capacity, the industry's convention: 7% of
//! spare is a 1,000 GB drive built from 1,070 GB of flash).
//!
//! The FTL keeps a logical-to-physical map per page and writes at two
//! frontiers: host writes fill one open block, and garbage collection
//! (GC) copies valid pages into another, so long-lived data that survives
//! collection gathers in blocks of its own. When a host write finds at
//! most `gc_reserve` blocks free, GC picks a full victim block with an
//! invalid page, copies its valid pages and erases it, until more than
//! `gc_reserve` are free. Victims:
//! - **greedy**: fewest valid pages (least copying now);
//! - **cost-benefit** (Kawaguchi et al., USENIX Winter 1995, after
//!   Rosenblum and Ousterhout's LFS cleaner): the highest
//!   `(1 − u)·age / 2u`, with `u` the valid fraction and `age` the host
//!   writes since the block was last written, so cold blocks are
//!   collected even when fuller.
//!
//! Ties go to fewer valid pages, then the lowest block index; free blocks
//! are reused in the order they were erased. Every decision is made in
//! integers and is deterministic.
//!
//! Wear: each erase costs one program/erase cycle of the block. A block
//! past its cell type's rated cycles ([`nimbus_model::flash`]) is counted
//! in [`FlashStats::blocks_past_budget`], never hidden; the model keeps
//! writing (a drive would retire it). Lifespan is the whole budget
//! (`blocks × cycles`) over the erase rate: with host writes `W` and write
//! amplification `A`, it scales as `1 / (W × A)`.
//!
//! Modelled, not real: page contents, timing and read disturb are not
//! represented; wear levelling is only the erase order of free blocks.

use std::collections::{BTreeSet, VecDeque};

pub use nimbus_model::flash::{CELL_TYPES, CellType, cell_type};

/// No page.
const NONE: u32 = u32::MAX;

/// How GC picks its victim block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// Fewest valid pages.
    Greedy,
    /// Highest `(1 − u)·age / 2u`.
    CostBenefit,
}

impl Victim {
    /// By name (`greedy`, `cost-benefit`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "greedy" => Some(Victim::Greedy),
            "cost-benefit" => Some(Victim::CostBenefit),
            _ => None,
        }
    }
}

/// A device's shape and FTL settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FlashConfig {
    /// Bytes per page.
    pub page_bytes: u32,
    /// Pages per erase block.
    pub pages_per_block: u32,
    /// Erase blocks.
    pub blocks: u32,
    /// Spare over user capacity (0.07 = 7%).
    pub over_provisioning: f64,
    /// Free blocks below which GC runs.
    pub gc_reserve: u32,
    /// Victim selection.
    pub victim: Victim,
    /// Rated program/erase cycles per block.
    pub pe_cycles: u32,
}

impl FlashConfig {
    /// A device of about `capacity_bytes` of user capacity with 16 KiB
    /// pages and 256-page (4 MiB) blocks, a common QLC/TLC geometry.
    pub fn with_capacity(capacity_bytes: u64, over_provisioning: f64, pe_cycles: u32) -> Self {
        let page_bytes = 16 * 1024;
        let pages_per_block = 256;
        let user_pages = capacity_bytes.div_ceil(u64::from(page_bytes)) as f64;
        let physical = (user_pages * (1.0 + over_provisioning.max(0.0))).ceil();
        let blocks = (physical / f64::from(pages_per_block)).ceil().min(f64::from(u32::MAX - 1)) as u32;
        FlashConfig {
            page_bytes,
            pages_per_block,
            blocks,
            over_provisioning,
            gc_reserve: 4,
            victim: Victim::Greedy,
            pe_cycles,
        }
    }
}

/// Why a device cannot be built or an operation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlashError {
    /// The geometry or settings are unusable.
    #[error("flash device: {0}")]
    Config(String),
    /// No free block for a write: cannot happen with the spare the
    /// constructor demands; reported rather than assumed.
    #[error("flash device: no free block left for a write")]
    NoFreeBlock,
    /// A logical page beyond the device.
    #[error("logical page {page} is beyond the device's {pages} pages")]
    OutOfRange {
        /// The page asked for.
        page: u64,
        /// Logical pages of the device.
        pages: u64,
    },
}

/// Counters of a device's life so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// Pages written by the host.
    pub host_writes: u64,
    /// Pages copied by GC.
    pub gc_writes: u64,
    /// Pages read by the host.
    pub host_reads: u64,
    /// Pages trimmed by the host.
    pub trims: u64,
    /// Block erases.
    pub erases: u64,
    /// GC runs (victims collected).
    pub gc_victims: u64,
    /// Blocks erased more often than their rated cycles.
    pub blocks_past_budget: u32,
}

impl FlashStats {
    /// Flash page programs per host page written (1 with no GC copies).
    pub fn write_amplification(&self) -> f64 {
        if self.host_writes == 0 { 1.0 } else { (self.host_writes + self.gc_writes) as f64 / self.host_writes as f64 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockState {
    Free,
    Open,
    Full,
}

/// A flash device and its FTL.
#[derive(Debug, Clone)]
pub struct Flash {
    config: FlashConfig,
    logical_pages: u32,
    /// Logical page → physical page (`NONE`: unmapped).
    l2p: Vec<u32>,
    /// Physical page → logical page (`NONE`: free or invalid).
    p2l: Vec<u32>,
    valid: Vec<u32>,
    erase_count: Vec<u32>,
    state: Vec<BlockState>,
    /// Host writes when each block was last written (cost-benefit age).
    written_at: Vec<u64>,
    free: VecDeque<u32>,
    /// Full blocks by valid pages, each ordered by (key, block): key 0
    /// under greedy, the block's last write under cost-benefit, so a
    /// bucket's first block is its victim and a pick looks at
    /// `pages_per_block` candidates, not every block.
    buckets: Vec<BTreeSet<(u64, u32)>>,
    /// Open blocks and their next page: host writes, GC copies.
    host_frontier: Option<(u32, u32)>,
    gc_frontier: Option<(u32, u32)>,
    stats: FlashStats,
}

impl Flash {
    /// An erased device.
    pub fn new(config: FlashConfig) -> Result<Self, FlashError> {
        let bad = |why: String| Err(FlashError::Config(why));
        if config.page_bytes == 0 || config.pages_per_block == 0 || config.blocks == 0 {
            return bad("page size, pages per block and blocks must be positive".into());
        }
        if !config.over_provisioning.is_finite() || !(0.0..=10.0).contains(&config.over_provisioning) {
            return bad(format!("over-provisioning {} is not in [0, 10]", config.over_provisioning));
        }
        if config.pe_cycles == 0 {
            return bad("rated P/E cycles must be positive".into());
        }
        let physical = u64::from(config.pages_per_block) * u64::from(config.blocks);
        if physical >= u64::from(NONE) {
            return bad(format!("{physical} pages: at most {} are addressed", NONE - 1));
        }
        let logical = (physical as f64 / (1.0 + config.over_provisioning)).floor() as u64;
        // GC must always find an invalid page: the spare pages must exceed
        // the free reserve plus the two open frontiers.
        let spare_blocks = (physical - logical) / u64::from(config.pages_per_block);
        let needed = u64::from(config.gc_reserve) + 3;
        if config.gc_reserve == 0 || spare_blocks < needed {
            return bad(format!(
                "{spare_blocks} spare blocks (over-provisioning {:.1}% of {} blocks): GC needs at least {needed} \
                 (a reserve of {} ≥ 1, two open blocks and one to collect into)",
                100.0 * config.over_provisioning,
                config.blocks,
                config.gc_reserve
            ));
        }
        let blocks = config.blocks as usize;
        Ok(Flash {
            logical_pages: logical as u32,
            l2p: vec![NONE; logical as usize],
            p2l: vec![NONE; physical as usize],
            valid: vec![0; blocks],
            erase_count: vec![0; blocks],
            state: vec![BlockState::Free; blocks],
            written_at: vec![0; blocks],
            free: (0..config.blocks).collect(),
            buckets: vec![BTreeSet::new(); config.pages_per_block as usize + 1],
            host_frontier: None,
            gc_frontier: None,
            stats: FlashStats::default(),
            config,
        })
    }

    /// Its settings.
    pub fn config(&self) -> &FlashConfig {
        &self.config
    }

    /// Pages the host can address.
    pub fn logical_pages(&self) -> u64 {
        u64::from(self.logical_pages)
    }

    /// Counters so far.
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// Erases of each block.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erase_count
    }

    /// Seconds until the whole P/E budget is spent at the erase rate seen
    /// over `elapsed_s` of writes (infinite without erases).
    pub fn lifespan_s(&self, elapsed_s: f64) -> f64 {
        if self.stats.erases == 0 || elapsed_s <= 0.0 {
            return f64::INFINITY;
        }
        let budget = f64::from(self.config.blocks) * f64::from(self.config.pe_cycles);
        budget / (self.stats.erases as f64 / elapsed_s)
    }

    fn check_page(&self, page: u64) -> Result<usize, FlashError> {
        if page < u64::from(self.logical_pages) {
            Ok(page as usize)
        } else {
            Err(FlashError::OutOfRange { page, pages: u64::from(self.logical_pages) })
        }
    }

    /// Writes one logical page.
    pub fn write(&mut self, page: u64) -> Result<(), FlashError> {
        let lpn = self.check_page(page)?;
        self.invalidate(lpn);
        self.collect_if_needed()?;
        let ppn = self.program(false)?;
        self.l2p[lpn] = ppn;
        self.p2l[ppn as usize] = lpn as u32;
        self.stats.host_writes += 1;
        Ok(())
    }

    /// Reads one logical page; whether it holds data.
    pub fn read(&mut self, page: u64) -> Result<bool, FlashError> {
        let lpn = self.check_page(page)?;
        self.stats.host_reads += 1;
        Ok(self.l2p[lpn] != NONE)
    }

    /// Discards one logical page (TRIM).
    pub fn trim(&mut self, page: u64) -> Result<(), FlashError> {
        let lpn = self.check_page(page)?;
        self.invalidate(lpn);
        self.stats.trims += 1;
        Ok(())
    }

    fn block_of(&self, ppn: u32) -> usize {
        (ppn / self.config.pages_per_block) as usize
    }

    fn invalidate(&mut self, lpn: usize) {
        let old = self.l2p[lpn];
        if old != NONE {
            self.p2l[old as usize] = NONE;
            let block = self.block_of(old);
            let full = self.state[block] == BlockState::Full;
            if full {
                self.unbucket(block);
            }
            self.valid[block] -= 1;
            if full {
                self.bucket(block);
            }
            self.l2p[lpn] = NONE;
        }
    }

    fn bucket_key(&self, block: usize) -> (u64, u32) {
        let key = match self.config.victim {
            Victim::Greedy => 0,
            Victim::CostBenefit => self.written_at[block],
        };
        (key, block as u32)
    }

    fn bucket(&mut self, block: usize) {
        let key = self.bucket_key(block);
        self.buckets[self.valid[block] as usize].insert(key);
    }

    fn unbucket(&mut self, block: usize) {
        let key = self.bucket_key(block);
        self.buckets[self.valid[block] as usize].remove(&key);
    }

    /// The next page of a frontier, opening a free block when it is full.
    fn program(&mut self, gc: bool) -> Result<u32, FlashError> {
        let ppb = self.config.pages_per_block;
        let frontier = if gc { self.gc_frontier } else { self.host_frontier };
        let (block, next) = match frontier {
            Some((block, next)) if next < ppb => (block, next),
            _ => {
                if let Some((full, _)) = frontier {
                    self.state[full as usize] = BlockState::Full;
                    self.bucket(full as usize);
                }
                // GC keeps more than the reserve free before a host write
                // and starts only with a free block for its own copies.
                let block = self.free.pop_front().ok_or(FlashError::NoFreeBlock)?;
                self.state[block as usize] = BlockState::Open;
                (block, 0)
            }
        };
        let updated = Some((block, next + 1));
        if gc {
            self.gc_frontier = updated;
        } else {
            self.host_frontier = updated;
        }
        self.valid[block as usize] += 1;
        self.written_at[block as usize] = self.stats.host_writes;
        Ok(block * ppb + next)
    }

    /// Collects until more than `gc_reserve` blocks are free. Between
    /// operations at least `gc_reserve` (≥ 1) are, so each collection
    /// starts with a free block for its copies and frees its victim; the
    /// spare the constructor demands leaves invalid pages in some full
    /// block (more than the reserve and both open blocks can hold).
    fn collect_if_needed(&mut self) -> Result<(), FlashError> {
        while self.free.len() as u32 <= self.config.gc_reserve {
            let Some(victim) = self.pick_victim() else { return Ok(()) };
            self.collect(victim)?;
        }
        Ok(())
    }

    /// A full block with an invalid page to reclaim: greedy, the lowest
    /// block of the emptiest bucket; cost-benefit, the best of each
    /// bucket's oldest block. Ties: fewer valid pages, then the lower
    /// block.
    fn pick_victim(&self) -> Option<usize> {
        let ppb = u64::from(self.config.pages_per_block);
        let now = self.stats.host_writes;
        let firsts = self.buckets[..ppb as usize].iter().filter_map(|b| b.first()).map(|&(_, b)| b as usize);
        match self.config.victim {
            Victim::Greedy => firsts.min_by_key(|&b| (self.valid[b], b)),
            // Compare (1 − u)·age / 2u as exact fractions:
            // (ppb − v)·age / (2v) with v valid pages; v = 0 wins outright.
            Victim::CostBenefit => firsts.max_by(|&a, &b| {
                let score = |x: usize| {
                    let v = u64::from(self.valid[x]);
                    let age = now - self.written_at[x];
                    (u128::from((ppb - v) * age), u128::from(2 * v))
                };
                let ((na, da), (nb, db)) = (score(a), score(b));
                // na/da vs nb/db, with x/0 as infinite.
                let order = match (da, db) {
                    (0, 0) => std::cmp::Ordering::Equal,
                    (0, _) => std::cmp::Ordering::Greater,
                    (_, 0) => std::cmp::Ordering::Less,
                    _ => (na * db).cmp(&(nb * da)),
                };
                order.then(self.valid[b].cmp(&self.valid[a])).then(b.cmp(&a))
            }),
        }
    }

    fn collect(&mut self, victim: usize) -> Result<(), FlashError> {
        self.unbucket(victim);
        self.state[victim] = BlockState::Free;
        let ppb = self.config.pages_per_block as usize;
        for ppn in victim * ppb..(victim + 1) * ppb {
            let lpn = self.p2l[ppn];
            if lpn == NONE {
                continue;
            }
            self.p2l[ppn] = NONE;
            self.valid[victim] -= 1;
            let to = self.program(true)?;
            self.l2p[lpn as usize] = to;
            self.p2l[to as usize] = lpn;
            self.stats.gc_writes += 1;
        }
        debug_assert_eq!(self.valid[victim], 0);
        self.erase_count[victim] += 1;
        if self.erase_count[victim] == self.config.pe_cycles + 1 {
            self.stats.blocks_past_budget += 1;
        }
        self.stats.erases += 1;
        self.stats.gc_victims += 1;
        self.free.push_back(victim as u32);
        Ok(())
    }

    /// Checks the FTL's invariants; the first broken one, if any.
    pub fn check(&self) -> Result<(), String> {
        let mapped = self.l2p.iter().filter(|&&p| p != NONE).count() as u64;
        let valid: u64 = self.valid.iter().map(|&v| u64::from(v)).sum();
        if mapped != valid {
            return Err(format!("{mapped} mapped logical pages but {valid} valid physical pages"));
        }
        for (lpn, &ppn) in self.l2p.iter().enumerate() {
            if ppn != NONE && self.p2l[ppn as usize] != lpn as u32 {
                return Err(format!("logical page {lpn} maps to {ppn}, which maps back to {}", self.p2l[ppn as usize]));
            }
        }
        let ppb = self.config.pages_per_block as usize;
        for (b, &v) in self.valid.iter().enumerate() {
            let live = self.p2l[b * ppb..(b + 1) * ppb].iter().filter(|&&l| l != NONE).count() as u32;
            if live != v {
                return Err(format!("block {b} counts {v} valid pages but holds {live}"));
            }
            if self.state[b] == BlockState::Free && v != 0 {
                return Err(format!("free block {b} holds {v} valid pages"));
            }
            let bucketed = self.buckets[v as usize].contains(&self.bucket_key(b));
            if bucketed != (self.state[b] == BlockState::Full) {
                return Err(format!("block {b} ({:?}, {v} valid) is bucketed: {bucketed}", self.state[b]));
            }
        }
        let erases: u64 = self.erase_count.iter().map(|&e| u64::from(e)).sum();
        if erases != self.stats.erases {
            return Err(format!("{erases} erases counted per block, {} in all", self.stats.erases));
        }
        let bucketed: usize = self.buckets.iter().map(BTreeSet::len).sum();
        let full = self.state.iter().filter(|&&s| s == BlockState::Full).count();
        if bucketed != full {
            return Err(format!("{bucketed} blocks bucketed, {full} full"));
        }
        let past = self.erase_count.iter().filter(|&&e| e > self.config.pe_cycles).count() as u32;
        if past != self.stats.blocks_past_budget {
            return Err(format!("{past} blocks past their budget, {} reported", self.stats.blocks_past_budget));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_sim::RngStreams;

    fn small(blocks: u32, op: f64, victim: Victim) -> Flash {
        Flash::new(FlashConfig {
            page_bytes: 4096,
            pages_per_block: 4,
            blocks,
            over_provisioning: op,
            gc_reserve: 1,
            victim,
            pe_cycles: 3,
        })
        .expect("valid")
    }

    /// By hand: 16 blocks of 4 pages, 60% spare: 40 logical pages.
    /// Writing them twice in order overwrites whole blocks, so GC finds
    /// only empty victims: no copies, write amplification 1.
    #[test]
    fn sequential_overwrites_need_no_copies() {
        let mut f = small(16, 0.6, Victim::Greedy);
        assert_eq!(f.logical_pages(), 40);
        for _ in 0..2 {
            for p in 0..40 {
                f.write(p).expect("in range");
            }
        }
        let s = f.stats();
        assert_eq!((s.host_writes, s.gc_writes), (80, 0));
        assert!(s.erases > 0);
        assert_eq!(s.write_amplification(), 1.0);
        f.check().expect("consistent");
    }

    /// By hand: one page rewritten over and over invalidates the previous
    /// copy each time; GC erases blocks of 4 invalid pages, one erase per
    /// 4 writes once the free pool runs low.
    #[test]
    fn one_hot_page_costs_an_erase_per_block_of_writes() {
        let mut f = small(8, 1.0, Victim::Greedy);
        for _ in 0..400 {
            f.write(0).expect("in range");
        }
        let s = f.stats();
        assert_eq!(s.gc_writes, 0);
        // 400 writes fill 100 blocks' worth; all but the 8 blocks never
        // erased were erased once each time round.
        assert!((92..=100).contains(&s.erases), "{}", s.erases);
        f.check().expect("consistent");
    }

    /// By hand: block 0 holds 2 of 4 pages valid, last written 100 host
    /// writes ago; block 1 holds 1, written 10 ago. Greedy takes block 1;
    /// cost-benefit scores (1 − u)·age/2u: block 0 2·100/4 = 50, block 1
    /// 3·10/2 = 15, and takes block 0, until block 1 is 40 writes old
    /// (3·40/2 = 60).
    #[test]
    fn victims_by_hand() {
        for (victim, age1, expected) in
            [(Victim::Greedy, 10, 1), (Victim::CostBenefit, 10, 0), (Victim::CostBenefit, 40, 1)]
        {
            let mut f = small(8, 3.0, victim);
            f.stats.host_writes = 100;
            for (b, valid, written_at) in [(0, 2, 0), (1, 1, 100 - age1)] {
                f.state[b] = BlockState::Full;
                f.valid[b] = valid;
                f.written_at[b] = written_at;
                f.bucket(b);
            }
            assert_eq!(f.pick_victim(), Some(expected), "{victim:?}, block 1 {age1} writes old");
        }
    }

    /// Hot/cold traffic (90% of writes to 10% of pages): cost-benefit
    /// collects the cold blocks' stragglers and copies less than greedy.
    #[test]
    fn cost_benefit_copies_less_under_hot_and_cold_traffic() {
        let mut waf = Vec::new();
        for victim in [Victim::Greedy, Victim::CostBenefit] {
            let mut f = Flash::new(FlashConfig {
                page_bytes: 4096,
                pages_per_block: 64,
                blocks: 200,
                over_provisioning: 0.14,
                gc_reserve: 2,
                victim,
                pe_cycles: 1000,
            })
            .expect("valid");
            let pages = f.logical_pages();
            let hot = pages / 10;
            let mut rng = RngStreams::new(2).stream("writes");
            for p in 0..pages {
                f.write(p).expect("in range");
            }
            for _ in 0..6 * pages {
                let p = if rng.uniform() < 0.9 { rng.below(hot) } else { hot + rng.below(pages - hot) };
                f.write(p).expect("in range");
            }
            f.check().expect("consistent");
            waf.push(f.stats().write_amplification());
        }
        eprintln!("hot/cold 90/10, 14% spare: write amplification greedy {:.3}, cost-benefit {:.3}", waf[0], waf[1]);
        assert!(waf[1] < waf[0], "{waf:?}");
    }

    #[test]
    fn bad_settings_and_pages_are_refused() {
        let mut config = FlashConfig::with_capacity(1 << 30, 0.07, 1000);
        config.over_provisioning = 0.0;
        assert!(matches!(Flash::new(config.clone()), Err(FlashError::Config(_))));
        config.over_provisioning = f64::NAN;
        assert!(Flash::new(config.clone()).is_err());
        config.over_provisioning = 0.07;
        config.gc_reserve = 0;
        assert!(Flash::new(config.clone()).is_err());
        config.gc_reserve = 4;
        let mut f = Flash::new(config).expect("valid");
        let pages = f.logical_pages();
        assert_eq!(f.write(pages), Err(FlashError::OutOfRange { page: pages, pages }));
        assert!(f.read(u64::MAX).is_err() && f.trim(pages).is_err());
    }

    /// Uniform random overwrites of a full device: more spare, less
    /// amplification; lifespan scales with 1/(writes × amplification).
    #[test]
    fn write_amplification_falls_with_over_provisioning() {
        let mut waf = Vec::new();
        for op in [0.07, 0.14, 0.28] {
            let config = FlashConfig {
                page_bytes: 4096,
                pages_per_block: 64,
                blocks: 200,
                over_provisioning: op,
                gc_reserve: 2,
                victim: Victim::Greedy,
                pe_cycles: 1000,
            };
            let mut f = Flash::new(config).expect("valid");
            let pages = f.logical_pages();
            let mut rng = RngStreams::new(1).stream("writes");
            for p in 0..pages {
                f.write(p).expect("in range");
            }
            for _ in 0..4 * pages {
                f.write(rng.below(pages)).expect("in range");
            }
            f.check().expect("consistent");
            waf.push(f.stats().write_amplification());
        }
        eprintln!("uniform random, greedy: write amplification at 7/14/28% spare {waf:.3?}");
        assert!(waf[0] > waf[1] && waf[1] > waf[2], "{waf:?}");
        assert!(waf[2] > 1.0, "{waf:?}");
    }

    proptest::proptest! {
        /// Any mix of writes, trims and reads: the FTL stays consistent,
        /// a page reads as written exactly when the host last wrote it,
        /// and flash writes are host writes plus GC copies.
        #[test]
        fn any_operations_keep_the_ftl_consistent(
            ops in proptest::collection::vec((0u8..3, 0u64..48), 1..3000),
            cost_benefit in proptest::bool::ANY,
        ) {
            let victim = if cost_benefit { Victim::CostBenefit } else { Victim::Greedy };
            let mut f = small(20, 0.6, victim);
            let pages = f.logical_pages();
            let mut written = vec![false; pages as usize];
            for (op, page) in ops {
                let page = page % pages;
                match op {
                    0 => { f.write(page).expect("in range"); written[page as usize] = true; }
                    1 => { f.trim(page).expect("in range"); written[page as usize] = false; }
                    _ => proptest::prop_assert_eq!(f.read(page).expect("in range"), written[page as usize]),
                }
            }
            proptest::prop_assert_eq!(f.check(), Ok(()));
            let s = f.stats();
            proptest::prop_assert!(s.write_amplification() >= 1.0);
            // Erasures never exceed what the programs could have filled.
            proptest::prop_assert!(s.erases * 4 <= s.host_writes + s.gc_writes);
            // Past-budget blocks are counted (budget 3 here).
            let past = f.erase_counts().iter().filter(|&&e| e > 3).count() as u32;
            proptest::prop_assert_eq!(s.blocks_past_budget, past);
        }
    }
}
