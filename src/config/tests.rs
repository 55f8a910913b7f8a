use std::collections::HashMap;

use super::*;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| vars.get(k).cloned())
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn an_empty_environment_gives_the_original_defaults() {
    let c = load(&[]).unwrap();
    assert_eq!(c.server.port, 8080);
    assert_eq!(c.openai.base_url, "https://api.cerebras.ai/v1");
    assert_eq!(c.openai.model, "llama-4-scout-17b-16e-instruct");
    assert_eq!(c.openai.system_prompt, DEFAULT_SYSTEM_PROMPT);
    assert_eq!(c.elevenlabs.voice_id, "ecp3DWciuUyW7BYM7II1");
    assert_eq!(c.elevenlabs.model_id, "eleven_flash_v2_5");
    assert_eq!(c.elevenlabs.output_format.to_string(), "mp3_44100_128");
    assert_eq!(c.elevenlabs.mime_type, "audio/mpeg");
    assert_eq!(c.elevenlabs.base_url, "https://api.elevenlabs.io/v1");
    assert!(c.elevenlabs.use_websocket);
    assert_eq!(c.deepgram.base_url, "wss://api.deepgram.com/v1");
    assert!(c.database.postgres_url.is_none());
    assert_eq!(c.database.pool_max, 25);
    assert!(c.encryption.key.is_none());
    assert_eq!(c.warnings().len(), 3, "one warning per missing provider key");
}

#[test]
fn the_mime_type_follows_the_output_format_unless_set() {
    let c = load(&[("ELEVENLABS_OUTPUT_FORMAT", "pcm_24000")]).unwrap();
    assert_eq!(c.elevenlabs.mime_type, "audio/pcm;rate=24000");
    let c = load(&[("ELEVENLABS_OUTPUT_FORMAT", "pcm_24000"), ("ELEVENLABS_MIME_TYPE", "audio/L16")]).unwrap();
    assert_eq!(c.elevenlabs.mime_type, "audio/L16");
}

