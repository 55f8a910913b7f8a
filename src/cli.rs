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
    Help,
    Version,
}

pub const USAGE: &str = "\
parley: a real-time voice agent server

USAGE:
    parley [--emulate]       serve on $PORT (default 8080); --emulate uses local provider emulators (no API keys)
    parley emulate [FLAGS]   run only the Deepgram/OpenAI/ElevenLabs emulators (see `parley emulate --help`)
    parley --help | --version

Configuration comes from environment variables; see README.md.";

impl Command {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Command, String> {
        match args.first().map(String::as_str) {
            None => Ok(Command::Serve { emulate: false }),
            Some("emulate") => Ok(Command::Emulate(args[1..].to_vec())),
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
    }
}
