//! Datacenter topologies: clusters of hosts with cores, memory and a power
//! model, read from OpenDC's topology JSON or given inline.
//!
//! Both OpenDC layouts are read:
//! - the experiment layout (`opendc-traces/surf_week/topology_surf.json`):
//!   `cpu.coreSpeed` in MHz, `memory.memorySize` in MB,
//!   `cpuPowerModel.modelType`, plain numbers;
//! - the SDK layout (`opendc-demo/topologies/*.json`): quantities as text
//!   with units (`"2.1 GHz"`, `"100000 MiB"`, `"180 Watts"`),
//!   `cpuPowerModel.type`, and a cluster `powerSource.carbon` that names a
//!   carbon trace (resolved beside the topology's parent directory, as
//!   OpenDC's demo does: `carbon_traces/NL_2021-2024.parquet`).
//!
//! Keys the twin does not model (GPUs, batteries, PSU efficiency) are
//! refused with a message, never ignored.

use std::path::{Path, PathBuf};

use nimbus_model::power::{PowerExtras, PowerModel};
use serde_json::{Map, Value};

/// One host type, `count` times.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// Name in the topology.
    pub name: String,
    /// How many identical hosts.
    pub count: u32,
    /// CPU cores.
    pub cores: u32,
    /// MHz per core.
    pub core_mhz: f64,
    /// Memory, MB (10^6 bytes).
    pub memory_mb: f64,
    /// CPU power as a function of utilisation.
    pub power: PowerModel,
}

impl HostSpec {
    /// Total CPU capacity, MHz.
    pub fn capacity_mhz(&self) -> f64 {
        self.cores as f64 * self.core_mhz
    }
}

/// A group of hosts on one power source.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Name in the topology.
    pub name: String,
    /// Host types.
    pub hosts: Vec<HostSpec>,
    /// The carbon-intensity trace its power source names, if any.
    pub carbon_trace: Option<PathBuf>,
}

/// Clusters of hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Where it came from (a file, or `inline`).
    pub origin: String,
    /// Its clusters.
    pub clusters: Vec<Cluster>,
}

/// At most this many hosts in one topology (CloudSim Plus' stress case has
/// 20,000).
pub const MAX_HOSTS: u64 = 1_000_000;

impl Topology {
    /// Total hosts.
    pub fn host_count(&self) -> u64 {
        self.clusters.iter().flat_map(|c| &c.hosts).map(|h| h.count as u64).sum()
    }

    /// Every host, expanded, in topology order (cluster, host type, copy).
    pub fn expand(&self) -> Vec<&HostSpec> {
        let mut out = Vec::new();
        for c in &self.clusters {
            for h in &c.hosts {
                out.extend(std::iter::repeat_n(h, h.count as usize));
            }
        }
        out
    }

    /// The one carbon trace the clusters name (an error if they name
    /// different ones: one power source per run is modelled).
    pub fn carbon_trace(&self) -> Result<Option<&Path>, String> {
        let mut named = self.clusters.iter().filter_map(|c| c.carbon_trace.as_deref());
        let first = named.next();
        if let (Some(a), Some(b)) = (first, named.next().filter(|b| Some(*b) != first)) {
            return Err(format!(
                "{}: clusters name different carbon traces ({} and {}); one power source per run is modelled",
                self.origin,
                a.display(),
                b.display()
            ));
        }
        Ok(first)
    }

    /// One cluster of `count` identical hosts.
    pub fn uniform(count: u32, cores: u32, core_mhz: f64, memory_mb: f64, power: PowerModel) -> Topology {
        let host = HostSpec { name: "host".into(), count, cores, core_mhz, memory_mb, power };
        Topology {
            origin: "inline".into(),
            clusters: vec![Cluster { name: "cluster".into(), hosts: vec![host], carbon_trace: None }],
        }
    }
}

/// Reads an OpenDC topology file.
pub fn read(path: &Path) -> Result<Topology, String> {
    let text =
        nimbus_trace::input::read_document(nimbus_trace::Source::file(path), 16 << 20).map_err(|e| e.to_string())?;
    parse(&text, path)
}

