//! One module per subcommand.

pub mod completions;
pub mod cp;
pub mod describe;
pub mod down;
pub mod exec;
pub mod images;
pub mod job_controller;
pub mod job_state;
pub mod logs;
pub mod man;
pub mod play;
pub mod play_attach;
pub mod play_job;
pub mod play_services;
pub mod play_wait;
pub mod port;
pub mod ps;
pub mod pull;
pub mod rmi;
pub mod stop_options;
pub mod system;
pub mod unshare;
pub mod validate;
pub mod volume;
pub mod wait;

/// `-n`'s value: a namespace name (an RFC 1123 label, as Kubernetes requires).
pub fn parse_namespace(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "invalid namespace `{text}`: a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)"
        ))
    }
}

/// The pod a command line names (`NAME`, `NAMESPACE/NAME`, with `-n`'s `namespace`), found
/// among the pods as [`podrun_pod::listing::resolve`] says.
pub fn resolve_pod(
    dirs: &podrun_pod::PodDirs,
    namespace: Option<&str>,
    reference: &str,
) -> anyhow::Result<(String, String)> {
    use crate::output::HintExt as _;
    podrun_pod::listing::resolve(dirs, namespace, reference)
        .map_err(anyhow::Error::from)
        .hint("podrun ps lists the pods")
}

#[cfg(test)]
mod tests {
    #[test]
    fn namespaces_are_rfc_1123_labels() {
        assert_eq!(super::parse_namespace("team-a"), Ok("team-a".into()));
        for bad in ["", "Team", "a_b", "-a", "a-", "../x", &"a".repeat(64)] {
            assert!(super::parse_namespace(bad).is_err(), "{bad}");
        }
    }
}
