//! One replica process: a protocol of `nimbus-consensus` driven by real
//! sockets, a real clock and a real disk.
//!
//! Threads: a tokio runtime accepts connections and moves frames; one
//! plain thread owns the protocol state machine. Connection tasks decode
//! frames and hand inputs (client requests, peer messages, status asks)
//! to the protocol thread through a bounded queue; when it is full an
//! input is dropped, which the protocols tolerate as message loss (peers
//! re-send on their timer, clients retry). The protocol thread takes the
//! inputs that have arrived (up to 256 at a time), runs them and the
//! timer, appends every [`Effect::Persist`] record to the replica's log
//! and syncs it once (group commit), and only then releases the messages
//! and replies those inputs produced (write-ahead: nothing leaves before
//! the records emitted before it are durable).
//!
//! The log (`replica-<id>.log` in the data directory) is a sequence of
//! records: u32 length, the first 8 bytes of the body's BLAKE3, the body.
//! At start the replica reads it back up to the first torn or corrupt
//! record (a crash mid-append; nothing after it was released), cuts the
//! file there and hands the records to [`Protocol::recover`].
//!
//! Connections: every replica dials every other one and sends its
//! messages on that connection (one per direction and pair); messages for
//! a replica that cannot be reached are dropped. Every connection starts
//! with a hello carrying the cluster's token; a wrong token, a frame
//! beyond the size limit, a body that does not decode, a frame out of
//! place or an unknown command gets an error frame and the connection is
//! closed; a value or key beyond its limit gets a `Refused` reply and the
//! connection stays open. Other connections are not affected.
//!
//! Limits: the log is never compacted (a replica's disk use grows with
//! what it persisted); membership is fixed by the address list.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nimbus_consensus::kv::{Command, Reply, Request, SESSIONLESS};
use nimbus_consensus::protocol::{Effect, Protocol, ReplicaId};
use nimbus_consensus::rabia::{RabiaConfig, Replica};
use nimbus_consensus::racos::{Racos, RacosConfig};
use nimbus_consensus::wire::Wire;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use crate::frame::{Frame, FrameError, PEER_TAG, Role, read_frame, write_frame};

/// Which protocol the replicas run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceProtocol {
    /// Full-copy Rabia.
    Rabia,
    /// Racos: values coded into `data` data shards, ordered by Rabia.
    Racos {
        /// Data shards per value.
        data: usize,
    },
}

impl ServiceProtocol {
    /// Its name in messages.
    pub fn name(&self) -> String {
        match self {
            ServiceProtocol::Rabia => "rabia".into(),
            ServiceProtocol::Racos { data } => format!("racos (k = {data})"),
        }
    }
}

/// Limits on what a replica accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest frame read from a client, bytes.
    pub client_frame_bytes: usize,
    /// Longest frame read from a replica, bytes.
    pub peer_frame_bytes: usize,
    /// Longest value a client may write, bytes.
    pub value_bytes: usize,
    /// Longest key, bytes.
    pub key_bytes: usize,
    /// A connection must say hello within this long.
    pub hello_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            client_frame_bytes: 2 << 20,
            peer_frame_bytes: 64 << 20,
            value_bytes: 1 << 20,
            key_bytes: 1024,
            hello_timeout: Duration::from_secs(5),
        }
    }
}

/// A replica's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// This replica's number (its address is `peers[id]`).
    pub id: ReplicaId,
    /// Every replica's address, in replica order.
    pub peers: Vec<SocketAddr>,
    /// Crashes tolerated (n ≥ 2f + 1).
    pub f: usize,
    /// The token every connection must present.
    pub token: String,
    /// The protocol.
    pub protocol: ServiceProtocol,
    /// Where the durable log lives.
    pub data_dir: PathBuf,
    /// The protocol's timer (re-sends).
    pub tick: Duration,
    /// What it accepts.
    pub limits: Limits,
}

