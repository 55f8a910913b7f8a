//! The `sessions` table: one row per conversation, owned by a user, with the model and voice it used and when
//! it was last active. Listing is newest first with keyset pagination (an opaque cursor), so pages stay
//! correct while new sessions are created.

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, NaiveDateTime, Utc};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, Insertable, OptionalExtension as _, QueryDsl as _, Queryable,
    Selectable, SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;

use super::prepared::KeepPrepared;
use super::schema::{messages, sessions};
use super::{
    SessionId, Store, StoreError, UserId, WriteConn, from_db_time, on_write_conn, to_db_time, with_conn,
    with_write_conn,
};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    session_id: String,
    user_id: String,
    created_at: NaiveDateTime,
    last_activity_at: NaiveDateTime,
    model_id: String,
    voice_id: String,
    call_sid: Option<String>,
    call_from: Option<String>,
    call_to: Option<String>,
}

#[derive(Debug, Insertable)]
// `None` is NULL (no column here has another default): the SQL is then the same for every row, so the
// prepared statement is cached instead of being prepared again for each insert.
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
struct NewSessionRow<'a> {
    session_id: &'a str,
    user_id: &'a str,
    created_at: NaiveDateTime,
    last_activity_at: NaiveDateTime,
    model_id: &'a str,
    voice_id: &'a str,
    call_sid: Option<&'a str>,
    call_from: Option<&'a str>,
    call_to: Option<&'a str>,
}

/// A conversation to create.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub model_id: String,
    pub voice_id: String,
    /// The phone call the conversation is (absent in journals written before calls existed).
    #[serde(default)]
    pub call: Option<PhoneCall>,
}

/// The phone call a session is: Twilio's id for it and the two numbers, as Twilio gave them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneCall {
    pub call_sid: String,
    pub from: String,
    pub to: String,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub model_id: String,
    pub voice_id: String,
    /// The phone call the conversation was, if it was one.
    pub call: Option<PhoneCall>,
    /// Messages stored in the conversation (filled by listings, 0 otherwise).
    pub message_count: i64,
    /// What the conversation used, summed over its replies (filled by listings).
    pub usage: super::TurnUsage,
    /// The user's first message, whole (filled by listings; `None` before the user said anything).
    pub first_user_message: Option<String>,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        SessionRecord {
            // Ids in the table were validated on the way in.
            id: SessionId::from_stored(r.session_id),
            user_id: r.user_id,
            created_at: from_db_time(r.created_at),
            last_activity_at: from_db_time(r.last_activity_at),
            model_id: r.model_id,
            voice_id: r.voice_id,
            call: r.call_sid.map(|call_sid| PhoneCall {
                call_sid,
                from: r.call_from.unwrap_or_default(),
                to: r.call_to.unwrap_or_default(),
            }),
            message_count: 0,
            usage: super::TurnUsage::default(),
            first_user_message: None,
        }
    }
}

/// Position after the last session of a page: `(created_at, session_id)` of that session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    created_at: NaiveDateTime,
    session_id: String,
}

impl SessionCursor {
    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.created_at.and_utc().timestamp_micros(), self.session_id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses a cursor from a client; `None` when it was not produced by [`SessionCursor::encode`].
    pub fn decode(s: &str) -> Option<SessionCursor> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (micros, id) = raw.split_once('|')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        // Times both databases can hold (PostgreSQL refuses years beyond 294276; SQLite text sorts only
        // four-digit years): anything else was not produced by `encode`.
        if !(1970..=9999).contains(&created_at.year()) {
            return None;
        }
        let id: SessionId = id.parse().ok()?;
        Some(SessionCursor { created_at: created_at.naive_utc(), session_id: id.to_string() })
    }
}

/// One page of a user's sessions.
#[derive(Debug, Clone)]
pub struct SessionPage {
    pub sessions: Vec<SessionRecord>,
    /// Present when more sessions follow.
    pub next: Option<SessionCursor>,
}

/// The insert of a session row, which stores nothing when the session exists already. One statement for the store and for the test that checks diesel caches it.
macro_rules! insert_session_row {
    ($row:expr) => {
        diesel::insert_into(sessions::table).values($row).on_conflict(sessions::session_id).do_nothing()
    };
}

