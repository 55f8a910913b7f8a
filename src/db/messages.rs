//! The `messages` table: the turns of a conversation. Content, generated content and recording links are
//! sealed with the store's cipher (bound to the column and the session) before they are written and opened
//! when read; a row that cannot be opened (wrong key, tampering) comes back as an error for that row alone.
//!
//! An assistant reply's `content` is what its listener heard; when that is less than was generated, the
//! generated text is kept beside it with how much was heard ([`ReplyRecord`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{
    ExpressionMethods as _, Insertable, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use serde::{Deserialize, Serialize};

use super::prepared::KeepPrepared;
use super::schema::{messages, sessions};
use super::{
    MessageId, SessionId, Store, StoreError, WriteConn, from_db_time, on_write_conn, to_db_time, with_conn,
    with_write_conn,
};
use crate::crypto::CryptoError;

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// A rating of an assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Feedback {
    Positive,
    Negative,
}

/// How an assistant reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplyOutcome {
    /// Generated and spoken to the end.
    Completed,
    /// Cut short by the listener (barge-in, `interrupt`, a typed turn, or the client going away).
    Interrupted,
    /// Cut short by a provider failure (the LLM stream broke, speech synthesis failed after its first audio).
    Partial,
}

/// Where a heard position came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeardSource {
    /// The client's `played` acknowledgements (or a phone's playback marks).
    Client,
    /// Audio sent, paced in real time from the first byte: the server's best estimate.
    Estimate,
}

impl ReplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyOutcome::Completed => "completed",
            ReplyOutcome::Interrupted => "interrupted",
            ReplyOutcome::Partial => "partial",
        }
    }
    fn parse(s: &str) -> Result<ReplyOutcome, StoreError> {
        match s {
            "completed" => Ok(ReplyOutcome::Completed),
            "interrupted" => Ok(ReplyOutcome::Interrupted),
            "partial" => Ok(ReplyOutcome::Partial),
            other => Err(StoreError::Corrupt(format!("unknown reply outcome {other:?}"))),
        }
    }
}

impl HeardSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HeardSource::Client => "client",
            HeardSource::Estimate => "estimate",
        }
    }
    fn parse(s: &str) -> Result<HeardSource, StoreError> {
        match s {
            "client" => Ok(HeardSource::Client),
            "estimate" => Ok(HeardSource::Estimate),
            other => Err(StoreError::Corrupt(format!("unknown heard source {other:?}"))),
        }
    }
}

/// What is known of an assistant reply beyond its `content` (which is what the listener heard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyRecord {
    pub outcome: ReplyOutcome,
    /// Everything that was generated, when the listener heard less.
    pub generated: Option<String>,
    /// Milliseconds of the reply's audio heard, and who says so, when it did not play out whole.
    pub heard: Option<(u64, HeardSource)>,
    /// The tool calls made while it was generated, in order.
    #[serde(default)]
    pub tools: Vec<ToolRecord>,
    /// The LLM provider that answered (by name), when one did.
    #[serde(default)]
    pub llm: Option<String>,
    /// What the turn used.
    #[serde(default)]
    pub usage: Option<TurnUsage>,
}

/// One tool call of a reply: what the model asked for and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolRecord {
    pub call_id: String,
    pub name: String,
    /// The arguments as the model sent them (parsed when they were JSON, else the raw text as a string).
    pub arguments: serde_json::Value,
    /// What the tool answered, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed (the model was told the same), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ToolRecord {
    /// What the model is given as this call's answer.
    pub fn answer(&self) -> String {
        match (&self.result, &self.error) {
            (_, Some(e)) => serde_json::json!({ "error": e }).to_string(),
            (Some(v), None) => v.to_string(),
            (None, None) => "null".to_string(),
        }
    }
}

