//! A container's `stdin`, `stdinOnce` and `tty` as the plan holds them (the supervisor's
//! `attach` module says what they do).

use serde::{Deserialize, Serialize};

/// A container's `stdin`, `stdinOnce` and `tty`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stdio {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_once: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
}

impl Stdio {
    /// A terminal can be attached to it: it has a terminal and takes input.
    pub fn attachable(&self) -> bool {
        self.stdin && self.tty
    }

    /// The container's environment: a terminal's gets `TERM=xterm` unless it sets `TERM`
    /// (containerd's `WithTTY`).
    pub fn environment(&self, mut env: Vec<String>) -> Vec<String> {
        if self.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio(stdin: bool, stdin_once: bool, tty: bool) -> Stdio {
        Stdio {
            stdin,
            stdin_once,
            tty,
        }
    }

    #[test]
    fn a_terminal_gets_term_unless_it_sets_one() {
        let env = vec!["PATH=/bin".to_string()];
        assert_eq!(
            stdio(true, false, true).environment(env.clone()),
            ["PATH=/bin", "TERM=xterm"]
        );
        assert_eq!(stdio(true, false, false).environment(env.clone()), env);
        let own = vec!["TERM=vt100".to_string()];
        assert_eq!(stdio(false, false, true).environment(own.clone()), own);
        assert!(stdio(true, false, true).attachable());
        assert!(!stdio(true, false, false).attachable());
    }
}
