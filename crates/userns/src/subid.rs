//! Parsing /etc/subuid and /etc/subgid.

use std::path::Path;

use crate::UsernsError;

/// One line of /etc/subuid or /etc/subgid: `count` host ids starting at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubordinateRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges that `file` grants to the user named `user` (or written as their numeric `uid`),
/// in file order. A missing file means no ranges, as shadow's tools treat it.
pub fn subordinate_ranges(
    file: &Path,
    user: &str,
    uid: u32,
) -> Result<Vec<SubordinateRange>, UsernsError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(UsernsError::ReadSubidFile {
                path: file.display().to_string(),
                source,
            })
        }
    };
    Ok(parse_ranges(&text, user, uid))
}

fn parse_ranges(text: &str, user: &str, uid: u32) -> Vec<SubordinateRange> {
    let uid_text = uid.to_string();
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let owner = fields.next()?;
            let start = fields.next()?.trim().parse().ok()?;
            let count = fields.next()?.trim().parse().ok()?;
            (owner == user || owner == uid_text).then_some(SubordinateRange { start, count })
        })
        .filter(|range: &SubordinateRange| range.count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ranges_by_name_and_uid() {
        let text = "alice:100000:65536\n# comment\nbob:165536:65536\n1001:300000:10\nbad line\nalice:x:1\n";
        assert_eq!(
            parse_ranges(text, "alice", 1000),
            vec![SubordinateRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            parse_ranges(text, "carol", 1001),
            vec![SubordinateRange {
                start: 300000,
                count: 10
            }]
        );
        assert!(parse_ranges(text, "dave", 1002).is_empty());
    }

    #[test]
    fn missing_file_means_no_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let ranges = subordinate_ranges(&dir.path().join("subuid"), "alice", 1000).unwrap();
        assert!(ranges.is_empty());
    }
}
