//! NAND flash cell types: how many program/erase cycles a block endures.
//!
//! Endurance is a rated figure (the cycles after which the raw bit-error
//! rate exceeds what the controller's ECC corrects), not a cliff; drives
//! built from the same cells are rated differently. The figures are the
//! datasheet class each cell type is sold at.

/// A NAND cell type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellType {
    /// Name used in scenarios (`tlc`, `qlc`).
    pub name: &'static str,
    /// Bits per cell.
    pub bits: u32,
    /// Rated program/erase cycles per block.
    pub pe_cycles: u32,
    /// Where the figure comes from.
    pub source: &'static str,
}

/// The catalog.
pub static CELL_TYPES: &[CellType] = &[
    CellType {
        name: "tlc",
        bits: 3,
        pe_cycles: 3_000,
        source: "3D TLC's rated endurance class, 3,000 P/E cycles (1,000-3,000 for early 3D TLC: Tom's Hardware on \
                 YMTC's X3-6070, 2024-03-28)",
    },
    CellType {
        name: "qlc",
        bits: 4,
        pe_cycles: 1_000,
        source: "Toshiba BiCS3 768 Gb 3D QLC, 1,000 P/E cycles (Toshiba announcement, July 2017, reported by Guru3D); \
                 H2C-Dedup (SoCC'24) assumes QLC's ~1,000",
    },
];

/// A cell type by name.
pub fn cell_type(name: &str) -> Option<&'static CellType> {
    CELL_TYPES.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_type_has_a_source_and_denser_cells_endure_less() {
        assert!(CELL_TYPES.iter().all(|c| !c.source.is_empty() && c.pe_cycles > 0));
        let (tlc, qlc) = (cell_type("TLC").expect("tlc"), cell_type("qlc").expect("qlc"));
        assert!(qlc.bits > tlc.bits && qlc.pe_cycles < tlc.pe_cycles);
        assert!(cell_type("slc-unknown").is_none());
    }
}
