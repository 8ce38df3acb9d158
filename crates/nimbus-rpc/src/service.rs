//! A service of the chain: a TCP listener on 127.0.0.1, a queue of calls
//! ordered by the chain's [`Order`], worker threads that hold a call for
//! its work, and clients to the services of the next tier for its
//! fan-out.
//!
//! A call's work is a timed hold of one worker thread (`thread::sleep`),
//! not computation: the chain then behaves the same on a machine with
//! two cores as on one with sixty-four, and the comparison is of the
//! scheduling (queue order across real RPCs, fan-out, fan-in), not of the
//! CPU. The worker is free again once the work is done; the fan-out and
//! the wait for the children run on the async runtime and hold no
//! worker, as in the twin's model.
//!
//! Only connections that open with the chain's token are served, and a
//! call for another service closes its connection. A service's queue is
//! not bounded by itself: its callers are the chain's own generator,
//! which bounds the requests in flight, and the services above it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::wire::{Call, Frame};

/// How a service orders the calls waiting for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// First come first served at the service.
    Fcfs,
    /// Oldest request first, by the ingress timestamp every call carries
    /// (TailClipper; non-preemptive).
    OldestFirst,
}

/// A call waiting for or holding a worker.
struct Job {
    origin_ns: u64,
    call: Call,
    /// The connection its answer goes back on, and the caller's id.
    reply: mpsc::UnboundedSender<u64>,
    id: u64,
}

/// What every service shares with the chain.
pub struct Shared {
    /// The chain's token.
    pub token: [u8; 16],
    /// Calls answered, per service.
    pub answered: Vec<AtomicU64>,
    /// Sum of hold overshoots (ns): how much longer each sleep took than
    /// asked.
    pub overshoot_ns: AtomicU64,
    /// Holds made.
    pub holds: AtomicU64,
    /// Set when the chain stops.
    pub stop: AtomicBool,
    /// Services' addresses (global index).
    pub addrs: Mutex<Vec<SocketAddr>>,
}

/// Waiting calls by key (FCFS: arrival number; oldest-first: ingress
/// timestamp, then arrival number), and the last arrival number.
type Waiting = (BTreeMap<(u64, u64), Job>, u64);

/// The queue of a service and the workers' wake-up.
struct Queue {
    jobs: Mutex<Waiting>,
    ready: Condvar,
}

/// A running service; dropping it stops the chain's workers (the stop
/// flag is shared) and waits for its own.
pub struct Service {
    /// Global index.
    pub index: usize,
    /// Its address.
    pub addr: SocketAddr,
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Binds 127.0.0.1:0 and starts `workers` worker threads;
    /// connections to other services open on first use.
    pub async fn start(
        index: usize,
        workers: u32,
        order: Order,
        shared: Arc<Shared>,
        runtime: Handle,
    ) -> std::io::Result<Service> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let queue = Arc::new(Queue { jobs: Mutex::new((BTreeMap::new(), 0)), ready: Condvar::new() });
        let clients = Arc::new(Clients::new(shared.clone()));
        let mut handles = Vec::new();
        for w in 0..workers {
            let (queue, shared, clients, runtime) = (queue.clone(), shared.clone(), clients.clone(), runtime.clone());
            let handle = std::thread::Builder::new()
                .name(format!("svc{index}-w{w}"))
                .spawn(move || worker(index, &queue, &shared, &clients, &runtime))?;
            handles.push(handle);
        }
        let (accept_queue, accept_shared) = (queue.clone(), shared.clone());
        tokio::spawn(async move {
            let shared = accept_shared;
            while let Ok((stream, _)) = listener.accept().await {
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::spawn(serve_connection(stream, accept_queue.clone(), order, shared.clone(), index));
            }
        });
        Ok(Service { index, addr, queue, shared, workers: handles })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Under the lock, so no worker is between its stop check and its
        // wait when the wake-up comes.
        drop(self.queue.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.queue.ready.notify_all();
        for w in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = w.join();
        }
    }
}

