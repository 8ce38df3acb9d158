//! `nimbus kv`: replica processes on loopback, killed (SIGKILL) and
//! restarted mid-run, lose no acknowledged write.

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
