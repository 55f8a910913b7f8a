//! What the tests need from the machine, provisioned by the tests themselves so that `cargo test` passes on a
//! fresh Debian machine with only Rust installed: PostgreSQL's server binaries (`tests/api`) and Chromium
//! (`tests/browser`). Shared by both test binaries (`#[path]`-included).
//!
//! [`ensure`] does nothing when the thing is there. Otherwise, under an exclusive file lock (parallel test
//! binaries and threads wait for one another instead of racing apt), it looks again, then installs the Debian
//! package with `apt-get update` and `apt-get install` when running as root, or fails naming the package and the
//! command when not. Once installed it is there for every later run: this happens once per machine.

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the lock lives: one per machine (per temporary directory).
pub fn lock_path() -> PathBuf {
    std::env::temp_dir().join("parley-test-provision.lock")
}

/// Makes sure `package` (a Debian package) is installed, judged by `present`; `what` says what needs it.
pub fn ensure(package: &str, what: &str, present: impl Fn() -> bool) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() == 0 };
    ensure_with(&lock_path(), package, what, present, root, apt)
}

/// [`ensure`] with its lock file, privileges and command runner given (tests use fakes of the last two).
pub fn ensure_with(
    lock: &Path,
    package: &str,
    what: &str,
    present: impl Fn() -> bool,
    root: bool,
    run: impl Fn(&[&str]) -> Result<(), String>,
) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    if !root {
        return Err(format!(
            "{what} need the Debian package `{package}`, which is not installed, and the tests are not running as \
             root so they cannot install it: run `sudo apt-get update && sudo apt-get install -y {package}`"
        ));
    }
    let _held = Lock::exclusive(lock)?;
    // Another test binary may have installed it while this one waited.
    if present() {
        return Ok(());
    }
    eprintln!("{what} need `{package}`: installing it with apt-get (once per machine)");
    run(&["apt-get", "update", "-qq"])?;
    run(&["apt-get", "install", "-y", "-qq", package])?;
    if present() {
        Ok(())
    } else {
        Err(format!("`apt-get install {package}` succeeded, but {what} still do not find what they need"))
    }
}

/// Runs an apt command non-interactively, saying what failed.
fn apt(args: &[&str]) -> Result<(), String> {
    let (program, rest) = args.split_first().ok_or("no command")?;
    let status = Command::new(program)
        .args(rest)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run {program}: {e} (is this a Debian or Ubuntu machine?)"))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed: {status}", args.join(" "))) }
}

/// An exclusive `flock` on a file, released when dropped (or when the process ends, whatever the reason).
struct Lock(File);

impl Lock {
    fn exclusive(path: &Path) -> Result<Lock, String> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open the provisioning lock {}: {e}", path.display()))?;
        // SAFETY: the descriptor is open for as long as `file` lives; flock has no other preconditions.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error()));
        }
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
