//! Finds Prometheus's `promtool` for the tests of deploy/prometheus, provisioned like the tests' other needs
//! ([`super::provision`]): Debian's `prometheus` package, which ships it, is installed once when missing.

use std::path::PathBuf;

/// `promtool`'s path, or why there is none.
pub fn promtool() -> Result<PathBuf, String> {
    super::provision::ensure("prometheus", "the alert-rule tests (promtool)", || on_path().is_some())?;
    on_path().ok_or_else(|| "the prometheus package is installed but promtool is not on PATH".into())
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("promtool")).find(|p| p.is_file())
}
