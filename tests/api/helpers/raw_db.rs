//! Direct access to an app's database, bypassing parley, to inspect and tamper with stored bytes.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use parley::db::schema::messages;

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
