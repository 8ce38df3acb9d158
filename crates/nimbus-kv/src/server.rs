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
//! records: a magic `NKV1`, the body's length (u32), the first 8 bytes of
//! the body's BLAKE3, a 4-byte check of that header, then the body. At
//! start the replica reads every intact record: a torn last record (a
//! crash mid-append; nothing after it was released) is cut; a corrupt
//! record elsewhere is skipped up to the next intact one (found by its
//! magic and header check), reported, and the log rewritten without it, so
//! one damaged record costs only itself. The records go to
//! [`Protocol::recover`], which also asks the other replicas for what was
//! decided, so a recovering replica catches up without waiting for new
//! writes. A file with no record of this format is refused, not emptied.
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
//! Memory is bounded whatever peers send ([`Limits`]): at most
//! `unauthenticated` connections may be waiting to say hello (more are
//! closed at once), a hello is at most `hello_bytes`, frames take memory
//! only as their bytes arrive; after the hello each connection may have
//! `connection_bytes` queued each way, all connections together
//! `inbox_bytes` for the protocol thread, and each other replica
//! `peer_queue_bytes`; beyond a budget a request, reply or message is
//! dropped (clients retry, the protocols re-send).
//!
//! Limits: the log is never compacted (a replica's disk use grows with
//! what it persisted); membership is fixed by the address list.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Longest hello frame (a token and a role), bytes.
    pub hello_bytes: usize,
    /// Connections that have not yet said a valid hello, at once; more
    /// are closed at once, so unauthenticated peers cannot hold memory.
    pub unauthenticated: usize,
    /// Client connections at once.
    pub clients: usize,
    /// Bytes one connection may have queued in each direction: requests
    /// the protocol thread has not taken yet, replies not yet written.
    /// Beyond it a request or reply is dropped (clients retry).
    pub connection_bytes: usize,
    /// Bytes queued for the protocol thread from all connections together.
    pub inbox_bytes: usize,
    /// Bytes queued for one other replica; beyond it messages are dropped,
    /// which the protocols tolerate as loss.
    pub peer_queue_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            client_frame_bytes: 2 << 20,
            peer_frame_bytes: 64 << 20,
            value_bytes: 1 << 20,
            key_bytes: 1024,
            hello_timeout: Duration::from_secs(5),
            hello_bytes: 4096,
            unauthenticated: 64,
            clients: 1024,
            connection_bytes: 8 << 20,
            inbox_bytes: 512 << 20,
            peer_queue_bytes: 256 << 20,
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

/// What connection tasks hand the protocol thread; the charge holds the
/// input's bytes against the budgets until the protocol thread is done
/// with it.
enum Input<M> {
    Client(Request, Charge),
    Peer(ReplicaId, M, Charge),
    Status(oneshot::Sender<Frame>),
}

/// Bytes queued somewhere, against a limit.
#[derive(Debug, Clone, Default)]
struct Meter(Arc<AtomicUsize>);

impl Meter {
    /// Counts `bytes` more if that stays within `limit`.
    fn try_take(&self, bytes: usize, limit: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| q.checked_add(bytes).filter(|t| *t <= limit))
            .is_ok()
    }
}

/// Bytes counted on some meters, given back when dropped.
#[derive(Debug, Default)]
struct Charge {
    meters: Vec<Meter>,
    bytes: usize,
}

