//! The test harness's provisioning (`tests/support/provision.rs`) with a fake apt: nothing is run when the
//! package is there, a non-root run fails naming the package, and parallel callers install it once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::helpers::provision::ensure_with;

fn never_run(args: &[&str]) -> Result<(), String> {
    panic!("nothing may be run, but {args:?} was");
}

#[test]
fn a_package_that_is_present_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    ensure_with(&dir.path().join("lock"), "postgresql", "these tests", || true, true, never_run).unwrap();
}

#[test]
fn without_root_a_missing_package_is_an_error_naming_it_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        ensure_with(&dir.path().join("lock"), "chromium", "the browser tests", || false, false, never_run).unwrap_err();
    assert!(err.contains("`chromium`") && err.contains("apt-get install -y chromium"), "{err}");
    assert!(err.contains("apt-get update"), "the index is refreshed first: {err}");
}

#[test]
fn as_root_a_missing_package_is_installed_after_an_index_update() {
    let dir = tempfile::tempdir().unwrap();
    let installed = AtomicBool::new(false);
    let commands = Mutex::new(Vec::new());
    ensure_with(
        &dir.path().join("lock"),
        "postgresql",
        "these tests",
        || installed.load(Ordering::SeqCst),
        true,
        |args| {
            commands.lock().unwrap().push(args.join(" "));
            if args[1] == "install" {
                installed.store(true, Ordering::SeqCst);
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(*commands.lock().unwrap(), ["apt-get update -qq", "apt-get install -y -qq postgresql"]);
}

#[test]
fn an_install_that_leaves_the_package_missing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        ensure_with(&dir.path().join("lock"), "chromium", "the browser tests", || false, true, |_| Ok(())).unwrap_err();
    assert!(err.contains("chromium"), "{err}");
}

#[test]
fn parallel_callers_install_once_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    let installed = Arc::new(AtomicBool::new(false));
    let installs = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (lock, installed, installs) = (lock.clone(), installed.clone(), installs.clone());
            std::thread::spawn(move || {
                ensure_with(
                    &lock,
                    "chromium",
                    "these tests",
                    || installed.load(Ordering::SeqCst),
                    true,
                    |args| {
                        if args[1] == "install" {
                            installs.fetch_add(1, Ordering::SeqCst);
                            // A slow install widens the window in which an unlocked caller would start another.
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            installed.store(true, Ordering::SeqCst);
                        }
                        Ok(())
                    },
                )
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(installs.load(Ordering::SeqCst), 1, "one install, the others waited for it and found it done");
}
