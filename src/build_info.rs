//! What this binary is: its version (from Cargo.toml) and the commit it was built from (stamped by `build.rs`
//! from `PARLEY_GIT_SHA` or `git`; `unknown` when neither was there). Exported as `parley_build_info` so a
//! dashboard shows which build each instance runs during a rolling deploy.

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short commit sha, or `unknown`.
pub const GIT_SHA: &str = env!("PARLEY_GIT_SHA");
