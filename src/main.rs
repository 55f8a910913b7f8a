//! The `parley` binary: parse the command line, load the configuration, run. All the work is in the library.

use std::process::ExitCode;

use parley::cli::{Command, USAGE};
use parley::config::Config;
use parley::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    parley::telemetry::init_logger();
    let result = match command {
        Command::Help => {
            eprintln!("{USAGE}");
            Ok(())
        }
        Command::Version => {
            eprintln!("parley {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Emulate(args) => parley::emulators::cli::run_cli(args).await,
        Command::Serve { emulate } => serve(emulate).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(emulate: bool) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    let _emulators = if emulate { Some(parley::emulate::start(&mut config).await?) } else { None };
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    let app = Application::build(config).await?;
    log::info!("parley listening on port {}", app.port());
    // The page's address, with the development credential when there is one: the one line to click.
    eprintln!("parley is ready: open {}", app.page_url());
    app.run_until_stopped().await
}
