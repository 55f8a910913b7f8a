//! Direct access to an app's database, bypassing parley, to inspect and tamper with stored bytes.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use parley::db::schema::{messages, recordings};

use super::TestApp;

enum Conn {
    Pg(Box<AsyncPgConnection>),
    Sqlite(diesel::SqliteConnection),
}

async fn connect(app: &TestApp) -> Conn {
    match &app.config.database.postgres_url {
        Some(url) => Conn::Pg(Box::new(AsyncPgConnection::establish(url).await.expect("connect to test database"))),
        None => {
            use diesel::Connection as _;
            let path = app.config.database.data_dir.join("parley.sqlite3");
            Conn::Sqlite(diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open sqlite"))
        }
    }
}

/// The stored (sealed) bytes of a message's content.
pub async fn content(app: &TestApp, id: i64) -> Vec<u8> {
    let q = messages::table.find(id).select(messages::content);
    match connect(app).await {
        Conn::Pg(mut c) => q.first(&mut *c).await.expect("row"),
        Conn::Sqlite(mut c) => diesel::RunQueryDsl::first(q, &mut c).expect("row"),
    }
}

/// Overwrites a message's stored content bytes.
pub async fn set_content(app: &TestApp, id: i64, bytes: Vec<u8>) {
    let q = diesel::update(messages::table.find(id)).set(messages::content.eq(bytes));
    match connect(app).await {
        Conn::Pg(mut c) => {
            q.execute(&mut *c).await.expect("update");
        }
        Conn::Sqlite(mut c) => {
            diesel::RunQueryDsl::execute(q, &mut c).expect("update");
        }
    }
}

/// Copies the stored content of message `from` over message `to` (a cross-session transplant).
pub async fn copy_content(app: &TestApp, from: i64, to: i64) {
    let bytes = content(app, from).await;
    set_content(app, to, bytes).await;
}

/// Makes a recording look as if it was written before instances were recorded (`instance_id` NULL).
pub async fn forget_recording_instance(app: &TestApp, id: i64) {
    let q = diesel::update(recordings::table.find(id)).set(recordings::instance_id.eq(None::<String>));
    match connect(app).await {
        Conn::Pg(mut c) => {
            q.execute(&mut *c).await.expect("update");
        }
        Conn::Sqlite(mut c) => {
            diesel::RunQueryDsl::execute(q, &mut c).expect("update");
        }
    }
}

/// A trigger that makes every write of a non-null `messages.audio_url` fail, so a test can break the last
/// step of an operation and see whether its earlier steps were undone. Named `refuse_audio_url` on both
/// backends.
const REFUSE_AUDIO_URL_SQLITE: &str = "CREATE TRIGGER refuse_audio_url BEFORE UPDATE OF audio_url ON messages \
    FOR EACH ROW WHEN NEW.audio_url IS NOT NULL BEGIN SELECT RAISE(ABORT, 'audio_url refused by the test'); END;";
const REFUSE_AUDIO_URL_POSTGRES: &str = "CREATE FUNCTION refuse_audio_url() RETURNS trigger LANGUAGE plpgsql AS \
    $$ BEGIN RAISE EXCEPTION 'audio_url refused by the test'; END $$; \
    CREATE TRIGGER refuse_audio_url BEFORE UPDATE OF audio_url ON messages \
    FOR EACH ROW WHEN (NEW.audio_url IS NOT NULL) EXECUTE FUNCTION refuse_audio_url();";

/// Installs (`true`) or removes (`false`) the `refuse_audio_url` trigger.
pub async fn refuse_audio_urls(app: &TestApp, refuse: bool) {
    match (connect(app).await, refuse) {
        (Conn::Pg(mut c), true) => {
            diesel_async::SimpleAsyncConnection::batch_execute(&mut *c, REFUSE_AUDIO_URL_POSTGRES)
                .await
                .expect("trigger")
        }
        (Conn::Pg(mut c), false) => diesel_async::SimpleAsyncConnection::batch_execute(
            &mut *c,
            "DROP TRIGGER refuse_audio_url ON messages; DROP FUNCTION refuse_audio_url();",
        )
        .await
        .expect("drop trigger"),
        (Conn::Sqlite(mut c), true) => {
            diesel::connection::SimpleConnection::batch_execute(&mut c, REFUSE_AUDIO_URL_SQLITE).expect("trigger")
        }
        (Conn::Sqlite(mut c), false) => {
            diesel::connection::SimpleConnection::batch_execute(&mut c, "DROP TRIGGER refuse_audio_url;")
                .expect("drop trigger")
        }
    }
}
