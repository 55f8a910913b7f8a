//! `parley emulate [FLAGS]`: runs the three emulators standalone until SIGINT/SIGTERM, after printing the
//! `export` lines a client needs; with `--twilio-call URL` it instead places one emulated phone call (see
//! `twilio::cli`) and prints its report. `run_cli` is what `main.rs` calls with the flags after `emulate`;
//! `run_with` takes the output writer and the shutdown signal, so tests drive it without a process.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::common::log::CLI_LOG_LIMIT;
use super::deepgram::FinalizeReply;
use super::openai::fault::parse_down;
use super::options::EmulatorOptions;
use super::running::Emulators;
use super::twilio::cli::{self as twilio_cli, TwilioCall, TwilioFlags};

/// The `--help` text.
pub const HELP: &str = "\
parley emulate: local emulators of Deepgram live STT, an OpenAI-compatible LLM and ElevenLabs TTS.

Prints `export NAME=value` lines (base URLs and keys) and runs until Ctrl-C (SIGINT) or SIGTERM.
With --twilio-call URL it is a fake phone caller instead: one call, a JSON report, exit (see Twilio below).

USAGE: parley emulate [FLAGS]
       parley emulate --twilio-call URL [--twilio-* FLAGS]

General:
  --host ADDR                          bind address (default 127.0.0.1)
  --realistic                          real-service latencies (STT 100 ms, first token 300 ms, 30 ms/token,
                                       first audio 150 ms, audio at real-time pace); later flags override
  --any-key                            accept any API key on all three services
  --keep-logs                          keep every connection's and request's log (the control API shows them
                                       all); by default only the recent 200-400, and the recent 20-40 frames
                                       of each, so memory stays flat under load
  -h, --help                           this text

Deepgram (/v1/listen WebSocket):
  --deepgram-port N                    (default 0: any free port)
  --deepgram-key KEY                   accepted key, repeatable (default emulated-deepgram-key)
  --deepgram-idle-timeout-ms N         close 1011 NET-0001 after N ms without audio or text (default 10000)
  --deepgram-latency-ms N              delay of every result after its audio (default 0)
  --deepgram-finalize MODE             how Finalize is answered: reply (default, at once), late:MS (the final
                                       of the words buffered at the Finalize, MS later; later results queue
                                       behind it), ignore (no reply, the words come in the next final)
  --deepgram-no-finalize-reply         same as --deepgram-finalize ignore
  --deepgram-fault F                   next connection's fault, repeatable, in order: refuse:STATUS,
                                       close1011:MS_OF_AUDIO, drop:MS_OF_AUDIO (no Close frame, FIN),
                                       reset:MS_OF_AUDIO (no Close frame, TCP reset), data0000, error-frame,
                                       unknown-type, empty-finals

