//! The plain-JSON answers of the OpenAI emulator's status faults (429 rate limit or quota, 500, 503), with
//! the retry headers the official SDK reads (`retry-after`, `retry-after-ms`, `x-should-retry`).

use super::control::OpenAiFault;
use crate::providers::openai::ApiErrorBody;

/// A status fault's answer: status, body and extra headers.
pub type FaultResponse = (u16, ApiErrorBody, Vec<(&'static str, String)>);

/// The answer to `fault`, when it is a status fault.
pub fn status_fault(fault: Option<&OpenAiFault>) -> Option<FaultResponse> {
    Some(match fault? {
        OpenAiFault::RateLimited { retry_after } => {
            let body = ApiErrorBody::new(
                "Rate limit reached for requests (emulated). Please try again later.",
                "requests",
                Some("rate_limit_exceeded"),
            );
            let secs = format!("{}", retry_after.as_secs_f64());
            let ms = retry_after.as_millis().to_string();
            let extra = [
                ("retry-after", secs),
                ("retry-after-ms", ms),
                ("x-should-retry", "true".to_string()),
                ("x-ratelimit-remaining-requests", "0".to_string()),
            ];
            (429, body, extra.to_vec())
        }
        OpenAiFault::InsufficientQuota => {
            let body = ApiErrorBody::new(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                Some("insufficient_quota"),
            );
            (429, body, vec![("x-should-retry", "false".to_string())])
        }
        OpenAiFault::ServerError => {
            let body = ApiErrorBody::new(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            );
            (500, body, Vec::new())
        }
        OpenAiFault::Overloaded => {
            let body = ApiErrorBody::new(
                "The engine is currently overloaded, please try again later.",
                "server_error",
                Some("overloaded"),
            );
            (503, body, Vec::new())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_status_faults_have_a_status_answer() {
        let (status, _, headers) =
            status_fault(Some(&OpenAiFault::RateLimited { retry_after: Duration::from_millis(250) })).unwrap();
        assert_eq!(status, 429);
        assert!(headers.contains(&("retry-after", "0.25".to_string())));
        assert!(status_fault(Some(&OpenAiFault::CutAfter { after_deltas: 1 })).is_none());
        assert!(status_fault(None).is_none());
    }
}
