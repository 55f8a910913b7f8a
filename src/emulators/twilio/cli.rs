//! The `--twilio-*` flags of `parley emulate`: place one call as the emulated caller and print its report as
//! JSON, instead of running the provider emulators.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{CallOptions, place_call, wav_input};

/// The `--help` section.
pub const HELP: &str = "\
Twilio (a fake caller: places one call against a voice webhook, prints a JSON report and exits):
  --twilio-call URL                    the voice webhook to POST, e.g. http://127.0.0.1:8080/twilio/voice;
                                       the call follows its <Connect><Stream> with Media Streams messages
  --twilio-auth-token T                signs X-Twilio-Signature (default $TWILIO_AUTH_TOKEN)
  --twilio-from NUMBER, --twilio-to NUMBER   E.164 (defaults +15550100001, +15550100002)
  --twilio-account-sid AC..            (default: a made-up one)
  --twilio-public-url ORIGIN           the public origin Twilio would sign (behind a proxy)
  --twilio-wav FILE                    what the caller says: WAV, 16-bit PCM at any rate or µ-law/A-law
  --twilio-silence-ms N                silence after it (default 1000)
  --twilio-digits DIGITS               dtmf pressed after speaking, e.g. 123#
  --twilio-listen-secs N               hang up N s after speaking, unless the agent hangs up first (default 10)
  --twilio-fast                        send audio as fast as possible instead of at 20 ms a frame
  --twilio-bad-signature               sign with a wrong key (the server should refuse)
  --twilio-save-heard FILE             write what the caller heard as a µ-law WAV
";

/// The call the flags describe.
#[derive(Debug, Clone)]
pub struct TwilioCall {
    pub options: CallOptions,
    pub wav: Option<PathBuf>,
    pub digits: String,
    pub listen: Duration,
    pub save_heard: Option<PathBuf>,
}

/// Collects the `--twilio-*` flags; `take` is fed each one.
#[derive(Debug, Default)]
pub struct TwilioFlags {
    url: Option<String>,
    token: Option<String>,
    from: Option<String>,
    to: Option<String>,
    account_sid: Option<String>,
    public_url: Option<String>,
    wav: Option<PathBuf>,
    silence_ms: Option<u32>,
    digits: String,
    listen_secs: Option<f64>,
    fast: bool,
    bad_signature: bool,
    save_heard: Option<PathBuf>,
    seen: bool,
}

