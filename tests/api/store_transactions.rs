//! Operations of several statements are all-or-nothing, on both backends: a database trigger makes the last
//! step (writing a message's recording link) fail, and the earlier steps must be undone with it. Without the
//! transaction a recording would stay marked stored, so never retried, while its message never got its link.

use parley::db::{
    MessageId, NewMessage, NewRecording, RecordingRecord, RecordingStatus, Role, SessionId, Store, WriteDone, WriteOp,
};

use crate::both_backends;
use crate::helpers::raw_db::refuse_audio_urls;
use crate::helpers::{TestApp, TestDb, spawn_app};
use crate::persistence::{add, new_session};

const URL: &str = "/api/recordings/tx/assistant_1.mp3";

/// A session with one assistant message and one pending recording of it, not linked yet.
async fn message_and_recording(app: &TestApp) -> (SessionId, MessageId, i64) {
    let s = new_session("tx-user", 0);
    app.store.create_session(&s).await.unwrap();
    let message = add(&app.store, &s.id, Role::Assistant, "an answer").await;
    let recording = app
        .store
        .insert_recording(&NewRecording {
            session_id: s.id.clone(),
            role: Role::Assistant,
            turn_id: 1,
            object_key: format!("audio_recordings/tx-user/{}/assistant_1.mp3", s.id),
            content_type: "audio/mpeg".into(),
            size_bytes: 1234,
            duration_seconds: Some(1.5),
            backend: "local",
            spool_path: "/spool/assistant_1.mp3".into(),
            spool_offset: None,
            created_at: parley::db::now(),
            instance_id: parley::db::InstanceId::generate(),
        })
        .await
        .unwrap();
    (s.id, message, recording)
}

/// A pending user recording of turn `turn` in `session`, not stored yet.
fn new_recording(session: &SessionId, turn: u64) -> NewRecording {
    NewRecording {
        session_id: session.clone(),
        role: Role::User,
        turn_id: turn,
        object_key: format!("audio_recordings/tx-user/{session}/user_{turn}.wav"),
        content_type: "audio/wav".into(),
        size_bytes: 44,
        duration_seconds: Some(0.0),
        backend: "local",
        spool_path: format!("/spool/user_{turn}.wav"),
        spool_offset: None,
        created_at: parley::db::now(),
        instance_id: parley::db::InstanceId::generate(),
    }
}

fn user_message<'a>(session: &'a SessionId, text: &'a str, key: &'a str) -> NewMessage<'a> {
    NewMessage {
        session_id: session,
        role: Role::User,
        content: text,
        audio_url: None,
        created_at: parley::db::now(),
        interrupted: false,
        reply: None,
        write_key: Some(key),
    }
}

async fn recording(store: &Store, id: i64) -> RecordingRecord {
    store.find_recording(id).await.unwrap().expect("the recording exists")
}

async fn audio_url(store: &Store, session: &SessionId) -> Option<String> {
    store.session_messages(session).await.unwrap()[0].audio_url.clone().map(|u| u.unwrap())
}

