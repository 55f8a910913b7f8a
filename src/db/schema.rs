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
        generated_content -> Nullable<Bytea>,
        heard_ms -> Nullable<Int8>,
        heard_source -> Nullable<Text>,
        outcome -> Nullable<Text>,
        write_key -> Nullable<Text>,
        tool_calls -> Nullable<Bytea>,
        llm_provider -> Nullable<Text>,
        usage -> Nullable<Text>,
    }
}

diesel::table! {
    recordings (id) {
        id -> Int8,
        session_id -> Text,
        message_id -> Nullable<Int8>,
        role -> Text,
        turn_id -> Int8,
        object_key -> Text,
        content_type -> Text,
        size_bytes -> Int8,
        duration_seconds -> Nullable<Float8>,
        backend -> Text,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        spool_path -> Nullable<Text>,
        created_at -> Timestamp,
        uploaded_at -> Nullable<Timestamp>,
        instance_id -> Nullable<Text>,
        spool_offset -> Nullable<Int8>,
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
        call_sid -> Nullable<Text>,
        call_from -> Nullable<Text>,
        call_to -> Nullable<Text>,
    }
}

diesel::joinable!(messages -> sessions (session_id));
diesel::joinable!(recordings -> messages (message_id));
diesel::joinable!(recordings -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(messages, recordings, sessions,);
