//! Running the real `parley` binary as a child process: its environment, its log, its port, its signals, its
//! resident memory; and its emulated providers in a process of their own.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary with a clean environment: loopback, port 0, `data_dir`, the tests' auth secret and operator key,
/// plus `env`.
/// `PARLEY_BENCH_WRAP` (e.g. `heaptrack -o /tmp/parley` or `strace -fc -o /tmp/sys`) runs it under a profiler.
pub fn parley(env: &[(&str, &str)], data_dir: &std::path::Path) -> Command {
    let mut cmd = wrapped("PARLEY_BENCH_WRAP");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("PARLEY_DATA_DIR", data_dir)
        .env("PARLEY_AUTH_SECRET", super::AUTH_SECRET)
        .env("PARLEY_API_KEYS", super::OPERATOR_KEY)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// An HTTP client that presents the operator API key, for a child's protected routes.
pub fn client() -> awc::Client {
    awc::Client::builder().add_default_header(("Authorization", format!("Bearer {}", super::OPERATOR_KEY))).finish()
}

/// The parley binary, run under the profiler `wrap_var` names when it is set (`heaptrack -o FILE`, ...).
fn wrapped(wrap_var: &str) -> Command {
    let bin = env!("CARGO_BIN_EXE_parley");
    let wrap = std::env::var(wrap_var).unwrap_or_default();
    match wrap.split_whitespace().collect::<Vec<_>>().split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// A minimal blocking HTTP GET over a raw socket (no client library between the test and the server); the
/// whole response, status line and headers included.
pub fn raw_get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Waits for the child to exit (killing it after `timeout`).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Its log so far, appended to by a reader thread.
pub type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A running parley process.
pub struct Running {
    pub child: Child,
    pub log: Log,
    pub reader: std::thread::JoinHandle<()>,
    pub port: u16,
    /// The development credential printed with the page's address (no `PARLEY_AUTH_SECRET` configured).
    pub dev_credential: Option<String>,
}

/// Starts `cmd`, collecting its stderr; returns once it says it is ready (with its page's address).
#[allow(clippy::zombie_processes)] // the child is returned; every caller waits for it in `stop`
pub fn start(mut cmd: Command) -> Running {
    let mut child = cmd.spawn().unwrap();
    let log: Log = Default::default();
    let (port_tx, port_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // "parley is ready: open http://127.0.0.1:PORT/[?dev=CREDENTIAL]"
            if let Some(url) = line.split("parley is ready: open ").nth(1) {
                let url = url::Url::parse(url.trim()).unwrap();
                let dev = url.query_pairs().find(|(k, _)| k == "dev").map(|(_, v)| v.into_owned());
                let _ = port_tx.send((url.port().unwrap(), dev));
            }
            sink.lock().unwrap().push(line);
        }
    });
    let (port, dev_credential) = port_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("parley never said it was ready; log:\n{}", log.lock().unwrap().join("\n")));
    Running { child, log, reader, port, dev_credential }
}

impl Running {
    /// Sends `signal`, waits for the exit and the end of the log; returns the status and the whole log.
    pub fn stop(mut self, signal: libc::c_int) -> (std::process::ExitStatus, String) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        let status = wait_exit(&mut self.child, Duration::from_secs(30)).expect("parley exits after the signal");
        let reader = std::mem::replace(&mut self.reader, std::thread::spawn(|| {}));
        reader.join().unwrap();
        let log = self.log.lock().unwrap().join("\n");
        (status, log)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Running {
    /// A test that fails before `stop` must not leave parley running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process's resident memory, MiB (`VmRSS` of `/proc/<pid>/status`; 0 once it is gone).
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Samples a process's resident memory every 20 ms on a thread of its own, so that a short spike between a
/// test's own samples is seen too.
pub struct RssWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0f64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss_mib(pid))
        });
        RssWatch { stop, thread }
    }

    /// Stops sampling; returns the peak, MiB.
    pub fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The provider emulators in a process of their own (`parley emulate ARGS`), so that a test measuring
/// parley's memory measures parley's alone.
pub struct EmulatorProcess {
    child: Child,
    /// `DEEPGRAM_BASE_URL`, `OPENAI_API_KEY`, …: what points parley at them.
    pub env: Vec<(String, String)>,
}

impl EmulatorProcess {
    /// Starts them and reads the `export` lines they print. `PARLEY_BENCH_EMULATOR_WRAP` runs them under a
    /// profiler, as `PARLEY_BENCH_WRAP` does parley.
    #[allow(clippy::zombie_processes)] // killed and waited for on drop
    pub fn start(args: &[&str]) -> EmulatorProcess {
        let mut child = wrapped("PARLEY_BENCH_EMULATOR_WRAP")
            .arg("emulate")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut env = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while env.len() < 6 {
            let line = lines.next().expect("emulate prints its environment").unwrap();
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                env.push((k.to_string(), v.to_string()));
            }
        }
        std::thread::spawn(move || for _ in lines {});
        EmulatorProcess { child, env }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Their environment as `parley()` takes it.
    pub fn vars(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
