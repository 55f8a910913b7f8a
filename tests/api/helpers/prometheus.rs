//! A strict reader of the Prometheus text exposition format (version 0.0.4), to prove `/metrics` is valid:
//! every sample belongs to a declared family, names and labels are well-formed, values are numbers, histogram
//! buckets are cumulative and end in `+Inf`.

use std::collections::HashMap;

/// Family name → declared type.
pub type Families = HashMap<String, String>;

/// The value of the sample `name` (labels included) in Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Parses `text`, returning the declared families or the first problem found.
pub fn parse(text: &str) -> Result<Families, String> {
    let mut types: Families = HashMap::new();
    let mut buckets: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |msg: &str| format!("line {}: {msg}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), _) if valid_name(name) => {}
                (Some("TYPE"), Some(name), Some(kind)) if valid_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at("unknown type"));
                    }
                    if types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(at("family declared twice"));
                    }
                }
                _ => return Err(at("malformed comment")),
            }
            continue;
        }
        let (name, labels, value) = split_sample(line).ok_or_else(|| at("malformed sample"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        let family = family_of(name, &types).ok_or_else(|| at("sample of an undeclared family"))?;
        if types[&family] == "counter" && value < 0.0 {
            return Err(at("negative counter"));
        }
        if name.ends_with("_bucket") && types[&family] == "histogram" {
            let le = labels.get("le").ok_or_else(|| at("bucket without le"))?;
            let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().map_err(|_| at("bad le"))? };
            let mut key_labels: Vec<_> = labels.iter().filter(|(k, _)| *k != "le").collect();
            key_labels.sort();
            buckets.entry(format!("{family}{key_labels:?}")).or_default().push((le, value));
        }
    }
    for (series, points) in &buckets {
        if points.last().map(|p| p.0) != Some(f64::INFINITY) {
            return Err(format!("{series}: histogram does not end with le=\"+Inf\""));
        }
        if points.windows(2).any(|w| w[1].0 <= w[0].0 || w[1].1 < w[0].1) {
            return Err(format!("{series}: buckets are not increasing and cumulative"));
        }
    }
    Ok(types)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn family_of(sample: &str, types: &Families) -> Option<String> {
    if types.contains_key(sample) {
        return Some(sample.to_string());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && matches!(types.get(base).map(String::as_str), Some("histogram" | "summary"))
        {
            return Some(base.to_string());
        }
    }
    None
}

fn split_sample(line: &str) -> Option<(&str, HashMap<String, String>, &str)> {
    let (head, value) = line.rsplit_once(' ')?;
    let (name, labels) = match head.find('{') {
        None => (head, HashMap::new()),
        Some(i) => {
            let body = head[i + 1..].strip_suffix('}')?;
            let mut labels = HashMap::new();
            for pair in split_labels(body)? {
                let (k, v) = pair.split_once('=')?;
                let v = v.strip_prefix('"')?.strip_suffix('"')?;
                if !valid_name(k) {
                    return None;
                }
                labels.insert(k.to_string(), v.replace("\\\"", "\"").replace("\\\\", "\\"));
            }
            (&head[..i], labels)
        }
    };
    valid_name(name).then_some((name, labels, value))
}

/// Splits `a="x",b="y,z"` on the commas outside quotes.
fn split_labels(body: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    Some(out)
}

/// The value of the sample written exactly as `series` (name and labels in exposition order), 0 when absent.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
