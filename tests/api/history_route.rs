//! GET /api/history over HTTP: the shape of a conversation, and every kind of bad input.

use parley::db::{Feedback, Role, SessionId};

use crate::both_backends;
use crate::helpers::{TestDb, spawn_app};
use crate::persistence::{add, new_session};

both_backends! {
    async fn history_lists_a_sessions_messages_in_order(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("olga", 0);
        app.store.create_session(&s).await.unwrap();
        let q = add(&app.store, &s.id, Role::User, "What's the capital of France?").await;
        let a = add(&app.store, &s.id, Role::Assistant, "Paris.").await;
        app.store.set_feedback(a, Some(Feedback::Positive)).await.unwrap();
        app.store.set_audio_url(a, "/api/recordings/x.mp3").await.unwrap();

        let (status, body) = app.get_json(&format!("/api/history?sessionId={}", s.id)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sessionId"], s.id.to_string());
        assert_eq!(body["userId"], "olga");
        let m = body["messages"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["id"], q.0);
        assert_eq!(m[0]["role"], "user");
        assert_eq!(m[0]["content"], "What's the capital of France?");
        assert_eq!(m[0]["feedback"], serde_json::Value::Null);
        assert_eq!(m[0]["audioUrl"], serde_json::Value::Null);
        assert!(m[0]["createdAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().is_ok());
        assert_eq!(m[1]["role"], "assistant");
        assert_eq!(m[1]["feedback"], "positive");
        let link = m[1]["audioUrl"].as_str().unwrap();
        assert!(link.starts_with("/api/recordings/x.mp3?exp=") && link.contains("&sig="), "a signed link: {link}");
        assert!(m[1].get("contentError").is_none());
        app.stop().await.unwrap();
    }

    async fn history_scoped_to_a_user_hides_other_users_sessions(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("pam", 0);
        app.store.create_session(&s).await.unwrap();
        let (status, _) = app.get_json(&format!("/api/history?sessionId={}&userId=pam", s.id)).await;
        assert_eq!(status, 200);
        let (status, body) = app.get_json(&format!("/api/history?sessionId={}&userId=quinn", s.id)).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"], "session_not_found");
        app.stop().await.unwrap();
    }

    async fn history_bad_input_is_400_or_404_never_500(db: TestDb) {
        let app = spawn_app(db).await;
        let unknown = SessionId::generate();
        for (path, status, code) in [
            ("/api/history".to_string(), 400, "missing_session_id"),
            ("/api/history?sessionId=".to_string(), 400, "invalid_session_id"),
            ("/api/history?sessionId=not-a-uuid".to_string(), 400, "invalid_session_id"),
            ("/api/history?sessionId=%00%ff".to_string(), 400, "invalid_session_id"),
            (format!("/api/history?sessionId={unknown}&userId=a%20b"), 400, "invalid_user_id"),
            (format!("/api/history?sessionId={unknown}"), 404, "session_not_found"),
        ] {
            let (got, body) = app.get_json(&path).await;
            assert_eq!(got, status, "{path}: {body}");
            assert_eq!(body["error"], code, "{path}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
        }
        app.stop().await.unwrap();
    }
}
