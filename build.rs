//! Build script: stamps the commit parley was built from into the binary (`PARLEY_GIT_SHA`, read by
//! `parley::build_info`), for the `parley_build_info` metric and `parley --version`.
//!
//! The sha comes from the `PARLEY_GIT_SHA` environment variable when it is set (a container build has no
//! `.git`: `docker build --build-arg PARLEY_GIT_SHA=$(git rev-parse --short=12 HEAD)`), else from `git`, else
//! it is `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=PARLEY_GIT_SHA");
    println!("cargo:rerun-if-changed=build.rs");
    let from_env = std::env::var("PARLEY_GIT_SHA").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let sha = from_env.or_else(|| {
        // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs (only files that exist,
        // since a missing one would make cargo rerun this script on every build).
        let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(git(&["rev-parse", "--git-path", &branch]));
        }
        watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
        for path in watched.into_iter().flatten() {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=PARLEY_GIT_SHA={}", sha.as_deref().unwrap_or("unknown"));
}
