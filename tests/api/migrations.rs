//! Every migration can be undone and redone: run all, revert all (down.sql), run all again, on both backends.

use diesel_migrations::MigrationHarness as _;

#[test]
fn sqlite_migrations_revert_and_reapply() {
    use diesel::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite3");
    let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    let applied = conn.run_pending_migrations(parley::db::migrate::SQLITE).unwrap().len();
    assert!(applied > 0);
    conn.revert_all_migrations(parley::db::migrate::SQLITE).unwrap();
    assert!(conn.has_pending_migration(parley::db::migrate::SQLITE).unwrap());
    assert_eq!(conn.run_pending_migrations(parley::db::migrate::SQLITE).unwrap().len(), applied);
}

#[actix_web::test]
async fn postgres_migrations_revert_and_reapply() {
    let url = crate::helpers::postgres::fresh_database().await;
    // diesel's harness is synchronous: run it on its own thread, as parley does.
    std::thread::spawn(move || {
        use diesel::Connection as _;
        use diesel_async::AsyncPgConnection;
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        let applied = conn.run_pending_migrations(parley::db::migrate::POSTGRES).unwrap().len();
        assert!(applied > 0);
        conn.revert_all_migrations(parley::db::migrate::POSTGRES).unwrap();
        assert!(conn.has_pending_migration(parley::db::migrate::POSTGRES).unwrap());
        assert_eq!(conn.run_pending_migrations(parley::db::migrate::POSTGRES).unwrap().len(), applied);
    })
    .join()
    .unwrap();
}

#[test]
fn both_backends_have_the_same_migrations() {
    let names = |m: &dyn diesel::migration::MigrationSource<diesel::sqlite::Sqlite>| {
        m.migrations().unwrap().iter().map(|m| m.name().to_string()).collect::<Vec<_>>()
    };
    let pg: Vec<String> =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&parley::db::migrate::POSTGRES)
            .unwrap()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
    assert_eq!(names(&parley::db::migrate::SQLITE), pg);
}