/// What one turn used, for metering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnUsage {
    /// Seconds of the user's audio sent to speech recognition for this turn.
    pub stt_seconds: f64,
    pub llm_prompt_tokens: u64,
    pub llm_completion_tokens: u64,
    /// The token counts are estimates (a provider sent no usage).
    pub llm_tokens_estimated: bool,
    /// Characters sent to speech synthesis.
    pub tts_characters: u64,
    pub tool_calls: u64,
}

impl TurnUsage {
    /// Adds `other` to this sum.
    pub fn add(&mut self, other: &TurnUsage) {
        self.stt_seconds += other.stt_seconds;
        self.llm_prompt_tokens += other.llm_prompt_tokens;
        self.llm_completion_tokens += other.llm_completion_tokens;
        self.llm_tokens_estimated |= other.llm_tokens_estimated;
        self.tts_characters += other.tts_characters;
        self.tool_calls += other.tool_calls;
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
    pub(crate) fn parse(s: &str) -> Result<Role, StoreError> {
        match s {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            other => Err(StoreError::Corrupt(format!("unknown message role {other:?}"))),
        }
    }
}

impl Feedback {
    pub fn as_str(self) -> &'static str {
        match self {
            Feedback::Positive => "positive",
            Feedback::Negative => "negative",
        }
    }
    fn parse(s: &str) -> Result<Feedback, StoreError> {
        match s {
            "positive" => Ok(Feedback::Positive),
            "negative" => Ok(Feedback::Negative),
            other => Err(StoreError::Corrupt(format!("unknown feedback {other:?}"))),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = messages)]
struct MessageRow {
    id: i64,
    session_id: String,
    role: String,
    content: Vec<u8>,
    audio_url: Option<Vec<u8>>,
    feedback: Option<String>,
    created_at: NaiveDateTime,
    interrupted: bool,
    generated_content: Option<Vec<u8>>,
    heard_ms: Option<i64>,
    heard_source: Option<String>,
    outcome: Option<String>,
    tool_calls: Option<Vec<u8>>,
    llm_provider: Option<String>,
    usage: Option<String>,
}

#[derive(Debug, Insertable)]
// `None` is NULL (no column here has another default): the SQL is then the same for every row, so the
// prepared statement is cached instead of being prepared again for each insert.
#[diesel(table_name = messages, treat_none_as_default_value = false)]
struct NewMessageRow<'a> {
    session_id: &'a str,
    role: &'a str,
    content: Vec<u8>,
    audio_url: Option<Vec<u8>>,
    created_at: NaiveDateTime,
    interrupted: bool,
    generated_content: Option<Vec<u8>>,
    heard_ms: Option<i64>,
    heard_source: Option<&'static str>,
    outcome: Option<&'static str>,
    write_key: Option<&'a str>,
    tool_calls: Option<Vec<u8>>,
    llm_provider: Option<&'a str>,
    usage: Option<String>,
}

/// What happened to a rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackOutcome {
    Updated,
    NotFound,
    /// Ratings apply to assistant messages only.
    NotAssistant,
}

/// A message to store, in plaintext; the store seals it.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub session_id: &'a SessionId,
    pub role: Role,
    pub content: &'a str,
    pub audio_url: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    /// An assistant reply cut short (by the listener or a provider failure).
    pub interrupted: bool,
    /// For assistant replies: how it ended, and what was generated and heard.
    pub reply: Option<&'a ReplyRecord>,
    /// The writer's own key for this message: storing a message whose key is already stored returns that
    /// row instead of a second one (a write repeated after an outage).
    pub write_key: Option<&'a str>,
}

/// A message read back. Content that cannot be decrypted is an error for this message only.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub session_id: SessionId,
    pub role: Role,
    pub content: Result<String, CryptoError>,
    pub audio_url: Option<Result<String, CryptoError>>,
    pub feedback: Option<Feedback>,
    pub created_at: DateTime<Utc>,
    pub interrupted: bool,
    /// For assistant replies stored with it: how the reply ended, what was generated (when more than was
    /// heard; an error if it cannot be opened) and how much was heard.
    pub outcome: Option<ReplyOutcome>,
    pub generated: Option<Result<String, CryptoError>>,
    pub heard: Option<(u64, HeardSource)>,
    /// The reply's tool calls (an error if they cannot be opened).
    pub tools: Result<Vec<ToolRecord>, CryptoError>,
    pub llm: Option<String>,
    pub usage: Option<TurnUsage>,
}