#[test]
fn bad_values_stop_startup_naming_the_variable() {
    for (var, value) in [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("HOST", "localhost:80"),
        ("OPENAI_BASE_URL", "not a url"),
        ("ELEVENLABS_BASE_URL", "ftp://x.example"),
        ("DEEPGRAM_BASE_URL", "wss://"),
        ("ELEVENLABS_OUTPUT_FORMAT", "mp3_44100"),
        ("ELEVENLABS_USE_WEBSOCKET", "perhaps"),
        ("PARLEY_ENCRYPTION_KEY", "c2hvcnQ="),
        ("PARLEY_ENCRYPTION_KEY", "%%%"),
        ("PARLEY_ENCRYPTION_OLD_KEYS", "0:AAAA"),
        ("PARLEY_MAX_SESSIONS", "0"),
        ("DEEPGRAM_ENDPOINTING_MS", "-5"),
    ] {
        let err = load(&[(var, value)]).expect_err(&format!("{var}={value} must be refused"));
        assert_eq!(err.var, var, "{err}");
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn database_url_is_accepted_as_an_alias_and_validated_under_its_own_name() {
    let c = load(&[
        ("DATABASE_URL", "postgres://u@localhost/db"),
        ("PARLEY_ENCRYPTION_KEY", KEY),
        ("PARLEY_AUTH_SECRET", KEY),
    ])
    .unwrap();
    assert_eq!(c.database.postgres_url.as_deref(), Some("postgres://u@localhost/db"));
    let err = load(&[("DATABASE_URL", "mysql://x/y"), ("PARLEY_ENCRYPTION_KEY", KEY)]).unwrap_err();
    assert_eq!(err.var, "DATABASE_URL");
}

#[test]
fn postgres_without_an_encryption_key_is_refused_with_the_reason() {
    let err = load(&[("PG_DB_URL", "postgres://u@localhost/db")]).unwrap_err();
    assert_eq!(err.var, "PARLEY_ENCRYPTION_KEY");
    assert!(err.message.contains("required with PostgreSQL"), "{err}");
}

#[test]
fn keys_and_retired_keys_decode_to_32_bytes() {
    let c = load(&[
        ("PARLEY_ENCRYPTION_KEY", KEY),
        ("PARLEY_ENCRYPTION_KEY_ID", "3"),
        ("PARLEY_ENCRYPTION_OLD_KEYS", &format!("1:{KEY}, 2:{KEY}")),
    ])
    .unwrap();
    assert_eq!(c.encryption.key.unwrap().0[31], 31);
    assert_eq!(c.encryption.key_id, 3);
    assert_eq!(c.encryption.old_keys.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1, 2]);
    let err = load(&[("PARLEY_ENCRYPTION_KEY", KEY), ("PARLEY_ENCRYPTION_OLD_KEYS", &format!("1:{KEY}"))]).unwrap_err();
    assert_eq!(err.var, "PARLEY_ENCRYPTION_OLD_KEYS");
}

#[test]
fn a_bucket_without_credentials_is_refused() {
    let err = load(&[("GCS_BUCKET", "b")]).unwrap_err();
    assert_eq!(err.var, "FIREBASE_SERVICE_ACCOUNT_KEY_PATH");
}

#[test]
fn provider_keys_silence_their_warnings() {
    let c = load(&[("DEEPGRAM_API_KEY", "k"), ("OPENAI_API_KEY", "k"), ("ELEVENLABS_API_KEY", "k")]).unwrap();
    assert!(c.warnings().is_empty());
    assert_eq!(format!("{:?}", c.openai.api_key), "Some(Secret(..))");
}

#[test]
fn without_an_auth_secret_parley_stays_on_loopback_and_postgres_needs_one() {
    let c = load(&[]).unwrap();
    assert!(c.server.host.is_loopback(), "a development server listens on 127.0.0.1 by default");
    assert!(c.auth.secret.is_none());
    let err = load(&[("HOST", "0.0.0.0")]).unwrap_err();
    assert_eq!(err.var, "PARLEY_AUTH_SECRET");
    assert!(err.message.contains("0.0.0.0"), "{err}");
    let c = load(&[("PARLEY_AUTH_SECRET", KEY)]).unwrap();
    assert!(c.server.host.is_unspecified(), "with a secret, every interface by default");
    let err = load(&[("PG_DB_URL", "postgres://u@h/db"), ("PARLEY_ENCRYPTION_KEY", KEY)]).unwrap_err();
    assert_eq!(err.var, "PARLEY_AUTH_SECRET");
}

#[test]
fn auth_settings_parse_and_bad_ones_name_their_variable() {
    let c = load(&[
        ("PARLEY_AUTH_SECRET", KEY),
        ("PARLEY_AUTH_OLD_SECRETS", &format!("{KEY},{KEY}")),
        ("PARLEY_API_KEYS", "k1, k2,"),
        ("PARLEY_ALLOWED_ORIGINS", "https://App.Example, http://localhost:3000/"),
        ("PARLEY_TRUSTED_PROXIES", "10.0.0.5"),
        ("PARLEY_CONNECT_RATE", "30/hour"),
        ("PARLEY_CONNECT_BURST", "5"),
    ])
    .unwrap();
    assert_eq!(c.auth.old_secrets.len(), 2);
    assert_eq!(c.auth.api_keys.len(), 2);
    assert_eq!(c.auth.allowed_origins, ["https://app.example", "http://localhost:3000"]);
    assert_eq!(c.limits.connect_rate, Rate { per_second: 30.0 / 3600.0, burst: 5 });
    assert_eq!(c.limits.max_sessions_per_user, 3);
    for (var, value) in [
        ("PARLEY_AUTH_SECRET", "c2hvcnQ="),
        ("PARLEY_AUTH_SECRET", "%%%"),
        ("PARLEY_AUTH_OLD_SECRETS", "c2hvcnQ="),
        ("PARLEY_ALLOWED_ORIGINS", "not an origin"),
        ("PARLEY_TRUSTED_PROXIES", "proxy.local"),
        ("PARLEY_CONNECT_RATE", "10 a minute"),
        ("PARLEY_REST_RATE", "0/min"),
        ("PARLEY_MAX_SESSIONS_PER_USER", "0"),
    ] {
        let err = load(&[("PARLEY_AUTH_SECRET", KEY), (var, value)]).expect_err(&format!("{var}={value}"));
        assert_eq!(err.var, var, "{err}");
    }
}

/// Every name `Config::from_lookup` asks for, with `pairs` set.
fn names_read(pairs: &[(&str, &str)]) -> std::collections::BTreeSet<String> {
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let _ = Config::from_lookup(|k| {
        seen.borrow_mut().insert(k.to_string());
        vars.get(k).cloned()
    });
    seen.into_inner()
}

#[test]
fn the_variables_table_lists_exactly_what_the_configuration_reads() {
    let read = names_read(&[]);
    let listed: std::collections::BTreeSet<String> =
        vars::VARS.iter().map(|v| v.name.to_string()).filter(|n| n != vars::LOG_FILTER).collect();
    assert_eq!(read, listed, "config::vars::VARS and Config::from_lookup disagree");
}

#[test]
fn a_variable_set_to_its_documented_default_changes_nothing() {
    let unset = format!("{:?}", load(&[]).unwrap());
    for var in vars::VARS.iter().filter(|v| v.name != vars::LOG_FILTER) {
        if let vars::Fallback::Value(value) = var.fallback {
            let set = format!("{:?}", load(&[(var.name, value)]).unwrap());
            assert_eq!(set, unset, "{} documents the default {value:?}, which is not what unset gives", var.name);
        }
    }
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let help = vars::help_text();
    for var in vars::VARS {
        assert!(help.contains(&format!("{}  [default: {}]", var.name, var.fallback)), "{}", var.name);
    }
}

#[test]
fn command_line_overrides_win_over_the_environment_and_are_checked_the_same_way() {
    let c = Config::from_env_with(&[("PORT", "9123".into()), ("PARLEY_DATA_DIR", "/tmp/elsewhere".into())]).unwrap();
    assert_eq!(c.server.port, 9123);
    assert_eq!(c.database.data_dir, std::path::PathBuf::from("/tmp/elsewhere"));
    let err = Config::from_env_with(&[("HOST", "0.0.0.0".into())]).unwrap_err();
    assert_eq!(err.var, "PARLEY_AUTH_SECRET", "{err}");
}

#[test]
fn readme_configuration_lists_every_variable() {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Configuration").nth(1).and_then(|s| s.split("\n## ").next()).unwrap();
    for var in vars::VARS {
        assert!(section.contains(&format!("`{}`", var.name)), "README \"Configuration\" lists {}", var.name);
    }
}
