//! Bottom-up embodied carbon of a server's silicon with ACT's model (Gupta
//! et al., "ACT: Designing Sustainable Computer Systems with an
//! Architectural Carbon Modeling Tool", ISCA'22), from ACT's own data
//! files and bills of materials (`facebookresearch/ACT`, commit abc9fbb).
//!
//! Per silicon item of a BOM:
//! - logic (the default `model`): area × (fab intensity × EPA + GPA + MPA)
//!   ÷ fab yield, where EPA is the fab's energy per area of the process
//!   node, GPA its gas emissions per area at 95% or 99% abatement (97%:
//!   their mean, ACT's default), MPA the raw materials per area, and the
//!   fab intensity a source (`coal`, …) or a location (`taiwan`, ACT's
//!   default);
//! - `dram`, `flash`, `hdd`: capacity × carbon per GB of the process ÷ fab
//!   yield;
//! - `manual`: the `carbon` given;
//! - plus 150 g per IC package (`n_ics`). The default yield is 0.875.
//!
//! ACT's passives, materials, PCB, batteries and BOM imports are not
//! modelled: a BOM with those sections is refused, not partly counted.
//! ACT's integration test states the Dell R740's CPU, SSD and DRAM
//! totals; `tests::dell_r740_matches_act` reproduces them.

use std::path::Path;

use nimbus_trace::act::{Mapping, Node, quantity};

/// Grams per IC package (ACT's `CARBON_PER_IC_PACKAGE`).
pub const PACKAGE_G: f64 = 150.0;
/// ACT's default fab yield.
pub const DEFAULT_YIELD: f64 = 0.875;

/// ACT's process tables.
#[derive(Debug, Clone, Default)]
pub struct ActModel {
    /// Logic node → fab energy per area, kWh/cm².
    epa_kwh_per_cm2: Vec<(String, f64)>,
    /// Logic node → gas per area at 95% and 99% abatement, g/cm².
    gpa95_g_per_cm2: Vec<(String, f64)>,
    gpa99_g_per_cm2: Vec<(String, f64)>,
    /// Logic node → raw materials per area, g/cm².
    mpa_g_per_cm2: Vec<(String, f64)>,
    /// Storage process → g/GB, per kind (dram, flash, hdd).
    dram_g_per_gb: Vec<(String, f64)>,
    flash_g_per_gb: Vec<(String, f64)>,
    hdd_g_per_gb: Vec<(String, f64)>,
    /// Energy source or location → g/kWh.
    intensity_g_per_kwh: Vec<(String, f64)>,
}

/// One silicon item's embodied carbon.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its name in the BOM.
    pub name: String,
    /// Fabrication, g.
    pub fabrication_g: f64,
    /// Packaging, g.
    pub packaging_g: f64,
}

impl Item {
    /// Fabrication and packaging, kg.
    pub fn total_kg(&self) -> f64 {
        (self.fabrication_g + self.packaging_g) / 1e3
    }
}

