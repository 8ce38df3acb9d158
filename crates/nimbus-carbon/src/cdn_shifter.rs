//! CDN-Shifter: "Leveraging Spatial Workload Shifting to Decarbonize
//! Content Delivery Networks" (SoCC'24).
//!
//! **Mechanism.** Two timescales:
//! - **Load shifting**, every hour: a linear program routes each user
//!   region's demand to edge sites, minimising Σ_j (CI_j(t) + β·price_j(t))
//!   × E_j with E_j = PUE·(P_idle·n_j + (P_peak − P_idle)·load_j /
//!   per-server capacity), subject to serving all demand, each site's
//!   capacity, and an added-latency bound: region r may use site j only if
//!   RTT(r, j) − RTT(r, home(r)) ≤ ΔL.
//! - **Capacity shifting**, weekly: an outer linear program places the
//!   fleet's servers (the total fixed) on the sites for the coming week,
//!   on a forecast of each site's intensity (the previous week's mean per
//!   3-hour block of the day; the first week sees its own), with a carbon
//!   cost per moved server weighed against four weeks of savings; routing
//!   then runs hourly on that capacity.
//!
//! **Baseline:** latency-optimal serving (every region at its home site,
//! the one with the lowest RTT; no shifting), with each site sized for its
//! region's peak times a headroom.
//!
//! **Modelled, inferred:** no public code; the formulation above is the
//! paper's description made concrete. Demand is synthetic (the Akamai
//! traces are private): one user region per site, equal weights, a daily
//! cycle peaking at 20:00 local time (standard time offsets). Sites are
//! the 34 GCP regions of the latency matrix labelled by Electricity Maps
//! zone; a site with no intensity column is left out and said so. Servers
//! stay on (idle power counts wherever capacity sits). Added solar
//! (`solar_fraction`) follows a clear-sky day by local time, as no
//! per-site weather is in the data: behind each site's meter (the routing
//! LP then pays only for the grid energy above the panels' output) or on
//! each zone's grid ([`Sites::with_grid_solar`]); capacity shifting plans
//! without it.

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_solve::{Model, Sense, SolveOptions};
use nimbus_trace::error::for_each_csv_row;

/// Standard-time UTC offsets (hours) of the matrix's zones.
pub const UTC_OFFSETS: &[(&str, f64)] = &[
    ("TW", 8.0),
    ("HK", 8.0),
    ("JP-TK", 9.0),
    ("JP-KN", 9.0),
    ("KR", 9.0),
    ("IN-MH", 5.5),
    ("IN-DL", 5.5),
    ("SG", 8.0),
    ("ID", 7.0),
    ("AUS-NSW", 10.0),
    ("AUS-VIC", 10.0),
    ("PL", 1.0),
    ("FI", 2.0),
    ("ES", 1.0),
    ("BE", 1.0),
    ("GB", 0.0),
    ("DE", 1.0),
    ("NL", 1.0),
    ("CH", 1.0),
    ("IT-NO", 1.0),
    ("FR", 1.0),
    ("CA-QC", -5.0),
    ("CA-ON", -5.0),
    ("BR-CS", -3.0),
    ("CL-SEN", -4.0),
    ("US-CENT-SWPP", -6.0),
    ("US-CAR-SC", -5.0),
    ("US-MIDA-PJM", -5.0),
    ("US-TEX-ERCO", -6.0),
    ("US-NW-PACW", -8.0),
    ("US-CAL-CISO", -8.0),
    ("US-NW-PACE", -7.0),
    ("US-NW-NEVP", -8.0),
];

/// Zones the latency matrix spells differently from the intensity files.
const ALIASES: &[(&str, &str)] = &[("AUS-NSW", "AU-NSW"), ("AUS-VIC", "AU-VIC")];

/// Which sites a region takes.
pub fn in_region(region: &str, zone: &str) -> bool {
    const EUROPE: &[&str] = &["PL", "FI", "ES", "BE", "GB", "DE", "NL", "CH", "IT-NO", "FR"];
    match region {
        "us" => zone.starts_with("US-"),
        "europe" => EUROPE.contains(&zone),
        _ => true,
    }
}

/// Edge sites with their round-trip times, intensity and prices.
#[derive(Debug, Clone, PartialEq)]
pub struct Sites {
    /// Site labels (zone; a repeated zone gets `#2`).
    pub names: Vec<String>,
    /// Electricity Maps zone of each site.
    pub zones: Vec<String>,
    /// RTT ms, [from][to].
    pub rtt_ms: Vec<Vec<f64>>,
    /// Hourly intensity per site, gCO2/kWh.
    pub intensity: Vec<Vec<f64>>,
    /// Hourly price per site, USD/MWh (None where the file has no zone).
    pub price: Vec<Option<Vec<f64>>>,
    /// UTC offset of each site, hours.
    pub utc_offset_h: Vec<f64>,
    /// Sites left out, and why.
    pub left_out: Vec<String>,
}

