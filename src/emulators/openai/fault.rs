//! The failures the OpenAI emulator can inject, and their CLI spelling both ways (`FromStr` and `Display`
//! round-trip, so the control API's request log shows a fault exactly as `--openai-fault` takes it), plus the
//! `PREFIX[=FAULT]` spelling of a base URL that is down.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A failure a request suffers.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenAiFault {
    /// 429 `rate_limit_exceeded` with `retry-after` (seconds), `retry-after-ms` and `x-should-retry: true`.
    RateLimited { retry_after: Duration },
    /// 429 `insufficient_quota` with `x-should-retry: false` (do not retry).
    InsufficientQuota,
    /// 500 `server_error`.
    ServerError,
    /// 503 overloaded.
    Overloaded,
    /// 401 `invalid_api_key`, whatever key was sent.
    Unauthorized,
    /// After this many deltas, `data: {"error":...}` and the end of the body (no `[DONE]`).
    ErrorMidStream { after_deltas: usize },
    /// After this many deltas the body ends without `[DONE]`.
    CutAfter { after_deltas: usize },
    /// After this many deltas nothing more is ever sent (until the client goes away).
    NeverEnds { after_deltas: usize },
}

/// Parses the CLI spelling: `429[:secs]`, `quota`, `500`, `503`, `401`, `error-after:N`, `cut-after:N`,
/// `hang-after:N`.
impl FromStr for OpenAiFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let n = || arg.parse::<usize>().map_err(|_| format!("fault {s:?} needs a count after ':'"));
        Ok(match name {
            "429" => OpenAiFault::RateLimited {
                retry_after: if arg.is_empty() {
                    Duration::from_secs(1)
                } else {
                    arg.parse::<f64>()
                        .ok()
                        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                        .ok_or_else(|| format!("fault {s:?}: bad seconds"))?
                },
            },
            "quota" => OpenAiFault::InsufficientQuota,
            "500" => OpenAiFault::ServerError,
            "503" => OpenAiFault::Overloaded,
            "401" => OpenAiFault::Unauthorized,
            "error-after" => OpenAiFault::ErrorMidStream { after_deltas: n()? },
            "cut-after" => OpenAiFault::CutAfter { after_deltas: n()? },
            "hang-after" => OpenAiFault::NeverEnds { after_deltas: n()? },
            _ => return Err(format!("unknown OpenAI fault {s:?}")),
        })
    }
}

/// The CLI spelling, which `FromStr` reads back.
impl fmt::Display for OpenAiFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenAiFault::RateLimited { retry_after } => write!(f, "429:{}", retry_after.as_secs_f64()),
            OpenAiFault::InsufficientQuota => f.write_str("quota"),
            OpenAiFault::ServerError => f.write_str("500"),
            OpenAiFault::Overloaded => f.write_str("503"),
            OpenAiFault::Unauthorized => f.write_str("401"),
            OpenAiFault::ErrorMidStream { after_deltas } => write!(f, "error-after:{after_deltas}"),
            OpenAiFault::CutAfter { after_deltas } => write!(f, "cut-after:{after_deltas}"),
            OpenAiFault::NeverEnds { after_deltas } => write!(f, "hang-after:{after_deltas}"),
        }
    }
}

impl serde::Serialize for OpenAiFault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A path prefix as the emulator matches it: one non-empty path segment, surrounding slashes dropped.
pub fn prefix_segment(prefix: &str) -> Result<&str, String> {
    let p = prefix.trim_matches('/');
    if p.is_empty() || p.contains('/') || p.contains('?') || p.contains('#') {
        return Err(format!("prefix {prefix:?} must be one path segment, like \"primary\""));
    }
    Ok(p)
}

/// Parses `PREFIX[=FAULT]` (the fault defaults to `503`): every request under `/PREFIX/v1/...` gets FAULT.
pub fn parse_down(s: &str) -> Result<(String, OpenAiFault), String> {
    let (prefix, fault) = s.split_once('=').unwrap_or((s, "503"));
    Ok((prefix_segment(prefix)?.to_string(), fault.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_spelling_round_trips_through_display() {
        for s in ["429:2.5", "429:1", "quota", "500", "503", "401", "error-after:2", "cut-after:3", "hang-after:0"] {
            let f: OpenAiFault = s.parse().unwrap();
            assert_eq!(f.to_string().parse::<OpenAiFault>(), Ok(f), "{s}");
        }
        assert_eq!("429".parse(), Ok(OpenAiFault::RateLimited { retry_after: Duration::from_secs(1) }));
        assert!("429:-1".parse::<OpenAiFault>().is_err(), "a negative delay is an error, not a panic");
        assert!("hang-after".parse::<OpenAiFault>().is_err());
    }

    #[test]
    fn a_down_prefix_defaults_to_503_and_must_be_one_segment() {
        assert_eq!(parse_down("primary"), Ok(("primary".into(), OpenAiFault::Overloaded)));
        assert_eq!(
            parse_down("/primary/=cut-after:2"),
            Ok(("primary".into(), OpenAiFault::CutAfter { after_deltas: 2 }))
        );
        assert!(parse_down("a/b").is_err());
        assert!(parse_down("=503").is_err());
        assert!(parse_down("primary=nope").is_err());
    }
}