/// Why a replica could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The settings are impossible.
    #[error("{0}")]
    Config(String),
    /// Binding, the log or the runtime failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The protocol thread ended.
    #[error("the protocol thread stopped: {0}")]
    Stopped(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

impl ReplicaConfig {
    fn check(&self) -> Result<(), ServeError> {
        let n = self.peers.len();
        if n < 2 * self.f + 1 || self.id >= n {
            return Err(ServeError::Config(format!(
                "replica {} of {n} addresses with f = {}: needs id < n and n ≥ 2f + 1",
                self.id, self.f
            )));
        }
        if self.token.is_empty() {
            return Err(ServeError::Config("the cluster token is empty; give one with --token".into()));
        }
        if let ServiceProtocol::Racos { data } = self.protocol
            && (data == 0 || data + 2 * self.f > n)
        {
            return Err(ServeError::Config(format!(
                "racos with {data} data shards on {n} replicas and f = {}: needs 1 ≤ k ≤ n − 2f",
                self.f
            )));
        }
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.join(format!("replica-{}.log", self.id))
    }
}

/// Binds the replica's address and serves until the process ends.
pub fn serve(config: ReplicaConfig) -> Result<(), ServeError> {
    config.check()?;
    let addr = config.peers[config.id];
    let listener = std::net::TcpListener::bind(addr).map_err(io(format!("binding {addr}")))?;
    serve_on(config, listener)
}

/// Serves on a bound listener until the process ends (or the protocol
/// thread fails).
pub fn serve_on(config: ReplicaConfig, listener: std::net::TcpListener) -> Result<(), ServeError> {
    config.check()?;
    let (n, f, me) = (config.peers.len(), config.f, config.id);
    match config.protocol {
        ServiceProtocol::Rabia => {
            let replica = Replica::with_config(me, n, f, RabiaConfig::default())
                .map_err(|e| ServeError::Config(e.to_string()))?;
            run(config, listener, replica)
        }
        ServiceProtocol::Racos { data } => {
            let replica =
                Racos::with_config(me, n, f, RacosConfig::new(data)).map_err(|e| ServeError::Config(e.to_string()))?;
            run(config, listener, replica)
        }
    }
}

/// What connection tasks hand the protocol thread.
enum Input<M> {
    Client(Request),
    Peer(ReplicaId, M),
    Status(oneshot::Sender<Frame>),
}

type Outgoing = mpsc::Sender<Arc<Vec<u8>>>;

/// What connection tasks share.
struct Shared<M> {
    config: ReplicaConfig,
    inputs: SyncSender<Input<M>>,
    /// Each connected client's outgoing queue, by client id.
    clients: Mutex<BTreeMap<u64, Outgoing>>,
}

fn run<P>(config: ReplicaConfig, listener: std::net::TcpListener, mut replica: P) -> Result<(), ServeError>
where
    P: Protocol + Send + 'static,
    P::Message: Wire + Send + 'static,
{
    std::fs::create_dir_all(&config.data_dir)
        .map_err(io(format!("creating the data directory {}", config.data_dir.display())))?;
    let log_path = config.log_path();
    let (mut log, records) = DurableLog::open(&log_path)?;
    let mut durable = Vec::with_capacity(records.len());
    for (i, body) in records.iter().enumerate() {
        let record = P::Message::from_bytes(body).map_err(|e| {
            ServeError::Config(format!("{}: record {} does not decode: {e}", log_path.display(), i + 1))
        })?;
        durable.push(record);
    }
    let recovered = durable.len();
    let first_effects = replica.recover(durable);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    listener.set_nonblocking(true).map_err(io("setting up the listener"))?;
    let local = listener.local_addr().map_err(io("reading the listener's address"))?;

    let (inputs, inbox) = std::sync::mpsc::sync_channel(8192);
    let shared = Arc::new(Shared { config: config.clone(), inputs, clients: Mutex::new(BTreeMap::new()) });
    let _guard = runtime.enter();
    // One outgoing queue and sender task per other replica.
    let hello = Arc::new(Frame::Hello { token: config.token.clone(), role: Role::Replica(config.id) }.encode());
    let peers: Vec<Option<Outgoing>> = (0..config.peers.len())
        .map(|i| {
            (i != config.id).then(|| {
                let (tx, rx) = mpsc::channel(4096);
                runtime.spawn(send_to_peer(config.peers[i], hello.clone(), rx));
                tx
            })
        })
        .collect();

    let (stopped_tx, stopped_rx) = oneshot::channel::<String>();
    let loop_shared = shared.clone();
    let tick = config.tick;
    std::thread::Builder::new()
        .name(format!("replica-{}", config.id))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                protocol_loop(replica, inbox, peers, &loop_shared, &mut log, tick, first_effects)
            }));
            let why = match outcome {
                Ok(Ok(())) => "its queue closed".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "it panicked".to_string(),
            };
            let _ = stopped_tx.send(why);
        })
        .map_err(io("starting the protocol thread"))?;

    println!(
        "replica {} of {} ({}) listening on {local}; {recovered} durable records recovered from {}",
        config.id,
        config.peers.len(),
        config.protocol.name(),
        log_path.display()
    );
    let _ = std::io::stdout().flush();

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(io("setting up the listener"))?;
        let mut stopped = stopped_rx;
        loop {
            tokio::select! {
                why = &mut stopped => {
                    return Err(ServeError::Stopped(why.unwrap_or_else(|_| "unknown".into())));
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, from)) => {
                        let shared = shared.clone();
                        tokio::spawn(async move { connection(stream, from, shared).await });
                    }
                    Err(e) => {
                        eprintln!("replica {}: accept failed: {e}", config.id);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    })
}

