//! A cluster of replica processes on this machine, for the benchmark
//! command and the tests: free loopback ports, one `nimbus kv serve`
//! process per replica (the token passed in the environment, not on the
//! command line), output in the data directory, and killing or restarting
//! one replica on demand. Dropping the cluster kills what is left.
//!
//! Replicas die with the process that started them, however it ends: each
//! reads its standard input, a pipe whose other end only the starting
//! process holds, and exits when it closes (the kernel closes it when that
//! process exits or is killed, even by SIGKILL). A cluster in a directory
//! of its own ([`LocalCluster::start_temporary`]) is removed by whichever
//! replica or owner leaves last.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::server::ServiceProtocol;

/// The environment variable that carries the cluster's token.
pub const TOKEN_ENV: &str = "NIMBUS_KV_TOKEN";

/// Replica processes on loopback.
pub struct LocalCluster {
    program: PathBuf,
    /// Every replica's address.
    pub addrs: Vec<SocketAddr>,
    /// The cluster's token.
    pub token: String,
    f: usize,
    protocol: ServiceProtocol,
    dir: PathBuf,
    /// Remove `dir` when the cluster goes (it was created for it).
    temporary: bool,
    /// Each replica process and the write end of its standard input.
    children: Vec<Option<(Child, ChildStdin)>>,
}

/// `n` free loopback addresses (bound, read and released; another process
/// could take one in between, which the caller sees as a failed start).
pub fn free_addrs(n: usize) -> std::io::Result<Vec<SocketAddr>> {
    let listeners = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>()?;
    listeners.iter().map(TcpListener::local_addr).collect()
}

impl LocalCluster {
    /// Starts `n` replicas of `program kv serve` with data under `dir`,
    /// and waits until each accepts connections.
    pub fn start(
        program: &Path,
        n: usize,
        f: usize,
        protocol: ServiceProtocol,
        dir: &Path,
        token: &str,
    ) -> std::io::Result<Self> {
        Self::start_in(program, n, f, protocol, dir, token, false)
    }

    /// [`LocalCluster::start`] in a new directory of its own under the
    /// system's temporary directory, removed when the cluster is dropped
    /// or, should this process die first, by the replicas as they exit.
    pub fn start_temporary(
        program: &Path,
        n: usize,
        f: usize,
        protocol: ServiceProtocol,
        token: &str,
    ) -> std::io::Result<Self> {
        let dir = fresh_temp_dir()?;
        // A cluster that started removes the directory when dropped; one
        // that did not leaves it to us.
        Self::start_in(program, n, f, protocol, &dir, token, true).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })
    }

    fn start_in(
        program: &Path,
        n: usize,
        f: usize,
        protocol: ServiceProtocol,
        dir: &Path,
        token: &str,
        temporary: bool,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut cluster = LocalCluster {
            program: program.to_path_buf(),
            addrs: free_addrs(n)?,
            token: token.to_string(),
            f,
            protocol,
            dir: dir.to_path_buf(),
            temporary,
            children: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        for i in 0..n {
            cluster.wait_ready(i, Duration::from_secs(20))?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let peers: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
        let out =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(format!("replica-{i}.out")))?;
        let mut command = Command::new(&self.program);
        command
            .args(["kv", "serve", "--id", &i.to_string(), "--peers", &peers.join(","), "--f", &self.f.to_string()])
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--exit-with-parent")
            .env(TOKEN_ENV, &self.token)
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out);
        if self.temporary {
            command.arg("--remove-on-exit").arg(&self.dir);
        }
        match self.protocol {
            ServiceProtocol::Rabia => command.args(["--protocol", "rabia"]),
            ServiceProtocol::Racos { data } => {
                command.args(["--protocol", "racos", "--data-shards", &data.to_string()])
            }
        };
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no pipe to the replica's input"))?;
        self.children[i] = Some((child, stdin));
        Ok(())
    }

    fn wait_ready(&mut self, i: usize, wait: Duration) -> std::io::Result<()> {
        let mut waited = Duration::ZERO;
        let step = Duration::from_millis(20);
        while waited < wait {
            if let Some((child, _)) = self.children[i].as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log = tail(&self.dir.join(format!("replica-{i}.out")), 4096);
                return Err(std::io::Error::other(format!("replica {i} exited ({status}): {}", log.trim())));
            }
            if TcpStream::connect_timeout(&self.addrs[i], step).is_ok() {
                return Ok(());
            }
            std::thread::sleep(step);
            waited += step;
        }
        Err(std::io::Error::other(format!(
            "replica {i} did not accept connections on {} within {wait:?}",
            self.addrs[i]
        )))
    }

    /// Kills replica `i` at once (SIGKILL: no shutdown, only what it made
    /// durable survives).
    pub fn kill(&mut self, i: usize) -> std::io::Result<()> {
        if let Some((mut child, _stdin)) = self.children.get_mut(i).and_then(Option::take) {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts replica `i` again from its durable log.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        self.kill(i)?;
        self.spawn(i)?;
        self.wait_ready(i, Duration::from_secs(20))
    }

    /// Whether replica `i` runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.children.get_mut(i).and_then(Option::as_mut).is_some_and(|(c, _)| matches!(c.try_wait(), Ok(None)))
    }

    /// Where replica `i`'s output goes.
    pub fn output_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("replica-{i}.out"))
    }

    /// The replicas' directory (logs and output).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Each replica's process id, `None` for one not running.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.children.iter().map(|c| c.as_ref().map(|(child, _)| child.id())).collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            let _ = self.kill(i);
        }
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// At most the last `bytes` of a file, as text (a replica's output may be
/// long).
fn tail(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut out = Vec::new();
    let _ = file.take(bytes).read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A new, empty directory `nimbus-kv-<pid>-<n>` under the system's
/// temporary directory.
fn fresh_temp_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..10_000u32 {
        let dir = base.join(format!("nimbus-kv-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

/// For a replica started by [`LocalCluster`]: waits (on a thread of its
/// own) until standard input closes, that is until the starting process is
/// gone, then removes `remove` (the cluster's temporary directory, if any)
/// and ends this process.
pub fn exit_with_parent(remove: Option<PathBuf>) -> std::io::Result<()> {
    std::thread::Builder::new().name("parent-watch".into()).spawn(move || {
        use std::io::Read;
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if let Some(dir) = remove {
            // The other replicas are leaving too and may hold files in it.
            for _ in 0..20 {
                if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        std::process::exit(0);
    })?;
    Ok(())
}

/// Starts `n` replicas as threads of this process (for tests: they serve
/// until the process ends and cannot be killed one by one); returns their
/// addresses once each is bound.
pub fn start_in_process(
    n: usize,
    f: usize,
    protocol: ServiceProtocol,
    dir: &Path,
    token: &str,
    limits: crate::server::Limits,
) -> std::io::Result<Vec<SocketAddr>> {
    let listeners = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>()?;
    let addrs = listeners.iter().map(TcpListener::local_addr).collect::<Result<Vec<_>, _>>()?;
    for (id, listener) in listeners.into_iter().enumerate() {
        let config = crate::server::ReplicaConfig {
            id,
            peers: addrs.clone(),
            f,
            token: token.to_string(),
            protocol,
            data_dir: dir.to_path_buf(),
            tick: Duration::from_millis(20),
            limits,
        };
        std::thread::Builder::new().name(format!("serve-{id}")).spawn(move || {
            if let Err(e) = crate::server::serve_on(config, listener) {
                eprintln!("replica {id}: {e}");
            }
        })?;
    }
    Ok(addrs)
}
