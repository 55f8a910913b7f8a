//! Reading typed values out of the environment. Every failure names the variable, so a bad deployment stops at
//! start-up with a message an operator can act on ("PORT: expected a port number (0-65535), got \"abc\"").

use std::str::FromStr;

use url::Url;

/// A configuration value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What was wrong with it and what is expected instead.
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError { var, message: message.into() }
    }
}

/// Looks a variable up by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// A lookup of environment variables; a closure so tests can hand in a map instead of mutating the process.
pub struct Env<'a> {
    lookup: Lookup<'a>,
    /// Whether every name asked for must be in [`super::vars::VARS`] (checked in debug builds).
    listed_only: bool,
}

impl<'a> Env<'a> {
    /// A lookup of any names.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env { lookup: Box::new(lookup), listed_only: false }
    }

    /// A lookup of parley's own variables only: asking for a name that [`super::vars::VARS`] does not list is a
    /// bug (a debug-build panic), so the table `--help` prints cannot fall behind what the configuration reads.
    pub fn listed(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env { lookup: Box::new(lookup), listed_only: true }
    }

    /// The variable's value, with surrounding whitespace removed; empty counts as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        debug_assert!(
            !self.listed_only || super::vars::find(var).is_some(),
            "the configuration reads {var}, which config::vars::VARS does not list"
        );
        self.named_by_operator(var)
    }

    /// A variable the operator's own files name (the agents file's `api_key_env` and `${NAME}`), which is not
    /// one of parley's.
    pub fn named_by_operator(&self, var: &str) -> Option<String> {
        (self.lookup)(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// The first of several names that is set (for aliases such as PG_DB_URL / DATABASE_URL).
    pub fn first(&self, vars: &[&str]) -> Option<String> {
        vars.iter().find_map(|v| self.get(v))
    }

    pub fn string(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_string())
    }

    /// A value parsed with `FromStr`; `what` describes the expected form in the error.
    pub fn parse<T: FromStr>(&self, var: &'static str, default: T, what: &str) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| ConfigError::new(var, format!("expected {what}, got {raw:?}"))),
        }
    }

    /// An integer within `range` (inclusive).
    pub fn int_in(
        &self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let what = format!("a whole number from {} to {}", range.start(), range.end());
        let value = self.parse(var, default, &what)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(var, format!("expected {what}, got {value}")))
        }
    }

    pub fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ConfigError::new(var, format!("expected true or false, got {v:?}"))),
        }
    }

    /// An absolute URL whose scheme is one of `schemes`, returned without a trailing slash so paths can be
    /// appended with `format!("{base}/listen")`.
    pub fn url(&self, var: &'static str, default: &str, schemes: &[&str]) -> Result<String, ConfigError> {
        let raw = self.string(var, default);
        let parsed = Url::parse(&raw).map_err(|e| ConfigError::new(var, format!("not a valid URL ({e}): {raw:?}")))?;
        if !schemes.contains(&parsed.scheme()) {
            return Err(ConfigError::new(
                var,
                format!("URL scheme must be one of {}, got {raw:?}", schemes.join(", ")),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::new(var, format!("URL has no host: {raw:?}")));
        }
        Ok(raw.trim_end_matches('/').to_string())
    }
}

/// A secret (API key): kept out of `Debug` output so configuration can be logged safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn blank_values_count_as_unset() {
        let vars = env(&[("A", "  ")]);
        let e = Env::new(|k| vars.get(k).cloned());
        assert_eq!(e.get("A"), None);
        assert_eq!(e.string("A", "d"), "d");
    }

    #[test]
    fn integer_errors_name_the_variable_and_the_range() {
        let vars = env(&[("N", "70000")]);
        let e = Env::new(|k| vars.get(k).cloned());
        let err = e.int_in("N", 1, 0..=65535).unwrap_err();
        assert_eq!(err.var, "N");
        assert!(err.to_string().contains("0 to 65535"), "{err}");
    }

    #[test]
    fn urls_must_be_absolute_with_an_allowed_scheme() {
        let vars = env(&[("U", "ftp://x"), ("V", "not a url"), ("W", "https://api.example.com/v1/")]);
        let e = Env::new(|k| vars.get(k).cloned());
        assert!(e.url("U", "", &["http", "https"]).is_err());
        assert!(e.url("V", "", &["http", "https"]).is_err());
        assert_eq!(e.url("W", "", &["https"]).unwrap(), "https://api.example.com/v1");
    }

    #[test]
    fn booleans_accept_common_spellings_only() {
        let vars = env(&[("T", "TRUE"), ("F", "off"), ("X", "maybe")]);
        let e = Env::new(|k| vars.get(k).cloned());
        assert!(e.bool("T", false).unwrap());
        assert!(!e.bool("F", true).unwrap());
        assert!(e.bool("X", true).is_err());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        assert_eq!(format!("{:?}", Secret::new("sk-123")), "Secret(..)");
    }
}