both_backends! {
    async fn a_batch_of_writes_is_committed_whole_or_not_at_all(db: TestDb) {
        // What a session's Persister commits in one transaction: a turn's message, its recording, their link.
        let app = spawn_app(db).await;
        let s = new_session("tx-user", 0);
        app.store.create_session(&s).await.unwrap();
        let (rec1, rec2) = (new_recording(&s.id, 1), new_recording(&s.id, 2));
        fn turn<'a>(session: &'a SessionId, text: &'a str, key: &'a str, rec: &'a NewRecording) -> Vec<WriteOp<'a>> {
            vec![
                WriteOp::Message(user_message(session, text, key)),
                WriteOp::Recording(rec),
                WriteOp::Link { object_key: &rec.object_key, message_key: key, url: URL },
            ]
        }
        let done = app.store.write_batch(&turn(&s.id, "first", "key-1", &rec1)).await.unwrap();
        let first = app.store.message_by_key("key-1").await.unwrap().expect("the message is stored");
        let stored = app.store.find_recording_by_key(&rec1.object_key).await.unwrap().expect("and the recording");
        assert_eq!(done, [WriteDone::Message(first), WriteDone::Recording(stored.id), WriteDone::Linked(true)]);
        assert_eq!(stored.message_id, Some(first.0));

        // A write the database refuses at the end (the session as another user's: refused by parley), or in the
        // middle (a recording of a session that does not exist: refused by the schema), undoes the whole batch.
        let mut stolen = new_session("mallory", 0);
        stolen.id = s.id.clone();
        let mut refused_at_end = turn(&s.id, "second", "key-2", &rec2);
        refused_at_end.push(WriteOp::CreateSession(&stolen));
        assert!(app.store.write_batch(&refused_at_end).await.is_err());
        let orphan = new_recording(&SessionId::generate(), 2);
        let mut refused_in_middle = turn(&s.id, "second", "key-2", &rec2);
        refused_in_middle.insert(2, WriteOp::Recording(&orphan));
        assert!(app.store.write_batch(&refused_in_middle).await.is_err());
        assert_eq!(app.store.message_by_key("key-2").await.unwrap(), None, "nothing of the batches is kept");
        assert!(app.store.find_recording_by_key(&rec2.object_key).await.unwrap().is_none());
        assert!(app.store.find_recording_by_key(&orphan.object_key).await.unwrap().is_none());

        // The write connection is sound after the rollbacks, and the batch goes through whole once it can.
        let done = app.store.write_batch(&turn(&s.id, "second", "key-2", &rec2)).await.unwrap();
        assert_eq!(done.len(), 3);
        let texts: Vec<String> =
            app.store.session_messages(&s.id).await.unwrap().into_iter().map(|m| m.content.unwrap()).collect();
        assert_eq!(texts, ["first", "second"]);
        app.stop().await.unwrap();
    }

    async fn a_recording_is_not_marked_stored_when_its_message_cannot_be_linked(db: TestDb) {
        let app = spawn_app(db).await;
        let (session, message, rec) = message_and_recording(&app).await;
        app.store.link_recording(rec, message, URL).await.unwrap();
        refuse_audio_urls(&app, true).await;

        assert!(app.store.recording_uploaded(rec, URL, parley::db::now()).await.is_err());
        let r = recording(&app.store, rec).await;
        assert_eq!(r.status, RecordingStatus::Pending, "still waiting, so the uploader tries again: {r:?}");
        assert_eq!((r.attempts, r.uploaded_at), (0, None));
        assert_eq!(r.spool_path.as_deref(), Some("/spool/assistant_1.mp3"), "the spool file is not forgotten");
        assert_eq!(audio_url(&app.store, &session).await, None);

        // Once the link can be written, the same call does both.
        refuse_audio_urls(&app, false).await;
        app.store.recording_uploaded(rec, URL, parley::db::now()).await.unwrap();
        assert_eq!(recording(&app.store, rec).await.status, RecordingStatus::Uploaded);
        assert_eq!(audio_url(&app.store, &session).await.as_deref(), Some(URL));
        app.stop().await.unwrap();
    }

    async fn a_recording_is_not_tied_to_a_message_whose_link_cannot_be_written(db: TestDb) {
        let app = spawn_app(db).await;
        let (session, message, rec) = message_and_recording(&app).await;
        app.store.recording_uploaded(rec, URL, parley::db::now()).await.unwrap();
        refuse_audio_urls(&app, true).await;

        assert!(app.store.link_recording(rec, message, URL).await.is_err());
        assert_eq!(recording(&app.store, rec).await.message_id, None, "the half-done link was undone");
        assert_eq!(audio_url(&app.store, &session).await, None);

        refuse_audio_urls(&app, false).await;
        app.store.link_recording(rec, message, URL).await.unwrap();
        assert_eq!(recording(&app.store, rec).await.message_id, Some(message.0));
        assert_eq!(audio_url(&app.store, &session).await.as_deref(), Some(URL));
        app.stop().await.unwrap();
    }

    async fn a_failed_relink_keeps_the_previous_link(db: TestDb) {
        let app = spawn_app(db).await;
        let (session, message, _) = message_and_recording(&app).await;
        assert!(app.store.set_audio_url(message, URL).await.unwrap());
        refuse_audio_urls(&app, true).await;

        assert!(app.store.set_audio_url(message, "/api/recordings/tx/other.mp3").await.is_err());
        assert_eq!(audio_url(&app.store, &session).await.as_deref(), Some(URL));
        app.stop().await.unwrap();
    }

    async fn many_writers_at_once_all_land_while_others_read(db: TestDb) {
        // Sessions writing at the same moment, as a busy server's Persisters do, with readers beside them: on
        // SQLite every write queues for the one writer, none fails on the file lock ("database is locked").
        let app = spawn_app(db).await;
        let mut sessions = Vec::new();
        for i in 0..8 {
            let s = new_session(&format!("busy-{i}"), 0);
            app.store.create_session(&s).await.unwrap();
            sessions.push(s.id);
        }
        let writers = sessions.iter().map(|id| {
            let store = app.store.clone();
            async move {
                for n in 0..25 {
                    let m = add(&store, id, Role::Assistant, &format!("reply {n}")).await;
                    let rated = store.set_feedback(m, Some(parley::db::Feedback::Positive)).await.unwrap();
                    assert_eq!(rated, parley::db::FeedbackOutcome::Updated);
                    store.touch_session(id, parley::db::now()).await.unwrap();
                }
            }
        });
        let readers = sessions.iter().map(|id| {
            let store = app.store.clone();
            async move {
                for _ in 0..25 {
                    store.session_messages(id).await.unwrap();
                }
            }
        });
        tokio::join!(futures_util::future::join_all(writers), futures_util::future::join_all(readers));
        for id in &sessions {
            let messages = app.store.session_messages(id).await.unwrap();
            let texts: Vec<String> = messages.iter().map(|m| m.content.clone().unwrap()).collect();
            let expected: Vec<String> = (0..25).map(|n| format!("reply {n}")).collect();
            assert_eq!(texts, expected, "every write, in order");
            assert!(messages.iter().all(|m| m.feedback == Some(parley::db::Feedback::Positive)));
        }
        app.stop().await.unwrap();
    }
}

