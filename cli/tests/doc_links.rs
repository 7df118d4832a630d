//! Every relative link of README.md and docs/ leads to a file that exists, and a `#fragment`
//! of a Markdown file to one of its headings: a renamed file or section breaks this test, not
//! the reader's click.

use std::path::{Path, PathBuf};

/// The Markdown files a reader follows links through: README.md and everything under docs/.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The targets of inline links `[text](target)` outside fenced code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let prose = without_code_spans(line);
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].trim().to_string());
                rest = &rest[end..];
            }
        }
    }
    targets
}

fn without_code_spans(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// What is wrong with one link of `file`, if anything.
fn broken(file: &Path, target: &str) -> Option<String> {
    let external = ["http://", "https://", "mailto:"];
    if external.iter().any(|scheme| target.starts_with(scheme)) {
        return None;
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (target, None),
    };
    let linked = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap().join(path)
    };
    if !linked.exists() {
        return Some(format!("{} does not exist", linked.display()));
    }
    let fragment = fragment?;
    if linked.extension().is_none_or(|ext| ext != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&linked).unwrap();
    if anchors(&text).iter().any(|a| a == fragment) {
        None
    } else {
        Some(format!("{} has no heading #{fragment}", linked.display()))
    }
}

#[test]
fn relative_links_in_readme_and_docs_lead_to_existing_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            checked += 1;
            if let Some(problem) = broken(&file, &target) {
                problems.push(format!("{}: ({target}): {problem}", file.display()));
            }
        }
    }
    assert!(
        checked > 10,
        "found only {checked} links: is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_finds_a_missing_file_and_a_missing_heading() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.md");
    std::fs::write(&file, "# A title\n\n## The `b` section, again\n").unwrap();
    assert_eq!(
        link_targets("see [b](b.md) and `[c](c.md)`\n```\n[d](d.md)\n```\n"),
        ["b.md"]
    );
    assert!(broken(&file, "b.md").is_some());
    assert!(broken(&file, "a.md").is_none());
    assert!(broken(&file, "a.md#the-b-section-again").is_none());
    assert!(broken(&file, "#a-title").is_none());
    assert!(broken(&file, "a.md#nowhere").is_some());
    assert!(broken(&file, "https://example.org/x.md").is_none());
}
