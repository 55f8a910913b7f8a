//! The `recordings` table: one row per audio file of a turn (the user's utterance or the assistant's reply),
//! from the moment the file is complete in the spool directory until, and after, it is stored. Rows still
//! waiting (`pending`, `failed`) are what the uploader picks up after a restart. When a recording is stored
//! and its message is known, the message's `audio_url` is set (sealed like all message data).
//!
//! Each row names the instance whose spool holds its file (`instance_id`): instances sharing the database pick
//! up only their own waiting rows, and those from before instances were recorded (NULL).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{
    ExpressionMethods as _, Insertable, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use serde::Serialize;

use super::messages::set_audio_url_in;
use super::prepared::KeepPrepared;
use super::schema::{recordings, sessions};
use super::{
    InstanceId, MessageId, Role, SessionId, Store, StoreError, WriteConn, from_db_time, on_write_conn, to_db_time,
    with_conn, with_write_conn,
};

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    /// Complete on local disk, not stored yet.
    Pending,
    Uploaded,
    /// Storage refused it for good (e.g. permissions); kept on disk, retried after a restart.
    Failed,
}

impl RecordingStatus {
    fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Pending => "pending",
            RecordingStatus::Uploaded => "uploaded",
            RecordingStatus::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<RecordingStatus, StoreError> {
        match s {
            "pending" => Ok(RecordingStatus::Pending),
            "uploaded" => Ok(RecordingStatus::Uploaded),
            "failed" => Ok(RecordingStatus::Failed),
            other => Err(StoreError::Corrupt(format!("unknown recording status {other:?}"))),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = recordings)]
struct RecordingRow {
    id: i64,
    session_id: String,
    message_id: Option<i64>,
    role: String,
    turn_id: i64,
    object_key: String,
    content_type: String,
    size_bytes: i64,
    duration_seconds: Option<f64>,
    backend: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    spool_path: Option<String>,
    created_at: NaiveDateTime,
    uploaded_at: Option<NaiveDateTime>,
    instance_id: Option<String>,
    spool_offset: Option<i64>,
}

#[derive(Debug, Insertable)]
// `None` is NULL (no column here has another default): the SQL is then the same for every row, so the
// prepared statement is cached instead of being prepared again for each insert.
#[diesel(table_name = recordings, treat_none_as_default_value = false)]
struct NewRecordingRow<'a> {
    session_id: &'a str,
    role: &'a str,
    turn_id: i64,
    object_key: &'a str,
    content_type: &'a str,
    size_bytes: i64,
    duration_seconds: Option<f64>,
    backend: &'a str,
    status: &'a str,
    spool_path: Option<&'a str>,
    created_at: NaiveDateTime,
    instance_id: Option<&'a str>,
    spool_offset: Option<i64>,
}

/// A finished recording to register.
#[derive(Debug, Clone)]
pub struct NewRecording {
    pub session_id: SessionId,
    pub role: Role,
    /// Turn number within its connection.
    pub turn_id: u64,
    pub object_key: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub duration_seconds: Option<f64>,
    /// `local` or `gcs`.
    pub backend: &'static str,
    pub spool_path: String,
    /// Where the recording starts in `spool_path` (a session's spool file holds its recordings one after
    /// another); `None` when the file is the recording.
    pub spool_offset: Option<u64>,
    pub created_at: DateTime<Utc>,
    /// The instance whose spool directory holds `spool_path`.
    pub instance_id: InstanceId,
}

/// A recording as stored, with its owner.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingRecord {
    pub id: i64,
    pub session_id: String,
    pub user_id: String,
    pub message_id: Option<i64>,
    pub role: Role,
    pub turn_id: i64,
    pub object_key: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub duration_seconds: Option<f64>,
    pub backend: String,
    pub status: RecordingStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub spool_path: Option<String>,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: Option<DateTime<Utc>>,
    /// The instance whose spool holds (or held) the file; `None` for rows from before instances were recorded.
    #[serde(skip)]
    pub instance_id: Option<String>,
    /// Where the recording starts in `spool_path`; `None` when the file is the recording.
    #[serde(skip)]
    pub spool_offset: Option<u64>,
}

impl RecordingRow {
    fn into_record(self, user_id: String) -> Result<RecordingRecord, StoreError> {
        Ok(RecordingRecord {
            id: self.id,
            session_id: self.session_id,
            user_id,
            message_id: self.message_id,
            role: Role::parse(&self.role)?,
            turn_id: self.turn_id,
            object_key: self.object_key,
            content_type: self.content_type,
            size_bytes: self.size_bytes,
            duration_seconds: self.duration_seconds,
            backend: self.backend,
            status: RecordingStatus::parse(&self.status)?,
            attempts: self.attempts,
            last_error: self.last_error,
            spool_path: self.spool_path,
            created_at: from_db_time(self.created_at),
            uploaded_at: self.uploaded_at.map(from_db_time),
            instance_id: self.instance_id,
            spool_offset: self.spool_offset.and_then(|o| u64::try_from(o).ok()),
        })
    }
}

