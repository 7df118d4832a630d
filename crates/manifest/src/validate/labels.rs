//! Label keys and values (a Service's `selector`), with the API server's messages.

use super::dns_subdomain_error;

const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const QUALIFIED_NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Why `key` is not a label key (a qualified name with an optional DNS subdomain prefix),
/// one message per problem, as Kubernetes' `IsQualifiedName` gives them.
pub(crate) fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else if let Some(e) = dns_subdomain_error(prefix) {
                // "Invalid value: \"x\": why" → "prefix part why"
                let why = e.split_once(": ").map_or(e.as_str(), |(_, rest)| rest);
                let why = why.split_once(": ").map_or(why, |(_, rest)| rest);
                errors.push(format!("prefix part {why}"));
            }
            name
        }
        _ => {
            errors.push(format!("a qualified name {QUALIFIED_NAME_MESSAGE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!("name part {QUALIFIED_NAME_MESSAGE}"));
    }
    errors
}

/// Why `value` is not a label value, one message per problem.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errors.push(format!("must be no more than {LABEL_VALUE_MAX} characters"));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        for good in ["app", "app.kubernetes.io/name", "A_b.c-1", "example.com/x"] {
            assert!(label_key_errors(good).is_empty(), "{good:?}");
        }
        assert_eq!(label_key_errors("/x"), ["prefix part must be non-empty"]);
        assert_eq!(label_key_errors("a/b/c").len(), 1);
        assert!(label_key_errors("Bad_Prefix/x")[0]
            .starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert!(label_key_errors("-x")[0].starts_with("name part must consist of"));
        assert_eq!(
            label_key_errors("x/"),
            [
                "name part must be non-empty",
                &format!("name part {QUALIFIED_NAME_MESSAGE}")
            ]
        );
        for good in ["", "web", "my_value", "1.2.3"] {
            assert!(label_value_errors(good).is_empty(), "{good:?}");
        }
        assert_eq!(label_value_errors("-web").len(), 1);
        assert_eq!(
            label_value_errors(&"a".repeat(64)),
            ["must be no more than 63 characters"]
        );
    }
}
