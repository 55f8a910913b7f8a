//! A throwaway PostgreSQL server for the test process, or the server named by `TEST_DATABASE_URL`.
//!
//! The throwaway cluster is initialised in a temporary directory on first use (`initdb --no-sync`, about half a
//! second) and started as a child of a tiny shell that holds a pipe from this process: when the test process
//! exits for any reason the pipe closes, the shell stops PostgreSQL and deletes the directory. Each test gets a
//! fresh database on that server. PostgreSQL's binaries are installed on first use when missing (see
//! `provision`). Nothing skips: if PostgreSQL cannot be found, installed or started, the test fails saying why.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};

/// Where a test's PostgreSQL lives.
struct Server {
    /// URL of the maintenance database, used to create per-test databases.
    admin_url: String,
    /// Holds the watchdog's stdin open for the life of the process.
    _watchdog: Option<Mutex<Child>>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A fresh, empty database; returns its URL.
pub async fn fresh_database() -> String {
    let server = match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("PostgreSQL is needed for this test and could not be started: {e}"),
    };
    let name = format!("parley_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AsyncPgConnection::establish(&server.admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", server.admin_url));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    replace_database(&server.admin_url, &name)
}

fn replace_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        return Ok(Server { admin_url: url, _watchdog: None });
    }
    let bin = find_binaries()?;
    let dir = tempfile::Builder::new()
        .prefix("parley-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    let as_root = unsafe_is_root();
    if as_root {
        // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
        run(Command::new("chown").arg("-R").arg("postgres:").arg(&dir))?;
    }
    let mut initdb = user_command(as_root, &bin.join("initdb"));
    initdb.args(["-D"]).arg(&data).args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
    run(&mut initdb)?;

    let port = free_port()?;
    let script = format!(
        "{postgres} -D {data} -p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 >{log} 2>&1 & pid=$!; \
         read _; kill -INT $pid; wait $pid; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        sock = dir.display(),
        log = dir.join("postgres.log").display(),
        dir = dir.display(),
    );
    let mut watchdog = user_command(as_root, Path::new("/bin/sh"));
    watchdog.arg("-c").arg(script).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let child = watchdog.spawn().map_err(|e| format!("cannot start postgres: {e}"))?;
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    wait_ready(&bin, port, &dir)?;
    Ok(Server { admin_url, _watchdog: Some(Mutex::new(child)) })
}

/// `PG_BIN`, else Debian's newest server binaries, installed first (package `postgresql`) when missing.
fn find_binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    super::provision::ensure("postgresql", "the PostgreSQL tests", || installed_binaries().is_some())
        .map_err(|e| format!("{e} (or set TEST_DATABASE_URL to a server, or PG_BIN to its binaries)"))?;
    installed_binaries().ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin".to_string())
}

fn installed_binaries() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists() && p.join("initdb").exists())
        .collect();
    candidates.sort();
    candidates.pop()
}

fn user_command(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr))) }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_ready(bin: &Path, port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-q"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            return Err(format!("postgres did not become ready on port {port}:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL server of a test's own, which the test may stop and start again (a database outage) without
/// touching the server other tests share.
pub struct OwnServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

impl OwnServer {
    /// Initialises and starts a fresh cluster with a `parley` database.
    pub async fn start() -> OwnServer {
        let bin = find_binaries().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new().prefix("parley-own-pg-").tempdir().unwrap().keep();
        let as_root = unsafe_is_root();
        if as_root {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&dir)).unwrap();
        }
        let mut initdb = user_command(as_root, &bin.join("initdb"));
        initdb.args(["-D"]).arg(dir.join("data")).args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        run(&mut initdb).unwrap();
        let server = OwnServer { bin, dir, port: free_port().unwrap(), as_root };
        server.resume();
        let mut admin = AsyncPgConnection::establish(&server.url("postgres")).await.unwrap();
        admin.batch_execute("CREATE DATABASE parley").await.unwrap();
        server
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut c = user_command(self.as_root, &self.bin.join("pg_ctl"));
        c.arg("-D").arg(self.dir.join("data")).args(args);
        run(&mut c)
    }

    /// Starts (again) on the same port.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        self.pg_ctl(&["-w", "-t", "30", "-l", &log, "-o", &options, "start"]).unwrap();
    }

    /// Stops the server as an operator would (`pg_ctl stop -m fast`: sessions are cut, nothing is lost).
    pub fn stop(&self) {
        self.pg_ctl(&["-w", "-t", "30", "-m", "fast", "stop"]).unwrap();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-t", "30", "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
