//! Unit conversions used at the edges of models.
//!
//! Quantities inside models are plain `f64` with the unit in the name
//! (`memory_gib`, `bandwidth_gbps`, `power_w`); these helpers make the
//! conversions explicit where units meet.

/// Bytes in a gibibyte.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Bytes in a gigabyte (decimal, as bandwidth figures are quoted).
pub const GB: f64 = 1e9;
/// Seconds in an hour.
pub const SECS_PER_HOUR: f64 = 3600.0;

/// Gigabits per second to bytes per second.
pub fn gbit_per_s_to_bytes_per_s(gbit_per_s: f64) -> f64 {
    gbit_per_s * 1e9 / 8.0
}

/// Seconds to transfer `bytes` at `bytes_per_s` (infinite for zero bandwidth).
pub fn transfer_secs(bytes: f64, bytes_per_s: f64) -> f64 {
    if bytes_per_s <= 0.0 { f64::INFINITY } else { bytes / bytes_per_s }
}

/// Energy in kilowatt-hours from power in watts held for `secs` seconds.
pub fn kwh(power_w: f64, secs: f64) -> f64 {
    power_w * secs / SECS_PER_HOUR / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_by_hand() {
        assert_eq!(gbit_per_s_to_bytes_per_s(8.0), 1e9);
        assert_eq!(transfer_secs(2e9, 1e9), 2.0);
        assert!(transfer_secs(1.0, 0.0).is_infinite());
        assert_eq!(kwh(1000.0, 3600.0), 1.0);
    }
}
