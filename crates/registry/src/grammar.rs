//! The grammar of image references (distribution's `reference` package), checked by hand.
//!
//! Why not oci-spec's `Reference::try_from`: it matches one large regular expression, and
//! compiling it costs about 50 ms in every process that parses a name (measured here with a
//! release build) — half of what `podrun play` otherwise takes. This module checks the same
//! grammar in microseconds and builds the `Reference` with its plain constructors; a test
//! compares both parsers on valid and invalid names.
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] component ( "/" component )*
//! domain     := host [ ":" port ]       host := label ( "." label )*
//! label      := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! component  := alnum+ ( separator alnum+ )*     alnum := [a-z0-9]
//! separator  := "." | "_" | "__" | "-"+
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex{32,}
//! algorithm  := alpha alnum* ( [-_+.] alpha alnum* )*     (any case)
//! ```

/// The parts of a reference that matched the grammar.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Splits and checks `input`; `None` when it does not match the grammar.
pub(crate) fn parse(input: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (input, None),
    };
    // A tag's colon comes after the last slash; a port's before it.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    let valid = is_name(name) && tag.is_none_or(is_tag) && digest.is_none_or(is_digest);
    valid.then_some(Parts { name, tag, digest })
}

fn is_name(name: &str) -> bool {
    let components: Vec<&str> = name.split('/').collect();
    let all_paths = |parts: &[&str]| !parts.is_empty() && parts.iter().all(|c| is_component(c));
    all_paths(&components)
        || (components.len() > 1 && is_domain(components[0]) && all_paths(&components[1..]))
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    host.split('.').all(is_label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
            continue;
        }
        if expect_alnum {
            return false;
        }
        // A separator: ".", "_", "__" or a run of "-".
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += if bytes.get(i + 1) == Some(&b'_') {
                    2
                } else {
                    1
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1
                }
            }
            _ => return false,
        }
        debug_assert!(i > start);
        expect_alnum = true;
    }
    !bytes.is_empty() && !expect_alnum
}

fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(&bytes[0])
        && bytes[1..]
            .iter()
            .all(|b| word(b) || *b == b'.' || *b == b'-')
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let is_part = |part: &str| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    };
    let parts_ok = algorithm.split(['-', '_', '+', '.']).all(is_part);
    parts_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// The same verdict and the same parts as oci-spec's regular expression.
    #[test]
    fn agrees_with_the_regular_expression() {
        let digest = format!("sha256:{HEX}");
        let inputs = [
            "nginx".to_string(),
            "nginx:1.23".into(),
            "library/nginx:latest".into(),
            "docker.io/library/nginx".into(),
            "127.0.0.1:5858/library/busybox:latest".into(),
            "localhost/a/b/c".into(),
            "localhost:5000/a".into(),
            "my-registry.example.com:443/team/app_x/y.z:v1.2-rc_3".into(),
            format!("nginx@{digest}"),
            format!("nginx:1.23@{digest}"),
            format!("host:1/n@{digest}"),
            "a__b".into(),
            "a---b".into(),
            "a.b".into(),
            "Host.Example/repo".into(),
            "a___b".into(),
            "a._b".into(),
            "a..b".into(),
            "-x".into(),
            "x-".into(),
            "x/".into(),
            "/x".into(),
            "a//b".into(),
            "Nginx".into(),
            "nginx:".into(),
            "nginx:-tag".into(),
            "nginx:.tag".into(),
            format!("nginx:{}", "t".repeat(128)),
            format!("nginx:{}", "t".repeat(129)),
            "a b".into(),
            "nginx@sha256:short".into(),
            "nginx@sha256".into(),
            format!("nginx@SHA256:{HEX}"),
            format!("nginx@sha256+b64:{HEX}"),
            format!("nginx@1sha:{HEX}"),
            "host:port/repo".into(),
            "host:/repo".into(),
            "-host.com/repo".into(),
            "host-.com/repo".into(),
            "a:b:c".into(),
            "a/b:c/d".into(),
            "ünïcode".into(),
        ];
        for input in &inputs {
            let ours = parse(input).map(|p| {
                (
                    p.name.to_string(),
                    p.tag.map(String::from),
                    p.digest.map(String::from),
                )
            });
            let theirs = regex_parse(input);
            assert_eq!(ours, theirs, "input {input:?}");
        }
    }

    /// Strings built from the pieces of references (valid and broken ones).
    fn reference_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("nginx".to_string()),
            Just("library/".to_string()),
            Just("127.0.0.1:5858/".to_string()),
            Just("host.example".to_string()),
            Just(":".to_string()),
            Just("/".to_string()),
            Just("@".to_string()),
            Just(format!("sha256:{HEX}")),
            Just("__".to_string()),
            Just("-".to_string()),
            Just(".".to_string()),
            Just("_".to_string()),
            "[a-z0-9]{1,8}",
            "[A-Za-z0-9._:/@+-]{1,12}",
            "\\PC{1,3}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Never a panic, and always oci-spec's verdict and parts, whatever the input.
        #[test]
        fn any_input_agrees_with_the_regular_expression(input in reference_like()) {
            let ours = parse(&input).map(|p| {
                (
                    p.name.to_string(),
                    p.tag.map(String::from),
                    p.digest.map(String::from),
                )
            });
            proptest::prop_assert_eq!(ours, regex_parse(&input), "input {:?}", input);
        }

        #[test]
        fn arbitrary_strings_never_panic(input in proptest::prelude::any::<String>()) {
            let _ = parse(&input);
        }
    }

    /// oci-spec's expression, for the comparison, with one change: its `\w` is Unicode's
    /// in Rust's regex crate, so oci-spec takes a tag such as `1.0ᚠ`, which the distribution
    /// spec's grammar (ASCII `[a-zA-Z0-9_]`) and registries refuse; the grammar here follows
    /// the spec (found by the property test above).
    fn regex_parse(input: &str) -> Option<(String, Option<String>, Option<String>)> {
        const REFERENCE_REGEXP: &str = r"^((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$";
        static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(&REFERENCE_REGEXP.replace("\\w", "[a-zA-Z0-9_]")).unwrap()
        });
        let re = &*RE;
        let captures = re.captures(input)?;
        Some((
            captures[1].to_string(),
            captures.get(2).map(|m| m.as_str().to_string()),
            captures.get(3).map(|m| m.as_str().to_string()),
        ))
    }
}
