//! `nimbus kv`: replica processes on loopback, killed (SIGKILL) and
//! restarted mid-run, lose no acknowledged write; benchmarks rerun against
//! a live cluster, a replica recovers from a damaged log, and killing the
//! benchmark leaves nothing behind.
#![allow(clippy::disallowed_methods)] // these tests wait for real processes, on wall time

use crate::{nimbus, temp_dir, text};

fn field<'a>(json: &'a str, name: &str) -> &'a str {
    let start = json.find(&format!("\"{name}\": ")).unwrap_or_else(|| panic!("{name} in {json}")) + name.len() + 4;
    json[start..].split([',', '\n']).next().expect("a value").trim()
}

fn number(json: &str, name: &str) -> u64 {
    field(json, name).parse().unwrap_or_else(|_| panic!("{name} is a number in {json}"))
}

#[test]
fn a_replica_killed_mid_run_loses_no_acknowledged_write() {
    for (protocol, restart) in [("rabia", None), ("racos", Some("300")), ("rabia", Some("200"))] {
        let dir = temp_dir(&format!("kv-kill-{protocol}-{}", restart.unwrap_or("none")));
        let json = dir.join("bench.json");
        let json_arg = json.to_string_lossy().into_owned();
        let mut args = vec![
            "kv",
            "bench",
            "--spawn",
            "3",
            "--protocol",
            protocol,
            "--clients",
            "6",
            "--ops",
            "150",
            "--value-bytes",
            "4096",
            "--kill",
            "0",
            "--kill-after-ms",
            "150",
            "--json",
            &json_arg,
        ];
        if let Some(ms) = restart {
            args.extend(["--restart-after-ms", ms]);
        }
        let output = nimbus(&args);
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{protocol}: {stdout}\n{stderr}");
        let report = std::fs::read_to_string(&json).expect("the JSON report is written");
        assert_eq!(field(&report, "linearizable"), "true", "{report}");
        assert_eq!(field(&report, "replicas_agree"), "true", "{report}");
        assert_eq!(number(&report, "killed"), 0);
        assert_eq!(number(&report, "unanswered"), 0, "{report}");
        assert_eq!(number(&report, "completed"), 900, "{report}");
        assert_eq!(number(&report, "read_back_answered"), number(&report, "read_back_issued"), "{report}");
        // The kill came mid-run: some operations were answered before it
        // and some after.
        let at_kill = number(&report, "answered_at_kill");
        assert!(0 < at_kill && at_kill < 900, "{protocol}: killed after {at_kill} of 900 operations");
        let answered = number(&report, "replicas_answered");
        assert_eq!(answered, if restart.is_some() { 3 } else { 2 }, "{report}");
        assert!(stdout.contains("linearizable          yes"), "{stdout}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn kv_commands_explain_bad_arguments() {
    let output = nimbus(&["kv", "serve", "--id", "0", "--peers", "127.0.0.1:1,nowhere", "--data-dir", "/tmp/x"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("--peers entry 2 (\"nowhere\")") && stderr.contains("IP:PORT"), "{stderr}");

    let output = nimbus(&["kv", "bench", "--protocol", "multi-paxos"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("the service runs rabia or racos"), "{stderr}");

    let output = nimbus(&["kv", "bench", "--peers", "127.0.0.1:9", "--kill", "0", "--token", "x"]);
    let (_, stderr) = text(&output);
    assert!(stderr.contains("--kill needs --spawn"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(["kv", "serve", "--id", "0", "--peers", "127.0.0.1:1", "--data-dir", "/tmp/x"])
        .env_remove("NIMBUS_KV_TOKEN")
        .output()
        .expect("runs");
    let (_, stderr) = text(&output);
    assert!(stderr.contains("no cluster token"), "{stderr}");
}

const TOKEN: &str = "kv-test-token-0123456789";

fn program() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_nimbus"))
}

/// Each replica's (applied slots, store digest), `None` where it does not
/// answer.
fn states(addrs: &[std::net::SocketAddr]) -> Vec<Option<(u64, u64)>> {
    use nimbus_kv::client::{ClientConfig, KvClient};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let config = ClientConfig {
            replicas: addrs.to_vec(),
            token: TOKEN.into(),
            attempt_timeout: std::time::Duration::from_millis(500),
            frame_limit: 64 << 20,
        };
        let mut asker = KvClient::new(config, nimbus_consensus::kv::SESSIONLESS - 2, 0);
        let mut out = Vec::new();
        for r in 0..addrs.len() {
            out.push(asker.status(r).await.ok().map(|(applied, digest, _)| (applied, digest)));
        }
        out
    })
}

/// Waits until every replica answers with the same applied slots and
/// store, or `seconds` pass.
fn wait_until_agreed(addrs: &[std::net::SocketAddr], seconds: u64) -> Vec<Option<(u64, u64)>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let s = states(addrs);
        if s.iter().all(Option::is_some) && s.windows(2).all(|w| w[0] == w[1]) || std::time::Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn short(protocol: nimbus_kv::server::ServiceProtocol) -> &'static str {
    match protocol {
        nimbus_kv::server::ServiceProtocol::Rabia => "rabia",
        nimbus_kv::server::ServiceProtocol::Racos { .. } => "racos",
    }
}

fn bench_against(addrs: &[std::net::SocketAddr], extra: &[&str]) -> std::process::Output {
    let peers: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let peers = peers.join(",");
    let mut args = vec!["kv", "bench", "--peers", &peers, "--token", TOKEN];
    args.extend_from_slice(extra);
    nimbus(&args)
}

/// Regression: a second benchmark against a cluster that already held data
/// read values its history did not contain and reported the correct
/// cluster "not linearizable".
#[test]
fn twenty_benchmarks_against_one_live_cluster_all_pass_their_checks() {
    use nimbus_kv::cluster::LocalCluster;
    use nimbus_kv::server::ServiceProtocol;
    for (protocol, runs) in [(ServiceProtocol::Rabia, 20), (ServiceProtocol::Racos { data: 1 }, 6)] {
        let dir = temp_dir(&format!("kv-live-{}", short(protocol)));
        let mut cluster = LocalCluster::start(&program(), 3, 1, protocol, &dir, TOKEN).expect("replicas start");
        for run in 0..runs {
            // Now and then a replica is killed and restarted between runs.
            if run % 4 == 3 {
                cluster.restart(run % 3).expect("restarts");
            }
            let seed = run.to_string();
            let output =
                bench_against(&cluster.addrs, &["--clients", "3", "--ops", "30", "--keys", "6", "--seed", &seed]);
            let (stdout, stderr) = text(&output);
            assert!(output.status.success(), "{} run {run}: {stdout}\n{stderr}", protocol.name());
            assert!(stdout.contains("linearizable          yes"), "{stdout}");
        }
        drop(cluster);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_replica_with_a_corrupt_log_recovers_its_intact_records_and_rejoins_without_new_writes() {
    use nimbus_kv::cluster::LocalCluster;
    use nimbus_kv::server::ServiceProtocol;
    for protocol in [ServiceProtocol::Rabia, ServiceProtocol::Racos { data: 1 }] {
        let dir = temp_dir(&format!("kv-corrupt-log-{}", short(protocol)));
        let mut cluster = LocalCluster::start(&program(), 3, 1, protocol, &dir, TOKEN).expect("replicas start");
        let output =
            bench_against(&cluster.addrs, &["--clients", "4", "--ops", "60", "--keys", "8", "--value-bytes", "256"]);
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        let before = wait_until_agreed(&cluster.addrs, 10);
        assert!(before.iter().all(Option::is_some), "{before:?}");

        cluster.kill(2).expect("kills");
        let log = dir.join("replica-2.log");
        let mut bytes = std::fs::read(&log).expect("the log exists");
        let middle = bytes.len() * 2 / 5;
        for b in &mut bytes[middle..middle + 48] {
            *b ^= 0x5a;
        }
        std::fs::write(&log, &bytes).expect("corrupts the log");
        cluster.restart(2).expect("restarts from the damaged log");

        // No client writes from here on: the replica catches up by itself.
        let after = wait_until_agreed(&cluster.addrs, 15);
        let name = protocol.name();
        assert!(after.iter().all(Option::is_some) && after.windows(2).all(|w| w[0] == w[1]), "{name}: {after:?}");
        assert_eq!(after[0], before[0], "{name}: nothing new was written");
        let out = std::fs::read_to_string(cluster.output_path(2)).expect("output");
        assert!(out.contains("corrupt bytes skipped"), "{name}: {out}");
        drop(cluster);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Every process whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn killing_the_benchmark_leaves_no_replica_and_no_directory_behind() {
    for signal in ["KILL", "TERM", "INT"] {
        let tmp = temp_dir(&format!("kv-orphans-{signal}"));
        let mut bench = std::process::Command::new(program())
            .args(["kv", "bench", "--clients", "2", "--ops", "1000000"])
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starts");
        // Wait until the replicas serve.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let serving =
            || {
                std::fs::read_dir(&tmp).into_iter().flatten().flatten().any(|d| {
                    std::fs::read_to_string(d.path().join("replica-2.out")).is_ok_and(|o| o.contains("listening"))
                })
            };
        while !serving() {
            assert!(std::time::Instant::now() < deadline, "the replicas did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let needle = tmp.to_string_lossy().into_owned();
        assert_eq!(processes_mentioning(&needle).len(), 3, "three replicas run");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), bench.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let _ = bench.wait();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = processes_mentioning(&needle);
            let files: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").flatten().map(|e| e.path()).collect();
            if left.is_empty() && files.is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "SIG{signal}: left {left:?} and {files:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
