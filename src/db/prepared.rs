//! Keeping UPDATE statements prepared. diesel re-prepares every UPDATE it runs (a changeset may leave columns
//! out, so one Rust type can build different SQL, and diesel's cache keys statements by type). Preparing is
//! SQLite parsing and planning the statement again, or a parse round trip on PostgreSQL, for statements parley
//! runs several times a turn (a session's last activity, a recording's link and its upload). [`KeepPrepared`]
//! marks such a statement safe to keep: the cache then keys it by its SQL text, which is right whatever SQL it
//! builds. parley's updates set every column they name, so each builds one SQL text.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A statement kept prepared on its connection, keyed by its SQL (see the module).
#[derive(Debug, Clone, Copy)]
pub struct KeepPrepared<Q>(pub Q);

impl<Q> QueryId for KeepPrepared<Q> {
    type QueryId = ();
    // No type key: the cache keys the statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for KeepPrepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for KeepPrepared<Q> {
    type SqlType = Q::SqlType;
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::InstrumentationEvent;
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

    use super::*;
    use crate::db::schema::sessions;

    /// The same UPDATE, run again and again on one connection: prepared for the cache once with [`KeepPrepared`],
    /// never without it.
    #[actix::test]
    async fn updates_are_prepared_once_and_then_reused() {
        let mut conn = crate::db::SqliteConnection::establish(":memory:").await.unwrap();
        conn.batch_execute("CREATE TABLE sessions (session_id TEXT PRIMARY KEY, last_activity_at TIMESTAMP NOT NULL)")
            .await
            .unwrap();
        let cached: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = cached.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_string());
            }
        });
        let at = crate::db::to_db_time(crate::db::now());
        for _ in 0..3 {
            diesel::update(sessions::table.find("a"))
                .set(sessions::last_activity_at.eq(at))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        assert_eq!(cached.lock().unwrap().len(), 0, "diesel keeps no UPDATE prepared");
        for _ in 0..3 {
            let update = diesel::update(sessions::table.find("a")).set(sessions::last_activity_at.eq(at));
            KeepPrepared(update).execute(&mut conn).await.unwrap();
        }
        for _ in 0..2 {
            let update = KeepPrepared(
                diesel::update(sessions::table.find("a"))
                    .set(sessions::last_activity_at.eq(at))
                    .returning(sessions::session_id),
            );
            let none: Option<String> = update.get_result(&mut conn).await.optional().unwrap();
            assert_eq!(none, None);
        }
        let cached = cached.lock().unwrap().clone();
        assert_eq!(cached.len(), 2, "each SQL text prepared once: {cached:?}");
        assert!(cached[0].starts_with("UPDATE") && cached[1].contains("RETURNING"), "{cached:?}");
    }
}
