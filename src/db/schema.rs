// @generated automatically by Diesel CLI.

diesel::table! {
    messages (id) {
        id -> Int8,
        session_id -> Text,
        role -> Text,
        content -> Bytea,
        audio_url -> Nullable<Bytea>,
        feedback -> Nullable<Text>,
        created_at -> Timestamp,
        interrupted -> Bool,
    }
}

diesel::table! {
    sessions (session_id) {
        session_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_activity_at -> Timestamp,
        model_id -> Text,
        voice_id -> Text,
    }
}

diesel::joinable!(messages -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(messages, sessions,);