fn content_context(session: &str) -> String {
    format!("messages.content:{session}")
}

fn tools_context(session: &str) -> String {
    format!("messages.tool_calls:{session}")
}

fn generated_context(session: &str) -> String {
    format!("messages.generated_content:{session}")
}

pub(crate) fn audio_url_context(session: &str) -> String {
    format!("messages.audio_url:{session}")
}

/// Sets message `$id`'s sealed `audio_url` to `$url` on `$conn`, a connection already inside a transaction;
/// evaluates to false when there is no such message. Written once for both backends, like [`with_conn!`]'s
/// bodies. The first statement is a write (clearing the link, which the second sets): it locks the row on
/// PostgreSQL (what `SELECT … FOR UPDATE` would do there, which SQLite lacks) and takes SQLite's write lock
/// at once, because a SQLite transaction that reads first cannot upgrade once another connection has written
/// (`SQLITE_BUSY_SNAPSHOT`, which `busy_timeout` does not wait out). The session it returns is the cipher
/// context the link is sealed under.
macro_rules! set_audio_url_in {
    ($store:expr, $conn:expr, $id:expr, $url:expr) => {{
        use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
        use diesel_async::RunQueryDsl as _;
        use $crate::db::schema::messages;
        let session: Option<String> = $crate::db::prepared::KeepPrepared(
            diesel::update(messages::table.find($id.0))
                .set(messages::audio_url.eq(None::<Vec<u8>>))
                .returning(messages::session_id),
        )
        .get_result($conn)
        .await
        .optional()?;
        match session {
            None => false,
            Some(session) => {
                let sealed = $store.cipher.seal_str($url, &$crate::db::messages::audio_url_context(&session))?;
                $crate::db::prepared::KeepPrepared(
                    diesel::update(messages::table.find($id.0)).set(messages::audio_url.eq(Some(sealed))),
                )
                .execute($conn)
                .await?;
                true
            }
        }
    }};
}
pub(crate) use set_audio_url_in;

/// The insert of a message row, which stores nothing when its write key is stored already. One statement for the store and for the test that checks diesel caches it.
macro_rules! insert_message_row {
    ($row:expr) => {
        diesel::insert_into(messages::table)
            .values($row)
            .on_conflict(messages::write_key)
            .do_nothing()
            .returning(messages::id)
    };
}

impl Store {
    /// Stores a message and marks its conversation active at the message's time, atomically.
    pub async fn insert_message(&self, m: &NewMessage<'_>) -> Result<MessageId, StoreError> {
        with_write_conn!(self, wc => self.insert_message_in(wc, m).await)
    }