both_backends! {
    async fn several_sessions_batches_share_a_transaction_and_a_refused_one_is_undone_alone(db: TestDb) {
        // The embedded database's group commit: each batch in a savepoint of one transaction.
        let app = spawn_app(db).await;
        let (a, b) = (new_session("tx-user", 0), new_session("tx-user", 1));
        app.store.create_session(&a).await.unwrap();
        app.store.create_session(&b).await.unwrap();
        let (rec_a, rec_b) = (new_recording(&a.id, 1), new_recording(&b.id, 1));
        let mut stolen = new_session("mallory", 0);
        stolen.id = a.id.clone();
        let groups = vec![
            vec![
                WriteOp::Message(user_message(&a.id, "refused with its batch", "key-a")),
                WriteOp::Recording(&rec_a),
                WriteOp::CreateSession(&stolen),
            ],
            vec![
                WriteOp::Message(user_message(&b.id, "kept", "key-b")),
                WriteOp::Recording(&rec_b),
                WriteOp::Link { object_key: &rec_b.object_key, message_key: "key-b", url: URL },
            ],
        ];
        let results = app.store.write_groups(&groups).await;
        assert_eq!(results.len(), 2);
        assert!(results[0].is_err(), "the refused batch fails");
        let done = results[1].as_ref().expect("the other batch is kept");
        let kept = app.store.message_by_key("key-b").await.unwrap().expect("its message is stored");
        let stored = app.store.find_recording_by_key(&rec_b.object_key).await.unwrap().expect("and its recording");
        assert_eq!(done[..], [WriteDone::Message(kept), WriteDone::Recording(stored.id), WriteDone::Linked(true)]);
        assert_eq!(app.store.message_by_key("key-a").await.unwrap(), None, "nothing of the refused batch is kept");
        assert!(app.store.find_recording_by_key(&rec_a.object_key).await.unwrap().is_none());

        // The uploader's mark in a group of its own: the recording is stored and the message links to it.
        let results = app.store.write_groups(&[vec![WriteOp::Uploaded { id: stored.id, url: URL, at: parley::db::now() }]]).await;
        assert!(matches!(results[..], [Ok(ref d)] if d[..] == [WriteDone::Uploaded]));
        assert_eq!(recording(&app.store, stored.id).await.status, RecordingStatus::Uploaded);
        assert_eq!(audio_url(&app.store, &b.id).await.as_deref(), Some(URL));
        app.stop().await.unwrap();
    }
}
