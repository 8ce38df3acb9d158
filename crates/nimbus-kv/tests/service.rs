//! The loopback service, in process: bad input gets an error (or a closed
//! connection) and the replicas keep serving others; and the sim-versus-
//! real conformance check: one client scenario run in the twin and against
//! the service passes the same checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use nimbus_consensus::kv::{Command, Reply};
use nimbus_consensus::linearizability::{self, Verdict};
use nimbus_consensus::rabia::RabiaConfig;
use nimbus_consensus::racos::RacosConfig;
use nimbus_consensus::twin::{self, ProtocolChoice, TwinConfig};
use nimbus_kv::bench::{self, BenchConfig};
use nimbus_kv::client::{ClientConfig, KvClient};
use nimbus_kv::cluster::start_in_process;
use nimbus_kv::frame::{Frame, Role, read_frame};
use nimbus_kv::server::{Limits, ServiceProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "test-token-1234";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nimbus-kv-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn client_config(addrs: &[SocketAddr]) -> ClientConfig {
    ClientConfig {
        replicas: addrs.to_vec(),
        token: TOKEN.into(),
        attempt_timeout: Duration::from_millis(500),
        frame_limit: 64 << 20,
    }
}

/// What a replica answers to `bytes` sent after connecting: the frames
/// it sent, and whether it closed the connection.
async fn answer_to(addr: SocketAddr, bytes: &[u8], then_wait: Duration) -> (Vec<Frame>, bool) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(bytes).await.expect("sends");
    let mut frames = Vec::new();
    let closed = loop {
        match tokio::time::timeout(then_wait, read_frame(&mut stream, 1 << 20)).await {
            Ok(Ok(body)) => frames.push(Frame::decode(&body).expect("the replica's frames decode")),
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    (frames, closed)
}

fn framed(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for body in frames {
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

fn hello(token: &str, role: Role) -> Vec<u8> {
    Frame::Hello { token: token.into(), role }.encode()
}

fn error_text(frames: &[Frame]) -> String {
    frames
        .iter()
        .find_map(|f| match f {
            Frame::Error { message } => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected an error frame, got {frames:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_the_replicas_keep_serving() {
    let dir = temp_dir("bad-input");
    let limits = Limits {
        client_frame_bytes: 64 << 10,
        value_bytes: 4096,
        hello_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let addrs = start_in_process(3, 1, ServiceProtocol::Rabia, &dir, TOKEN, limits).expect("replicas start");
    let a = addrs[0];
    let wait = Duration::from_secs(3);

    // Garbage (an HTTP request): its first four bytes read as a huge length.
    let (frames, closed) = answer_to(a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", wait).await;
    assert!(error_text(&frames).contains("exceeds the limit"), "{frames:?}");
    assert!(closed);

    // A frame within the limit that is not a frame.
    let (frames, closed) = answer_to(a, &framed(&[vec![0x63, 1, 2, 3]]), wait).await;
    assert!(error_text(&frames).contains("unknown frame type 99"), "{frames:?}");
    assert!(closed);

    // The wrong token.
    let (frames, closed) = answer_to(a, &framed(&[hello("guess", Role::Client(1))]), wait).await;
    assert_eq!(error_text(&frames), "wrong token");
    assert!(closed);

    // A request before the hello.
    let request = Frame::Request { seq: 1, command: Command::Get { key: "k".into() } }.encode();
    let (frames, closed) = answer_to(a, &framed(std::slice::from_ref(&request)), wait).await;
    assert!(error_text(&frames).contains("expected a hello first"), "{frames:?}");
    assert!(closed);

    // No hello at all: the replica gives up after its hello timeout.
    let (frames, closed) = answer_to(a, b"", wait).await;
    assert!(error_text(&frames).contains("no hello"), "{frames:?}");
    assert!(closed);

    // A replica id outside the cluster.
    let (frames, closed) = answer_to(a, &framed(&[hello(TOKEN, Role::Replica(7))]), wait).await;
    assert!(error_text(&frames).contains("no replica 7"), "{frames:?}");
    assert!(closed);

    // A known replica that sends garbage instead of a protocol message.
    let (frames, closed) = answer_to(a, &framed(&[hello(TOKEN, Role::Replica(1)), vec![5, 0xee, 1]]), wait).await;
    assert!(error_text(&frames).contains("malformed"), "{frames:?}");
    assert!(closed);

    // An unknown command, after a proper hello.
    let mut unknown = vec![2];
    unknown.extend_from_slice(&1u64.to_le_bytes());
    unknown.push(42);
    let (frames, closed) = answer_to(a, &framed(&[hello(TOKEN, Role::Client(5)), unknown]), wait).await;
    assert!(error_text(&frames).contains("unknown command 42"), "{frames:?}");
    assert!(closed);

    // A frame beyond the client limit after the hello.
    let mut oversize = framed(&[hello(TOKEN, Role::Client(6))]);
    oversize.extend_from_slice(&(1u32 << 20).to_le_bytes());
    let (frames, closed) = answer_to(a, &oversize, wait).await;
    assert!(error_text(&frames).contains("exceeds the limit of 65536 bytes"), "{frames:?}");
    assert!(closed);

    // An oversize value is refused, and the connection keeps working.
    let mut stream = TcpStream::connect(a).await.expect("connects");
    let big = Frame::Request { seq: 1, command: Command::Put { key: "k".into(), value: vec![7u8; 5000].into() } };
    let small = Frame::Request { seq: 2, command: Command::Put { key: "k".into(), value: b"12345678"[..].into() } };
    stream.write_all(&framed(&[hello(TOKEN, Role::Client(9)), big.encode(), small.encode()])).await.expect("sends");
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let body = tokio::time::timeout(wait, read_frame(&mut stream, 1 << 20))
            .await
            .expect("answers in time")
            .expect("stays open");
        replies.push(Frame::decode(&body).expect("decodes"));
    }
    match &replies[0] {
        Frame::Reply { seq: 1, reply: Reply::Refused(why) } => {
            assert!(why.contains("a value of 5000 bytes exceeds the limit of 4096 bytes"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(replies[1], Frame::Reply { seq: 2, reply: Reply::Written });
    let mut rest = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut rest)).await.is_err(),
        "the connection stays open after a refusal"
    );

    // Through all that, the replicas served a well-behaved workload.
    let config = BenchConfig {
        client: client_config(&addrs),
        clients: 3,
        ops_per_client: 40,
        max_duration: Duration::from_secs(20),
        op_deadline: Duration::from_secs(10),
        keys: 4,
        value_bytes: 64,
        ycsb: None,
        seed: 1,
        read_back: true,
        first_client_id: 100,
        key_space: String::new(),
    };
    let report = bench::run(&config, Arc::new(AtomicU64::new(0))).await;
    assert_eq!((report.completed, report.unanswered), (120, 0), "{:?}", report.errors);
    assert_eq!(report.verdict, Verdict::Linearizable);
    let mut client = KvClient::new(client_config(&addrs), 999, 2);
    let read = client.call(Command::Get { key: "k".into() }, tokio::time::Instant::now() + wait).await;
    assert!(matches!(read, Ok(Reply::Value(_))), "{read:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One client scenario for both: n = 3, 4 clients of 30 operations on 3
/// keys (gets, puts, read-modify-writes), 8-byte values, then a
/// read-back.
fn scenario_in_twin(choice: ProtocolChoice) -> (Verdict, bool, bool, bool, u64) {
    let mut config = TwinConfig::small(3, 1);
    config.clients = 4;
    config.ops_per_client = 30;
    config.keys = 3;
    config.max_crashes = 0;
    config.read_back = true;
    let outcome = twin::run_with(&config, 7, choice).expect("a valid configuration");
    let verdict = linearizability::check(&outcome.history, None, 5_000_000);
    (verdict, outcome.finished, outcome.logs_agree, outcome.stores_agree, outcome.completed)
}

async fn scenario_in_service(protocol: ServiceProtocol, name: &str) -> (Verdict, bool, bool, u64) {
    let dir = temp_dir(name);
    let addrs = start_in_process(3, 1, protocol, &dir, TOKEN, Limits::default()).expect("replicas start");
    let config = BenchConfig {
        client: client_config(&addrs),
        clients: 4,
        ops_per_client: 30,
        max_duration: Duration::from_secs(30),
        op_deadline: Duration::from_secs(10),
        keys: 3,
        value_bytes: 8,
        ycsb: None,
        seed: 7,
        read_back: true,
        first_client_id: 1,
        key_space: String::new(),
    };
    let report = bench::run(&config, Arc::new(AtomicU64::new(0))).await;
    let finished = report.unanswered == 0 && report.read_back.0 == report.read_back.1;
    let states = bench::settle(&config.client, Duration::from_secs(5)).await;
    let live: Vec<_> = states.iter().flatten().collect();
    let agree = live.len() == 3 && live.windows(2).all(|w| w[0] == w[1]);
    let _ = std::fs::remove_dir_all(&dir);
    (report.verdict, finished, agree, report.completed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_scenario_passes_the_same_checks_in_the_twin_and_for_real() {
    for (choice, protocol, name) in [
        (ProtocolChoice::Rabia(RabiaConfig::default()), ServiceProtocol::Rabia, "conformance-rabia"),
        (ProtocolChoice::Racos(RacosConfig::new(1)), ServiceProtocol::Racos { data: 1 }, "conformance-racos"),
    ] {
        let (verdict, finished, logs_agree, stores_agree, completed) = scenario_in_twin(choice);
        assert_eq!(verdict, Verdict::Linearizable, "{name}: twin");
        assert!(finished && logs_agree && stores_agree, "{name}: twin");
        assert_eq!(completed, 120, "{name}: twin");
        let (verdict, finished, agree, completed) = scenario_in_service(protocol, name).await;
        assert_eq!(verdict, Verdict::Linearizable, "{name}: service");
        assert!(finished, "{name}: every operation and read-back answered");
        assert!(agree, "{name}: the three replicas applied the same slots and hold the same store");
        assert_eq!(completed, 120, "{name}: service");
    }
}

/// Regression: connections that had not said hello could each make a
/// replica hold a buffer as large as a client frame, so a few hundred of
/// them grew it to gigabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_are_capped_and_hold_little() {
    let dir = temp_dir("unauthenticated");
    // Timings leave room for a loaded machine: the slots must still be full
    // when the ninth connection is read (hello timeout well above the
    // settle time plus the read window).
    let limits = Limits { unauthenticated: 8, hello_timeout: Duration::from_millis(1500), ..Limits::default() };
    let addrs = start_in_process(3, 1, ServiceProtocol::Rabia, &dir, TOKEN, limits).expect("replicas start");
    let a = addrs[0];

    // First one write, so that the replicas have connected to one another:
    // a peer's connection also takes a slot until its hello is read, and
    // must not be the one the cap turns away below.
    {
        let mut client = KvClient::new(client_config(&addrs), 76, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let put = client.call(Command::Put { key: "w".into(), value: b"warm"[..].into() }, deadline).await;
        assert!(matches!(put, Ok(Reply::Written)), "{put:?}");
    }

    // A hello announced larger than a hello can be is refused unread.
    let (frames, closed) = answer_to(a, &(1u32 << 20).to_le_bytes(), Duration::from_secs(2)).await;
    assert!(error_text(&frames).contains("exceeds the limit of 4096 bytes"), "{frames:?}");
    assert!(closed);

    // Eight connections that announce a hello and never send it fill the
    // slots; one more is closed at once, without an answer. On a loaded
    // machine the replica may register the connections in another order
    // than they were opened, so the check is that exactly one of the nine
    // is closed while the others wait for their hello.
    let mut idle = Vec::new();
    for _ in 0..9 {
        let mut s = TcpStream::connect(a).await.expect("the listener accepts");
        s.write_all(&4000u32.to_le_bytes()).await.expect("sends");
        idle.push(s);
    }
    // Watch all nine at once, within the hello timeout.
    let watches: Vec<_> = idle
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                let read = tokio::time::timeout(Duration::from_millis(800), s.read(&mut byte)).await;
                let closed = match read {
                    Ok(Ok(0)) | Ok(Err(_)) => true,
                    Err(_) => false,
                    Ok(Ok(n)) => panic!("an unauthenticated connection got {n} bytes of answer"),
                };
                (closed, s)
            })
        })
        .collect();
    let mut idle = Vec::new();
    let mut closed_at_once = 0;
    for w in watches {
        let (closed, s) = w.await.expect("the watch runs");
        closed_at_once += usize::from(closed);
        idle.push(s);
    }
    assert_eq!(closed_at_once, 1, "exactly the connection beyond the cap is closed at once");

    // Once the hello timeout frees them, clients are served again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut client = KvClient::new(client_config(&addrs), 77, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let put = client.call(Command::Put { key: "a".into(), value: b"12345678"[..].into() }, deadline).await;
    assert!(matches!(put, Ok(Reply::Written)), "{put:?}");
    drop(idle);
    let _ = std::fs::remove_dir_all(&dir);
}