impl Sites {
    /// Reads the latency matrix and the wide hourly intensity file (and a
    /// wide price file, optional), keeping the sites of `region` (`us`,
    /// `europe` or `world`).
    pub fn read(latency: &Path, intensity: &Path, prices: Option<&Path>, region: &str) -> Result<Sites, String> {
        let text = nimbus_trace::input::read_document(nimbus_trace::Source::file(latency), 1 << 20)
            .map_err(|e| e.to_string())?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .ok_or(format!("{}: empty", latency.display()))?
            .split(',')
            .skip(1)
            .map(|s| s.trim().to_string())
            .collect();
        let mut matrix = Vec::new();
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != header.len() + 1 {
                return Err(format!(
                    "{}:{}: {} cells, expected {}",
                    latency.display(),
                    i + 2,
                    cells.len(),
                    header.len() + 1
                ));
            }
            let row: Result<Vec<f64>, String> = cells[1..]
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    c.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or(format!(
                        "{}:{}:{}: `{c}` is not a round-trip time in ms",
                        latency.display(),
                        i + 2,
                        j + 2
                    ))
                })
                .collect();
            matrix.push(row?);
        }
        if matrix.len() != header.len() {
            return Err(format!("{}: {} rows for {} columns", latency.display(), matrix.len(), header.len()));
        }
        let ci_columns =
            nimbus_trace::series::columns(nimbus_trace::Source::file(intensity)).map_err(|e| e.to_string())?;
        let price_columns = match prices {
            Some(p) => nimbus_trace::series::columns(nimbus_trace::Source::file(p)).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let mut keep = Vec::new();
        let mut left_out = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut names = Vec::new();
        for (i, zone) in header.iter().enumerate() {
            if !in_region(region, zone) {
                continue;
            }
            let column = ALIASES.iter().find(|a| a.0 == zone).map_or(zone.as_str(), |a| a.1);
            if !ci_columns.iter().any(|c| c == column) {
                left_out.push(format!("{zone}: no intensity column in {}", intensity.display()));
                continue;
            }
            let n = seen.entry(zone).or_insert(0);
            *n += 1;
            names.push(if *n == 1 { zone.clone() } else { format!("{zone}#{n}") });
            keep.push(i);
        }
        if keep.len() < 2 {
            return Err(format!("region `{region}` has {} sites with intensity; at least 2 are needed", keep.len()));
        }
        let zones: Vec<String> = keep.iter().map(|&i| header[i].clone()).collect();
        let column_of = |zone: &str| ALIASES.iter().find(|a| a.0 == zone).map_or(zone.to_string(), |a| a.1.to_string());
        let wanted: Vec<String> =
            zones.iter().map(|z| column_of(z)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let (ci, ci_start) = read_wide(intensity, &wanted, true)?;
        let price_wanted: Vec<String> = wanted.iter().filter(|z| price_columns.contains(z)).cloned().collect();
        let price = match prices {
            Some(p) if !price_wanted.is_empty() => {
                let (price, price_start) = read_wide(p, &price_wanted, false)?;
                // Hour t of one file must be hour t of the other.
                if price_start != ci_start || ci_start.is_none() {
                    let at = |s: Option<i64>| {
                        s.map_or("hour index 0 (no dates)".to_string(), nimbus_trace::series::format_utc)
                    };
                    return Err(format!(
                        "cannot align {} (from {}) with {} (from {}): give both files dated and starting at the same hour",
                        p.display(),
                        at(price_start),
                        intensity.display(),
                        at(ci_start)
                    ));
                }
                price
            }
            _ => BTreeMap::new(),
        };
        let offsets: Result<Vec<f64>, String> = zones
            .iter()
            .map(|z| {
                UTC_OFFSETS.iter().find(|o| o.0 == z).map(|o| o.1).ok_or(format!("no UTC offset known for zone `{z}`"))
            })
            .collect();
        let hours = ci.values().map(Vec::len).min().unwrap_or(0);
        Ok(Sites {
            names,
            rtt_ms: keep.iter().map(|&i| keep.iter().map(|&j| matrix[i][j]).collect()).collect(),
            intensity: zones.iter().map(|z| ci[&column_of(z)][..hours].to_vec()).collect(),
            price: zones.iter().map(|z| price.get(&column_of(z)).cloned()).collect(),
            zones,
            utc_offset_h: offsets?,
            left_out,
        })
    }

    /// The sites of `region` (`us`, `europe`, `world`).
    pub fn subset(&self, region: &str) -> Result<Sites, String> {
        let keep: Vec<usize> = (0..self.names.len()).filter(|&i| in_region(region, &self.zones[i])).collect();
        if keep.len() < 2 {
            return Err(format!("region `{region}` has {} sites; at least 2 are needed", keep.len()));
        }
        Ok(Sites {
            names: keep.iter().map(|&i| self.names[i].clone()).collect(),
            zones: keep.iter().map(|&i| self.zones[i].clone()).collect(),
            rtt_ms: keep.iter().map(|&i| keep.iter().map(|&j| self.rtt_ms[i][j]).collect()).collect(),
            intensity: keep.iter().map(|&i| self.intensity[i].clone()).collect(),
            price: keep.iter().map(|&i| self.price[i].clone()).collect(),
            utc_offset_h: keep.iter().map(|&i| self.utc_offset_h[i]).collect(),
            left_out: self.left_out.clone(),
        })
    }

    /// A stand-in when the data is absent: eight sites on three continents
    /// with RTTs from their distance in time zones and diurnal intensities
    /// of different levels (lowest at local noon, solar), a year long.
    pub fn synthetic() -> Sites {
        let sites: [(&str, f64, f64); 8] = [
            ("US-CAL-CISO", -8.0, 220.0),
            ("US-TEX-ERCO", -6.0, 380.0),
            ("US-MIDA-PJM", -5.0, 420.0),
            ("US-NW-PACW", -8.0, 90.0),
            ("FR", 1.0, 60.0),
            ("DE", 1.0, 380.0),
            ("ES", 1.0, 160.0),
            ("PL", 1.0, 700.0),
        ];
        let n = sites.len();
        let rtt = |a: usize, b: usize| {
            if a == b {
                5.0
            } else {
                10.0 + 12.0 * (sites[a].1 - sites[b].1).abs()
                    + if sites[a].1.signum() != sites[b].1.signum() { 60.0 } else { 0.0 }
            }
        };
        Sites {
            names: sites.iter().map(|s| s.0.to_string()).collect(),
            zones: sites.iter().map(|s| s.0.to_string()).collect(),
            rtt_ms: (0..n).map(|a| (0..n).map(|b| rtt(a, b)).collect()).collect(),
            intensity: sites
                .iter()
                .map(|&(_, off, mean)| {
                    (0..8760)
                        .map(|t| {
                            let local = (t as f64 + off).rem_euclid(24.0);
                            mean * (1.0 - 0.3 * (2.0 * std::f64::consts::PI * (local - 12.0) / 24.0).cos())
                        })
                        .collect()
                })
                .collect(),
            price: vec![None; n],
            utc_offset_h: sites.iter().map(|s| s.1).collect(),
            left_out: Vec::new(),
        }
    }

    /// The same sites on greener grids: solar added to every zone
    /// supplies `share` of its electricity at local solar noon on a
    /// clear-sky day ([`solar_kwh`] with a peak of 1), so each hour's
    /// intensity falls by that hour's solar share (CDN-Shifter's "added
    /// solar" what-if, as the decarbonization-potential tool adds
    /// renewables to a zone's mix; curtailment and storage are ignored).
    pub fn with_grid_solar(&self, share: f64) -> Sites {
        let mut greener = self.clone();
        for (j, series) in greener.intensity.iter_mut().enumerate() {
            for (t, ci) in series.iter_mut().enumerate() {
                *ci *= (1.0 - share * solar_kwh(1.0, self.utc_offset_h[j], t)).max(0.0);
            }
        }
        greener
    }

    /// Hours of intensity.
    pub fn hours(&self) -> usize {
        self.intensity.first().map_or(0, Vec::len)
    }

    /// A region's home: the site with the lowest RTT from it, itself on a
    /// tie (neighbouring regions can be as close as 5 ms).
    pub fn home(&self, r: usize) -> usize {
        let best = self.rtt_ms[r].iter().copied().fold(f64::INFINITY, f64::min);
        if self.rtt_ms[r][r] <= best {
            r
        } else {
            (0..self.names.len()).find(|&j| self.rtt_ms[r][j] <= best).unwrap_or(r)
        }
    }
}

