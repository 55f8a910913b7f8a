//! The command line, parsed by clap: `parley [serve] [--emulate] [--port N] [--host ADDR] [--data-dir DIR]`
//! serves (the default command); `parley emulate …` runs only the provider emulators; `parley token …` prints a
//! client token. Everything else is configured through the environment: `--help` lists every variable from
//! [`crate::config::vars::VARS`], the table the configuration itself reads through, so the two cannot differ.
//!
//! The flags are not clap `env` arguments on purpose: a bad `PORT` must keep the configuration's own message
//! ("invalid configuration: PORT: expected …"), so the flags become overrides of the one lookup
//! [`crate::config::Config`] reads ([`ServeArgs::overrides`]), and every value is still checked there.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::vars;

/// `parley`: the whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "parley",
    version,
    about = "parley: a real-time voice agent server (Deepgram STT, an OpenAI-compatible LLM, ElevenLabs TTS)",
    long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = vars::help_text(),
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the default command (`serve`).
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What the process was asked to do.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the server (the default command).
    Serve(ServeArgs),
    /// Run only the Deepgram/OpenAI/ElevenLabs emulators (and the Twilio caller); `parley emulate --help`
    /// lists their flags.
    #[command(disable_help_flag = true)]
    Emulate {
        /// The emulators' flags, parsed by the emulators (see `parley emulate --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "FLAGS")]
        args: Vec<String>,
    },
    /// Print a client token for a user, signed with PARLEY_AUTH_SECRET (or the data directory's generated
    /// secret), as an app backend would mint it.
    Token {
        /// The user id the token is for.
        #[arg(long, value_name = "ID")]
        user: String,
        /// How long the token is valid: 90s, 15m, 2h, 1d.
        #[arg(long = "ttl", value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
        ttl_secs: u64,
        /// Limit the token to resuming this one session.
        #[arg(long, value_name = "UUID")]
        session: Option<String>,
        /// The data directory whose generated secret signs the token when PARLEY_AUTH_SECRET is unset (the
        /// server's --data-dir) [overrides PARLEY_DATA_DIR].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// Flags of `serve`.
#[derive(Debug, Clone, Default, Args, PartialEq, Eq)]
pub struct ServeArgs {
    /// Start local emulators of all three providers and use them: no API keys needed.
    #[arg(long)]
    pub emulate: bool,
    /// HTTP port, 0 for any free one [overrides PORT].
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Address to bind, e.g. 0.0.0.0 (beyond loopback needs PARLEY_AUTH_SECRET) [overrides HOST].
    #[arg(long, value_name = "ADDR")]
    pub host: Option<IpAddr>,
    /// Directory of the SQLite file, generated keys, local recordings and write journal [overrides
    /// PARLEY_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ServeArgs {
    /// The variables the flags set, to be looked up before the environment.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(port) = self.port {
            out.push(("PORT", port.to_string()));
        }
        if let Some(host) = self.host {
            out.push(("HOST", host.to_string()));
        }
        out.extend(data_dir_override(self.data_dir.as_deref()));
        out
    }
}

/// `--data-dir` as the variable it overrides.
pub fn data_dir_override(dir: Option<&std::path::Path>) -> Option<(&'static str, String)> {
    dir.map(|d| ("PARLEY_DATA_DIR", d.to_string_lossy().into_owned()))
}

impl Cli {
    /// The command to run: `serve` with the top-level flags when none is named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// `90`, `90s`, `15m`, `2h`, `1d` as seconds.
fn parse_duration(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number.parse().map_err(|_| format!("{raw:?}: expected a duration such as 15m"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{raw:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(scale).filter(|s| *s > 0).ok_or_else(|| format!("{raw:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("parley").chain(args.iter().copied())).map(Cli::into_command)
    }

    fn serve(f: impl FnOnce(&mut ServeArgs)) -> Command {
        let mut args = ServeArgs::default();
        f(&mut args);
        Command::Serve(args)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_takes_its_flags_with_or_without_its_name() {
        assert_eq!(parse(&[]).unwrap(), serve(|_| {}));
        assert_eq!(parse(&["--emulate"]).unwrap(), serve(|a| a.emulate = true));
        assert_eq!(parse(&["serve", "--emulate"]).unwrap(), serve(|a| a.emulate = true));
        let both = serve(|a| {
            a.port = Some(9000);
            a.host = Some(IpAddr::from([127, 0, 0, 2]));
            a.data_dir = Some("/tmp/x".into());
        });
        assert_eq!(parse(&["--port", "9000", "--host", "127.0.0.2", "--data-dir", "/tmp/x"]).unwrap(), both);
        assert_eq!(parse(&["serve", "--port=9000", "--host=127.0.0.2", "--data-dir=/tmp/x"]).unwrap(), both);
    }

    #[test]
    fn flags_become_overrides_of_the_variables_they_name() {
        let Command::Serve(args) = parse(&["--port", "0", "--data-dir", "d"]).unwrap() else { panic!() };
        assert_eq!(args.overrides(), vec![("PORT", "0".to_string()), ("PARLEY_DATA_DIR", "d".to_string())]);
        for (var, _) in args.overrides() {
            assert!(vars::find(var).is_some(), "{var} is a listed variable");
        }
    }

    #[test]
    fn emulate_passes_every_flag_through_including_help() {
        assert_eq!(
            parse(&["emulate", "--port", "1", "--help"]).unwrap(),
            Command::Emulate { args: vec!["--port".into(), "1".into(), "--help".into()] }
        );
    }

    #[test]
    fn token_takes_a_user_and_a_duration() {
        assert_eq!(
            parse(&["token", "--user", "ada", "--ttl", "2h"]).unwrap(),
            Command::Token { user: "ada".into(), ttl_secs: 7200, session: None, data_dir: None }
        );
        assert_eq!(
            parse(&["token", "--user", "ada", "--data-dir", "d"]).unwrap(),
            Command::Token { user: "ada".into(), ttl_secs: 900, session: None, data_dir: Some("d".into()) }
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        use clap::error::ErrorKind;
        for (args, kind) in [
            (&["--bogus"][..], ErrorKind::UnknownArgument),
            (&["serve", "x"], ErrorKind::UnknownArgument),
            (&["--port", "70000"], ErrorKind::ValueValidation),
            (&["--host", "localhost"], ErrorKind::ValueValidation),
            (&["token"], ErrorKind::MissingRequiredArgument),
            (&["token", "--user", "ada", "--ttl", "soon"], ErrorKind::ValueValidation),
            (&["token", "--user"], ErrorKind::InvalidValue),
            (&["--port", "1", "token", "--user", "a"], ErrorKind::ArgumentConflict),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} must be refused"));
            assert_eq!(err.kind(), kind, "{args:?}: {err}");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