impl Store {
    /// Stores a new conversation; storing one that is already there does nothing (a repeated write), unless it
    /// belongs to someone else.
    pub async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        with_write_conn!(self, wc => self.create_session_in(wc, s).await)
    }

    /// [`Store::create_session`] on a given write connection (one of a batch's writes).
    pub(crate) async fn create_session_in(&self, wc: &mut WriteConn<'_>, s: &NewSession) -> Result<(), StoreError> {
        let row = NewSessionRow {
            session_id: s.id.as_str(),
            user_id: s.user_id.as_str(),
            created_at: to_db_time(s.created_at),
            last_activity_at: to_db_time(s.created_at),
            model_id: &s.model_id,
            voice_id: &s.voice_id,
            call_sid: s.call.as_ref().map(|c| c.call_sid.as_str()),
            call_from: s.call.as_ref().map(|c| c.from.as_str()),
            call_to: s.call.as_ref().map(|c| c.to.as_str()),
        };
        let owner: Option<String> = on_write_conn!(wc, conn => {
            let inserted = insert_session_row!(&row)
                .execute(conn)
                .await?;
            if inserted == 1 {
                None
            } else {
                sessions::table.find(row.session_id).select(sessions::user_id).first(conn).await.optional()?
            }
        });
        match owner {
            Some(owner) if owner != row.user_id => {
                Err(StoreError::Corrupt(format!("session {} already belongs to another user", row.session_id)))
            }
            _ => Ok(()),
        }
    }

    /// The conversation with this id, if it exists.
    pub async fn find_session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = with_conn!(self, conn => sessions::table
            .find(id.as_str())
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()?);
        Ok(row.map(SessionRecord::from))
    }

    /// Records activity in a conversation; false when it does not exist.
    pub async fn touch_session(&self, id: &SessionId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        with_write_conn!(self, wc => self.touch_session_in(wc, id, at).await)
    }

    /// [`Store::touch_session`] on a given write connection.
    pub(crate) async fn touch_session_in(
        &self,
        wc: &mut WriteConn<'_>,
        id: &SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = on_write_conn!(wc, conn => KeepPrepared(diesel::update(sessions::table.find(id.as_str()))
            .set(sessions::last_activity_at.eq(to_db_time(at))))
            .execute(conn)
            .await?);
        Ok(n > 0)
    }

    /// A page of `user`'s conversations, newest first, starting after `after`.
    pub async fn list_sessions(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut rows: Vec<SessionRow> = with_conn!(self, conn => {
            let mut query = sessions::table
                .filter(sessions::user_id.eq(user.as_str()))
                .order((sessions::created_at.desc(), sessions::session_id.desc()))
                .limit(limit as i64 + 1)
                .select(SessionRow::as_select())
                .into_boxed();
            if let Some(c) = after {
                query = query.filter(
                    sessions::created_at
                        .lt(c.created_at)
                        .or(sessions::created_at.eq(c.created_at).and(sessions::session_id.lt(c.session_id.clone()))),
                );
            }
            query.load(conn).await?
        });
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| SessionCursor { created_at: r.created_at, session_id: r.session_id.clone() })
        } else {
            None
        };
        let ids: Vec<String> = rows.iter().map(|r| r.session_id.clone()).collect();
        let counts: Vec<(String, i64)> = with_conn!(self, conn => messages::table
            .filter(messages::session_id.eq_any(&ids))
            .group_by(messages::session_id)
            .select((messages::session_id, diesel::dsl::count_star()))
            .load(conn)
            .await?);
        let usages: Vec<(String, Option<String>)> = with_conn!(self, conn => messages::table
            .filter(messages::session_id.eq_any(&ids))
            .filter(messages::usage.is_not_null())
            .select((messages::session_id, messages::usage))
            .load(conn)
            .await?);
        let mut firsts = self.first_user_messages(&ids).await?;
        let sessions = rows
            .into_iter()
            .map(|row| {
                let count = counts.iter().find(|(id, _)| *id == row.session_id).map_or(0, |(_, n)| *n);
                let mut usage = super::TurnUsage::default();
                for (_, u) in usages.iter().filter(|(id, _)| *id == row.session_id) {
                    if let Some(u) = u.as_deref().and_then(|u| serde_json::from_str::<super::TurnUsage>(u).ok()) {
                        usage.add(&u);
                    }
                }
                let first_user_message = firsts.remove(&row.session_id);
                SessionRecord { message_count: count, usage, first_user_message, ..SessionRecord::from(row) }
            })
            .collect();
        Ok(SessionPage { sessions, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_insert_is_the_same_sql_every_time_so_its_statement_is_cached() {
        let row = NewSessionRow {
            session_id: "s",
            user_id: "u",
            created_at: NaiveDateTime::default(),
            last_activity_at: NaiveDateTime::default(),
            model_id: "m",
            voice_id: "v",
            call_sid: None,
            call_from: None,
            call_to: None,
        };
        crate::db::assert_statement_cached(&insert_session_row!(&row));
    }
}