OpenAI-compatible (POST /v1/chat/completions, and /PREFIX/v1/chat/completions for any one-segment PREFIX):
  --openai-port N, --openai-key KEY    as above (default key emulated-openai-key)
  --openai-ttft-ms N                   time to first token (default 0)
  --openai-token-delay-ms N            delay between deltas (default 0)
  --openai-torture LIST                comma list: split-lines, split-utf8, crlf, cr, comments, coalesce,
                                       no-space, no-tool-index, extra-fields, whole-tool-arguments,
                                       usage-every-chunk, finish-with-content, all, none
  --openai-fault F                     next request's fault, repeatable: 429[:SECS], quota, 500, 503, 401,
                                       error-after:N, cut-after:N, hang-after:N (N = deltas)
  --openai-reply SPEC                  next request's reply, repeatable, in order: text:WORDS, or
                                       tools:NAME(ARGS)[;NAME(ARGS)...] (parallel calls; ARGS verbatim, may be
                                       invalid JSON; a call's ARGS end at the ')' before ';NAME(' or the end),
                                       e.g. 'tools:lookup_order({\"order_id\":\"1234\"})'. Unscripted it quotes
                                       the last user message, or after tool results says: The tool said: RESULT.
  --openai-down PREFIX[=FAULT]         every request under /PREFIX/v1/ gets FAULT (default 503), repeatable;
                                       plain /v1 and other prefixes work (one base URL down, for fallback)
  Control API on the same port, no key:
    POST /_control/replies             {\"text\":\"..\"} or {\"tools\":[{\"name\":\"..\",\"arguments\":\"..\"}]} or an array
    POST /_control/faults              {\"fault\":\"503\"} (as --openai-fault)
    POST /_control/down                {\"prefix\":\"primary\",\"fault\":\"503\"}; DELETE /_control/down/PREFIX
    POST /_control/torture             {\"torture\":\"no-tool-index\"} (as --openai-torture)
    GET /_control/requests             the request log (JSON); POST /_control/reset forgets script and log

ElevenLabs (WebSocket stream-input / multi-stream-input, POST .../stream and .../stream/with-timestamps):
  --elevenlabs-port N, --elevenlabs-key KEY   as above (default key emulated-elevenlabs-key)
  --elevenlabs-ttfb-ms N               time to first audio byte (default 0)
  --elevenlabs-realtime                audio no faster than real time
  --elevenlabs-inactivity-timeout-ms N override every socket's inactivity_timeout
  --elevenlabs-fault F                 next connection/request's fault, repeatable: 401, 403, 422-object,
                                       422-array, 429, 1008, late-audio, drop, drop-before-audio,
                                       1008-before-audio, cut-body:BYTES (at a chunk boundary),
                                       cut-in-chunk:BYTES, cut-content-length:BYTES
";

/// What the flags asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<EmulatorOptions>),
    /// Place one emulated Twilio call and print its report.
    Call(Box<TwilioCall>),
    Help,
}

/// Parses the flags that follow `parley emulate`.
pub fn parse(args: &[String]) -> anyhow::Result<Command> {
    // A long-running emulator keeps only the recent part of its logs, so its memory stays flat under load.
    let mut o = EmulatorOptions { log_limit: Some(CLI_LOG_LIMIT), ..EmulatorOptions::default() };
    let mut keys: [Option<Vec<String>>; 3] = [None, None, None];
    let mut twilio = TwilioFlags::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        let ms = |v: &str| {
            v.parse::<u64>().map(Duration::from_millis).with_context(|| format!("{flag}: {v:?} is not a number of ms"))
        };
        let port = |v: &str| v.parse::<u16>().with_context(|| format!("{flag}: {v:?} is not a port"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--host" => o.host = value()?.parse().with_context(|| format!("{flag}: not an IP address"))?,
            "--realistic" => o = o.realistic(),
            "--any-key" => keys = [Some(vec![]), Some(vec![]), Some(vec![])],
            "--keep-logs" => o.log_limit = None,
            "--deepgram-port" => o.deepgram.port = port(value()?)?,
            "--deepgram-key" => keys[0].get_or_insert_with(Vec::new).push(value()?.clone()),
            "--deepgram-idle-timeout-ms" => o.deepgram.idle_timeout = ms(value()?)?,
            "--deepgram-latency-ms" => o.deepgram.reply_latency = ms(value()?)?,
            "--deepgram-finalize" => o.deepgram.finalize = value()?.parse().map_err(anyhow::Error::msg)?,
            "--deepgram-no-finalize-reply" => o.deepgram.finalize = FinalizeReply::Ignored,
            "--deepgram-fault" => o.deepgram.faults.push(value()?.parse().map_err(anyhow::Error::msg)?),
            "--openai-port" => o.openai.port = port(value()?)?,
            "--openai-key" => keys[1].get_or_insert_with(Vec::new).push(value()?.clone()),
            "--openai-ttft-ms" => o.openai.time_to_first_token = ms(value()?)?,
            "--openai-token-delay-ms" => o.openai.inter_token_delay = ms(value()?)?,
            "--openai-torture" => o.openai.torture = value()?.parse().map_err(anyhow::Error::msg)?,
            "--openai-fault" => o.openai.faults.push(value()?.parse().map_err(anyhow::Error::msg)?),
            "--openai-reply" => o.openai.replies.push(value()?.parse().map_err(anyhow::Error::msg)?),
            "--openai-down" => o.openai.down.push(parse_down(value()?).map_err(anyhow::Error::msg)?),
            "--elevenlabs-port" => o.elevenlabs.port = port(value()?)?,
            "--elevenlabs-key" => keys[2].get_or_insert_with(Vec::new).push(value()?.clone()),
            "--elevenlabs-ttfb-ms" => o.elevenlabs.time_to_first_byte = ms(value()?)?,
            "--elevenlabs-realtime" => o.elevenlabs.realtime_pacing = true,
            "--elevenlabs-inactivity-timeout-ms" => o.elevenlabs.inactivity_timeout = Some(ms(value()?)?),
            "--elevenlabs-fault" => o.elevenlabs.faults.push(value()?.parse().map_err(anyhow::Error::msg)?),
            other if other.starts_with("--twilio-") && twilio.take(other, || value().cloned())? => {}
            other => bail!("unknown flag {other:?} (see parley emulate --help)"),
        }
    }
    if let Some(call) = twilio.finish(std::env::var("TWILIO_AUTH_TOKEN").ok())? {
        return Ok(Command::Call(Box::new(call)));
    }
    let [dg, oa, el] = keys;
    if let Some(k) = dg {
        o.deepgram.api_keys = k;
    }
    if let Some(k) = oa {
        o.openai.api_keys = k;
    }
    if let Some(k) = el {
        o.elevenlabs.api_keys = k;
    }
    Ok(Command::Run(Box::new(o)))
}

/// Runs `parley emulate` with the flags that follow `emulate`, printing to stdout, until SIGINT/SIGTERM.
pub async fn run_cli(args: Vec<String>) -> anyhow::Result<()> {
    run_with(&args, &mut std::io::stdout(), shutdown_signal()).await
}

/// Runs with an explicit output and shutdown future.
pub async fn run_with(args: &[String], out: &mut impl Write, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let opts = match parse(args)? {
        Command::Help => {
            out.write_all(HELP.as_bytes())?;
            out.write_all(b"\n")?;
            out.write_all(twilio_cli::HELP.as_bytes())?;
            return Ok(());
        }
        Command::Call(call) => return twilio_cli::run(*call, out).await,
        Command::Run(o) => *o,
    };
    let emulators = Emulators::start(opts).await.context("starting the emulators")?;
    for (name, value) in emulators.env() {
        writeln!(out, "export {name}={value}")?;
    }
    writeln!(out, "# parley emulators running (Deepgram, OpenAI-compatible, ElevenLabs); Ctrl-C stops them.")?;
    out.flush()?;
    shutdown.await;
    emulators.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the emulators");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulators::{ElevenLabsFault, OpenAiFault, Reply};

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_map_onto_options() {
        let Command::Run(o) = parse(&args(
            "--deepgram-port 9001 --deepgram-key a --deepgram-key b --openai-ttft-ms 250 \
             --openai-torture crlf,comments --openai-fault cut-after:2 --elevenlabs-realtime \
             --elevenlabs-fault 422-array --elevenlabs-fault cut-in-chunk:100 --deepgram-idle-timeout-ms 200 \
             --deepgram-finalize late:2500",
        ))
        .unwrap() else {
            panic!("not run")
        };
        assert_eq!(o.deepgram.port, 9001);
        assert_eq!(o.deepgram.api_keys, ["a", "b"]);
        assert_eq!(o.deepgram.idle_timeout, Duration::from_millis(200));
        assert_eq!(o.deepgram.finalize, FinalizeReply::Late(Duration::from_millis(2500)));
        assert_eq!(o.openai.time_to_first_token, Duration::from_millis(250));
        assert!(o.openai.torture.crlf && o.openai.torture.comments);
        assert_eq!(o.openai.faults.len(), 1);
        assert!(o.elevenlabs.realtime_pacing);
        assert_eq!(o.elevenlabs.faults[1], ElevenLabsFault::CutInsideChunk { after_bytes: 100 });
        assert_eq!(o.elevenlabs.api_keys, [super::super::ELEVENLABS_KEY]);
        assert_eq!(o.log_limit, Some(CLI_LOG_LIMIT), "a long-running emulator keeps the recent logs only");
        let Command::Run(o) = parse(&args("--realistic --keep-logs")).unwrap() else { panic!("not run") };
        assert_eq!(o.log_limit, None);
    }

    #[test]
    fn openai_replies_queue_in_order_and_down_prefixes_default_to_503() {
        let argv: Vec<String> = [
            "--openai-reply",
            "text:Your order shipped.",
            "--openai-reply",
            r#"tools:f({"a":1);g({})"#,
            "--openai-down",
            "primary",
            "--openai-down",
            "backup=cut-after:2",
        ]
        .map(str::to_string)
        .to_vec();
        let Command::Run(o) = parse(&argv).unwrap() else { panic!("not run") };
        assert_eq!(
            o.openai.replies,
            [
                Reply::Text("Your order shipped.".into()),
                Reply::ToolCalls(vec![("f".into(), r#"{"a":1"#.into()), ("g".into(), "{}".into())])
            ]
        );
        assert_eq!(
            o.openai.down,
            [("primary".into(), OpenAiFault::Overloaded), ("backup".into(), OpenAiFault::CutAfter { after_deltas: 2 })]
        );
        assert!(parse(&args("--openai-reply hello")).is_err());
        assert!(parse(&args("--openai-down a/b")).is_err());
        assert!(HELP.contains("--openai-reply SPEC") && HELP.contains("--openai-down PREFIX[=FAULT]"));
    }

    #[test]
    fn bad_flags_and_values_are_errors_and_help_is_help() {
        assert!(parse(&args("--nope")).is_err());
        assert!(parse(&args("--deepgram-port")).is_err());
        assert!(parse(&args("--openai-fault wobble")).is_err());
        assert!(parse(&args("--deepgram-finalize later")).is_err());
        let Command::Run(o) = parse(&args("--deepgram-no-finalize-reply")).unwrap() else { panic!("not run") };
        assert_eq!(o.deepgram.finalize, FinalizeReply::Ignored);
        assert!(matches!(parse(&args("--help")).unwrap(), Command::Help));
    }
}
