//! The supervisor's answer to `podrun play`, written once on the ready pipe (fd
//! [`crate::process::READY_FD_ENV`]): `ok\n` once the pod has settled, or the reason it could
//! not start; end-of-file without either means the supervisor died.

/// What the supervisor answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyMessage {
    /// The pod started (its containers settled).
    Started,
    /// The pod could not start: the error, for `play` to print.
    Failed(String),
}

const STARTED: &[u8] = b"ok\n";

impl ReadyMessage {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ReadyMessage::Started => STARTED.to_vec(),
            ReadyMessage::Failed(error) => error.as_bytes().to_vec(),
        }
    }

    /// The answer in `bytes` once it is whole: [`ReadyMessage::Started`] as soon as its line
    /// has come; an error only at end-of-file (`ended`), since it may come in pieces.
    /// `None`: wait for more; or, at end-of-file, no answer at all.
    pub fn decode(bytes: &[u8], ended: bool) -> Option<ReadyMessage> {
        if bytes.starts_with(STARTED) {
            return Some(ReadyMessage::Started);
        }
        let text = String::from_utf8_lossy(bytes).trim().to_string();
        (ended && !text.is_empty()).then_some(ReadyMessage::Failed(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        let ok = ReadyMessage::Started.encode();
        assert_eq!(
            ReadyMessage::decode(&ok, false),
            Some(ReadyMessage::Started)
        );
        assert_eq!(ReadyMessage::decode(b"o", false), None);
        let failed = ReadyMessage::Failed("image `x`: not found".into()).encode();
        assert_eq!(ReadyMessage::decode(&failed, false), None);
        assert_eq!(
            ReadyMessage::decode(&failed, true),
            Some(ReadyMessage::Failed("image `x`: not found".into()))
        );
        assert_eq!(ReadyMessage::decode(b"", true), None);
    }
}
