//! Running the real `parley` binary as a child process: its environment, its log, its port, its signals.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary with a clean environment: loopback, port 0, `data_dir`, plus `env`.
pub fn parley(env: &[(&str, &str)], data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("PARLEY_DATA_DIR", data_dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
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
}

/// Starts `cmd`, collecting its stderr; returns once it reports its port.
#[allow(clippy::zombie_processes)] // the child is returned; every caller waits for it in `stop`
pub fn start(mut cmd: Command) -> Running {
    let mut child = cmd.spawn().unwrap();
    let log: Log = Default::default();
    let (port_tx, port_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = line.split("listening on port ").nth(1) {
                let _ = port_tx.send(port.trim().parse::<u16>().unwrap());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("parley never reported its port; log:\n{}", log.lock().unwrap().join("\n")));
    Running { child, log, reader, port }
}

impl Running {
    /// Sends `signal`, waits for the exit and the end of the log; returns the status and the whole log.
    pub fn stop(mut self, signal: libc::c_int) -> (std::process::ExitStatus, String) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        let status = wait_exit(&mut self.child, Duration::from_secs(30)).expect("parley exits after the signal");
        self.reader.join().unwrap();
        let log = self.log.lock().unwrap().join("\n");
        (status, log)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
