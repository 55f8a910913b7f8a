//! Checks a tool call's arguments against the tool's JSON-schema `parameters` before the tool runs: the subset
//! of JSON Schema that function declarations use (`type`, `properties`, `required`, `items`, `enum`,
//! `additionalProperties: false`, `minimum`/`maximum`, `minLength`/`maxLength`). Keywords it does not know are
//! ignored (accepted), so a richer schema never blocks a call; what it reports is a sentence the LLM can act
//! on ("order_id is required", "quantity must be an integer").

use serde_json::Value;

/// Why the arguments do not fit the schema, as a sentence for the LLM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Parses the model's argument text and checks it against `schema`. Empty text counts as `{}`.
pub fn parse_arguments(raw: &str, schema: &Value) -> Result<Value, Invalid> {
    let value: Value = if raw.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(raw).map_err(|e| Invalid(format!("the arguments are not valid JSON ({e})")))?
    };
    if !value.is_object() {
        return Err(Invalid("the arguments must be a JSON object".into()));
    }
    check(&value, schema, "arguments")?;
    Ok(value)
}

/// Checks `value` (found at `path`) against `schema`.
pub fn check(value: &Value, schema: &Value, path: &str) -> Result<(), Invalid> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(ty) = schema.get("type") {
        let allowed: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| is_type(value, t)) {
            return Err(Invalid(format!("{path} must be {}", allowed.join(" or "))));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(Value::to_string).collect();
        return Err(Invalid(format!("{path} must be one of {}", list.join(", "))));
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = name.as_str()
                    && map.get(name).is_none_or(Value::is_null)
                {
                    return Err(Invalid(format!("{} is required", join(path, name))));
                }
            }
            for (name, v) in map {
                match properties.and_then(|p| p.get(name)) {
                    Some(sub) => check(v, sub, &join(path, name))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(Invalid(format!("{} is not a parameter of this tool", join(path, name))));
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item, item_schema, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| len < min) {
                return Err(Invalid(format!("{path} is too short")));
            }
            if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| len > max) {
                return Err(Invalid(format!("{path} is too long")));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64).filter(|min| x < *min) {
                return Err(Invalid(format!("{path} must be at least {min}")));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64).filter(|max| x > *max) {
                return Err(Invalid(format!("{path} must be at most {max}")));
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path == "arguments" { name.to_string() } else { format!("{path}.{name}") }
}

fn is_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order_schema() -> Value {
        json!({"type":"object","properties":{
            "order_id":{"type":"string","minLength":1},
            "quantity":{"type":"integer","minimum":1},
            "speed":{"enum":["standard","express"]},
            "tags":{"type":"array","items":{"type":"string"}}
        },"required":["order_id"],"additionalProperties":false})
    }

    #[test]
    fn arguments_that_fit_are_returned_as_an_object() {
        let v = parse_arguments(r#"{"order_id":"1234","quantity":2,"tags":["a"]}"#, &order_schema()).unwrap();
        assert_eq!(v["order_id"], "1234");
        assert_eq!(parse_arguments("", &json!({"type":"object"})).unwrap(), json!({}));
    }

    #[test]
    fn each_misfit_is_named_in_a_sentence() {
        let s = order_schema();
        let e = |raw: &str| parse_arguments(raw, &s).unwrap_err().0;
        assert!(e(r#"{"order_id": "1"#).starts_with("the arguments are not valid JSON"));
        assert_eq!(e("[1]"), "the arguments must be a JSON object");
        assert_eq!(e("{}"), "order_id is required");
        assert_eq!(e(r#"{"order_id":12}"#), "order_id must be string");
        assert_eq!(e(r#"{"order_id":"1","quantity":1.5}"#), "quantity must be integer");
        assert_eq!(e(r#"{"order_id":"1","quantity":0}"#), "quantity must be at least 1");
        assert_eq!(e(r#"{"order_id":"1","speed":"slow"}"#), r#"speed must be one of "standard", "express""#);
        assert_eq!(e(r#"{"order_id":"1","tags":[3]}"#), "tags[0] must be string");
        assert_eq!(e(r#"{"order_id":"1","colour":"red"}"#), "colour is not a parameter of this tool");
        assert_eq!(e(r#"{"order_id":""}"#), "order_id is too short");
    }
}