/// Reads `columns` of a wide hourly file whose first column is an hour
/// index (0, 1, 2, …) or a UTC time one hour after the last; a skipped hour
/// is an error, never a silent shift. Intensities (`non_negative`) must be
/// ≥ 0; prices may be negative. Also returns the first time (seconds since
/// 1970) when the file is dated.
fn read_wide(path: &Path, columns: &[String], non_negative: bool) -> Result<(Wide, Option<i64>), String> {
    let header = nimbus_trace::series::columns(nimbus_trace::Source::file(path)).map_err(|e| e.to_string())?;
    let time = header.first().cloned().ok_or(format!("{}: no header", path.display()))?;
    let mut names: Vec<&str> = vec![time.as_str()];
    names.extend(columns.iter().map(String::as_str));
    let mut out: Wide = columns.iter().map(|c| (c.clone(), Vec::new())).collect();
    let mut row = 0i64;
    let mut first_s: Option<i64> = None;
    for_each_csv_row(nimbus_trace::Source::file(path), &names, |f| {
        let stamp = f.text(0)?.trim();
        let expected_ok = match stamp.parse::<i64>() {
            Ok(index) => index == row,
            Err(_) => match nimbus_trace::series::parse_utc_seconds(stamp) {
                Some(s) => s - *first_s.get_or_insert(s) == row * 3600,
                None => return Err(f.invalid(0, format!("`{stamp}` is neither an hour index nor a UTC time"))),
            },
        };
        if !expected_ok {
            return Err(
                f.invalid(0, format!("`{stamp}` is not hour {row} of the file: an hour is missing or repeated"))
            );
        }
        row += 1;
        for (i, c) in columns.iter().enumerate() {
            let v = f.f64(i + 1)?;
            if !v.is_finite() || (non_negative && v < 0.0) {
                return Err(f.invalid(i + 1, format!("{v} is negative or not finite")));
            }
            out.get_mut(c).expect("column").push(v);
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok((out, first_s))
}

/// Columns of a wide file by name.
type Wide = BTreeMap<String, Vec<f64>>;

/// The servers and their power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Watts of an idle server.
    pub idle_w: f64,
    /// Watts of a busy server.
    pub peak_w: f64,
    /// Demand units one server serves in an hour.
    pub per_server: f64,
    /// Facility overhead.
    pub pue: f64,
    /// Capacity per site over its region's peak demand (latency-optimal
    /// sizing).
    pub headroom: f64,
}

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shifting {
    /// Added-latency bound ΔL, ms (None: latency-optimal serving).
    pub delta_ms: Option<f64>,
    /// Weight of price (USD/MWh) against intensity (gCO2/kWh).
    pub price_weight: f64,
    /// Weekly capacity shifting, with this carbon cost per moved server, kg.
    pub move_cost_kg: Option<f64>,
    /// Solar panels added at every site, their peak output this share of
    /// the site's full facility power at the start ([`solar_kwh`]).
    pub solar_fraction: f64,
}

/// Solar energy at a site in UTC hour `t`: `peak_kw` times a clear-sky
/// day (the positive half of a sine from 06:00 to 18:00 local time,
/// sampled at the middle of the hour). No per-site weather is in the data:
/// every day is clear, which overstates solar where skies are not.
pub fn solar_kwh(peak_kw: f64, utc_offset_h: f64, t: usize) -> f64 {
    let local = (t as f64 + 0.5 + utc_offset_h).rem_euclid(24.0);
    peak_kw * (std::f64::consts::PI * (local - 6.0) / 12.0).sin().max(0.0)
}

/// A year (or whatever the trace holds) of routing.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Carbon, g.
    pub carbon_g: f64,
    /// Carbon of moving servers, g.
    pub moves_g: f64,
    /// Energy, kWh.
    pub energy_kwh: f64,
    /// Electricity cost where prices exist, USD.
    pub cost_usd: f64,
    /// Demand-weighted mean added RTT, ms.
    pub added_rtt_ms: f64,
    /// Servers moved over the run.
    pub servers_moved: f64,
    /// Linear programs solved.
    pub lps: u64,
    /// Solar energy used, kWh.
    pub solar_kwh: f64,
    /// Carbon per hour, g.
    pub hourly_g: Vec<f64>,
    /// Servers per site at the end.
    pub capacity: Vec<f64>,
}

/// Demand of every site's users at UTC hour `t` (units per hour): a daily
/// cycle from 0.3 to 1 peaking at 20:00 local time.
pub fn demand(sites: &Sites, t: usize) -> Vec<f64> {
    sites
        .utc_offset_h
        .iter()
        .map(|off| {
            let local = (t as f64 + off).rem_euclid(24.0);
            0.3 + 0.7 * (1.0 + (2.0 * std::f64::consts::PI * (local - 20.0) / 24.0).cos()) / 2.0
        })
        .collect()
}

/// Which (region, site) pairs meet the latency bound.
fn allowed(sites: &Sites, delta_ms: Option<f64>) -> Vec<Vec<usize>> {
    (0..sites.names.len())
        .map(|r| {
            let home = sites.home(r);
            match delta_ms {
                None => vec![home],
                Some(d) => {
                    (0..sites.names.len()).filter(|&j| sites.rtt_ms[r][j] - sites.rtt_ms[r][home] <= d + 1e-9).collect()
                }
            }
        })
        .collect()
}

/// Site cost weights at hour `t`: intensity + β·price.
fn weights(sites: &Sites, t: usize, beta: f64) -> Vec<f64> {
    (0..sites.names.len())
        .map(|j| sites.intensity[j][t] + beta * sites.price[j].as_ref().map_or(0.0, |p| p[t.min(p.len() - 1)]))
        .collect()
}

/// Loads per site, and each region's flows (site, units).
type Routing = (Vec<f64>, Vec<Vec<(usize, f64)>>);

/// A site's energy this hour: idle kWh, kWh per unit of load, and the
/// solar kWh that cover it before the grid does.
struct SiteEnergy<'a> {
    idle_kwh: &'a [f64],
    dyn_kwh_per_unit: f64,
    solar_kwh: &'a [f64],
}