    /// [`Store::insert_message`] on a given write connection.
    pub(crate) async fn insert_message_in(
        &self,
        wc: &mut WriteConn<'_>,
        m: &NewMessage<'_>,
    ) -> Result<MessageId, StoreError> {
        let sid = m.session_id.as_str();
        let row = NewMessageRow {
            session_id: sid,
            role: m.role.as_str(),
            content: self.cipher.seal_str(m.content, &content_context(sid))?,
            audio_url: match m.audio_url {
                Some(url) => Some(self.cipher.seal_str(url, &audio_url_context(sid))?),
                None => None,
            },
            created_at: to_db_time(m.created_at),
            interrupted: m.interrupted,
            generated_content: match m.reply.and_then(|r| r.generated.as_deref()) {
                Some(g) => Some(self.cipher.seal_str(g, &generated_context(sid))?),
                None => None,
            },
            heard_ms: m.reply.and_then(|r| r.heard).map(|(ms, _)| i64::try_from(ms).unwrap_or(i64::MAX)),
            heard_source: m.reply.and_then(|r| r.heard).map(|(_, source)| source.as_str()),
            outcome: m.reply.map(|r| r.outcome.as_str()),
            write_key: m.write_key,
            tool_calls: match m.reply.map(|r| &r.tools).filter(|t| !t.is_empty()) {
                Some(tools) => {
                    let json = serde_json::to_string(tools).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Some(self.cipher.seal_str(&json, &tools_context(sid))?)
                }
                None => None,
            },
            llm_provider: m.reply.and_then(|r| r.llm.as_deref()),
            usage: m.reply.and_then(|r| r.usage.as_ref()).and_then(|u| serde_json::to_string(u).ok()),
        };
        let id: i64 = on_write_conn!(wc, conn => {
            use diesel_async::AsyncConnection as _;
            conn.transaction::<i64, StoreError, _>(async |conn| {
                let inserted: Option<i64> = insert_message_row!(&row)
                    .get_result(conn)
                    .await
                    .optional()?;
                let id = match (inserted, row.write_key) {
                    (Some(id), _) => id,
                    // Stored before under the same key (a repeated write): that row is this message.
                    (None, Some(key)) => {
                        messages::table.filter(messages::write_key.eq(key)).select(messages::id).first(conn).await?
                    }
                    (None, None) => return Err(StoreError::Corrupt("a message without a key was not stored".into())),
                };
                KeepPrepared(diesel::update(sessions::table.find(sid))
                    .set(sessions::last_activity_at.eq(row.created_at)))
                    .execute(conn)
                    .await?;
                Ok(id)
            })
            .await?
        });
        Ok(MessageId(id))
    }

    /// The id of the message stored under `key`, if any.
    pub async fn message_by_key(&self, key: &str) -> Result<Option<MessageId>, StoreError> {
        let id: Option<i64> = with_conn!(self, conn => messages::table
            .filter(messages::write_key.eq(key))
            .select(messages::id)
            .first(conn)
            .await
            .optional()?);
        Ok(id.map(MessageId))
    }

    /// Every message of a conversation, in the order they were stored.
    pub async fn session_messages(&self, session: &SessionId) -> Result<Vec<StoredMessage>, StoreError> {
        let rows: Vec<MessageRow> = with_conn!(self, conn => messages::table
            .filter(messages::session_id.eq(session.as_str()))
            .order(messages::id.asc())
            .select(MessageRow::as_select())
            .load(conn)
            .await?);
        rows.into_iter().map(|r| self.open_row(r)).collect()
    }

