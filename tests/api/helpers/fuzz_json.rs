//! The payloads of the fuzz test's text frames: JSON of every wrong shape (unknown and known types with wrong
//! or missing fields, numbers past any integer, duplicate keys, truncations), nesting thousands of levels
//! deep, well-formed messages with extreme values, and random text of every kind of character.

use super::fuzz_frames::Rng;

const KNOWN_TYPES: [&str; 5] = ["closeMicrophone", "text", "interrupt", "played", "ping"];

/// Text of random characters: ASCII, JSON punctuation, multi-byte, astral, controls, NUL.
pub fn random_unicode(rng: &mut Rng, chars: usize) -> String {
    (0..chars)
        .map(|_| match rng.range(0, 9) {
            0..=3 => (rng.range(0x20, 0x7E) as u8) as char,
            4 => *rng.pick(&['{', '}', '[', ']', '"', ':', ',', '\\']),
            5 => char::from_u32(rng.range(0x80, 0xD7FF) as u32).unwrap_or('?'),
            6 => char::from_u32(rng.range(0x1_0000, 0x10_FFFF) as u32).unwrap_or('?'),
            7 => (rng.range(0, 0x1F) as u8) as char,
            _ => *rng.pick(&['\u{0}', '\u{FEFF}', '\u{FFFF}', '\u{2028}', 'é']),
        })
        .collect()
}

/// A random JSON value, `depth` levels at most.
fn random_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
    use serde_json::{Value, json};
    match rng.range(0, if depth == 0 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => json!(rng.next_u64()),
        3 => json!(-(rng.range(0, i64::MAX as u64) as i64)),
        4 => json!(random_text(rng, 0, 20)),
        5 => Value::Array((0..rng.range(0, 4)).map(|_| random_value(rng, depth - 1)).collect()),
        _ => Value::Object(
            (0..rng.range(0, 4)).map(|_| (random_text(rng, 0, 8), random_value(rng, depth - 1))).collect(),
        ),
    }
}

/// Valid JSON of the wrong shape, or nearly valid JSON: unknown and known types with wrong or missing fields,
/// numbers too big for any integer, bare values, truncations.
pub fn random_json_message(rng: &mut Rng) -> String {
    let kind = if rng.chance(60) {
        serde_json::json!(rng.pick(&KNOWN_TYPES))
    } else if rng.chance(60) {
        serde_json::json!(random_text(rng, 0, 12))
    } else {
        random_value(rng, 2)
    };
    let mut object = serde_json::Map::new();
    if rng.chance(90) {
        object.insert("type".into(), kind);
    }
    for field in ["text", "turnId", "ms", "extra"] {
        if rng.chance(50) {
            object.insert(field.into(), random_value(rng, 3));
        }
    }
    let mut text = match rng.range(0, 9) {
        0 => random_value(rng, 4).to_string(),
        _ => serde_json::Value::Object(object).to_string(),
    };
    match rng.range(0, 9) {
        // Numbers past u64 and f64, negative zero, exponents, where integers are expected.
        0 => {
            let number = *rng.pick(&["1e400", "-0", "18446744073709551616", "1.5", "-1", "1e19", "00", "NaN"]);
            text = format!(r#"{{"type":"played","turnId":{number},"ms":{number}}}"#);
        }
        1 => {
            let cut = rng.range(0, text.len() as u64) as usize;
            text = text.chars().take(cut).collect(); // cut short (still UTF-8)
        }
        2 => text = format!(r#"{{"type":"text","type":"ping","text":{text}}}"#), // duplicate keys
        _ => {}
    }
    text
}

/// JSON nested `depth` levels: arrays, objects, or a nest inside an otherwise valid message.
pub fn deep_json(rng: &mut Rng, depth: usize) -> String {
    match rng.range(0, 2) {
        0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth)),
        _ => format!(r#"{{"type":"text","text":{}"deep"{}}}"#, "[".repeat(depth), "]".repeat(depth)),
    }
}

/// A well-formed client message, sometimes with extreme values.
pub fn valid_message(rng: &mut Rng) -> String {
    use serde_json::json;
    match rng.range(0, 9) {
        0 | 1 => json!({"type": "ping"}),
        2 => json!({"type": "interrupt"}),
        3 => json!({"type": "closeMicrophone"}),
        4 => json!({"type": "text", "text": random_text(rng, 1, 60) + "?"}),
        5 => json!({"type": "text", "text": "Hello there, how are you?"}),
        6 => json!({"type": "played", "turnId": rng.range(0, 5), "ms": rng.range(0, 10_000)}),
        7 => json!({"type": "played", "turnId": u64::MAX, "ms": u64::MAX}),
        _ => json!({"type": "played", "turnId": rng.range(0, 3), "ms": *rng.pick(&[0u64, u64::MAX, u64::MAX / 1000, 1 << 53])}),
    }
    .to_string()
}

/// Between `lo` and `hi` random characters.
pub fn random_text(rng: &mut Rng, lo: u64, hi: u64) -> String {
    let n = rng.range(lo, hi) as usize;
    random_unicode(rng, n)
}
