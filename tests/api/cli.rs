//! The command line as an operator meets it: `--help` on stdout lists the commands, the flags and every
//! environment variable the configuration reads (the list is taken from the code, so it cannot drift); the
//! flags override the environment; a mistake is a usage error with exit status 2.

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::Duration;

use parley::config::{Config, vars};

use crate::helpers::process::{self, parley, raw_get};

/// Runs the binary to completion with `args`, capturing both streams.
fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[], dir.path());
    cmd.args(args).stdout(Stdio::piped());
    let child = cmd.spawn().unwrap();
    child.wait_with_output().unwrap()
}

/// Every variable `Config::from_lookup` asks the environment for.
fn variables_the_configuration_reads() -> BTreeSet<String> {
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let _ = Config::from_lookup(|name| {
        seen.borrow_mut().insert(name.to_string());
        None
    });
    seen.into_inner()
}

#[test]
fn help_on_stdout_lists_commands_flags_and_every_variable_with_its_default() {
    for flag in ["--help", "-h"] {
        let out = run(&[flag]);
        let help = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}: {help}");
        assert!(out.stderr.is_empty(), "{flag}: nothing on stderr: {}", String::from_utf8_lossy(&out.stderr));
        for word in ["serve", "emulate", "token", "--emulate", "--port", "--host", "--data-dir", "--version"] {
            assert!(help.contains(word), "{flag} mentions {word}:\n{help}");
        }
        // clap wraps long lines at whitespace: compare with every run of whitespace as one space.
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let read = variables_the_configuration_reads();
        assert!(read.len() > 50, "the configuration reads its variables through the lookup: {read:?}");
        for name in read.iter().map(String::as_str).chain([vars::LOG_FILTER]) {
            let var = vars::find(name).unwrap_or_else(|| panic!("{name} is listed in config::vars"));
            let line = format!("{name} [default: {}]", var.fallback).split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&line), "{flag} lists {line:?}:\n{help}");
        }
    }
}

#[test]
fn emulate_help_is_the_emulators_own_on_stdout() {
    let out = run(&["emulate", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{help}");
    assert!(help.contains("USAGE: parley emulate") && help.contains("--deepgram-port"), "{help}");
}

#[test]
fn version_is_on_stdout() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("parley {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn wrong_flags_are_usage_errors_with_status_2_on_stderr() {
    for args in [&["--prot", "9000"][..], &["--port", "abc"], &["--host", "localhost"], &["serve", "extra"]] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(err.starts_with("error: ") && err.contains("'--help'"), "{args:?} says what is wrong: {err}");
    }
    let err = String::from_utf8_lossy(&run(&["--prot", "9000"]).stderr).into_owned();
    assert!(err.contains("similar argument exists: '--port'") && err.contains("Usage: parley"), "{err}");
}

#[test]
fn port_host_and_data_dir_flags_override_the_environment() {
    // The environment names a port already taken, an address this machine does not have and another data
    // directory: parley starts only if every flag wins.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let free_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env_dir = tempfile::tempdir().unwrap();
    let flag_dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[("PORT", &taken_port), ("HOST", "192.0.2.1")], env_dir.path());
    cmd.args(["--port", &free_port.to_string(), "--host", "127.0.0.1", "--data-dir"]).arg(flag_dir.path());
    let server = process::start(cmd);
    assert_eq!(server.port, free_port, "--port wins over PORT");
    // An answer also means the signal handlers are in place (they are installed just after the ready line).
    assert!(raw_get(server.port, "/healthz").starts_with("HTTP/1.1 200"), "serves on --port and --host");
    let (status, log) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{log}");
    assert!(flag_dir.path().join("parley.sqlite3").exists(), "--data-dir wins over PARLEY_DATA_DIR");
    assert!(!env_dir.path().join("parley.sqlite3").exists(), "PARLEY_DATA_DIR is not used:\n{log}");
}

#[test]
fn a_flag_value_is_checked_by_the_configuration_like_the_variable_it_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[], dir.path());
    cmd.env_remove("PARLEY_AUTH_SECRET").args(["--host", "0.0.0.0"]);
    let mut child = cmd.spawn().unwrap();
    let status = process::wait_exit(&mut child, Duration::from_secs(20)).expect("parley refuses to start");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("invalid configuration: PARLEY_AUTH_SECRET: required to listen on 0.0.0.0"), "{err}");
}

#[test]
fn token_data_dir_names_the_directory_whose_secret_signs() {
    // Without PARLEY_AUTH_SECRET the token is signed with the data directory's generated secret: the flag must
    // pick the directory the server was started with, not PARLEY_DATA_DIR.
    let env_dir = tempfile::tempdir().unwrap();
    let flag_dir = tempfile::tempdir().unwrap();
    let mut cmd = parley(&[], env_dir.path());
    cmd.env_remove("PARLEY_AUTH_SECRET").args(["token", "--user", "ada", "--data-dir"]).arg(flag_dir.path());
    let out = cmd.stdout(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim().split('.').count(), 3, "a JWT");
    assert!(std::fs::read_dir(flag_dir.path()).unwrap().next().is_some(), "the secret is kept in --data-dir");
    assert!(std::fs::read_dir(env_dir.path()).unwrap().next().is_none(), "PARLEY_DATA_DIR is not used");
}