impl TwilioFlags {
    /// Takes `flag` if it is a Twilio one (pulling its value with `value`); `Ok(false)` if it is not.
    pub fn take(&mut self, flag: &str, value: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<bool> {
        match flag {
            "--twilio-call" => self.url = Some(value()?),
            "--twilio-auth-token" => self.token = Some(value()?),
            "--twilio-from" => self.from = Some(value()?),
            "--twilio-to" => self.to = Some(value()?),
            "--twilio-account-sid" => self.account_sid = Some(value()?),
            "--twilio-public-url" => self.public_url = Some(value()?),
            "--twilio-wav" => self.wav = Some(value()?.into()),
            "--twilio-silence-ms" => {
                let v = value()?;
                self.silence_ms = Some(v.parse().with_context(|| format!("{flag}: {v:?} is not a number of ms"))?);
            }
            "--twilio-digits" => self.digits = value()?,
            "--twilio-listen-secs" => {
                let v = value()?;
                let secs: f64 = v.parse().with_context(|| format!("{flag}: {v:?} is not a number of seconds"))?;
                if !(0.0..=86_400.0).contains(&secs) {
                    bail!("{flag}: {v:?} is not between 0 and 86400");
                }
                self.listen_secs = Some(secs);
            }
            "--twilio-fast" => self.fast = true,
            "--twilio-bad-signature" => self.bad_signature = true,
            "--twilio-save-heard" => self.save_heard = Some(value()?.into()),
            _ => return Ok(false),
        }
        self.seen = true;
        Ok(true)
    }

    /// The call to place, `None` without Twilio flags; an error when some were given without `--twilio-call`.
    /// `env_token` is `$TWILIO_AUTH_TOKEN`.
    pub fn finish(self, env_token: Option<String>) -> anyhow::Result<Option<TwilioCall>> {
        if !self.seen {
            return Ok(None);
        }
        let Some(url) = self.url else { bail!("--twilio-* flags need --twilio-call URL") };
        let token =
            self.token.or(env_token).context("--twilio-call needs --twilio-auth-token or $TWILIO_AUTH_TOKEN")?;
        let mut options = CallOptions::new(url, token);
        if let Some(from) = self.from {
            options.from = from;
        }
        if let Some(to) = self.to {
            options.to = to;
        }
        if let Some(sid) = self.account_sid {
            options.account_sid = sid;
        }
        options.signed_url_base = self.public_url;
        options.trailing_silence_ms = self.silence_ms.unwrap_or(1000);
        options.realtime = !self.fast;
        options.bad_signature = self.bad_signature;
        Ok(Some(TwilioCall {
            options,
            wav: self.wav,
            digits: self.digits,
            listen: Duration::from_secs_f64(self.listen_secs.unwrap_or(10.0)),
            save_heard: self.save_heard,
        }))
    }
}

/// Places the call, speaks, presses the digits, listens, hangs up (unless the agent did) and prints the
/// report as pretty JSON.
pub async fn run(mut call: TwilioCall, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(path) = &call.wav {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        call.options.audio = wav_input::mulaw_from_wav(&bytes)
            .map_err(anyhow::Error::msg)
            .with_context(|| path.display().to_string())?;
    }
    let placed = place_call(call.options).await.context("placing the call")?;
    placed.finish_speaking().await;
    placed.press(&call.digits).await;
    if placed.wait_closed(call.listen).await.is_none() {
        placed.hang_up().await;
    }
    let report = placed.report();
    if let Some(path) = &call.save_heard {
        save_mulaw_wav(path, &report.heard).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut json = report.to_json();
    json["call_sid"] = placed.call_sid().into();
    json["stream_sid"] = placed.stream_sid().into();
    json["stream_url"] = placed.stream_url().into();
    json["twiml"] = placed.twiml().into();
    writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

fn save_mulaw_wav(path: &std::path::Path, mulaw: &[u8]) -> anyhow::Result<()> {
    use crate::audio::wav::{WavEncoding, WavFormat, WavWriter};
    let file = std::fs::File::create(path)?;
    let mut writer = WavWriter::new(std::io::BufWriter::new(file), WavFormat::new(WavEncoding::Ulaw, 8000, 1)?)?;
    writer.append(mulaw)?;
    writer.finish()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: Option<&str>) -> anyhow::Result<Option<TwilioCall>> {
        let mut flags = TwilioFlags::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let taken = flags.take(flag, || it.next().map(|s| s.to_string()).context("needs a value"))?;
            assert!(taken, "{flag} not taken");
        }
        flags.finish(env.map(str::to_string))
    }

    #[test]
    fn flags_describe_the_call() {
        let call = parse(
            &[
                "--twilio-call",
                "http://h/twilio/voice",
                "--twilio-digits",
                "12#",
                "--twilio-fast",
                "--twilio-listen-secs",
                "2.5",
            ],
            Some("envtok"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(call.options.webhook_url, "http://h/twilio/voice");
        assert_eq!(call.options.auth_token, "envtok");
        assert!(!call.options.realtime);
        assert_eq!(call.options.trailing_silence_ms, 1000);
        assert_eq!(call.digits, "12#");
        assert_eq!(call.listen, Duration::from_millis(2500));
    }

    #[test]
    fn no_twilio_flags_is_no_call_and_incomplete_ones_are_errors() {
        assert!(parse(&[], None).unwrap().is_none());
        assert!(parse(&["--twilio-digits", "1"], Some("t")).is_err());
        assert!(parse(&["--twilio-call", "http://h/v"], None).is_err());
        assert!(parse(&["--twilio-call", "http://h/v", "--twilio-listen-secs", "-1"], Some("t")).is_err());
        assert!(!TwilioFlags::default().take("--deepgram-port", || Ok("1".into())).unwrap());
    }
}