impl Charge {
    /// Charges `bytes` on every `(meter, limit)`, or on none if one is full.
    fn try_new(bytes: usize, on: &[(&Meter, usize)]) -> Option<Charge> {
        let mut charge = Charge { meters: Vec::with_capacity(on.len()), bytes };
        for (meter, limit) in on {
            if !meter.try_take(bytes, *limit) {
                return None; // `charge` gives back what it took
            }
            charge.meters.push((*meter).clone());
        }
        Some(charge)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        for m in &self.meters {
            m.0.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

/// A frame queued for a connection, with the bytes it holds.
type Queued = (Arc<Vec<u8>>, Charge);

/// A queue of frames to one connection, bounded in frames and in bytes.
#[derive(Debug, Clone)]
struct Outgoing {
    queue: mpsc::Sender<Queued>,
    meter: Meter,
    limit: usize,
}

impl Outgoing {
    fn new(frames: usize, limit: usize) -> (Outgoing, mpsc::Receiver<Queued>) {
        let (queue, receiver) = mpsc::channel(frames);
        (Outgoing { queue, meter: Meter::default(), limit }, receiver)
    }

    /// Queues `frame` if the queue has room for it; otherwise drops it.
    fn offer(&self, frame: Arc<Vec<u8>>) {
        if let Some(charge) = Charge::try_new(frame.len(), &[(&self.meter, self.limit)]) {
            let _ = self.queue.try_send((frame, charge));
        }
    }

    /// Queues `frame`, waiting for a free slot (a connection's own error
    /// or refusal, which must not be lost).
    async fn send(&self, frame: Arc<Vec<u8>>) {
        let _ = self.queue.send((frame, Charge::default())).await;
    }
}

/// Holds one place among a limited number (connections not yet
/// authenticated, client connections), freed when dropped.
struct Slot(Meter);

impl Slot {
    fn take(meter: &Meter, limit: usize) -> Option<Slot> {
        meter.try_take(1, limit).then(|| Slot(meter.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What connection tasks share.
struct Shared<M> {
    config: ReplicaConfig,
    inputs: SyncSender<Input<M>>,
    /// Bytes queued for the protocol thread.
    inbox: Meter,
    /// Connections that have not said hello yet.
    unauthenticated: Meter,
    /// Client connections.
    client_connections: Meter,
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
    let (mut log, recovery) = DurableLog::open(&log_path)?;
    let mut durable = Vec::with_capacity(recovery.records.len());
    for (i, body) in recovery.records.iter().enumerate() {
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
    let shared = Arc::new(Shared {
        config: config.clone(),
        inputs,
        inbox: Meter::default(),
        unauthenticated: Meter::default(),
        client_connections: Meter::default(),
        clients: Mutex::new(BTreeMap::new()),
    });
    let _guard = runtime.enter();
    // One outgoing queue and sender task per other replica.
    let hello = Arc::new(Frame::Hello { token: config.token.clone(), role: Role::Replica(config.id) }.encode());
    let peers: Vec<Option<Outgoing>> = (0..config.peers.len())
        .map(|i| {
            (i != config.id).then(|| {
                let (tx, rx) = Outgoing::new(4096, config.limits.peer_queue_bytes);
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

    let skipped: usize = recovery.skipped.iter().map(|s| s.1).sum();
    println!(
        "replica {} of {} ({}) listening on {local}; {recovered} durable records recovered from {}{}",
        config.id,
        config.peers.len(),
        config.protocol.name(),
        log_path.display(),
        if skipped > 0 { format!(" ({skipped} corrupt bytes skipped)") } else { String::new() }
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
                        // Past the limit of connections still to say hello,
                        // close at once: they hold nothing.
                        let Some(slot) = Slot::take(&shared.unauthenticated, config.limits.unauthenticated) else {
                            drop(stream);
                            continue;
                        };
                        let shared = shared.clone();
                        tokio::spawn(async move { connection(stream, from, shared, slot).await });
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
                Input::Client(request, _charge) => effects.extend(replica.on_client(request, wall_ns())),
                Input::Peer(from, message, _charge) => effects.extend(replica.on_message(from, message)),
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
                    queue.offer(Arc::new(peer_frame(&message)));
                }
            }
            Effect::Broadcast(message) => {
                let frame = Arc::new(peer_frame(&message));
                for queue in peers.iter().flatten() {
                    queue.offer(frame.clone());
                }
            }
            Effect::Reply { client, seq, reply } => {
                let queue = shared.clients.lock().ok().and_then(|c| c.get(&client).cloned());
                if let Some(queue) = queue {
                    queue.offer(Arc::new(Frame::Reply { seq, reply }.encode()));
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
async fn send_to_peer(addr: SocketAddr, hello: Arc<Vec<u8>>, mut queue: mpsc::Receiver<Queued>) {
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
            let Some((frame, _charge)) = queue.recv().await else { return };
            if write_frame(&mut out, &frame).await.is_err() {
                break 'connected;
            }
            while let Ok((frame, _charge)) = queue.try_recv() {
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
async fn connection<M>(stream: TcpStream, from: SocketAddr, shared: Arc<Shared<M>>, unauthenticated: Slot)
where
    M: Wire + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(8 << 10, read);
    let limits = shared.config.limits;
    let me = shared.config.id;
    let hello = tokio::time::timeout(limits.hello_timeout, read_frame(&mut read, limits.hello_bytes)).await;
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
    drop(unauthenticated);
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
                        // Beyond the inbox budget a message is dropped, as loss.
                        if let Some(charge) = Charge::try_new(body.len(), &[(&shared.inbox, limits.inbox_bytes)]) {
                            let _ = shared.inputs.try_send(Input::Peer(peer, message, charge));
                        }
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
            let Some(_slot) = Slot::take(&shared.client_connections, limits.clients) else {
                return say_error(&mut write, format!("too many client connections (at most {})", limits.clients))
                    .await;
            };
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
    let (queue, mut outgoing) = Outgoing::new(1024, limits.connection_bytes);
    // Requests of this connection not yet taken by the protocol thread.
    let inbound = Meter::default();
    if let Ok(mut clients) = shared.clients.lock() {
        clients.insert(client, queue.clone());
    }
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(write);
        while let Some((frame, _charge)) = outgoing.recv().await {
            if write_frame(&mut out, &frame).await.is_err() {
                return;
            }
            while let Ok((frame, _charge)) = outgoing.try_recv() {
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
                    queue.send(Arc::new(reply.encode())).await;
                    continue;
                }
                // Beyond this connection's or the inbox's budget the request
                // is dropped; the client retries.
                let budgets = [(&inbound, limits.connection_bytes), (&shared.inbox, limits.inbox_bytes)];
                if let Some(charge) = Charge::try_new(body.len(), &budgets) {
                    let _ = shared.inputs.try_send(Input::Client(Request { client, seq, command }, charge));
                }
            }
            Ok(Frame::Status) => {
                let (answer, status) = oneshot::channel();
                match shared.inputs.try_send(Input::Status(answer)) {
                    Ok(()) => {
                        if let Ok(frame) = status.await {
                            queue.send(Arc::new(frame.encode())).await;
                        }
                    }
                    Err(TrySendError::Full(_)) => {
                        let busy = Frame::Error { message: "busy; ask again".into() };
                        queue.send(Arc::new(busy.encode())).await;
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
        && clients.get(&client).is_some_and(|q| q.queue.same_channel(&queue.queue))
    {
        clients.remove(&client);
    }
    if let Some(message) = error {
        queue.send(Arc::new(Frame::Error { message }.encode())).await;
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

/// Marks the start of every record, so that reading can find the next
/// record after a corrupt one.
const RECORD_MAGIC: [u8; 4] = *b"NKV1";
/// Magic, body length (u32), the body's checksum (8), the header's (4).
const RECORD_HEADER: usize = 20;

fn checksum(body: &[u8]) -> [u8; 8] {
    blake3::hash(body).as_bytes()[..8].try_into().expect("8 bytes")
}

fn header_check(header: &[u8]) -> [u8; 4] {
    blake3::hash(&header[..16]).as_bytes()[..4].try_into().expect("4 bytes")
}

/// The body of an intact record at `at`, and where the next one starts.
fn record_at(bytes: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER)?)?;
    if header[..4] != RECORD_MAGIC || header[16..20] != header_check(header) {
        return None;
    }
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let start = at + RECORD_HEADER;
    let end = start.checked_add(len)?;
    let body = bytes.get(start..end)?;
    (checksum(body) == header[8..16]).then_some((start..end, end))
}

/// What reading a replica's log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Intact records, in order.
    pub records: Vec<Vec<u8>>,
    /// Corrupt regions skipped: (offset, bytes, intact records before it).
    pub skipped: Vec<(usize, usize, usize)>,
    /// Bytes of a torn last record (a crash mid-append).
    pub torn: usize,
}

impl Recovery {
    /// Reads every intact record of `bytes`. A record that does not check
    /// is skipped up to the next one that does, so one corrupt record
    /// costs only itself; what follows the last intact record is a torn
    /// append when it is a prefix of one (a crash mid-write), and corrupt
    /// otherwise. A file holding no record of this format is an error.
    pub fn read(bytes: &[u8]) -> Result<Recovery, String> {
        let mut found = Recovery::default();
        let mut at = 0;
        while at < bytes.len() {
            if let Some((body, next)) = record_at(bytes, at) {
                found.records.push(bytes[body].to_vec());
                at = next;
                continue;
            }
            // The next intact record, if any, found by its magic.
            let resume = (at + 1..bytes.len().saturating_sub(RECORD_HEADER - 1))
                .filter(|&p| bytes[p..p + 4] == RECORD_MAGIC)
                .find(|&p| record_at(bytes, p).is_some());
            match resume {
                Some(p) => {
                    found.skipped.push((at, p - at, found.records.len()));
                    at = p;
                }
                None => {
                    let rest = &bytes[at..];
                    let torn_prefix = rest.len() < RECORD_HEADER
                        && RECORD_MAGIC.starts_with(&rest[..rest.len().min(4)])
                        || rest.len() >= RECORD_HEADER
                            && rest[..4] == RECORD_MAGIC
                            && rest[16..20] == header_check(rest);
                    if torn_prefix {
                        found.torn = rest.len();
                    } else if found.records.is_empty() && found.skipped.is_empty() {
                        return Err(format!(
                            "holds no record of this log format ({} bytes); it is not a nimbus-kv log of this version",
                            bytes.len()
                        ));
                    } else {
                        found.skipped.push((at, rest.len(), found.records.len()));
                    }
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// A log holding `records`, as a replica writes it (for tests and seeds).
pub fn encode_log(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        encode_record(r, &mut out);
    }
    out
}

fn encode_record(body: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&u32::try_from(body.len()).expect("a record under 4 GiB").to_le_bytes());
    out.extend_from_slice(&checksum(body));
    let check = header_check(&out[start..start + 16]);
    out.extend_from_slice(&check);
    out.extend_from_slice(body);
}

impl DurableLog {
    /// Opens (or creates) the log and reads its intact records. A torn
    /// tail is cut; corrupt records are skipped, reported, and the file is
    /// rewritten with the intact ones so the next append follows them.
    fn open(path: &Path) -> Result<(DurableLog, Recovery), ServeError> {
        let what = || format!("opening the log {}", path.display());
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io(what()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(what()))?;
        let found = Recovery::read(&bytes).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
        for &(offset, len, before) in &found.skipped {
            eprintln!(
                "{}: skipped {len} corrupt bytes at offset {offset} (after {before} intact records)",
                path.display()
            );
        }
        if !found.skipped.is_empty() {
            let mut clean = Vec::with_capacity(bytes.len());
            for body in &found.records {
                encode_record(body, &mut clean);
            }
            let temp = path.with_extension("log.rewrite");
            let mut out = File::create(&temp).map_err(io(what()))?;
            out.write_all(&clean).and_then(|()| out.sync_all()).map_err(io(what()))?;
            std::fs::rename(&temp, path).map_err(io(what()))?;
            if let Some(dir) = path.parent()
                && let Ok(d) = File::open(dir)
            {
                let _ = d.sync_all();
            }
            file = OpenOptions::new().read(true).write(true).open(path).map_err(io(what()))?;
            file.seek(SeekFrom::End(0)).map_err(io(what()))?;
        } else {
            let end = bytes.len() - found.torn;
            if found.torn > 0 {
                eprintln!("{}: cut a torn last record of {} bytes", path.display(), found.torn);
                file.set_len(end as u64).map_err(io(what()))?;
            }
            file.seek(SeekFrom::Start(end as u64)).map_err(io(what()))?;
        }
        Ok((DurableLog { file, pending: Vec::new(), path: path.to_path_buf() }, found))
    }

    fn append(&mut self, body: &[u8]) {
        encode_record(body, &mut self.pending);
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

    fn temp_log(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("nimbus-kv-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("replica-0.log");
        (dir, path)
    }

    fn write_log(path: &Path, bodies: &[&[u8]]) {
        let (mut log, _) = DurableLog::open(path).expect("opens");
        for b in bodies {
            log.append(b);
        }
        log.sync().expect("syncs");
    }

    #[test]
    fn the_log_reads_back_its_records_and_cuts_a_torn_tail() {
        let (dir, path) = temp_log("torn");
        write_log(&path, &[b"first", b"second"]);
        // A crash mid-append leaves the start of a record.
        let mut partial = Vec::new();
        encode_record(b"third, never finished", &mut partial);
        let mut f = OpenOptions::new().append(true).open(&path).expect("opens");
        f.write_all(&partial[..RECORD_HEADER + 3]).expect("writes");
        drop(f);
        let (mut log, found) = DurableLog::open(&path).expect("opens");
        assert_eq!(found.records, [b"first".to_vec(), b"second".to_vec()]);
        assert_eq!((found.torn, found.skipped.len()), (RECORD_HEADER + 3, 0));
        log.append(b"third");
        log.sync().expect("syncs");
        drop(log);
        let (_, found) = DurableLog::open(&path).expect("opens");
        assert_eq!(found.records.len(), 3, "the torn tail was cut before the next append");
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_corrupt_record_in_the_middle_costs_only_itself() {
        let (dir, path) = temp_log("middle");
        let bodies: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        write_log(&path, &refs);
        let mut bytes = std::fs::read(&path).expect("reads");
        // Flip bytes inside record 7's body, and destroy record 12's length.
        let offset = |k: usize| (0..k).map(|i| RECORD_HEADER + bodies[i].len()).sum::<usize>();
        bytes[offset(7) + RECORD_HEADER + 10] ^= 0xff;
        bytes[offset(12) + 5] ^= 0x40;
        std::fs::write(&path, &bytes).expect("writes");
        let (mut log, found) = DurableLog::open(&path).expect("opens");
        let expected: Vec<Vec<u8>> = (0..20).filter(|i| *i != 7 && *i != 12).map(|i| bodies[i].clone()).collect();
        assert_eq!(found.records, expected, "every intact record, in order");
        assert_eq!(found.skipped.iter().map(|s| (s.0, s.2)).collect::<Vec<_>>(), [(offset(7), 7), (offset(12), 11)]);
        // The file was rewritten: appending and reading again keeps them all.
        log.append(b"after");
        log.sync().expect("syncs");
        drop(log);
        let (_, again) = DurableLog::open(&path).expect("opens");
        assert_eq!(again.records.len(), 19);
        assert!(again.skipped.is_empty() && again.torn == 0);
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused_not_emptied() {
        let (dir, path) = temp_log("foreign");
        std::fs::write(&path, vec![7u8; 5000]).expect("writes");
        let err = DurableLog::open(&path).err().expect("refused").to_string();
        assert!(err.contains("not a nimbus-kv log"), "{err}");
        assert_eq!(std::fs::metadata(&path).expect("still there").len(), 5000);
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn random_damage_never_panics_and_keeps_the_records_it_does_not_touch() {
        let (dir, path) = temp_log("random");
        let bodies: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i ^ 0x5a; 1 + usize::from(i) * 3]).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        write_log(&path, &refs);
        let clean = std::fs::read(&path).expect("reads");
        std::fs::remove_dir_all(&dir).expect("cleans up");
        let mut rng = nimbus_sim::RngStreams::new(7).stream("damage");
        for _ in 0..300 {
            let mut bytes = clean.clone();
            let at = usize::try_from(rng.below(bytes.len() as u64)).expect("small");
            let len = usize::try_from(rng.below(64) + 1).expect("small").min(bytes.len() - at);
            for b in &mut bytes[at..at + len] {
                *b = u8::try_from(rng.below(256)).expect("a byte");
            }
            let Ok(found) = Recovery::read(&bytes) else { continue };
            // Records wholly outside the damaged bytes survive.
            let mut start = 0;
            for body in &bodies {
                let end = start + RECORD_HEADER + body.len();
                if end <= at || start >= at + len {
                    assert!(found.records.contains(body), "an untouched record was lost");
                }
                start = end;
            }
        }
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
