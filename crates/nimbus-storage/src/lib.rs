//! Storage: how bytes are laid out and moved, for the storage systems of
//! the SoCC'24 proceedings (H2C-Dedup, RomeFS, TianMen, SmartGraph,
//! RASTER).
//!
//! Built so far: [`flash`], NAND flash behind a page-mapped FTL with
//! greedy and cost-benefit garbage collection, over-provisioning, wear and
//! lifespan, the device model the systems share. The systems themselves
//! and the `storage` domain's scenarios are not built yet.

pub mod flash;
