//! Embodied carbon of servers from the Boavizta environmental-footprint
//! database (`boavizta-data-us.csv`, ODbL: manufacturers' product carbon
//! footprints): the manufacturing share gwp_total × gwp_manufacturing_ratio
//! and the lifetime the manufacturer assumed.

use std::path::Path;

use nimbus_trace::error::for_each_csv_row;

/// One product's footprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    /// Manufacturer and product name.
    pub name: String,
    /// Whole-life footprint, kg CO2e.
    pub gwp_total_kg: f64,
    /// Share from manufacturing (what is embodied).
    pub manufacturing_ratio: f64,
    /// Years of service assumed.
    pub lifetime_years: f64,
    /// Energy a year in use, kWh (the manufacturer's use profile).
    pub yearly_kwh: Option<f64>,
}

impl Footprint {
    /// Embodied (manufacturing) carbon, kg CO2e.
    pub fn embodied_kg(&self) -> f64 {
        self.gwp_total_kg * self.manufacturing_ratio
    }
}

/// Boavizta rows the scenarios name, for runs without `../shared/data`
/// (Boavizta environmental-footprint data, commit 61323eb, ODbL; figures
/// as published by the manufacturers: gwp_total kg, manufacturing share,
/// lifetime years, yearly kWh).
pub const KNOWN: &[(&str, f64, f64, f64, f64)] = &[
    ("Dell PowerEdge R730", 7490.0, 0.163, 4.0, 1473.5),
    ("Dell PowerEdge R740", 8640.0, 0.152, 4.0, 1760.3),
    ("Dell PowerEdge R6525", 12700.0, 0.06, 4.0, 2872.4),
    ("HP ProLiant DL345 Gen10 Plus server4", 8370.0, 0.299, 4.0, 1019.42),
];

/// A row of [`KNOWN`].
pub fn known(name: &str) -> Option<Footprint> {
    KNOWN.iter().find(|k| k.0 == name).map(|&(name, gwp_total_kg, manufacturing_ratio, lifetime_years, kwh)| {
        Footprint { name: name.to_string(), gwp_total_kg, manufacturing_ratio, lifetime_years, yearly_kwh: Some(kwh) }
    })
}

/// Reads the rows of category `Datacenter` (servers and storage) that
/// carry a total, a manufacturing share and a lifetime; rows missing any of
/// them are counted in the second value, not silently dropped.
pub fn read_boavizta(path: &Path) -> Result<(Vec<Footprint>, usize), String> {
    let mut rows = Vec::new();
    let mut incomplete = 0;
    let cols = ["manufacturer", "name", "category", "gwp_total", "gwp_manufacturing_ratio", "lifetime", "yearly_tec"];
    for_each_csv_row(nimbus_trace::Source::file(path), &cols, |f| {
        if f.text(2)? != "Datacenter" {
            return Ok(());
        }
        let number = |i: usize| -> Result<Option<f64>, nimbus_trace::TraceError> {
            let t = f.text(i)?.trim();
            if t.is_empty() { Ok(None) } else { f.non_negative_f64(i).map(Some) }
        };
        match (number(3)?, number(4)?, number(5)?) {
            (Some(gwp_total_kg), Some(manufacturing_ratio), Some(lifetime_years)) if lifetime_years > 0.0 => {
                if manufacturing_ratio > 1.0 {
                    return Err(f.invalid(4, format!("a manufacturing share of {manufacturing_ratio} (above 1)")));
                }
                rows.push(Footprint {
                    name: format!("{} {}", f.text(0)?.trim(), f.text(1)?.trim()),
                    gwp_total_kg,
                    manufacturing_ratio,
                    lifetime_years,
                    yearly_kwh: number(6)?,
                });
            }
            _ => incomplete += 1,
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok((rows, incomplete))
}

/// The row named `name` (manufacturer and product, e.g. `Dell PowerEdge
/// R740`), or an error listing close names.
pub fn find<'a>(rows: &'a [Footprint], name: &str) -> Result<&'a Footprint, String> {
    if let Some(r) = rows.iter().find(|r| r.name == name) {
        return Ok(r);
    }
    let last = name.split_whitespace().last().unwrap_or(name).to_ascii_lowercase();
    let close: Vec<&str> =
        rows.iter().filter(|r| r.name.to_ascii_lowercase().contains(&last)).map(|r| r.name.as_str()).take(8).collect();
    Err(format!(
        "no Boavizta datacenter row named `{name}`{}",
        if close.is_empty() { String::new() } else { format!("; close: {}", close.join(", ")) }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_datacenter_rows_and_counts_incomplete_ones() {
        let dir = std::env::temp_dir().join(format!("nimbus-boavizta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("b.csv");
        std::fs::write(
            &path,
            "manufacturer,name,category,subcategory,gwp_total,gwp_use_ratio,yearly_tec,lifetime,gwp_manufacturing_ratio\n\
             Dell,PowerEdge R740,Datacenter,Server,8640,0.843,1760.3,4,0.152\n\
             Dell,PowerEdge X,Datacenter,Server,8000,0.8,,,0.1\n\
             Apple,MacBook,Workplace,Laptop,161,0.15,,3,0.76\n",
        )
        .expect("written");
        let (rows, incomplete) = read_boavizta(&path).expect("reads");
        assert_eq!((rows.len(), incomplete), (1, 1));
        let r = find(&rows, "Dell PowerEdge R740").expect("found");
        assert!((r.embodied_kg() - 8640.0 * 0.152).abs() < 1e-9);
        assert_eq!(r.lifetime_years, 4.0);
        let e = find(&rows, "Dell PowerEdge R750").expect_err("absent");
        assert!(e.contains("R750"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
