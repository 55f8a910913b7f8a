//! Finds Prometheus's `promtool` for the tests of deploy/prometheus; as root, installs Debian's `prometheus`
//! package (which ships it) once when it is missing, the way a fresh CI machine gets what the tests need.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `promtool`'s path, or why there is none.
pub fn promtool() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_or_install).clone()
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("promtool")).find(|p| p.is_file())
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(p) = on_path() {
        return Ok(p);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("promtool is not installed: apt-get install prometheus (Debian's package ships it)".into());
    }
    eprintln!("promtool is missing: installing Debian's prometheus package");
    // apt's own lock, waited for, keeps this from colliding with another install (PostgreSQL, Chromium).
    for args in [
        &["-o", "DPkg::Lock::Timeout=600", "update", "-qq"][..],
        &["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", "prometheus"][..],
    ] {
        let out = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !out.status.success() {
            return Err(format!("apt-get {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    on_path().ok_or_else(|| "the prometheus package is installed but promtool is not on PATH".into())
}