/// Parses an OpenDC topology document; `path` names it in errors and
/// anchors relative carbon-trace names.
pub fn parse(text: &str, path: &Path) -> Result<Topology, String> {
    let origin = path.display().to_string();
    let root: Value = serde_json::from_str(text).map_err(|e| format!("{origin}: not valid JSON: {e}"))?;
    let err = |at: &str, msg: String| format!("{origin}: {at}: {msg}");
    let root = root.as_object().ok_or_else(|| err("top level", "expected an object".into()))?;
    only(root, &["clusters"]).map_err(|m| err("top level", m))?;
    let clusters = root
        .get("clusters")
        .and_then(Value::as_array)
        .ok_or_else(|| err("top level", "expected a `clusters` array".into()))?;
    // Demo topologies live in `<root>/topologies/`; their trace names are
    // relative to `<root>`.
    let base = path.parent().and_then(Path::parent).unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let mut total = 0u64;
    for (ci, c) in clusters.iter().enumerate() {
        let at = format!("clusters[{ci}]");
        let c = c.as_object().ok_or_else(|| err(&at, "expected an object".into()))?;
        only(c, &["name", "hosts", "powerSource", "count"]).map_err(|m| err(&at, m))?;
        let name = c.get("name").and_then(Value::as_str).unwrap_or("cluster").to_string();
        let copies = count_of(c).map_err(|m| err(&at, m))?;
        let hosts =
            c.get("hosts").and_then(Value::as_array).ok_or_else(|| err(&at, "expected a `hosts` array".into()))?;
        let mut specs = Vec::new();
        for (hi, h) in hosts.iter().enumerate() {
            let at = format!("{at}.hosts[{hi}]");
            let spec = host(h).map_err(|m| err(&at, m))?;
            total = total.saturating_add(spec.count as u64 * copies as u64);
            specs.push(spec);
        }
        let carbon_trace = match c.get("powerSource") {
            None => None,
            Some(p) => power_source(p, base).map_err(|m| err(&format!("{at}.powerSource"), m))?,
        };
        for _ in 0..copies {
            out.push(Cluster { name: name.clone(), hosts: specs.clone(), carbon_trace: carbon_trace.clone() });
        }
    }
    if out.is_empty() || total == 0 {
        return Err(format!("{origin}: no hosts"));
    }
    if total > MAX_HOSTS {
        return Err(format!("{origin}: {total} hosts; at most {MAX_HOSTS}"));
    }
    Ok(Topology { origin, clusters: out })
}

fn only(map: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let hint = match key.as_str() {
                "gpu" | "gpus" => " (GPUs are not modelled in the carbon domain yet)",
                "battery" => " (batteries are not modelled yet)",
                "powerModel" | "psu" | "cpus" => " (not modelled: one CPU power model per host)",
                _ => "",
            };
            return Err(format!("unknown key `{key}`{hint}; known: {}", known.join(", ")));
        }
    }
    Ok(())
}

fn count_of(map: &Map<String, Value>) -> Result<u32, String> {
    match map.get("count") {
        None => Ok(1),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_HOSTS).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| format!("`count` must be a whole number from 1 to {MAX_HOSTS}, not {v}")),
    }
}

fn host(h: &Value) -> Result<HostSpec, String> {
    let h = h.as_object().ok_or("expected an object")?;
    only(h, &["name", "count", "cpu", "memory", "cpuPowerModel"])?;
    let name = h.get("name").and_then(Value::as_str).unwrap_or("host").to_string();
    let count = count_of(h)?;
    let cpu = h.get("cpu").and_then(Value::as_object).ok_or("expected a `cpu` object")?;
    only(cpu, &["coreCount", "coreSpeed", "count"])?;
    let cores = cpu
        .get("coreCount")
        .and_then(Value::as_u64)
        .filter(|&n| (1..=100_000).contains(&n))
        .ok_or("cpu.coreCount must be a whole number from 1 to 100,000")? as u32;
    let sockets = count_of(cpu).map_err(|m| format!("cpu.{m}"))?;
    let core_mhz = quantity(cpu.get("coreSpeed").ok_or("cpu.coreSpeed is missing")?, Unit::Frequency)
        .map_err(|m| format!("cpu.coreSpeed: {m}"))?;
    if core_mhz <= 0.0 {
        return Err("cpu.coreSpeed must be above 0".into());
    }
    let memory = h.get("memory").and_then(Value::as_object).ok_or("expected a `memory` object")?;
    only(memory, &["memorySize", "size"])?;
    let memory_mb = quantity(
        memory.get("memorySize").or_else(|| memory.get("size")).ok_or("memory.size (or memorySize) is missing")?,
        Unit::Memory,
    )
    .map_err(|m| format!("memory: {m}"))?;
    let power = match h.get("cpuPowerModel") {
        None => return Err("`cpuPowerModel` is missing".into()),
        Some(p) => power_model(p).map_err(|m| format!("cpuPowerModel: {m}"))?,
    };
    let cores = cores
        .checked_mul(sockets)
        .filter(|&c| c <= 1_000_000)
        .ok_or(format!("cpu: {cores} cores × {sockets} sockets is more than 1,000,000 cores per host"))?;
    Ok(HostSpec { name, count, cores, core_mhz, memory_mb, power })
}

