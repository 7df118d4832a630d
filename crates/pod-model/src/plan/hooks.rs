//! Container lifecycle hooks as the plan holds them: `lifecycle.postStart`,
//! `lifecycle.preStop` and `lifecycle.stopSignal`, planned by podrun-planner (`hooks`, named
//! ports resolved) and run by podrun-supervisor (`hooks`).

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

/// A container's hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<Handler>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<Handler>,
    /// `lifecycle.stopSignal` as written (checked to be a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Handler {
    /// A command run in the container (no shell); exit code 0 is success.
    Exec { command: Vec<String> },
    /// An HTTP GET; a status from 200 to 399 is success.
    HttpGet {
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// Waits (`sleep.seconds`).
    Sleep { seconds: u64 },
}

impl Handler {
    /// The hook's kind, for messages (`exec`, `httpGet`, `sleep`).
    pub fn kind(&self) -> &'static str {
        match self {
            Handler::Exec { .. } => "exec",
            Handler::HttpGet { .. } => "httpGet",
            Handler::Sleep { .. } => "sleep",
        }
    }
}

/// A signal by name (`SIGQUIT`, `QUIT`, any case) or number.
pub fn parse_signal(text: &str) -> Option<Signal> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("SIGQUIT"), Some(Signal::SIGQUIT));
        assert_eq!(parse_signal("quit"), Some(Signal::SIGQUIT));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }
}
