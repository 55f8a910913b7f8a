//! The persistence behaviour suite, run identically against SQLite and PostgreSQL through the public `Store`.

use std::time::Duration;

use chrono::Utc;
use parley::db::{Feedback, FeedbackOutcome, MessageId, NewMessage, NewSession, Role, SessionId, Store};

use crate::both_backends;
use crate::helpers::{TestDb, spawn_app};

pub fn new_session(user: &str, minutes_ago: i64) -> NewSession {
    NewSession {
        id: SessionId::generate(),
        user_id: user.parse().unwrap(),
        created_at: parley::db::now() - chrono::Duration::minutes(minutes_ago),
        model_id: "model-a".into(),
        voice_id: "voice-a".into(),
        call: None,
    }
}

pub async fn add(store: &Store, session: &SessionId, role: Role, text: &str) -> MessageId {
    store
        .insert_message(&NewMessage {
            session_id: session,
            role,
            content: text,
            audio_url: None,
            created_at: parley::db::now(),
            interrupted: false,
            reply: None,
            write_key: None,
        })
        .await
        .unwrap()
}

both_backends! {
    async fn a_session_reads_back_as_written(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("alice", 0);
        app.store.create_session(&s).await.unwrap();
        let found = app.store.find_session(&s.id).await.unwrap().unwrap();
        assert_eq!(found.id, s.id);
        assert_eq!(found.user_id, "alice");
        assert_eq!(found.created_at, s.created_at);
        assert_eq!(found.last_activity_at, s.created_at);
        assert_eq!((found.model_id.as_str(), found.voice_id.as_str()), ("model-a", "voice-a"));
        assert!(app.store.find_session(&SessionId::generate()).await.unwrap().is_none());
        app.stop().await.unwrap();
    }

    async fn a_session_stored_twice_is_stored_once_and_never_for_another_user(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("alice", 0);
        app.store.create_session(&s).await.unwrap();
        // A repeated write (replayed after an outage) is harmless...
        app.store.create_session(&s).await.unwrap();
        let page = app.store.list_sessions(&"alice".parse().unwrap(), 10, None).await.unwrap();
        assert_eq!(page.sessions.len(), 1);
        // ...but an id that is someone else's is refused.
        let mut other = s.clone();
        other.user_id = "mallory".parse().unwrap();
        assert!(app.store.create_session(&other).await.is_err());
        assert_eq!(app.store.find_session(&s.id).await.unwrap().unwrap().user_id, "alice");
        app.stop().await.unwrap();
    }

    async fn a_message_stored_twice_under_one_key_is_stored_once(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("alice", 0);
        app.store.create_session(&s).await.unwrap();
        let m = |key| NewMessage {
            session_id: &s.id,
            role: Role::User,
            content: "hello",
            audio_url: None,
            created_at: parley::db::now(),
            interrupted: false,
            reply: None,
            write_key: key,
        };
        let first = app.store.insert_message(&m(Some("k1"))).await.unwrap();
        assert_eq!(app.store.insert_message(&m(Some("k1"))).await.unwrap(), first, "the same row");
        let other = app.store.insert_message(&m(Some("k2"))).await.unwrap();
        let unkeyed = app.store.insert_message(&m(None)).await.unwrap();
        assert_ne!(other, first);
        assert_ne!(unkeyed, other);
        assert_eq!(app.store.session_messages(&s.id).await.unwrap().len(), 3);
        assert_eq!(app.store.message_by_key("k2").await.unwrap(), Some(other));
        app.stop().await.unwrap();
    }

    async fn messages_come_back_in_order_with_roles_and_times(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("alice", 0);
        app.store.create_session(&s).await.unwrap();
        let texts = ["hello", "Hi! How can I help?", "what's 2+2 — in French?", "Quatre. 🎉"];
        for (i, t) in texts.iter().enumerate() {
            add(&app.store, &s.id, if i % 2 == 0 { Role::User } else { Role::Assistant }, t).await;
        }
        let got = app.store.session_messages(&s.id).await.unwrap();
        assert_eq!(got.len(), 4);
        for (i, m) in got.iter().enumerate() {
            assert_eq!(m.content.as_deref().unwrap(), texts[i]);
            assert_eq!(m.role, if i % 2 == 0 { Role::User } else { Role::Assistant });
            assert_eq!(m.feedback, None);
            assert!(m.audio_url.is_none());
        }
        assert!(got.windows(2).all(|w| w[0].id < w[1].id && w[0].created_at <= w[1].created_at));
        app.stop().await.unwrap();
    }

    async fn storing_a_message_marks_the_session_active(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("alice", 30);
        app.store.create_session(&s).await.unwrap();
        add(&app.store, &s.id, Role::User, "still there?").await;
        let found = app.store.find_session(&s.id).await.unwrap().unwrap();
        assert!(found.last_activity_at > s.created_at + chrono::Duration::minutes(29));
        let later = parley::db::now() + chrono::Duration::seconds(5);
        assert!(app.store.touch_session(&s.id, later).await.unwrap());
        assert_eq!(app.store.find_session(&s.id).await.unwrap().unwrap().last_activity_at, later);
        assert!(!app.store.touch_session(&SessionId::generate(), later).await.unwrap());
        app.stop().await.unwrap();
    }

    async fn a_message_for_an_unknown_session_is_refused(db: TestDb) {
        let app = spawn_app(db).await;
        let stray = SessionId::generate();
        let res = app
            .store
            .insert_message(&NewMessage {
                session_id: &stray,
                role: Role::User,
                content: "orphan",
                audio_url: None,
                created_at: Utc::now(),
                interrupted: false,
                reply: None,
                write_key: None,
            })
            .await;
        assert!(res.is_err(), "the foreign key holds");
        app.stop().await.unwrap();
    }

    async fn listing_is_newest_first_and_pages_without_gaps_or_repeats(db: TestDb) {
        let app = spawn_app(db).await;
        let mut ids = Vec::new();
        for minutes_ago in [50, 40, 30, 20, 10] {
            let s = new_session("bob", minutes_ago);
            app.store.create_session(&s).await.unwrap();
            ids.push(s.id);
        }
        // Two sessions created at the same instant must still page deterministically.
        let mut twin = new_session("bob", 10);
        twin.created_at = app.store.find_session(&ids[4]).await.unwrap().unwrap().created_at;
        app.store.create_session(&twin).await.unwrap();
        ids.push(twin.id);

        let user = "bob".parse().unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = app.store.list_sessions(&user, 2, cursor.as_ref()).await.unwrap();
            assert!(page.sessions.len() <= 2);
            seen.extend(page.sessions.into_iter().map(|s| (s.created_at, s.id)));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 6, "every session exactly once");
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "strictly newest first: {seen:?}");
        let mut all: Vec<_> = seen.iter().map(|(_, id)| id.clone()).collect();
        all.sort();
        ids.sort();
        assert_eq!(all, ids);
        app.stop().await.unwrap();
    }

    async fn listing_counts_messages_and_shows_only_the_users_own_sessions(db: TestDb) {
        let app = spawn_app(db).await;
        let mine = new_session("carol", 1);
        let theirs = new_session("dave", 0);
        app.store.create_session(&mine).await.unwrap();
        app.store.create_session(&theirs).await.unwrap();
        add(&app.store, &mine.id, Role::User, "a").await;
        add(&app.store, &mine.id, Role::Assistant, "b").await;
        add(&app.store, &theirs.id, Role::User, "c").await;
        let page = app.store.list_sessions(&"carol".parse().unwrap(), 10, None).await.unwrap();
        assert_eq!(page.sessions.len(), 1);
        assert_eq!(page.sessions[0].id, mine.id);
        assert_eq!(page.sessions[0].message_count, 2);
        assert!(page.next.is_none());
        let none = app.store.list_sessions(&"nobody".parse().unwrap(), 10, None).await.unwrap();
        assert!(none.sessions.is_empty());
        app.stop().await.unwrap();
    }

    async fn feedback_is_set_changed_and_cleared_on_assistant_messages_only(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("erin", 0);
        app.store.create_session(&s).await.unwrap();
        let question = add(&app.store, &s.id, Role::User, "q").await;
        let answer = add(&app.store, &s.id, Role::Assistant, "a").await;
        let store = &app.store;
        assert_eq!(store.set_feedback(answer, Some(Feedback::Positive)).await.unwrap(), FeedbackOutcome::Updated);
        assert_eq!(store.session_messages(&s.id).await.unwrap()[1].feedback, Some(Feedback::Positive));
        assert_eq!(store.set_feedback(answer, Some(Feedback::Negative)).await.unwrap(), FeedbackOutcome::Updated);
        assert_eq!(store.session_messages(&s.id).await.unwrap()[1].feedback, Some(Feedback::Negative));
        assert_eq!(store.set_feedback(answer, None).await.unwrap(), FeedbackOutcome::Updated);
        assert_eq!(store.session_messages(&s.id).await.unwrap()[1].feedback, None);
        assert_eq!(store.set_feedback(question, Some(Feedback::Positive)).await.unwrap(), FeedbackOutcome::NotAssistant);
        assert_eq!(store.set_feedback(MessageId(987_654), Some(Feedback::Positive)).await.unwrap(), FeedbackOutcome::NotFound);
        app.stop().await.unwrap();
    }

    async fn recording_links_are_stored_and_read_back(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("frank", 0);
        app.store.create_session(&s).await.unwrap();
        let id = add(&app.store, &s.id, Role::Assistant, "hello").await;
        let url = "/api/recordings/frank/abc/assistant_1.mp3";
        assert!(app.store.set_audio_url(id, url).await.unwrap());
        assert!(!app.store.set_audio_url(MessageId(424_242), url).await.unwrap());
        let got = app.store.session_messages(&s.id).await.unwrap();
        assert_eq!(got[0].audio_url.clone().unwrap().unwrap(), url);
        app.stop().await.unwrap();
    }

    async fn concurrent_writers_all_land(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("gina", 0);
        app.store.create_session(&s).await.unwrap();
        let writes = (0..40).map(|i| {
            let store = app.store.clone();
            let id = s.id.clone();
            async move { add(&store, &id, Role::User, &format!("message {i}")).await }
        });
        let ids = tokio::time::timeout(Duration::from_secs(30), futures_util::future::join_all(writes))
            .await
            .expect("writes finish");
        assert_eq!(ids.len(), 40);
        let stored = app.store.session_messages(&s.id).await.unwrap();
        let mut texts: Vec<_> = stored.into_iter().map(|m| m.content.unwrap()).collect();
        texts.sort();
        let mut expected: Vec<_> = (0..40).map(|i| format!("message {i}")).collect();
        expected.sort();
        assert_eq!(texts, expected);
        app.stop().await.unwrap();
    }

    async fn an_interrupted_reply_is_stored_flagged(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("ivan", 0);
        app.store.create_session(&s).await.unwrap();
        app.store
            .insert_message(&NewMessage {
                session_id: &s.id,
                role: Role::Assistant,
                content: "Let me read the whole menu for",
                audio_url: None,
                created_at: parley::db::now(),
                interrupted: true,
                reply: None,
                write_key: None,
            })
            .await
            .unwrap();
        add(&app.store, &s.id, Role::User, "stop").await;
        let got = app.store.session_messages(&s.id).await.unwrap();
        assert!(got[0].interrupted);
        assert!(!got[1].interrupted);
        let (_, body) = app.get_json(&format!("/api/history?sessionId={}", s.id)).await;
        assert_eq!(body["messages"][0]["interrupted"], true);
        assert_eq!(body["messages"][1]["interrupted"], false);
        app.stop().await.unwrap();
    }

    async fn data_survives_a_restart(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("hank", 0);
        app.store.create_session(&s).await.unwrap();
        add(&app.store, &s.id, Role::User, "remember me").await;
        let (env, dir) = (app.env.clone(), app.data_dir.clone());
        app.stop().await.unwrap();
        let again = crate::helpers::start_with_env(env, dir).await;
        let got = again.store.session_messages(&s.id).await.unwrap();
        assert_eq!(got[0].content.as_deref().unwrap(), "remember me");
        again.stop().await.unwrap();
    }
}