fn power_model(p: &Value) -> Result<PowerModel, String> {
    let p = p.as_object().ok_or("expected an object")?;
    only(
        p,
        &[
            "modelType",
            "type",
            "power",
            "idlePower",
            "maxPower",
            "calibrationFactor",
            "asymUtil",
            "dvfs",
            "powerLevels",
        ],
    )?;
    let kind = p.get("modelType").or_else(|| p.get("type")).and_then(Value::as_str).ok_or("`type` is missing")?;
    let watts = |key: &str| -> Result<Option<f64>, String> {
        p.get(key).map(|v| quantity(v, Unit::Power).map_err(|m| format!("{key}: {m}"))).transpose()
    };
    let number = |key: &str| -> Result<Option<f64>, String> {
        p.get(key).map(|v| v.as_f64().ok_or(format!("{key} must be a number, not {v}"))).transpose()
    };
    let extras = PowerExtras {
        calibration_factor: number("calibrationFactor")?,
        asym_util: number("asymUtil")?,
        dvfs: p.get("dvfs").map(|v| v.as_bool().ok_or(format!("dvfs must be true or false, not {v}"))).transpose()?,
        levels: p
            .get("powerLevels")
            .map(|v| {
                v.as_array()
                    .ok_or("powerLevels must be an array of watts".to_string())?
                    .iter()
                    .map(|x| quantity(x, Unit::Power))
                    .collect::<Result<Vec<f64>, String>>()
            })
            .transpose()?,
    };
    PowerModel::from_parts(kind, watts("power")?, watts("idlePower")?, watts("maxPower")?, &extras)
}

fn power_source(p: &Value, base: &Path) -> Result<Option<PathBuf>, String> {
    let p = p.as_object().ok_or("expected an object")?;
    only(p, &["carbon", "carbonTracePath"])?;
    if let Some(path) = p.get("carbonTracePath") {
        let path = path.as_str().ok_or("carbonTracePath must be text")?;
        return Ok(Some(base.join(path)));
    }
    let Some(carbon) = p.get("carbon") else { return Ok(None) };
    let carbon = carbon.as_object().ok_or("carbon: expected an object")?;
    only(carbon, &["type", "name", "path"])?;
    let name = carbon
        .get("name")
        .or_else(|| carbon.get("path"))
        .and_then(Value::as_str)
        .ok_or("carbon: expected a trace `name`")?;
    Ok(Some(base.join(name)))
}

#[derive(Clone, Copy)]
enum Unit {
    /// MHz.
    Frequency,
    /// MB.
    Memory,
    /// W.
    Power,
}

