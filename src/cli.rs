//! The command line: `parley` serves; `parley --emulate` serves with the local provider emulators;
//! `parley emulate …` runs only the emulators. Everything else is configured through the environment
//! (see `config`).

/// What the process was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server; with `emulate`, start the provider emulators in-process and point parley at them.
    Serve {
        emulate: bool,
    },
    /// Run only the emulators, with these arguments.
    Emulate(Vec<String>),
    /// Print a client token for `user`, valid `ttl_secs`, optionally limited to one session.
    Token {
        user: String,
        ttl_secs: u64,
        session: Option<String>,
    },
    Help,
    Version,
}

pub const USAGE: &str = "\
parley: a real-time voice agent server

USAGE:
    parley [--emulate]       serve on $PORT (default 8080); --emulate uses local provider emulators (no API keys)
    parley emulate [FLAGS]   run only the Deepgram/OpenAI/ElevenLabs emulators (see `parley emulate --help`)
    parley token --user ID [--ttl 15m] [--session UUID]
                             print a client token signed with PARLEY_AUTH_SECRET (or the data directory's
                             generated secret); --ttl takes 90s, 15m, 2h (default 15m)
    parley --help | --version

Configuration comes from environment variables; see README.md.";

impl Command {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Command, String> {
        match args.first().map(String::as_str) {
            None => Ok(Command::Serve { emulate: false }),
            Some("emulate") => Ok(Command::Emulate(args[1..].to_vec())),
            Some("token") => parse_token(&args[1..]),
            Some("-h" | "--help" | "help") => Ok(Command::Help),
            Some("-V" | "--version") => Ok(Command::Version),
            Some("serve" | "--emulate") => {
                let mut emulate = false;
                for a in args {
                    match a.as_str() {
                        "serve" if !emulate => {}
                        "--emulate" => emulate = true,
                        other => return Err(format!("unexpected argument {other:?}\n\n{USAGE}")),
                    }
                }
                Ok(Command::Serve { emulate })
            }
            Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        }
    }
}

fn parse_token(args: &[String]) -> Result<Command, String> {
    let (mut user, mut ttl_secs, mut session) = (None, 15 * 60, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"));
        match flag.as_str() {
            "--user" => user = Some(value()?),
            "--ttl" => ttl_secs = parse_duration(&value()?)?,
            "--session" => session = Some(value()?),
            other => return Err(format!("unexpected argument {other:?}\n\n{USAGE}")),
        }
    }
    let user = user.ok_or_else(|| format!("parley token needs --user ID\n\n{USAGE}"))?;
    Ok(Command::Token { user, ttl_secs, session })
}

/// `90`, `90s`, `15m`, `2h`, `1d` as seconds.
fn parse_duration(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number.parse().map_err(|_| format!("--ttl {raw:?}: expected a duration such as 15m"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--ttl {raw:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(scale).filter(|s| *s > 0).ok_or_else(|| format!("--ttl {raw:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Command::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&[]), Ok(Command::Serve { emulate: false }));
        assert_eq!(parse(&["--emulate"]), Ok(Command::Serve { emulate: true }));
        assert_eq!(parse(&["serve", "--emulate"]), Ok(Command::Serve { emulate: true }));
        assert_eq!(parse(&["emulate", "--port", "1"]), Ok(Command::Emulate(vec!["--port".into(), "1".into()])));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["serve", "x"]).is_err());
        assert_eq!(
            parse(&["token", "--user", "ada", "--ttl", "2h"]),
            Ok(Command::Token { user: "ada".into(), ttl_secs: 7200, session: None })
        );
        assert!(parse(&["token"]).is_err(), "a user is required");
        assert!(parse(&["token", "--user", "ada", "--ttl", "soon"]).is_err());
        assert!(parse(&["token", "--user"]).is_err());
    }
}
