//! System-prompt templates: `{{name}}` (spaces inside the braces allowed) is replaced by the session's value
//! for `name`. Values come only from the client token's `vars` claim, which the app's backend signed; a
//! placeholder without a value renders as nothing. Text that is not a well-formed placeholder is kept as is.

use std::collections::BTreeMap;

/// A rendered template and the placeholders that had no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub missing: Vec<String>,
}

/// Renders `template` with `vars`.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Rendered {
    let mut text = String::with_capacity(template.len());
    let mut missing = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").map(|end| (after[..end].trim(), end)) {
            Some((name, end)) if is_name(name) => {
                match vars.get(name) {
                    Some(value) => text.push_str(value),
                    None => missing.push(name.to_string()),
                }
                rest = &after[end + 2..];
            }
            _ => {
                text.push_str("{{");
                rest = after;
            }
        }
    }
    text.push_str(rest);
    Rendered { text, missing }
}

/// The placeholders of `template`, in order of appearance.
pub fn placeholders(template: &str) -> Vec<String> {
    render(template, &BTreeMap::new()).missing
}

/// A variable name: letters, digits, `_`, `-` and `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn placeholders_are_replaced_with_or_without_spaces() {
        let r = render("Hi {{customer}}, order {{ order }}.", &vars(&[("customer", "Ann"), ("order", "A-7")]));
        assert_eq!(r.text, "Hi Ann, order A-7.");
        assert!(r.missing.is_empty());
    }

    #[test]
    fn a_placeholder_without_a_value_renders_empty_and_is_reported() {
        let r = render("Hi {{customer}}!{{ x }}", &vars(&[]));
        assert_eq!(r.text, "Hi !");
        assert_eq!(r.missing, ["customer", "x"]);
    }

    #[test]
    fn text_that_is_not_a_placeholder_is_kept() {
        let v = vars(&[("a", "1")]);
        assert_eq!(render("json {{\"k\": 1}} and {{a}}", &v).text, "json {{\"k\": 1}} and 1");
        assert_eq!(render("open {{a", &v).text, "open {{a");
        assert_eq!(render("{{}} {{ }}", &v).text, "{{}} {{ }}");
        assert_eq!(render("no braces", &v).text, "no braces");
    }

    #[test]
    fn values_are_not_rendered_again() {
        let r = render("{{a}}", &vars(&[("a", "{{b}}"), ("b", "no")]));
        assert_eq!(r.text, "{{b}}");
    }

    #[test]
    fn placeholders_are_listed_in_order() {
        assert_eq!(placeholders("{{ b }} {{a}} {{b}}"), ["b", "a", "b"]);
    }
}
