//! SkyBox's checks (`carbon-autoscaling-tail.md` §4.3) on 2020's French and
//! British solar and wind production (Let's Wait Awhile), eight weeks from
//! 2020-04-01. Skips with a notice when ../shared/data is absent; the
//! synthetic farms are checked in any case.

use std::path::Path;

use nimbus_carbon::scenario::Scenario;
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{Param, Params, Value};

fn scenario(pairs: &[(&str, Value)]) -> Scenario {
    let mut root = Params::new("", None);
    root.set_path("datacenter.kind", Param { value: Value::Str("modular".into()), span: None }).expect("settable");
    for (k, v) in pairs {
        root.set_path(k, Param { value: v.clone(), span: None }).expect("settable");
    }
    Scenario::from_params(&root).expect("prepares")
}

fn policy(pairs: &[(&str, Value)]) -> Params {
    let mut p = Params::new("policy", None);
    for (k, v) in pairs {
        p.set_path(k, Param { value: v.clone(), span: None }).expect("settable");
    }
    p
}

fn run(s: &Scenario, name: &str, params: &Params) -> RunOutput {
    s.run(name, params, 1, &mut |_| {}).expect("runs")
}

fn check_paper_claims(s: &Scenario) -> (RunOutput, RunOutput, RunOutput) {
    let none = policy(&[]);
    let best = run(s, "best-cv", &none);
    let skybox = run(s, "skybox", &none);
    let three = run(s, "skybox", &policy(&[("min_farms", Value::Int(3))]));
    let m = |o: &RunOutput, k: &str| o.metric(k).expect(k);
    // The chosen set's combined output varies less than any farm's.
    assert!(m(&skybox, "combined_cv") < m(&best, "combined_cv"), "combined CV below the best farm's");
    assert!(m(&skybox, "combined_cv") < m(&skybox, "best_member_cv"));
    // Lower carbon and fewer evictions than the best farm alone.
    assert!(m(&skybox, "carbon_kg") < m(&best, "carbon_kg"));
    assert!(m(&skybox, "evictions") < m(&best, "evictions"));
    assert_eq!(m(&best, "migrations"), 0.0, "one site never migrates");
    // Byte-identical per seed.
    assert_eq!(skybox, run(s, "skybox", &none));
    (best, skybox, three)
}

#[test]
fn skybox_on_french_and_british_production() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/lets-wait-awhile-ci");
    let files: Vec<Param> = ["fr_production.csv", "gb_production.csv"]
        .iter()
        .map(|f| Param { value: Value::Str(dir.join(f).display().to_string()), span: None })
        .collect();
    if !dir.join("gb_production.csv").is_file() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let s = scenario(&[
        ("datacenter.farms", Value::List(files)),
        ("datacenter.start", Value::Str("2020-04-01".into())),
        ("datacenter.days", Value::Int(56)),
    ]);
    assert!(s.fallbacks().is_empty(), "{:?}", s.fallbacks());
    let (best, skybox, three) = check_paper_claims(&s);
    let m = |o: &RunOutput, k: &str| o.metric(k).expect(k);
    eprintln!(
        "56 days from 2020-04-01: non-renewable kWh best-cv {:.0}, skybox {:.0} ({} farms), 3 farms {:.0}; evictions {} / {} / {}",
        m(&best, "non_renewable_kwh"),
        m(&skybox, "non_renewable_kwh"),
        m(&skybox, "sites"),
        m(&three, "non_renewable_kwh"),
        m(&best, "evictions"),
        m(&skybox, "evictions"),
        m(&three, "evictions"),
    );
    // Each farm of the chosen set is named in the notes, with its CV.
    assert!(skybox.notes[0].contains("Wind Onshore"), "{}", skybox.notes[0]);
    // Non-renewable energy falls from one farm to three.
    assert!(m(&three, "non_renewable_kwh") < m(&best, "non_renewable_kwh"));
}

#[test]
fn skybox_on_synthetic_farms() {
    let s = scenario(&[("datacenter.days", Value::Int(21))]);
    assert_eq!(s.fallbacks().len(), 1, "{:?}", s.fallbacks());
    check_paper_claims(&s);
}