/// A number in the unit's base (MHz, MB, W), or text with a unit.
fn quantity(v: &Value, unit: Unit) -> Result<f64, String> {
    let x = match v {
        Value::Number(n) => n.as_f64().ok_or("not a number")?,
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'));
            let (num, unit_text) = match split {
                Some(i) => (s[..i].trim(), s[i..].trim()),
                None => (s, ""),
            };
            let n: f64 = num.parse().map_err(|_| format!("`{s}` does not start with a number"))?;
            let scale = match (unit, unit_text.to_ascii_lowercase().as_str()) {
                (_, "") => 1.0,
                (Unit::Frequency, "hz") => 1e-6,
                (Unit::Frequency, "khz") => 1e-3,
                (Unit::Frequency, "mhz") => 1.0,
                (Unit::Frequency, "ghz") => 1e3,
                (Unit::Memory, "b") => 1e-6,
                (Unit::Memory, "kb") => 1e-3,
                (Unit::Memory, "kib") => 1024.0 / 1e6,
                (Unit::Memory, "mb") => 1.0,
                (Unit::Memory, "mib") => 1_048_576.0 / 1e6,
                (Unit::Memory, "gb") => 1e3,
                (Unit::Memory, "gib") => 1_073_741_824.0 / 1e6,
                (Unit::Memory, "tb") => 1e6,
                (Unit::Memory, "tib") => 1_099_511_627_776.0 / 1e6,
                (Unit::Power, "w" | "watt" | "watts") => 1.0,
                (Unit::Power, "kw" | "kilowatt" | "kilowatts") => 1e3,
                (_, other) => return Err(format!("unknown unit `{other}` in `{s}`")),
            };
            n * scale
        }
        other => return Err(format!("expected a number or text with a unit, not {other}")),
    };
    if !x.is_finite() || x < 0.0 {
        return Err(format!("must be a finite number ≥ 0, not {x}"));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPERIMENT: &str = r#"{"clusters": [{"name": "C01", "hosts": [{"name": "H01",
        "cpu": {"coreCount": 16, "coreSpeed": 2100}, "memory": {"memorySize": 100000},
        "cpuPowerModel": {"modelType": "sqrt", "power": 400.0, "idlePower": 32.0, "maxPower": 180.0},
        "count": 277}]}]}"#;

    const SDK: &str = r#"{"clusters": [{"name": "C01", "hosts": [{"name": "H01", "count": 279,
        "cpu": {"coreCount": 16, "coreSpeed": "2.1 GHz"}, "memory": {"size": "100000 MiB"},
        "cpuPowerModel": {"type": "linear", "power": "400 Watts", "idlePower": "32 Watts", "maxPower": "180 Watts"}}],
        "powerSource": {"carbon": {"type": "named", "name": "carbon_traces/NL_2021-2024.parquet"}}}]}"#;

    #[test]
    fn both_layouts_read_alike() {
        let a = parse(EXPERIMENT, Path::new("surf/topology_surf.json")).expect("ok");
        assert_eq!(a.host_count(), 277);
        let h = &a.clusters[0].hosts[0];
        assert_eq!((h.cores, h.core_mhz, h.memory_mb), (16, 2100.0, 100_000.0));
        assert_eq!(h.power, PowerModel::Sqrt { idle_w: 32.0, max_w: 180.0 });
        assert_eq!(h.capacity_mhz(), 33_600.0);
        let b = parse(SDK, Path::new("demo/topologies/x.json")).expect("ok");
        let h = &b.clusters[0].hosts[0];
        assert_eq!((b.host_count(), h.cores, h.core_mhz), (279, 16, 2100.0));
        assert!((h.memory_mb - 104_857.6).abs() < 1e-9);
        assert_eq!(h.power, PowerModel::Linear { idle_w: 32.0, max_w: 180.0 });
        assert_eq!(b.carbon_trace().expect("ok"), Some(Path::new("demo/carbon_traces/NL_2021-2024.parquet")));
        assert_eq!(b.expand().len(), 279);
    }

    #[test]
    fn bad_topologies_say_where() {
        let p = Path::new("t.json");
        let e = parse(&EXPERIMENT.replace("sqrt", "quartic"), p).expect_err("an error");
        assert!(e.contains("clusters[0].hosts[0]") && e.contains("unknown power model `quartic`"), "{e}");
        let e = parse(&SDK.replace("2.1 GHz", "2.1 parsecs"), p).expect_err("an error");
        assert!(e.contains("cpu.coreSpeed") && e.contains("unknown unit `parsecs`"), "{e}");
        let e = parse(&EXPERIMENT.replace("\"count\": 277", "\"count\": 277, \"gpu\": {}"), p).expect_err("an error");
        assert!(e.contains("unknown key `gpu`") && e.contains("not modelled"), "{e}");
        let e = parse(&EXPERIMENT.replace("32.0", "-32.0"), p).expect_err("an error");
        assert!(e.contains("idlePower") && e.contains("≥ 0"), "{e}");
        let sockets = EXPERIMENT.replace("\"coreSpeed\": 2100", "\"coreSpeed\": 2100, \"count\": 1000000");
        let e = parse(&sockets, p).expect_err("an error");
        assert!(e.contains("more than 1,000,000 cores"), "{e}");
        let e = parse("{\"clusters\": []}", p).expect_err("an error");
        assert!(e.contains("no hosts"), "{e}");
        assert!(parse("not json", p).expect_err("an error").contains("not valid JSON"));
    }
}
