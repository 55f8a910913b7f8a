//! The bodies of a successful chat completion: the paced SSE stream (a lazily polled body whose drop before
//! the end means the client went away, recorded by a guard) and the whole non-streaming completion.

use std::collections::VecDeque;

use actix_web::HttpResponse;
use bytes::Bytes;

use super::control::{ChatRequestLog, OpenAiControl, OpenAiFault, OpenAiSettings, Reply};
use super::framing::Write;
use super::reply::Completion;
use crate::emulators::common::guard::Unfinished;
use crate::providers::openai::{ApiErrorBody, ChatStreamDecoder, StreamItem};

/// How a streamed body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Done,
    Error,
    Cut,
    Hang,
}

/// The writes still to make.
pub(super) struct Plan {
    pub(super) writes: VecDeque<Write>,
    pub(super) end: End,
    pub(super) first: bool,
    /// Decodes what was written, to log deltas and `[DONE]` exactly as a client would see them.
    pub(super) seen: ChatStreamDecoder,
}

/// Logs against request `number`; `unfinished` marks the client gone if the body is dropped early.
pub(super) struct Guard {
    pub(super) control: OpenAiControl,
    pub(super) number: u64,
    pub(super) unfinished: Unfinished,
}

impl Guard {
    /// A guard for request `number`.
    pub(super) fn new(control: OpenAiControl, number: u64) -> Self {
        let c = control.clone();
        let unfinished = Unfinished::new(move || c.log(number, |r| r.client_went_away = true));
        Guard { control, number, unfinished }
    }

    fn complete(&mut self) {
        self.unfinished.finish();
        self.control.log(self.number, |r| r.completed = true);
    }
}

impl OpenAiControl {
    /// Changes the log entry of request `number`, unless `reset` dropped it.
    pub(super) fn log(&self, number: u64, f: impl FnOnce(&mut ChatRequestLog)) {
        self.shared.update(|s| {
            if let Some(r) = s.log_mut(number) {
                f(r);
            }
        });
    }
}

pub(super) async fn next_write(
    (mut plan, mut guard): (Plan, Guard),
) -> Option<(Result<Bytes, std::io::Error>, (Plan, Guard))> {
    let Some(write) = plan.writes.pop_front() else {
        if plan.end == End::Hang {
            // Never another byte; the guard notices when the client gives up.
            futures_util::future::pending::<()>().await;
        }
        guard.complete();
        return None;
    };
    if !write.delay.is_zero() {
        tokio::time::sleep(write.delay).await;
    } else if !plan.first {
        // Let the server flush the previous piece so pieces leave as separate writes.
        tokio::task::yield_now().await;
    }
    plan.first = false;
    let items = plan.seen.push(&write.bytes);
    let deltas = items.iter().filter(|i| is_delta(i)).count();
    let done = items.contains(&StreamItem::Done);
    let usage = items.iter().rev().find_map(|i| match i {
        StreamItem::Chunk(c) => c.usage.as_ref().map(|u| (u.prompt_tokens, u.completion_tokens)),
        _ => None,
    });
    guard.control.log(guard.number, |r| {
        r.deltas_sent += deltas;
        r.done_sent |= done;
        r.usage = usage.or(r.usage);
    });
    Some((Ok(write.bytes), (plan, guard)))
}

pub(super) async fn whole(
    completion: &Completion,
    reply: &Reply,
    fault: Option<OpenAiFault>,
    settings: &OpenAiSettings,
    request_id: &str,
    control: OpenAiControl,
    number: u64,
) -> HttpResponse {
    let mut guard = Guard::new(control, number);
    let n = Completion::completion_tokens(reply, &settings.torture);
    let wait = settings.time_to_first_token + settings.inter_token_delay * n.saturating_sub(1);
    tokio::time::sleep(wait).await;
    if matches!(fault, Some(OpenAiFault::NeverEnds { .. })) {
        futures_util::future::pending::<()>().await;
    }
    guard.complete();
    if matches!(fault, Some(OpenAiFault::ErrorMidStream { .. } | OpenAiFault::CutAfter { .. })) {
        guard.control.log(number, |r| r.status = 500);
        let body = ApiErrorBody::new("The server had an error while processing your request.", "server_error", None);
        return HttpResponse::InternalServerError()
            .insert_header(("x-request-id", request_id))
            .content_type("application/json")
            .body(body.to_json());
    }
    guard.control.log(number, |r| r.usage = Some((completion.prompt_tokens, n)));
    HttpResponse::Ok().insert_header(("x-request-id", request_id)).json(completion.whole(reply, n))
}

pub(super) fn is_delta(item: &StreamItem) -> bool {
    let StreamItem::Chunk(c) = item else {
        return false;
    };
    c.choices
        .first()
        .is_some_and(|ch| ch.delta.content.as_deref().is_some_and(|t| !t.is_empty()) || ch.delta.tool_calls.is_some())
}
