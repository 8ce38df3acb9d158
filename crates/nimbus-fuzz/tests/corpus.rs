//! The fuzz targets on stable Rust: every committed seed and regression
//! case, then a seeded mutation loop over them (bit flips, interesting
//! bytes, insertions, deletions, duplications, splices, truncations). A
//! target that panics fails the test with the input's file under
//! `target/fuzz-failures/`, ready to add to `fuzz/regressions/<target>/`.
//!
//! `NIMBUS_FUZZ_ITERATIONS` sets the mutations per target (default 10,000,
//! a few seconds each in CI); `NIMBUS_FUZZ_SEED` changes the stream.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use nimbus_sim::{RngStreams, SimRng};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Seeds and regression cases of `target` (for `scenario`, also every
/// shipped scenario and CLI fixture).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = repo();
    let mut dirs = vec![root.join("fuzz/seeds").join(target), root.join("fuzz/regressions").join(target)];
    if target == "scenario" {
        for domain in ["gpu", "llm", "faas", "consensus", "forecast", "elastic", "carbon", "dc", "train"] {
            dirs.push(root.join("scenarios").join(domain));
        }
        dirs.push(root.join("crates/nimbus-cli/tests/fixtures"));
    }
    let mut out = Vec::new();
    for dir in dirs {
        for file in files_in(&dir) {
            if target == "scenario" && file.extension().is_none_or(|e| e != "toml") && !dir.ends_with(target) {
                continue;
            }
            let bytes = std::fs::read(&file).expect("a corpus file reads");
            out.push((file.display().to_string(), bytes));
        }
    }
    out
}

/// Runs `f` on `input`; a panic fails the test after saving the input.
fn run_case(target: &str, f: fn(&[u8]), input: &[u8], origin: &str) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        let dir = repo().join("target/fuzz-failures").join(target);
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{:016x}", nimbus_lab::scenario::fnv1a(input)));
        let _ = std::fs::write(&file, input);
        panic!("target `{target}` panicked on an input from {origin}; saved as {}", file.display());
    }
}

#[test]
fn every_seed_and_regression_runs_clean() {
    for (target, f) in nimbus_fuzz::TARGETS {
        let cases = corpus(target);
        assert!(!cases.is_empty(), "target `{target}` has no seeds");
        for (origin, bytes) in &cases {
            run_case(target, *f, bytes, origin);
        }
    }
}

/// The trace seeds are valid files, so mutations start from inputs the
/// readers accept.
#[test]
fn every_trace_seed_is_a_valid_file_of_its_format() {
    use nimbus_trace::Source;
    use nimbus_trace::formats::{FORMATS, check};
    let seeds = files_in(&repo().join("fuzz/seeds/trace"));
    assert_eq!(seeds.len(), FORMATS.len(), "one seed per format");
    for file in seeds {
        let bytes = std::fs::read(&file).expect("reads");
        let format = FORMATS[usize::from(bytes[0])];
        match check(format, Source::bytes(Path::new("seed"), &bytes[1..])).expect("a listed format") {
            Ok(n) => assert!(n > 0, "{}: {format} seed holds no rows", file.display()),
            Err(e) => panic!("{}: the {format} seed does not read: {e}", file.display()),
        }
    }
}

const INTERESTING: &[u8] = b"\x00\xff\n\r\t,\"'=[]{}#.-+0123456789eE \\";

fn mutate(rng: &mut SimRng, input: &[u8], others: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    let steps = 1 + rng.below(4);
    let pick = |rng: &mut SimRng, n: usize| usize::try_from(rng.below(n.max(1) as u64)).unwrap_or(0);
    for _ in 0..steps {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = pick(rng, len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = pick(rng, len);
                out[i] = INTERESTING[pick(rng, INTERESTING.len())];
            }
            2 => {
                let i = pick(rng, len + 1);
                let n = 1 + pick(rng, 8);
                let bytes: Vec<u8> = (0..n).map(|_| INTERESTING[pick(rng, INTERESTING.len())]).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = pick(rng, len);
                let n = 1 + pick(rng, (len - i).min(64));
                out.drain(i..i + n);
            }
            4 if len > 0 => {
                // Duplicate a range, sometimes many times (long lines, big lists).
                let i = pick(rng, len);
                let n = 1 + pick(rng, (len - i).min(256));
                let copy = out[i..i + n].to_vec();
                let times = if rng.below(8) == 0 { 1 + pick(rng, 2000) } else { 1 };
                for _ in 0..times {
                    out.splice(i..i, copy.iter().copied());
                }
            }
            5 if !others.is_empty() => {
                let other = &others[pick(rng, others.len())].1;
                if !other.is_empty() {
                    let from = pick(rng, other.len());
                    let n = 1 + pick(rng, (other.len() - from).min(512));
                    let at = pick(rng, out.len() + 1);
                    out.splice(at..at, other[from..from + n].iter().copied());
                }
            }
            6 if len > 0 => out.truncate(pick(rng, len)),
            _ => {
                // A decimal number somewhere: huge, negative, NaN or tiny.
                let numbers: [&[u8]; 8] =
                    [b"4294967297", b"-1", b"nan", b"1e30", b"1e-9", b"18446744073709551616", b"0", b"inf"];
                let at = pick(rng, len + 1);
                out.splice(at..at, numbers[pick(rng, numbers.len())].iter().copied());
            }
        }
    }
    out
}

