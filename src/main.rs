//! The `parley` binary: parse the command line, load the configuration, run. All the work is in the library.

use std::process::ExitCode;

use clap::Parser as _;
use parley::cli::{Cli, Command, ServeArgs};
use parley::config::Config;
use parley::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    // `--help`/`--version` print to stdout and exit 0; a mistake prints the usage to stderr and exits 2.
    let command = Cli::parse().into_command();
    parley::telemetry::init_logger();
    let result = match command {
        Command::Emulate { args } => parley::emulators::cli::run_cli(args).await,
        Command::Token { user, ttl_secs, session, data_dir } => {
            let overrides: Vec<_> = parley::cli::data_dir_override(data_dir.as_deref()).into_iter().collect();
            print_token(&user, ttl_secs, session.as_deref(), &overrides)
        }
        Command::Serve(args) => {
            parley::metrics::alloc::limit_arenas();
            serve(args).await
        }
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::from_env_with(&args.overrides())?;
    let _emulators = if args.emulate { Some(parley::emulate::start(&mut config).await?) } else { None };
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    let app = Application::build(config).await?;
    log::info!("parley listening on port {}", app.port());
    // The page's address, with the development credential when there is one: the one line to click.
    eprintln!("parley is ready: open {}", app.page_url());
    app.run_until_stopped().await
}

/// `parley token`: a client token for `user`, as an app backend would mint it, on stdout.
fn print_token(
    user: &str,
    ttl_secs: u64,
    session: Option<&str>,
    overrides: &[(&'static str, String)],
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let config = Config::from_env_with(overrides)?;
    let auth = parley::startup::build_auth(&config)?;
    let now = parley::auth::now_secs();
    let claims = parley::auth::Claims {
        user_id: user.parse().map_err(|e| anyhow::anyhow!("--user: {e}"))?,
        exp: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
        iat: Some(now),
        nbf: None,
        session: session.map(str::parse).transpose().map_err(|e| anyhow::anyhow!("--session: {e}"))?,
        scopes: vec![parley::auth::Scope::Voice, parley::auth::Scope::History],
        extra: Default::default(),
    };
    writeln!(std::io::stdout(), "{}", auth.tokens.mint(&claims))?;
    Ok(())
}