/// The insert of a recording row, which stores nothing when its object key is stored already. One statement for the store and for the test that checks diesel caches it.
macro_rules! insert_recording_row {
    ($row:expr) => {
        diesel::insert_into(recordings::table)
            .values($row)
            .on_conflict(recordings::object_key)
            .do_nothing()
            .returning(recordings::id)
    };
}

impl Store {
    /// Registers a finished recording waiting in the spool; returns its id. Registering an object key that is
    /// already registered returns that row's id (a repeated write).
    pub async fn insert_recording(&self, r: &NewRecording) -> Result<i64, StoreError> {
        with_write_conn!(self, wc => self.insert_recording_in(wc, r).await)
    }

    /// [`Store::insert_recording`] on a given write connection.
    pub(crate) async fn insert_recording_in(
        &self,
        wc: &mut WriteConn<'_>,
        r: &NewRecording,
    ) -> Result<i64, StoreError> {
        let row = NewRecordingRow {
            session_id: r.session_id.as_str(),
            role: r.role.as_str(),
            turn_id: r.turn_id as i64,
            object_key: &r.object_key,
            content_type: &r.content_type,
            size_bytes: r.size_bytes as i64,
            duration_seconds: r.duration_seconds,
            backend: r.backend,
            status: RecordingStatus::Pending.as_str(),
            spool_path: Some(&r.spool_path),
            created_at: to_db_time(r.created_at),
            instance_id: Some(r.instance_id.as_str()),
            spool_offset: r.spool_offset.and_then(|o| i64::try_from(o).ok()),
        };
        let id = on_write_conn!(wc, conn => {
            let inserted: Option<i64> = insert_recording_row!(&row)
                .get_result(conn)
                .await
                .optional()?;
            match inserted {
                Some(id) => id,
                None => recordings::table
                    .filter(recordings::object_key.eq(&r.object_key))
                    .select(recordings::id)
                    .first(conn)
                    .await?,
            }
        });
        Ok(id)
    }

    /// One recording with its owner.
    pub async fn find_recording(&self, id: i64) -> Result<Option<RecordingRecord>, StoreError> {
        let row: Option<(RecordingRow, String)> = with_conn!(self, conn => recordings::table
            .inner_join(sessions::table)
            .filter(recordings::id.eq(id))
            .select((RecordingRow::as_select(), sessions::user_id))
            .first(conn)
            .await
            .optional()?);
        row.map(|(r, user)| r.into_record(user)).transpose()
    }

    /// The recording stored under `object_key`.
    pub async fn find_recording_by_key(&self, object_key: &str) -> Result<Option<RecordingRecord>, StoreError> {
        let row: Option<(RecordingRow, String)> = with_conn!(self, conn => recordings::table
            .inner_join(sessions::table)
            .filter(recordings::object_key.eq(object_key))
            .select((RecordingRow::as_select(), sessions::user_id))
            .first(conn)
            .await
            .optional()?);
        row.map(|(r, user)| r.into_record(user)).transpose()
    }

    /// Every recording of a session, oldest first.
    pub async fn session_recordings(&self, session: &SessionId) -> Result<Vec<RecordingRecord>, StoreError> {
        let rows: Vec<(RecordingRow, String)> = with_conn!(self, conn => recordings::table
            .inner_join(sessions::table)
            .filter(recordings::session_id.eq(session.as_str()))
            .order(recordings::id.asc())
            .select((RecordingRow::as_select(), sessions::user_id))
            .load(conn)
            .await?);
        rows.into_iter().map(|(r, user)| r.into_record(user)).collect()
    }

    /// Recordings not stored yet (pending or failed) whose spool file `instance` holds (or that predate
    /// instances), oldest first. Another instance's waiting rows are its own business: their files are in a
    /// spool this instance cannot see.
    pub async fn waiting_recordings(&self, instance: &InstanceId) -> Result<Vec<RecordingRecord>, StoreError> {
        use diesel::BoolExpressionMethods as _;
        let rows: Vec<(RecordingRow, String)> = with_conn!(self, conn => recordings::table
            .inner_join(sessions::table)
            .filter(recordings::status.ne(RecordingStatus::Uploaded.as_str()))
            .filter(recordings::instance_id.eq(instance.as_str()).or(recordings::instance_id.is_null()))
            .order(recordings::id.asc())
            .select((RecordingRow::as_select(), sessions::user_id))
            .load(conn)
            .await?);
        rows.into_iter().map(|(r, user)| r.into_record(user)).collect()
    }

    /// Notes a failed storage attempt; `give_up` marks the recording failed (it stays in the spool).
    pub async fn recording_attempt_failed(&self, id: i64, error: &str, give_up: bool) -> Result<(), StoreError> {
        let status = if give_up { RecordingStatus::Failed } else { RecordingStatus::Pending };
        with_conn!(self, write conn => KeepPrepared(diesel::update(recordings::table.find(id))
            .set((
                recordings::attempts.eq(recordings::attempts + 1),
                recordings::last_error.eq(Some(error)),
                recordings::status.eq(status.as_str()),
            )))
            .execute(conn)
            .await?);
        Ok(())
    }