/// The protocol thread: inputs and the timer in, durable records and then
/// messages and replies out.
fn protocol_loop<P>(
    mut replica: P,
    inbox: Receiver<Input<P::Message>>,
    peers: Vec<Option<Outgoing>>,
    shared: &Shared<P::Message>,
    log: &mut DurableLog,
    tick: Duration,
    first_effects: Vec<Effect<P::Message>>,
) -> Result<(), ServeError>
where
    P: Protocol,
    P::Message: Wire,
{
    let mut effects = first_effects;
    #[allow(clippy::disallowed_methods)] // a real replica's timer runs on wall time
    let mut next_tick = Instant::now() + tick;
    loop {
        commit_and_release(&mut effects, &peers, shared, log)?;
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let first = match inbox.recv_timeout(next_tick.saturating_duration_since(now)) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let batch = first.into_iter().chain(std::iter::from_fn(|| inbox.try_recv().ok()).take(255));
        for input in batch {
            match input {
                Input::Client(request) => effects.extend(replica.on_client(request, wall_ns())),
                Input::Peer(from, message) => effects.extend(replica.on_message(from, message)),
                Input::Status(answer) => {
                    let _ = answer.send(Frame::StatusReply {
                        applied: replica.applied_slots(),
                        digest: replica.state_digest(),
                        summary: replica.summary(),
                    });
                }
            }
        }
        #[allow(clippy::disallowed_methods)]
        if Instant::now() >= next_tick {
            effects.extend(replica.tick());
            next_tick += tick;
        }
    }
}