fn lookup(table: &[(String, f64)], key: &str, what: &str) -> Result<f64, String> {
    table.iter().find(|(k, _)| k == key).map(|(_, v)| *v).ok_or_else(|| {
        format!(
            "unknown {what} {key:?}; known: {}",
            table.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// A mass in grams from `g`, `kg` or `t`.
fn grams(unit: &str) -> Option<f64> {
    match unit {
        "g" => Some(1.0),
        "kg" => Some(1e3),
        "t" => Some(1e6),
        _ => None,
    }
}

/// An area in cm² from `cm2` or `mm2`.
fn square_cm(unit: &str) -> Option<f64> {
    match unit {
        "cm2" => Some(1.0),
        "mm2" => Some(0.01),
        _ => None,
    }
}

/// A capacity in GB from `MB`, `GB` or `TB` (decimal, as ACT's pint units).
fn gigabytes(unit: &str) -> Option<f64> {
    match unit {
        "MB" => Some(1e-3),
        "GB" => Some(1.0),
        "TB" => Some(1e3),
        _ => None,
    }
}

/// Reads a flat table whose values are `<number> <numerator>/<denominator>`,
/// converted to the base units by the two scale functions.
fn read_table(
    path: &Path,
    numerator: fn(&str) -> Option<f64>,
    denominator: fn(&str) -> Option<f64>,
) -> Result<Vec<(String, f64)>, String> {
    let map = nimbus_trace::act::read(nimbus_trace::Source::file(path)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (key, node) in &map.entries {
        let Node::Text(text) = node else {
            return Err(format!("{}: `{key}` is a mapping; a quantity was expected", path.display()));
        };
        let bad = || format!("{}: `{key}`: {text:?} is not a quantity in the expected units", path.display());
        let (value, unit) = quantity(text).ok_or_else(bad)?;
        let (num, den) = unit.split_once('/').ok_or_else(bad)?;
        let scale = numerator(num).ok_or_else(bad)? / denominator(den).ok_or_else(bad)?;
        if !(value.is_finite() && value >= 0.0) {
            return Err(bad());
        }
        out.push((key.clone(), value * scale));
    }
    Ok(out)
}

fn kwh(unit: &str) -> Option<f64> {
    match unit {
        "kWh" => Some(1.0),
        "Wh" => Some(1e-3),
        _ => None,
    }
}

fn per_kwh(unit: &str) -> Option<f64> {
    kwh(unit)
}

/// Every `*.yaml` of `dir`, in name order.
fn yaml_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.metadata().is_ok_and(|m| m.len() > 0))
        .collect();
    files.sort();
    Ok(files)
}

impl ActModel {
    /// Reads ACT's `models` directory (`logic/{epa,gpa_95,gpa_99,materials}.yaml`,
    /// every file of `dram/`, `ssd/`, `hdd/`, and
    /// `carbon_intensity/{location_2022,source}.yaml`).
    pub fn load(models: &Path) -> Result<ActModel, String> {
        let per_cm2 = |f: &str| read_table(&models.join("logic").join(f), grams, square_cm);
        let mut m = ActModel {
            epa_kwh_per_cm2: read_table(&models.join("logic/epa.yaml"), kwh, square_cm)?,
            gpa95_g_per_cm2: per_cm2("gpa_95.yaml")?,
            gpa99_g_per_cm2: per_cm2("gpa_99.yaml")?,
            mpa_g_per_cm2: per_cm2("materials.yaml")?,
            ..ActModel::default()
        };
        for (dir, table) in
            [("dram", &mut m.dram_g_per_gb), ("ssd", &mut m.flash_g_per_gb), ("hdd", &mut m.hdd_g_per_gb)]
        {
            for f in yaml_files(&models.join(dir))? {
                table.extend(read_table(&f, grams, gigabytes)?);
            }
        }
        // `location.yaml` is a link to the current year's file in ACT's
        // repository; 2022 is the year it points to.
        for f in ["carbon_intensity/location_2022.yaml", "carbon_intensity/source.yaml"] {
            m.intensity_g_per_kwh.extend(read_table(&models.join(f), grams, per_kwh)?);
        }
        Ok(m)
    }

    /// The silicon items of a BOM file and their carbon.
    pub fn bom(&self, path: &Path) -> Result<Vec<Item>, String> {
        let doc = nimbus_trace::act::read(nimbus_trace::Source::file(path)).map_err(|e| e.to_string())?;
        self.bom_of(&doc).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// [`ActModel::bom`] of a parsed document.
    pub fn bom_of(&self, doc: &Mapping) -> Result<Vec<Item>, String> {
        for (key, _) in &doc.entries {
            if !matches!(key.as_str(), "name" | "description" | "silicon") {
                return Err(format!(
                    "section `{key}` is not modelled (only `silicon`: ACT's passives, materials, PCBs, batteries and imports are not)"
                ));
            }
        }
        let Some(Node::Map(silicon)) = doc.get("silicon") else {
            return Err("no `silicon` mapping".into());
        };
        silicon
            .entries
            .iter()
            .map(|(name, node)| self.item(name, node).map_err(|e| format!("`silicon.{name}`: {e}")))
            .collect()
    }

    fn item(&self, name: &str, node: &Node) -> Result<Item, String> {
        let Node::Map(spec) = node else { return Err("a mapping of the item's keys was expected".into()) };
        let text = |key: &str| -> Result<Option<&str>, String> {
            match spec.get(key) {
                None => Ok(None),
                Some(Node::Text(t)) => Ok(Some(t.as_str())),
                Some(Node::Map(_)) => Err(format!("`{key}` is a mapping")),
            }
        };
        for (key, _) in &spec.entries {
            if !matches!(
                key.as_str(),
                "model"
                    | "area"
                    | "capacity"
                    | "n_ics"
                    | "process"
                    | "carbon"
                    | "ctype"
                    | "fab_yield"
                    | "fab_ci"
                    | "gpa"
            ) {
                return Err(format!("unknown key `{key}`"));
            }
        }
        let fab_yield = match text("fab_yield")? {
            None => DEFAULT_YIELD,
            Some(t) => match t.trim().parse::<f64>() {
                Ok(y) if y > 0.0 && y <= 1.0 => y,
                _ => return Err(format!("fab_yield {t:?} is not in (0, 1]")),
            },
        };
        let n_ics = match text("n_ics")? {
            None => 0.0,
            Some(t) => t.trim().parse::<u32>().map_err(|_| format!("n_ics {t:?} is not a whole number"))?.into(),
        };
        let process = text("process")?;
        let measure = |key: &str, scale: fn(&str) -> Option<f64>| -> Result<f64, String> {
            let t = text(key)?.ok_or_else(|| format!("`{key}` is missing"))?;
            let (v, unit) = quantity(t).ok_or_else(|| format!("{key} {t:?} is not a quantity"))?;
            let s = scale(&unit).ok_or_else(|| format!("{key} {t:?}: unit `{unit}` not understood"))?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{key} {t:?} is negative or not finite"));
            }
            Ok(v * s)
        };
        let fabrication_g = match text("model")?.unwrap_or("logic") {
            "logic" => {
                let node = process.ok_or("`process` (the logic node, e.g. 28nm) is missing")?;
                let area = measure("area", square_cm)?;
                let gpa = match text("gpa")?.unwrap_or("97") {
                    "95" => lookup(&self.gpa95_g_per_cm2, node, "logic process")?,
                    "99" => lookup(&self.gpa99_g_per_cm2, node, "logic process")?,
                    "97" => {
                        (lookup(&self.gpa95_g_per_cm2, node, "logic process")?
                            + lookup(&self.gpa99_g_per_cm2, node, "logic process")?)
                            / 2.0
                    }
                    other => return Err(format!("gpa {other:?}: 95, 97 or 99")),
                };
                let ci = lookup(&self.intensity_g_per_kwh, text("fab_ci")?.unwrap_or("taiwan"), "fab_ci")?;
                let epa = lookup(&self.epa_kwh_per_cm2, node, "logic process")?;
                let mpa = lookup(&self.mpa_g_per_cm2, node, "logic process")?;
                area * (ci * epa + gpa + mpa) / fab_yield
            }
            kind @ ("dram" | "flash" | "hdd") => {
                let table = match kind {
                    "dram" => &self.dram_g_per_gb,
                    "flash" => &self.flash_g_per_gb,
                    _ => &self.hdd_g_per_gb,
                };
                let process = process.ok_or_else(|| format!("`process` (a {kind} process) is missing"))?;
                measure("capacity", gigabytes)? * lookup(table, process, &format!("{kind} process"))? / fab_yield
            }
            "manual" => measure("carbon", grams)?,
            other => return Err(format!("model {other:?}: logic, dram, flash, hdd or manual")),
        };
        Ok(Item { name: name.to_string(), fabrication_g, packaging_g: n_ics * PACKAGE_G })
    }
}

/// Total kg of items whose name starts with `prefix`.
pub fn total_kg(items: &[Item], prefix: &str) -> f64 {
    items.iter().filter(|i| i.name.starts_with(prefix)).map(Item::total_kg).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Option<std::path::PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/embodied-carbon/act_models");
        if dir.join("boms/dellr740.yaml").is_file() {
            Some(dir)
        } else {
            eprintln!("skipped: {} is absent", dir.display());
            None
        }
    }

    #[test]
    fn dell_r740_matches_act() {
        let Some(dir) = shared() else { return };
        let model = ActModel::load(&dir.join("models")).expect("loads");
        let items = model.bom(&dir.join("boms/dellr740.yaml")).expect("reads");
        // ACT's integration test (act/tests/integration_tests.py).
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
        assert!(close(total_kg(&items, "cpu"), 23.143405714285716, 1e-9), "{}", total_kg(&items, "cpu"));
        assert!(close(total_kg(&items, "ssd.secondary"), 62.75 + 19.0 * 0.15, 1e-9));
        assert!(close(total_kg(&items, "ssd.main"), 8.0 * (136.0457142857143 + 1.95), 1e-9));
        assert!(close(total_kg(&items, "dram.main"), 330.4285714285714, 1e-9));
        let total = total_kg(&items, "");
        eprintln!("Dell R740 silicon: {total:.1} kg CO2e (ACT)");
        assert!(close(total, 23.1434 + 65.6 + 8.0 * 137.9957 + 330.4286, 0.1), "{total}");
    }

    #[test]
    fn items_by_hand_and_bad_boms() {
        let mut m = ActModel::default();
        m.epa_kwh_per_cm2.push(("28nm".into(), 0.9));
        m.gpa95_g_per_cm2.push(("28nm".into(), 175.0));
        m.gpa99_g_per_cm2.push(("28nm".into(), 100.0));
        m.mpa_g_per_cm2.push(("28nm".into(), 500.0));
        m.intensity_g_per_kwh.push(("coal".into(), 820.0));
        m.intensity_g_per_kwh.push(("taiwan".into(), 583.0));
        m.dram_g_per_gb.push(("ddr4_10nm".into(), 65.0));
        let doc =
            |text: &str| nimbus_trace::act::read(nimbus_trace::Source::bytes(Path::new("b.yaml"), text.as_bytes()));
        // 100 mm² at 28 nm, coal, 95%: 1 cm² × (820 × 0.9 + 175 + 500) ÷ 0.875
        // = 1,614.857 g, plus one package.
        let bom = doc("silicon:\n  cpu:\n    area: 100 mm2\n    process: 28nm\n    gpa: 95\n    fab_ci: coal\n    n_ics: 1\n  dram:\n    model: dram\n    process: ddr4_10nm\n    capacity: 0.5 TB\n    fab_yield: 1\n").expect("parses");
        let items = m.bom_of(&bom).expect("computes");
        assert!((items[0].fabrication_g - 1413.0 / 0.875).abs() < 1e-9);
        assert_eq!(items[0].packaging_g, 150.0);
        assert!((items[1].fabrication_g - 500.0 * 65.0).abs() < 1e-9);
        // Defaults: 97% abatement (mean of 95 and 99), Taiwan, yield 0.875.
        let bom = doc("silicon:\n  cpu:\n    area: 1 cm2\n    process: 28nm\n").expect("parses");
        let items = m.bom_of(&bom).expect("computes");
        assert!((items[0].fabrication_g - (583.0 * 0.9 + 137.5 + 500.0) / 0.875).abs() < 1e-9);
        for (text, needle) in [
            (
                "passives:\n  c: 1\nsilicon:\n  a:\n    area: 1 cm2\n    process: 28nm\n",
                "section `passives` is not modelled",
            ),
            ("silicon:\n  a:\n    area: 1 cm2\n    process: 3nm\n", "unknown logic process \"3nm\"; known: 28nm"),
            ("silicon:\n  a:\n    area: 1 furlong\n    process: 28nm\n", "unit `furlong`"),
            ("silicon:\n  a:\n    area: 1 cm2\n    process: 28nm\n    fab_yield: 0\n", "fab_yield"),
            ("silicon:\n  a:\n    area: 1 cm2\n    process: 28nm\n    colour: red\n", "unknown key `colour`"),
            (
                "silicon:\n  a:\n    model: dram\n    capacity: 1 GB\n    process: ddr9\n",
                "`silicon.a`: unknown dram process",
            ),
        ] {
            let e = m.bom_of(&doc(text).expect("parses")).expect_err(text);
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