/// Routes one hour: loads per site minimising Σ w_j·load_j, or, where
/// solar covers part of a site's energy, Σ w_j·(grid energy)_j.
fn route(
    demand: &[f64],
    allowed: &[Vec<usize>],
    capacity: &[f64],
    w: &[f64],
    energy: &SiteEnergy<'_>,
) -> Result<Routing, String> {
    if allowed.iter().all(|a| a.len() == 1) {
        // No choice (latency-optimal serving): every region at its one site.
        let mut load = vec![0.0; capacity.len()];
        for (r, a) in allowed.iter().enumerate() {
            load[a[0]] += demand[r];
        }
        if let Some(j) = (0..load.len()).find(|&j| load[j] > capacity[j] * (1.0 + 1e-9)) {
            return Err(format!("site {j}: demand {} above its capacity {}", load[j], capacity[j]));
        }
        return Ok((load, allowed.iter().enumerate().map(|(r, a)| vec![(a[0], demand[r])]).collect()));
    }
    let solar = energy.solar_kwh.iter().any(|&s| s > 0.0);
    let mut model = Model::new();
    let mut vars = Vec::new();
    let mut into: Vec<Vec<(nimbus_solve::Var, f64)>> = vec![Vec::new(); capacity.len()];
    for (r, sites) in allowed.iter().enumerate() {
        let mut row = Vec::new();
        for &j in sites {
            let x = model.continuous(0.0, f64::INFINITY);
            if !solar {
                model.objective_term(x, w[j]);
            }
            into[j].push((x, 1.0));
            row.push((j, x));
        }
        model.eq(row.iter().map(|&(_, x)| (x, 1.0)).collect(), demand[r]);
        vars.push(row);
    }
    for (j, terms) in into.into_iter().enumerate() {
        if terms.is_empty() {
            continue;
        }
        if solar {
            // grid_j ≥ idle_j + dyn·load_j − solar_j, grid_j ≥ 0.
            let grid = model.continuous(0.0, f64::INFINITY);
            model.objective_term(grid, w[j]);
            let mut row = vec![(grid, 1.0)];
            row.extend(terms.iter().map(|&(x, _)| (x, -energy.dyn_kwh_per_unit)));
            model.ge(row, energy.idle_kwh[j] - energy.solar_kwh[j]);
        }
        model.le(terms, capacity[j]);
    }
    let s = model
        .solve(Sense::Minimise, &SolveOptions::default())
        .map_err(|e| format!("the routing LP has no solution (capacity below demand?): {e}"))?;
    let mut load = vec![0.0; capacity.len()];
    let flows = vars
        .iter()
        .map(|row| {
            row.iter()
                .map(|&(j, x)| {
                    let v = s.value(x).max(0.0);
                    load[j] += v;
                    (j, v)
                })
                .collect()
        })
        .collect();
    Ok((load, flows))
}