/// Nanoseconds since the Unix epoch (Rabia orders batches by their
/// proxies' clocks).
fn wall_ns() -> u64 {
    #[allow(clippy::disallowed_methods)] // a real proxy stamps batches with its clock
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// Makes every record among `effects` durable, then sends the rest.
fn commit_and_release<M: Wire>(
    effects: &mut Vec<Effect<M>>,
    peers: &[Option<Outgoing>],
    shared: &Shared<M>,
    log: &mut DurableLog,
) -> Result<(), ServeError> {
    if effects.is_empty() {
        return Ok(());
    }
    let mut wrote = false;
    for effect in effects.iter() {
        if let Effect::Persist(record) = effect {
            log.append(&record.to_bytes());
            wrote = true;
        }
    }
    if wrote {
        log.sync()?;
    }
    for effect in effects.drain(..) {
        match effect {
            Effect::Persist(_) => {}
            Effect::Send(to, message) => {
                if let Some(Some(queue)) = peers.get(to) {
                    let _ = queue.try_send(Arc::new(peer_frame(&message)));
                }
            }
            Effect::Broadcast(message) => {
                let frame = Arc::new(peer_frame(&message));
                for queue in peers.iter().flatten() {
                    let _ = queue.try_send(frame.clone());
                }
            }
            Effect::Reply { client, seq, reply } => {
                let queue = shared.clients.lock().ok().and_then(|c| c.get(&client).cloned());
                if let Some(queue) = queue {
                    let _ = queue.try_send(Arc::new(Frame::Reply { seq, reply }.encode()));
                }
            }
        }
    }
    Ok(())
}

fn peer_frame<M: Wire>(message: &M) -> Vec<u8> {
    let mut body = vec![PEER_TAG];
    message.encode(&mut body);
    body
}

/// Keeps (re)connecting to a replica and sends it what is queued; what is
/// queued while it cannot be reached is dropped.
async fn send_to_peer(addr: SocketAddr, hello: Arc<Vec<u8>>, mut queue: mpsc::Receiver<Arc<Vec<u8>>>) {
    loop {
        let connected = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
        let Ok(Ok(stream)) = connected else {
            loop {
                match queue.try_recv() {
                    Ok(_) => {}
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut out = BufWriter::new(stream);
        if write_frame(&mut out, &hello).await.is_err() || out.flush().await.is_err() {
            continue;
        }
        'connected: loop {
            let Some(frame) = queue.recv().await else { return };
            if write_frame(&mut out, &frame).await.is_err() {
                break 'connected;
            }
            while let Ok(frame) = queue.try_recv() {
                if write_frame(&mut out, &frame).await.is_err() {
                    break 'connected;
                }
            }
            if out.flush().await.is_err() {
                break 'connected;
            }
        }
    }
}

/// Compares tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn say_error(out: &mut OwnedWriteHalf, message: String) {
    let _ = write_frame(out, &Frame::Error { message }.encode()).await;
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}

fn describe(e: &FrameError) -> String {
    match e {
        FrameError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => "the connection closed".into(),
        other => other.to_string(),
    }
}

/// One accepted connection: a hello, then a replica's messages or a
/// client's requests.
async fn connection<M>(stream: TcpStream, from: SocketAddr, shared: Arc<Shared<M>>)
where
    M: Wire + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let limits = shared.config.limits;
    let me = shared.config.id;
    let hello = tokio::time::timeout(limits.hello_timeout, read_frame(&mut read, limits.client_frame_bytes)).await;
    let body = match hello {
        Err(_) => return say_error(&mut write, "no hello within the time limit".into()).await,
        Ok(Err(FrameError::Io(_))) => return,
        Ok(Err(e)) => return say_error(&mut write, describe(&e)).await,
        Ok(Ok(body)) => body,
    };
    let (token, role) = match Frame::decode(&body) {
        Ok(Frame::Hello { token, role }) => (token, role),
        Ok(other) => return say_error(&mut write, format!("expected a hello first, got {other:?}")).await,
        Err(e) => return say_error(&mut write, e.to_string()).await,
    };
    if !same_token(&token, &shared.config.token) {
        eprintln!("replica {me}: refused a connection from {from}: wrong token");
        return say_error(&mut write, "wrong token".into()).await;
    }
    match role {
        Role::Replica(peer) => {
            if peer >= shared.config.peers.len() || peer == me {
                return say_error(&mut write, format!("no replica {peer} in this cluster besides me ({me})")).await;
            }
            loop {
                let body = match read_frame(&mut read, limits.peer_frame_bytes).await {
                    Ok(body) => body,
                    Err(FrameError::Io(_)) => return,
                    Err(e) => {
                        eprintln!("replica {me}: replica {peer}: {e}");
                        return say_error(&mut write, describe(&e)).await;
                    }
                };
                let message = match body.split_first() {
                    Some((&PEER_TAG, rest)) => M::from_bytes(rest),
                    _ => Err(nimbus_consensus::wire::Reader::new(&body).error("frame", "not a protocol message")),
                };
                match message {
                    Ok(message) => {
                        let _ = shared.inputs.try_send(Input::Peer(peer, message));
                    }
                    Err(e) => {
                        eprintln!("replica {me}: replica {peer} sent a malformed message: {e}");
                        return say_error(&mut write, e.to_string()).await;
                    }
                }
            }
        }
        Role::Client(client) => {
            if client >= SESSIONLESS {
                return say_error(&mut write, format!("client ids must be below {SESSIONLESS}")).await;
            }
            client_session(client, read, write, shared).await;
        }
    }
}

/// A value or key beyond the limits, as a refusal.
fn over_limit(command: &Command, limits: &Limits) -> Option<String> {
    let key = match command {
        Command::Get { key } | Command::Put { key, .. } | Command::ReadModifyWrite { key, .. } => key,
        Command::Scan { start, .. } => start,
    };
    if key.len() > limits.key_bytes {
        return Some(format!("a key of {} bytes exceeds the limit of {} bytes", key.len(), limits.key_bytes));
    }
    match command {
        Command::Put { value, .. } | Command::ReadModifyWrite { value, .. } if value.len() > limits.value_bytes => {
            Some(format!("a value of {} bytes exceeds the limit of {} bytes", value.len(), limits.value_bytes))
        }
        _ => None,
    }
}

async fn client_session<M>(
    client: u64,
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: OwnedWriteHalf,
    shared: Arc<Shared<M>>,
) where
    M: Wire + Send + 'static,
{
    let limits = shared.config.limits;
    let (queue, mut outgoing) = mpsc::channel::<Arc<Vec<u8>>>(1024);
    if let Ok(mut clients) = shared.clients.lock() {
        clients.insert(client, queue.clone());
    }
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(write);
        while let Some(frame) = outgoing.recv().await {
            if write_frame(&mut out, &frame).await.is_err() {
                return;
            }
            while let Ok(frame) = outgoing.try_recv() {
                if write_frame(&mut out, &frame).await.is_err() {
                    return;
                }
            }
            if out.flush().await.is_err() {
                return;
            }
        }
        let _ = out.shutdown().await;
    });
    let error = loop {
        let body = match read_frame(&mut read, limits.client_frame_bytes).await {
            Ok(body) => body,
            Err(FrameError::Io(_)) => break None,
            Err(e) => break Some(describe(&e)),
        };
        match Frame::decode(&body) {
            Ok(Frame::Request { seq, command }) => {
                if let Some(why) = over_limit(&command, &limits) {
                    let reply = Frame::Reply { seq, reply: Reply::Refused(why) };
                    let _ = queue.send(Arc::new(reply.encode())).await;
                    continue;
                }
                let _ = shared.inputs.try_send(Input::Client(Request { client, seq, command }));
            }
            Ok(Frame::Status) => {
                let (answer, status) = oneshot::channel();
                match shared.inputs.try_send(Input::Status(answer)) {
                    Ok(()) => {
                        if let Ok(frame) = status.await {
                            let _ = queue.send(Arc::new(frame.encode())).await;
                        }
                    }
                    Err(TrySendError::Full(_)) => {
                        let busy = Frame::Error { message: "busy; ask again".into() };
                        let _ = queue.send(Arc::new(busy.encode())).await;
                    }
                    Err(TrySendError::Disconnected(_)) => break Some("the replica is stopping".into()),
                }
            }
            Ok(other) => break Some(format!("a client may send requests and status asks, not {other:?}")),
            Err(e) => break Some(e.to_string()),
        }
    };
    // Unregister (unless a newer connection of the client took over), say
    // what was wrong, and let the writer finish.
    if let Ok(mut clients) = shared.clients.lock()
        && clients.get(&client).is_some_and(|q| q.same_channel(&queue))
    {
        clients.remove(&client);
    }
    if let Some(message) = error {
        let _ = queue.send(Arc::new(Frame::Error { message }.encode())).await;
    }
    drop(queue);
    let _ = writer.await;
}

