//! POST /api/feedback over HTTP: ratings are stored, unknown ids are 404, anything malformed is 400.

use parley::db::{Feedback, Role};

use crate::both_backends;
use crate::helpers::{TestDb, spawn_app};
use crate::persistence::{add, new_session};

both_backends! {
    async fn feedback_is_stored_and_visible_in_history(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("tess", 0);
        app.store.create_session(&s).await.unwrap();
        add(&app.store, &s.id, Role::User, "hi").await;
        let answer = add(&app.store, &s.id, Role::Assistant, "hello").await;

        let body = format!(r#"{{"message_id": {}, "feedback": "positive"}}"#, answer.0);
        let (status, res) = app.post_raw("/api/feedback", "application/json", &body).await;
        assert_eq!(status, 200, "{res}");
        assert_eq!(res, serde_json::json!({"message_id": answer.0, "feedback": "positive"}));
        assert_eq!(app.store.session_messages(&s.id).await.unwrap()[1].feedback, Some(Feedback::Positive));

        let body = format!(r#"{{"messageId": "{}", "feedback": "negative"}}"#, answer.0);
        let (status, _) = app.post_raw("/api/feedback", "application/json", &body).await;
        assert_eq!(status, 200, "camelCase id and a numeric string are accepted");
        let (_, history) = app.get_json(&format!("/api/history?sessionId={}", s.id)).await;
        assert_eq!(history["messages"][1]["feedback"], "negative");

        let body = format!(r#"{{"message_id": {}, "feedback": null}}"#, answer.0);
        let (status, _) = app.post_raw("/api/feedback", "application/json", &body).await;
        assert_eq!(status, 200);
        assert_eq!(app.store.session_messages(&s.id).await.unwrap()[1].feedback, None);
        app.stop().await.unwrap();
    }

    async fn feedback_bad_input_is_400_and_unknown_ids_404(db: TestDb) {
        let app = spawn_app(db).await;
        let s = new_session("uma", 0);
        app.store.create_session(&s).await.unwrap();
        let question = add(&app.store, &s.id, Role::User, "hi").await;
        let user_msg = format!(r#"{{"message_id": {}, "feedback": "positive"}}"#, question.0);
        for (content_type, body, status, code) in [
            ("application/json", r#"{"message_id": 999999, "feedback": "positive"}"#, 404, "message_not_found"),
            ("application/json", r#"{"message_id": 1, "feedback": "meh"}"#, 400, "invalid_feedback"),
            ("application/json", r#"{"message_id": 1, "feedback": 1}"#, 400, "invalid_feedback"),
            ("application/json", r#"{"message_id": 1}"#, 400, "invalid_feedback"),
            ("application/json", r#"{"message_id": "abc", "feedback": "positive"}"#, 400, "invalid_message_id"),
            ("application/json", r#"{"message_id": -4, "feedback": "positive"}"#, 400, "invalid_message_id"),
            ("application/json", r#"{"message_id": 1.5, "feedback": "positive"}"#, 400, "invalid_message_id"),
            ("application/json", r#"{"feedback": "positive"}"#, 400, "invalid_message_id"),
            ("application/json", r#"{"message_id": 1, "feedback": "positive""#, 400, "invalid_json"),
            ("application/json", "[]", 400, "invalid_json"),
            ("text/plain", r#"{"message_id": 1, "feedback": "positive"}"#, 400, "invalid_json"),
            ("application/json", user_msg.as_str(), 400, "not_an_assistant_message"),
        ] {
            let (got, res) = app.post_raw("/api/feedback", content_type, body).await;
            assert_eq!(got, status, "{body}: {res}");
            assert_eq!(res["error"], code, "{body}: {res}");
        }
        let huge = format!(r#"{{"message_id": 1, "feedback": "{}"}}"#, "x".repeat(100_000));
        let (got, res) = app.post_raw("/api/feedback", "application/json", &huge).await;
        assert_eq!((got, res["error"].as_str()), (413, Some("payload_too_large")), "oversize bodies are refused: {res}");
        app.stop().await.unwrap();
    }
}