/// Reads calls from one connection into the queue and writes answers.
async fn serve_connection(stream: TcpStream, queue: Arc<Queue>, order: Order, shared: Arc<Shared>, index: usize) {
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    // The caller must say hello with the token first, promptly.
    match tokio::time::timeout(Duration::from_secs(5), Frame::read(&mut read)).await {
        Ok(Ok(Some(Frame::Hello { token }))) if token == shared.token => {}
        _ => return,
    }
    let (answers, rx) = mpsc::unbounded_channel::<u64>();
    tokio::spawn(write_replies(write, rx));
    while let Ok(Some(frame)) = Frame::read(&mut read).await {
        let Frame::Call { id, origin_ns, call } = frame else { return };
        if usize::from(call.service) != index {
            return;
        }
        let mut guard = queue.jobs.lock().expect("queue lock");
        let (jobs, seq) = &mut *guard;
        *seq += 1;
        let key = match order {
            Order::Fcfs => (0, *seq),
            Order::OldestFirst => (origin_ns, *seq),
        };
        jobs.insert(key, Job { origin_ns, call, reply: answers.clone(), id });
        drop(guard);
        queue.ready.notify_one();
    }
}

async fn write_replies(mut write: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<u64>) {
    while let Some(id) = rx.recv().await {
        if (Frame::Reply { id }).write(&mut write).await.is_err() {
            return;
        }
    }
}

/// A worker thread: take the first call, hold for its work, hand its
/// fan-out to the runtime.
#[allow(clippy::disallowed_methods)] // a real hold runs on wall time
fn worker(index: usize, queue: &Queue, shared: &Arc<Shared>, clients: &Arc<Clients>, runtime: &Handle) {
    loop {
        let job = {
            let mut guard = queue.jobs.lock().expect("queue lock");
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some((_, job)) = guard.0.pop_first() {
                    break job;
                }
                guard = queue.ready.wait(guard).expect("queue lock");
            }
        };
        let asked = Duration::from_micros(u64::from(job.call.work_us));
        let start = Instant::now();
        if !asked.is_zero() {
            std::thread::sleep(asked);
            let over = start.elapsed().saturating_sub(asked);
            shared.overshoot_ns.fetch_add(u64::try_from(over.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
            shared.holds.fetch_add(1, Ordering::Relaxed);
        }
        let (shared, clients) = (shared.clone(), clients.clone());
        runtime.spawn(async move {
            let Job { origin_ns, call, reply, id } = job;
            let waits: Vec<_> = call.children.into_iter().map(|c| clients.call(origin_ns, c)).collect();
            for w in waits {
                // A child that failed (the chain is stopping) ends the call
                // unanswered; the generator counts it as lost.
                if !matches!(w.await, Ok(true)) {
                    return;
                }
            }
            shared.answered[index].fetch_add(1, Ordering::Relaxed);
            // A caller that went away needs no answer.
            let _ = reply.send(id);
        });
    }
}

/// Connections to other services, one per service, multiplexed by id.
pub struct Clients {
    shared: Arc<Shared>,
    conns: tokio::sync::Mutex<BTreeMap<u16, Arc<Client>>>,
}

struct Client {
    next: AtomicU64,
    pending: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
    out: mpsc::UnboundedSender<Vec<u8>>,
}

impl Clients {
    /// No connections yet.
    pub fn new(shared: Arc<Shared>) -> Clients {
        Clients { shared, conns: tokio::sync::Mutex::new(BTreeMap::new()) }
    }

    /// Sends `call` to its service; resolves to whether it was answered.
    pub fn call(self: &Arc<Self>, origin_ns: u64, call: Call) -> tokio::task::JoinHandle<bool> {
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(client) = this.client(call.service).await else { return false };
            let id = client.next.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            client.pending.lock().expect("pending lock").insert(id, tx);
            if client.out.send(Frame::Call { id, origin_ns, call }.encode()).is_err() {
                return false;
            }
            rx.await.is_ok()
        })
    }

    async fn client(&self, service: u16) -> std::io::Result<Arc<Client>> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(&service) {
            return Ok(c.clone());
        }
        let addr = self.shared.addrs.lock().expect("addrs lock").get(usize::from(service)).copied();
        let addr = addr.ok_or_else(|| std::io::Error::other("no such service"))?;
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut read, mut write) = stream.into_split();
        Frame::Hello { token: self.shared.token }.write(&mut write).await.map_err(std::io::Error::other)?;
        let (out, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let client = Arc::new(Client { next: AtomicU64::new(0), pending: Mutex::new(BTreeMap::new()), out });
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(bytes) = rx.recv().await {
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        });
        let reader = client.clone();
        tokio::spawn(async move {
            while let Ok(Some(Frame::Reply { id })) = Frame::read(&mut read).await {
                let waiter = reader.pending.lock().expect("pending lock").remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(());
                }
            }
            // The connection ended: every call still pending fails.
            reader.pending.lock().expect("pending lock").clear();
        });
        conns.insert(service, client.clone());
        Ok(client)
    }
}