    /// The first thing the user said in each of `sessions` (opened), by session id, for labelling a list of
    /// conversations; a session without a user message, or whose first one cannot be opened, is left out.
    pub async fn first_user_messages(
        &self,
        sessions: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let firsts: Vec<Option<i64>> = with_conn!(self, conn => messages::table
            .filter(messages::session_id.eq_any(sessions))
            .filter(messages::role.eq(Role::User.as_str()))
            .group_by(messages::session_id)
            .select(diesel::dsl::min(messages::id))
            .load(conn)
            .await?);
        let ids: Vec<i64> = firsts.into_iter().flatten().collect();
        let rows: Vec<(String, Vec<u8>)> = with_conn!(self, conn => messages::table
            .filter(messages::id.eq_any(&ids))
            .select((messages::session_id, messages::content))
            .load(conn)
            .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(session, sealed)| {
                let text = self.cipher.open_str(&sealed, &content_context(&session)).ok()?;
                Some((session, text))
            })
            .collect())
    }

    /// The user whose conversation message `id` belongs to, if there is such a message.
    pub async fn message_owner(&self, id: MessageId) -> Result<Option<String>, StoreError> {
        let owner = with_conn!(self, conn => messages::table
            .inner_join(sessions::table)
            .filter(messages::id.eq(id.0))
            .select(sessions::user_id)
            .first::<String>(conn)
            .await
            .optional()?);
        Ok(owner)
    }

    /// Sets (or with `None` clears) the rating of an assistant message. The update and, when it matched
    /// nothing, the look-up that tells a user message from a missing one run in one transaction, so the
    /// outcome describes the row the update saw.
    pub async fn set_feedback(&self, id: MessageId, feedback: Option<Feedback>) -> Result<FeedbackOutcome, StoreError> {
        let value = feedback.map(Feedback::as_str);
        let outcome = with_conn!(self, write conn => {
            use diesel_async::AsyncConnection as _;
            conn.transaction::<FeedbackOutcome, StoreError, _>(async |conn| {
                let n = KeepPrepared(diesel::update(messages::table.find(id.0).filter(messages::role.eq(Role::Assistant.as_str())))
                    .set(messages::feedback.eq(value)))
                    .execute(conn)
                    .await?;
                if n > 0 {
                    return Ok(FeedbackOutcome::Updated);
                }
                let exists: Option<i64> =
                    messages::table.find(id.0).select(messages::id).first(conn).await.optional()?;
                Ok(if exists.is_some() { FeedbackOutcome::NotAssistant } else { FeedbackOutcome::NotFound })
            })
            .await?
        });
        Ok(outcome)
    }

    /// Records where a message's audio was stored; false when there is no such message. One transaction:
    /// the link is sealed under the message's own session, read and written on the same locked row.
    pub async fn set_audio_url(&self, id: MessageId, url: &str) -> Result<bool, StoreError> {
        let set = with_conn!(self, write conn => {
            use diesel_async::AsyncConnection as _;
            conn.transaction::<bool, StoreError, _>(async |conn| Ok(set_audio_url_in!(self, conn, id, url)))
                .await?
        });
        Ok(set)
    }

    fn open_row(&self, r: MessageRow) -> Result<StoredMessage, StoreError> {
        let content = self.cipher.open_str(&r.content, &content_context(&r.session_id));
        let audio_url = r.audio_url.map(|sealed| self.cipher.open_str(&sealed, &audio_url_context(&r.session_id)));
        if let Err(e) = &content {
            log::error!("session {}: message {} cannot be opened: {e}", r.session_id, r.id);
        }
        let generated = r.generated_content.map(|g| self.cipher.open_str(&g, &generated_context(&r.session_id)));
        let heard = match (r.heard_ms, r.heard_source.as_deref()) {
            (Some(ms), Some(source)) => Some((u64::try_from(ms).unwrap_or(0), HeardSource::parse(source)?)),
            _ => None,
        };
        let tools = match &r.tool_calls {
            None => Ok(Vec::new()),
            Some(sealed) => self.cipher.open_str(sealed, &tools_context(&r.session_id)).map(|json| {
                serde_json::from_str(&json).unwrap_or_else(|e| {
                    log::error!("session {}: message {} has unreadable tool calls: {e}", r.session_id, r.id);
                    Vec::new()
                })
            }),
        };
        let usage = r.usage.as_deref().and_then(|u| serde_json::from_str(u).ok());
        Ok(StoredMessage {
            tools,
            llm: r.llm_provider,
            usage,
            id: MessageId(r.id),
            role: Role::parse(&r.role)?,
            feedback: r.feedback.as_deref().map(Feedback::parse).transpose()?,
            created_at: from_db_time(r.created_at),
            interrupted: r.interrupted,
            outcome: r.outcome.as_deref().map(ReplyOutcome::parse).transpose()?,
            generated,
            heard,
            session_id: SessionId::from_stored(r.session_id),
            content,
            audio_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_insert_is_the_same_sql_every_time_so_its_statement_is_cached() {
        let row = NewMessageRow {
            session_id: "s",
            role: "user",
            content: vec![1],
            audio_url: None,
            created_at: NaiveDateTime::default(),
            interrupted: false,
            generated_content: None,
            heard_ms: None,
            heard_source: None,
            outcome: None,
            write_key: None,
            tool_calls: None,
            llm_provider: None,
            usage: None,
        };
        crate::db::assert_statement_cached(&insert_message_row!(&row));
    }
}