    /// The recording is stored at `url`: marks it, forgets the spool file, and links the message to it when
    /// the message is known. One transaction: a recording is never left marked stored (and so never
    /// retried) while its message still lacks the link.
    pub async fn recording_uploaded(&self, id: i64, url: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        with_write_conn!(self, wc => self.recording_uploaded_in(wc, id, url, at).await)
    }

    /// [`Store::recording_uploaded`] on a given write connection (its transaction a savepoint when one is open).
    pub(crate) async fn recording_uploaded_in(
        &self,
        wc: &mut WriteConn<'_>,
        id: i64,
        url: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_write_conn!(wc, conn => {
            use diesel_async::AsyncConnection as _;
            conn.transaction::<(), StoreError, _>(async |conn| {
                // Returned by the update itself, under the row's lock: a concurrent `link_recording` either
                // committed before (its message is seen here) or waits for this one and then sees `uploaded`.
                let message: Option<Option<i64>> = KeepPrepared(diesel::update(recordings::table.find(id))
                    .set((
                        recordings::status.eq(RecordingStatus::Uploaded.as_str()),
                        recordings::uploaded_at.eq(Some(to_db_time(at))),
                        recordings::spool_path.eq(None::<String>),
                        recordings::attempts.eq(recordings::attempts + 1),
                        recordings::last_error.eq(None::<String>),
                    ))
                    .returning(recordings::message_id))
                    .get_result(conn)
                    .await
                    .optional()?;
                if let Some(Some(message_id)) = message {
                    set_audio_url_in!(self, conn, MessageId(message_id), url);
                }
                Ok(())
            })
            .await?
        });
        Ok(())
    }

    /// Links a recording to its message; sets the message's link at once when the recording is stored. One
    /// transaction, like [`Store::recording_uploaded`], which it may race with.
    pub async fn link_recording(&self, id: i64, message: MessageId, url: &str) -> Result<(), StoreError> {
        with_conn!(self, write conn => {
            use diesel_async::AsyncConnection as _;
            conn.transaction::<(), StoreError, _>(async |conn| {
                let status: Option<String> = KeepPrepared(diesel::update(recordings::table.find(id))
                    .set(recordings::message_id.eq(Some(message.0)))
                    .returning(recordings::status))
                    .get_result(conn)
                    .await
                    .optional()?;
                if status.as_deref() == Some(RecordingStatus::Uploaded.as_str()) {
                    set_audio_url_in!(self, conn, message, url);
                }
                Ok(())
            })
            .await?
        });
        Ok(())
    }

    /// [`Store::link_recording`] for a recording and a message named by their keys (its object key, the
    /// message's write key), as a journaled write names them; false when either is not stored.
    pub async fn link_recording_by_keys(
        &self,
        object_key: &str,
        message_key: &str,
        url: &str,
    ) -> Result<bool, StoreError> {
        with_write_conn!(self, wc => self.link_recording_by_keys_in(wc, object_key, message_key, url).await)
    }

    /// [`Store::link_recording_by_keys`] on a given write connection.
    pub(crate) async fn link_recording_by_keys_in(
        &self,
        wc: &mut WriteConn<'_>,
        object_key: &str,
        message_key: &str,
        url: &str,
    ) -> Result<bool, StoreError> {
        use super::schema::messages;
        let linked = on_write_conn!(wc, conn => {
            use diesel_async::AsyncConnection as _;
            conn.transaction::<bool, StoreError, _>(async |conn| {
                let message: Option<i64> = messages::table
                    .filter(messages::write_key.eq(message_key))
                    .select(messages::id)
                    .first(conn)
                    .await
                    .optional()?;
                let Some(message) = message.map(MessageId) else {
                    return Ok(false);
                };
                let status: Option<String> = KeepPrepared(diesel::update(recordings::table.filter(recordings::object_key.eq(object_key)))
                    .set(recordings::message_id.eq(Some(message.0)))
                    .returning(recordings::status))
                    .get_result(conn)
                    .await
                    .optional()?;
                match status {
                    None => Ok(false),
                    Some(status) => {
                        if status == RecordingStatus::Uploaded.as_str() {
                            set_audio_url_in!(self, conn, message, url);
                        }
                        Ok(true)
                    }
                }
            })
            .await?
        });
        Ok(linked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_insert_is_the_same_sql_every_time_so_its_statement_is_cached() {
        let row = NewRecordingRow {
            session_id: "s",
            role: "user",
            turn_id: 1,
            object_key: "k",
            content_type: "audio/wav",
            size_bytes: 44,
            duration_seconds: None,
            backend: "local",
            status: "pending",
            spool_path: None,
            spool_offset: None,
            created_at: NaiveDateTime::default(),
            instance_id: None,
        };
        crate::db::assert_statement_cached(&insert_recording_row!(&row));
    }
}