/// The replica's durable records.
struct DurableLog {
    file: File,
    pending: Vec<u8>,
    path: PathBuf,
}

const RECORD_HEADER: usize = 12;

fn checksum(body: &[u8]) -> [u8; 8] {
    blake3::hash(body).as_bytes()[..8].try_into().expect("8 bytes")
}

impl DurableLog {
    /// Opens (or creates) the log and reads its intact records, cutting a
    /// torn or corrupt tail.
    fn open(path: &Path) -> Result<(DurableLog, Vec<Vec<u8>>), ServeError> {
        let what = || format!("opening the log {}", path.display());
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io(what()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(what()))?;
        let mut records = Vec::new();
        let mut at = 0;
        while at + RECORD_HEADER <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let Some(body) = bytes.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else { break };
            if checksum(body) != bytes[at + 4..at + RECORD_HEADER] {
                break;
            }
            records.push(body.to_vec());
            at += RECORD_HEADER + len;
        }
        if at < bytes.len() {
            eprintln!(
                "{}: cut a torn or corrupt tail of {} bytes after {} records",
                path.display(),
                bytes.len() - at,
                records.len()
            );
            file.set_len(at as u64).map_err(io(what()))?;
        }
        file.seek(SeekFrom::Start(at as u64)).map_err(io(what()))?;
        Ok((DurableLog { file, pending: Vec::new(), path: path.to_path_buf() }, records))
    }

    fn append(&mut self, body: &[u8]) {
        self.pending.extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.pending.extend_from_slice(&checksum(body));
        self.pending.extend_from_slice(body);
    }

    /// Writes what was appended and waits until it is on stable storage.
    fn sync(&mut self) -> Result<(), ServeError> {
        let what = || format!("writing the log {}", self.path.display());
        self.file.write_all(&self.pending).map_err(io(what()))?;
        self.file.sync_data().map_err(io(what()))?;
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_back_its_records_and_cuts_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("nimbus-kv-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("replica-0.log");
        let _ = std::fs::remove_file(&path);
        {
            let (mut log, records) = DurableLog::open(&path).expect("opens");
            assert!(records.is_empty());
            log.append(b"first");
            log.append(b"second");
            log.sync().expect("syncs");
        }
        // A crash mid-append leaves half a record.
        let mut f = OpenOptions::new().append(true).open(&path).expect("opens");
        f.write_all(&[9, 0, 0, 0, 1, 2]).expect("writes");
        drop(f);
        let (mut log, records) = DurableLog::open(&path).expect("opens");
        assert_eq!(records, [b"first".to_vec(), b"second".to_vec()]);
        log.append(b"third");
        log.sync().expect("syncs");
        drop(log);
        let (_, records) = DurableLog::open(&path).expect("opens");
        assert_eq!(records.len(), 3, "the torn tail was cut before the next append");
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn impossible_settings_are_refused() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("address");
        let config = ReplicaConfig {
            id: 0,
            peers: vec![addr; 3],
            f: 1,
            token: String::new(),
            protocol: ServiceProtocol::Rabia,
            data_dir: std::env::temp_dir(),
            tick: Duration::from_millis(20),
            limits: Limits::default(),
        };
        assert!(config.check().expect_err("empty token").to_string().contains("token"));
        let config = ReplicaConfig { token: "t".into(), f: 2, ..config };
        assert!(config.check().expect_err("n < 2f+1").to_string().contains("2f + 1"));
        let config = ReplicaConfig { f: 1, protocol: ServiceProtocol::Racos { data: 3 }, ..config };
        assert!(config.check().expect_err("k > n - f").to_string().contains("k ≤ n − 2f"));
    }
}
