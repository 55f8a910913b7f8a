//! GET /api/sessions over HTTP: newest first, limits, cursors, and bad input.

use crate::both_backends;
use crate::helpers::{TestDb, spawn_app};
use crate::persistence::new_session;

both_backends! {
    async fn sessions_are_listed_newest_first_page_by_page(db: TestDb) {
        let app = spawn_app(db).await;
        let mut created = Vec::new();
        for minutes_ago in [3, 2, 1] {
            let s = new_session("rita", minutes_ago);
            app.store.create_session(&s).await.unwrap();
            created.push(s.id.to_string());
        }
        app.store.create_session(&new_session("sam", 0)).await.unwrap();

        let (status, first) = app.get_json("/api/sessions?userId=rita&limit=2").await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["userId"], "rita");
        let page: Vec<&str> = first["sessions"].as_array().unwrap().iter().map(|s| s["sessionId"].as_str().unwrap()).collect();
        assert_eq!(page, vec![created[2].as_str(), created[1].as_str()]);
        let s0 = &first["sessions"][0];
        for field in ["createdAt", "lastActivityAt", "modelId", "voiceId", "messageCount"] {
            assert!(!s0[field].is_null(), "{field} missing: {s0}");
        }
        assert!(s0["firstWords"].is_null(), "nothing said yet: {s0}");
        let cursor = first["nextCursor"].as_str().expect("a next page");
        let (status, second) = app.get_json(&format!("/api/sessions?userId=rita&limit=2&cursor={cursor}")).await;
        assert_eq!(status, 200);
        assert_eq!(second["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(second["sessions"][0]["sessionId"], created[0]);
        assert!(second["nextCursor"].is_null());

        let (_, default) = app.get_json("/api/sessions?userId=rita").await;
        assert_eq!(default["sessions"].as_array().unwrap().len(), 3, "default limit covers small lists");
        let (_, nobody) = app.get_json("/api/sessions?userId=nobody").await;
        assert_eq!(nobody["sessions"], serde_json::json!([]));
        app.stop().await.unwrap();
    }

    async fn sessions_bad_input_is_400(db: TestDb) {
        let app = spawn_app(db).await;
        for (path, code) in [
            ("/api/sessions", "missing_user_id"),
            ("/api/sessions?userId=", "invalid_user_id"),
            ("/api/sessions?userId=has%20space", "invalid_user_id"),
            ("/api/sessions?userId=ok&limit=0", "invalid_limit"),
            ("/api/sessions?userId=ok&limit=101", "invalid_limit"),
            ("/api/sessions?userId=ok&limit=ten", "invalid_limit"),
            ("/api/sessions?userId=ok&cursor=garbage!", "invalid_cursor"),
            ("/api/sessions?userId=ok&cursor=MTIzfG5vdC1hLXV1aWQ", "invalid_cursor"),
        ] {
            let (status, body) = app.get_json(path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(body["error"], code, "{path}: {body}");
        }
        app.stop().await.unwrap();
    }
}
