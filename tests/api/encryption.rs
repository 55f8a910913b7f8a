//! Encryption at rest, seen from outside: stored bytes hold no plaintext, tampering and wrong keys give a
//! clear per-row error over the API (never garbage, never a 500), and rotated keys keep old rows readable.

use parley::db::Role;

use crate::both_backends;
use crate::helpers::{OTHER_KEY, TEST_KEY, TestDb, raw_db, spawn_app, spawn_app_with, start_with_env};
use crate::persistence::{add, new_session};

both_backends! {
    async fn content_is_never_stored_in_plaintext(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("ivy", 0);
        app.store.create_session(&s).await.unwrap();
        let id = add(&app.store, &s.id, Role::User, "my card number is 4111 1111").await;
        let raw = raw_db::content(&app, id.0).await;
        assert!(!raw.windows(4).any(|w| w == b"4111"), "plaintext visible in the row");
        assert!(!raw.windows(7).any(|w| w == b"my card"), "plaintext visible in the row");
        assert_eq!(raw[0], 1, "key id 1 stamped in front");
        app.stop().await.unwrap();
    }

    async fn a_tampered_row_is_an_error_for_that_row_only(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("jack", 0);
        app.store.create_session(&s).await.unwrap();
        add(&app.store, &s.id, Role::User, "first").await;
        let victim = add(&app.store, &s.id, Role::Assistant, "second").await;
        add(&app.store, &s.id, Role::User, "third").await;
        let mut raw = raw_db::content(&app, victim.0).await;
        let last = raw.len() - 1;
        raw[last] ^= 0x40;
        raw_db::set_content(&app, victim.0, raw).await;

        let (status, body) = app.get_json(&format!("/api/history?sessionId={}", s.id)).await;
        assert_eq!(status, 200, "{body}");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages[0]["content"], "first");
        assert_eq!(messages[1]["content"], serde_json::Value::Null);
        assert!(messages[1]["contentError"].as_str().unwrap().contains("altered"), "{body}");
        assert_eq!(messages[2]["content"], "third");
        app.stop().await.unwrap();
    }

    async fn a_row_copied_into_another_session_does_not_open(db: TestDb) {
        let app = spawn_app(db).await;
        let victim = new_session("kate", 0);
        let attacker = new_session("leo", 0);
        app.store.create_session(&victim).await.unwrap();
        app.store.create_session(&attacker).await.unwrap();
        let secret = add(&app.store, &victim.id, Role::User, "kate's secret").await;
        let decoy = add(&app.store, &attacker.id, Role::User, "decoy").await;
        raw_db::copy_content(&app, secret.0, decoy.0).await;
        let got = app.store.session_messages(&attacker.id).await.unwrap();
        assert!(got[0].content.is_err(), "ciphertext is bound to its session: {:?}", got[0].content);
        app.stop().await.unwrap();
    }

    async fn the_wrong_key_gives_clear_row_errors_not_garbage(db: TestDb) {
        let app = spawn_app_with(db, |env| {
            env.insert("PARLEY_ENCRYPTION_KEY".into(), TEST_KEY.into());
        })
        .await;
        let s = new_session("mia", 0);
        app.store.create_session(&s).await.unwrap();
        add(&app.store, &s.id, Role::User, "written with the first key").await;
        let (mut env, dir) = (app.env.clone(), app.data_dir.clone());
        app.stop().await.unwrap();

        env.insert("PARLEY_ENCRYPTION_KEY".into(), OTHER_KEY.into());
        let wrong = start_with_env(env, dir).await;
        let (status, body) = wrong.get_json(&format!("/api/history?sessionId={}", s.id)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["messages"][0]["content"], serde_json::Value::Null);
        assert!(body["messages"][0]["contentError"].as_str().unwrap().contains("wrong key"), "{body}");
        wrong.stop().await.unwrap();
    }

    async fn a_rotated_key_still_reads_old_rows_and_seals_new_ones(db: TestDb) {
        let app = spawn_app_with(db, |env| {
            env.insert("PARLEY_ENCRYPTION_KEY".into(), TEST_KEY.into());
        })
        .await;
        let s = new_session("ned", 0);
        app.store.create_session(&s).await.unwrap();
        add(&app.store, &s.id, Role::User, "before rotation").await;
        let (mut env, dir) = (app.env.clone(), app.data_dir.clone());
        app.stop().await.unwrap();

        env.insert("PARLEY_ENCRYPTION_KEY".into(), OTHER_KEY.into());
        env.insert("PARLEY_ENCRYPTION_KEY_ID".into(), "2".into());
        env.insert("PARLEY_ENCRYPTION_OLD_KEYS".into(), format!("1:{TEST_KEY}"));
        let rotated = start_with_env(env, dir).await;
        let new_id = add(&rotated.store, &s.id, Role::Assistant, "after rotation").await;
        assert_eq!(raw_db::content(&rotated, new_id.0).await[0], 2, "new rows use key id 2");
        let got = rotated.store.session_messages(&s.id).await.unwrap();
        assert_eq!(got[0].content.as_deref().unwrap(), "before rotation");
        assert_eq!(got[1].content.as_deref().unwrap(), "after rotation");
        rotated.stop().await.unwrap();
    }
}