#[test]
fn mutated_inputs_never_panic() {
    let iterations: u64 = std::env::var("NIMBUS_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("NIMBUS_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    for (target, f) in nimbus_fuzz::TARGETS {
        let cases = corpus(target);
        let mut rng = RngStreams::new(seed).stream(target);
        // The scenario target prepares whole domains: fewer, costlier runs.
        let n = if *target == "scenario" { iterations / 4 } else { iterations };
        for i in 0..n {
            let (origin, base) = &cases[usize::try_from(rng.below(cases.len() as u64)).unwrap_or(0)];
            let input = mutate(&mut rng, base, &cases);
            run_case(target, *f, &input, &format!("mutation {i} of {origin}"));
        }
    }
}

/// Rewrites the generated seeds (wire messages, kv logs) from real
/// encodings: `cargo test -p nimbus-fuzz -- --ignored write_generated_seeds`.
#[test]
#[ignore = "regenerates committed files"]
fn write_generated_seeds() {
    use nimbus_consensus::kv::{Command, Reply, Request};
    use nimbus_consensus::wire::Wire;
    let root = repo().join("fuzz/seeds");
    let mut wire: Vec<(&str, u8, Vec<u8>)> = vec![
        ("command-get", 0, Command::Get { key: "user1".into() }.to_bytes()),
        ("command-put", 0, Command::Put { key: "k".into(), value: vec![1u8; 16].into() }.to_bytes()),
        ("command-scan", 0, Command::Scan { start: "a".into(), count: 10 }.to_bytes()),
        ("reply-value", 1, Reply::Value(Some(vec![7u8; 12].into())).to_bytes()),
        ("reply-refused", 1, Reply::Refused("too big".into()).to_bytes()),
        (
            "request",
            2,
            Request {
                client: 3,
                seq: 9,
                command: Command::ReadModifyWrite { key: "x".into(), value: vec![2u8; 8].into() },
            }
            .to_bytes(),
        ),
    ];
    // Protocol messages as replicas produce them for a first request.
    use nimbus_consensus::protocol::{Effect, Protocol};
    fn messages<P: Protocol>(mut replica: P) -> Vec<P::Message> {
        let request =
            Request { client: 1, seq: 1, command: Command::Put { key: "k".into(), value: vec![5u8; 24].into() } };
        let mut effects = replica.on_client(request, 1_000);
        effects.extend(replica.tick());
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Persist(m) | Effect::Send(_, m) | Effect::Broadcast(m) => Some(m),
                Effect::Reply { .. } => None,
            })
            .collect()
    }
    let rabia = nimbus_consensus::rabia::Replica::with_config(0, 3, 1, Default::default()).expect("valid");
    for (i, m) in messages(rabia).iter().enumerate().take(6) {
        wire.push((["rabia-0", "rabia-1", "rabia-2", "rabia-3", "rabia-4", "rabia-5"][i], 3, m.to_bytes()));
    }
    let racos = nimbus_consensus::racos::Racos::with_config(0, 3, 1, nimbus_consensus::racos::RacosConfig::new(1))
        .expect("valid");
    for (i, m) in messages(racos).iter().enumerate().take(6) {
        wire.push((["racos-0", "racos-1", "racos-2", "racos-3", "racos-4", "racos-5"][i], 4, m.to_bytes()));
    }
    let frames = [
        nimbus_kv::frame::Frame::Hello { token: "t".into(), role: nimbus_kv::frame::Role::Client(4) },
        nimbus_kv::frame::Frame::Status,
        nimbus_kv::frame::Frame::Error { message: "no".into() },
    ];
    for (i, frame) in frames.iter().enumerate() {
        let name: &'static str = ["frame-hello", "frame-status", "frame-error"][i];
        wire.push((name, 6, frame.encode()));
    }
    let dir = root.join("wire");
    std::fs::create_dir_all(&dir).expect("dir");
    for (name, selector, body) in wire {
        let mut bytes = vec![selector];
        bytes.extend(body);
        std::fs::write(dir.join(name), bytes).expect("writes");
    }
    // A replica log of three records, and one with a corrupt middle.
    let log = nimbus_kv::server::encode_log(&[b"first".to_vec(), vec![9u8; 40], b"third".to_vec()]);
    let dir = root.join("kv_log");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("three-records"), &log).expect("writes");
    let mut damaged = log.clone();
    damaged[30] ^= 0xff;
    std::fs::write(dir.join("corrupt-middle"), &damaged).expect("writes");
}