/// The capacity plan: servers per site minimising the forecast carbon of
/// 8 three-hour blocks (each at its busiest hour's demand, for 3 hours × 7
/// days × `HORIZON_WEEKS`, the time a placement is expected to stay) plus
/// the carbon of the moves.
#[allow(clippy::too_many_arguments)]
fn plan_capacity(
    sites: &Sites,
    edge: &Edge,
    allowed: &[Vec<usize>],
    forecast: &[Vec<f64>],
    block_demand: &[Vec<f64>],
    previous: &[f64],
    move_cost_g: f64,
) -> Result<Vec<f64>, String> {
    let n = sites.names.len();
    let total: f64 = previous.iter().sum();
    let mut model = Model::new();
    let cap: Vec<_> = (0..n).map(|_| model.continuous(0.0, f64::INFINITY)).collect();
    model.eq(cap.iter().map(|&c| (c, 1.0)).collect(), total);
    let hours_per_block = 3.0 * 7.0 * HORIZON_WEEKS;
    let idle_kwh_per_block = edge.idle_w * hours_per_block * edge.pue / 1000.0;
    let dyn_kwh_per_unit = (edge.peak_w - edge.idle_w) / edge.per_server * hours_per_block * edge.pue / 1000.0;
    for (j, &c) in cap.iter().enumerate() {
        let m = model.continuous(0.0, f64::INFINITY);
        model.objective_term(m, move_cost_g);
        model.ge(vec![(m, 1.0), (c, -1.0)], -previous[j]);
        model.ge(vec![(m, 1.0), (c, 1.0)], previous[j]);
        let idle: f64 = forecast[j].iter().map(|ci| ci * idle_kwh_per_block).sum();
        model.objective_term(c, idle);
    }
    for (b, d) in block_demand.iter().enumerate() {
        let mut into: Vec<Vec<(nimbus_solve::Var, f64)>> = vec![Vec::new(); n];
        for (r, sites_r) in allowed.iter().enumerate() {
            let mut row = Vec::new();
            for &j in sites_r {
                let x = model.continuous(0.0, f64::INFINITY);
                model.objective_term(x, forecast[j][b] * dyn_kwh_per_unit);
                into[j].push((x, 1.0));
                row.push((x, 1.0));
            }
            model.eq(row, d[r]);
        }
        for (j, mut terms) in into.into_iter().enumerate() {
            terms.push((cap[j], -edge.per_server));
            model.le(terms, 0.0);
        }
    }
    let s =
        model.solve(Sense::Minimise, &SolveOptions::default()).map_err(|e| format!("the capacity LP failed: {e}"))?;
    Ok(cap.iter().map(|&c| s.value(c).max(0.0)).collect())
}

/// Weeks a capacity placement is planned to last (inferred): the outer LP
/// runs weekly but weighs a move against this many weeks of savings.
pub const HORIZON_WEEKS: f64 = 4.0;

/// Runs `hours` hours (all when None) of routing under `shifting`.
pub fn run(sites: &Sites, edge: &Edge, shifting: &Shifting, hours: Option<usize>) -> Result<Outcome, String> {
    let n = sites.names.len();
    let hours = hours.unwrap_or(sites.hours()).min(sites.hours());
    if hours == 0 {
        return Err("no hours of intensity".into());
    }
    if shifting.price_weight > 0.0
        && let Some(j) = (0..n).find(|&j| sites.price[j].is_none())
    {
        return Err(format!("price_weight > 0, but site {} has no price column", sites.names[j]));
    }
    let allowed = allowed(sites, shifting.delta_ms);
    let homes: Vec<usize> = (0..n).map(|r| sites.home(r)).collect();
    // Latency-optimal sizing: each site for its region's peak.
    let peak: Vec<f64> = (0..24)
        .map(|t| demand(sites, t))
        .fold(vec![0.0; n], |acc, d| acc.iter().zip(&d).map(|(a, b)| a.max(*b)).collect());
    let mut capacity: Vec<f64> = peak.iter().map(|p| p * edge.headroom / edge.per_server).collect();
    let dyn_kwh_per_unit = (edge.peak_w - edge.idle_w) / edge.per_server * edge.pue / 1000.0;
    // Panels stay where they were built, whatever capacity shifting moves.
    let solar_peak_kw: Vec<f64> =
        capacity.iter().map(|c| shifting.solar_fraction * c * edge.peak_w * edge.pue / 1000.0).collect();
    let mut out = Outcome {
        carbon_g: 0.0,
        moves_g: 0.0,
        energy_kwh: 0.0,
        cost_usd: 0.0,
        added_rtt_ms: 0.0,
        servers_moved: 0.0,
        lps: 0,
        solar_kwh: 0.0,
        hourly_g: Vec::with_capacity(hours),
        capacity: Vec::new(),
    };
    let mut served = 0.0;
    for t in 0..hours {
        if let Some(move_kg) = shifting.move_cost_kg
            && shifting.delta_ms.is_some()
            && t % 168 == 0
        {
            // Forecast: last week's mean per 3-hour block (the first week
            // sees its own).
            let from = if t >= 168 { t - 168 } else { t };
            let to = (from + 168).min(hours);
            let forecast: Vec<Vec<f64>> = (0..n)
                .map(|j| {
                    (0..8)
                        .map(|b| {
                            let v: Vec<f64> =
                                (from..to).filter(|h| (h % 24) / 3 == b).map(|h| sites.intensity[j][h]).collect();
                            v.iter().sum::<f64>() / v.len().max(1) as f64
                        })
                        .collect()
                })
                .collect();
            // Each block plans for its busiest hour, so every hour fits.
            let block_demand: Vec<Vec<f64>> = (0..8)
                .map(|b| {
                    let ds: Vec<Vec<f64>> = (0..3).map(|k| demand(sites, b * 3 + k)).collect();
                    (0..n).map(|r| ds.iter().map(|d| d[r]).fold(0.0, f64::max)).collect()
                })
                .collect();
            let planned = plan_capacity(sites, edge, &allowed, &forecast, &block_demand, &capacity, move_kg * 1e3)?;
            out.lps += 1;
            let moved: f64 = planned.iter().zip(&capacity).map(|(a, b)| (a - b).abs()).sum::<f64>() / 2.0;
            out.servers_moved += moved;
            out.moves_g += moved * move_kg * 1e3;
            capacity = planned;
        }
        let d = demand(sites, t);
        let w = weights(sites, t, shifting.price_weight);
        let idle_kwh: Vec<f64> = capacity.iter().map(|c| c * edge.idle_w * edge.pue / 1000.0).collect();
        let solar: Vec<f64> = (0..n).map(|j| solar_kwh(solar_peak_kw[j], sites.utc_offset_h[j], t)).collect();
        let energy = SiteEnergy { idle_kwh: &idle_kwh, dyn_kwh_per_unit, solar_kwh: &solar };
        let (load, flows) =
            route(&d, &allowed, &capacity.iter().map(|c| c * edge.per_server).collect::<Vec<_>>(), &w, &energy)?;
        out.lps += 1;
        let mut hour_g = 0.0;
        for j in 0..n {
            let kwh = idle_kwh[j] + load[j] * dyn_kwh_per_unit;
            let from_sun = kwh.min(solar[j]);
            let grid = kwh - from_sun;
            hour_g += grid * sites.intensity[j][t];
            out.energy_kwh += kwh;
            out.solar_kwh += from_sun;
            if let Some(p) = &sites.price[j] {
                out.cost_usd += grid / 1000.0 * p[t.min(p.len() - 1)];
            }
        }
        for (r, row) in flows.iter().enumerate() {
            let home = homes[r];
            for &(j, v) in row {
                out.added_rtt_ms += v * (sites.rtt_ms[r][j] - sites.rtt_ms[r][home]);
                served += v;
            }
        }
        out.carbon_g += hour_g;
        out.hourly_g.push(hour_g);
    }
    out.carbon_g += out.moves_g;
    out.added_rtt_ms /= served.max(1e-12);
    out.capacity = capacity;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three sites: A (dirty), B (clean, 30 ms from A), C (medium, 80 ms).
    fn sites() -> Sites {
        Sites {
            names: vec!["A".into(), "B".into(), "C".into()],
            zones: vec!["A".into(), "B".into(), "C".into()],
            rtt_ms: vec![vec![5.0, 35.0, 85.0], vec![35.0, 5.0, 60.0], vec![85.0, 60.0, 5.0]],
            intensity: vec![vec![500.0; 336], vec![50.0; 336], vec![200.0; 336]],
            price: vec![None, None, None],
            utc_offset_h: vec![0.0, 0.0, 0.0],
            left_out: Vec::new(),
        }
    }

    fn edge() -> Edge {
        Edge { idle_w: 100.0, peak_w: 300.0, per_server: 1.0, pue: 1.2, headroom: 2.0 }
    }

    #[test]
    fn no_added_latency_means_no_saving_and_savings_grow_with_the_bound() {
        let s = sites();
        let base = run(
            &s,
            &edge(),
            &Shifting { delta_ms: None, price_weight: 0.0, move_cost_kg: None, solar_fraction: 0.0 },
            Some(48),
        )
        .expect("runs");
        let mut last = 0.0;
        for delta in [0.0, 20.0, 30.0, 60.0, 100.0] {
            let o = run(
                &s,
                &edge(),
                &Shifting { delta_ms: Some(delta), price_weight: 0.0, move_cost_kg: None, solar_fraction: 0.0 },
                Some(48),
            )
            .expect("runs");
            let saving = 1.0 - o.carbon_g / base.carbon_g;
            if delta == 0.0 {
                assert!(saving.abs() < 1e-12, "exactly 0 at ΔL = 0: {saving}");
            }
            assert!(saving >= last - 1e-9, "monotone in ΔL (within solver tolerance): {saving} after {last}");
            last = saving;
        }
        assert!(last > 0.1, "A's users move to B: {last}");
    }

    #[test]
    fn panels_cover_the_grid_draw_first() {
        // Panels at every site with a peak of 5 × full power (3.6 kW): at
        // noon UTC (offset 0) 3.57 kWh of sun covers any site's whole draw,
        // so the hour emits nothing.
        let s = sites();
        let shift = Shifting { delta_ms: Some(30.0), price_weight: 0.0, move_cost_kg: None, solar_fraction: 5.0 };
        let o = run(&s, &edge(), &shift, Some(13)).expect("runs");
        assert!(o.hourly_g[12].abs() < 1e-6, "{}", o.hourly_g[12]);
        // Panels at 0.1 × full power (0.072 kW peak, 0.0714 kWh at noon)
        // cover part of each idle draw: A's grid energy is 0.24 − 0.0714
        // and its users still go to B; B: 0.24 + 0.95 × 0.24 − 0.0714; C:
        // 0.24 + 0.475 × 0.24 − 0.0714.
        let small = Shifting { solar_fraction: 0.1, ..shift };
        let o = run(&s, &edge(), &small, Some(13)).expect("runs");
        let sun = 0.072 * (std::f64::consts::PI * 6.5 / 12.0).sin();
        let expected = (0.24 - sun) * 500.0 + (0.24 + 0.95 * 0.24 - sun) * 50.0 + (0.24 + 0.475 * 0.24 - sun) * 200.0;
        assert!((o.hourly_g[12] - expected).abs() < 1e-4, "{} vs {expected}", o.hourly_g[12]);
        assert!((o.solar_kwh - (0..13).map(|t| 3.0 * solar_kwh(0.072, 0.0, t)).sum::<f64>()).abs() < 1e-9);
    }

    #[test]
    fn by_hand_one_hour_with_capacity_limits() {
        // ΔL = 30: A may use B; B has capacity 2 × its peak (1.0) = 2.0 and
        // its own users take 1.0 at 20:00 UTC, so A's 1.0 fits there.
        let s = sites();
        let o = run(
            &s,
            &edge(),
            &Shifting { delta_ms: Some(30.0), price_weight: 0.0, move_cost_kg: None, solar_fraction: 0.0 },
            Some(21),
        )
        .expect("runs");
        let t = 20;
        // All sites idle at 2 servers (0.2 kW × 1.2 each = 0.24 kWh) plus
        // dynamic 0.2 kWh × 1.2 per unit: A 0, B 2 units, C 1 unit.
        let expected = 0.24 * (500.0 + 50.0 + 200.0) + 0.24 * (2.0 * 50.0 + 200.0);
        assert!((o.hourly_g[t] - expected).abs() < 1e-6, "{} vs {expected}", o.hourly_g[t]);
    }

    #[test]
    fn capacity_shifting_never_lowers_savings() {
        let s = sites();
        let base = run(
            &s,
            &edge(),
            &Shifting { delta_ms: None, price_weight: 0.0, move_cost_kg: None, solar_fraction: 0.0 },
            None,
        )
        .expect("runs");
        let load = run(
            &s,
            &edge(),
            &Shifting { delta_ms: Some(60.0), price_weight: 0.0, move_cost_kg: None, solar_fraction: 0.0 },
            None,
        )
        .expect("runs");
        let both = run(
            &s,
            &edge(),
            &Shifting { delta_ms: Some(60.0), price_weight: 0.0, move_cost_kg: Some(1.0), solar_fraction: 0.0 },
            None,
        )
        .expect("runs");
        assert!(both.carbon_g <= load.carbon_g + 1e-6, "{} vs {}", both.carbon_g, load.carbon_g);
        assert!(load.carbon_g < base.carbon_g);
        assert!(both.servers_moved > 0.0);
        let total: f64 = both.capacity.iter().sum();
        assert!((total - 6.0).abs() < 1e-6, "the fleet keeps its size: {total}");
    }
}
