//! Which container and object names the blobstore accepts.
//!
//! Names become keys (S3) and file paths (local backend), so they are
//! checked before anything reaches a store: a name that could climb out of
//! its container (`..`), address the store's root (a leading `/`), mean
//! something else on another platform (`\`), or hide in logs (control
//! characters) is refused with an error that says why, and the store is
//! never touched. The same rules hold on every backend, so a component that
//! works on the embedded store works on S3 too.

use super::error::BlobError;

/// Longest object name, in bytes (S3 keys stop at 1024 bytes, and the
/// container prefix takes some of them).
pub const MAX_OBJECT_NAME: usize = 900;
/// Longest part between two `/` (file names stop at 255 bytes on common
/// file systems).
pub const MAX_SEGMENT: usize = 255;
/// Longest container name.
pub const MAX_CONTAINER_NAME: usize = 63;

/// The object that marks a container as created. Components cannot name it.
pub const MARKER: &str = ".corral-container";

/// Checks a container name: 1 to 63 ASCII letters, digits, `-`, `_` or `.`,
/// not starting with `.`. Containers are folders of the store, so their
/// names are plain on every backend.
pub fn check_container(name: &str) -> Result<(), BlobError> {
    let problem = if name.is_empty() {
        Some("must not be empty".to_owned())
    } else if name.len() > MAX_CONTAINER_NAME {
        Some(format!("is longer than {MAX_CONTAINER_NAME} bytes"))
    } else if name.starts_with('.') {
        Some("must not start with \".\"".to_owned())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .map(|c| format!("has {c:?}; use letters, digits, \"-\", \"_\" and \".\""))
    };
    match problem {
        Some(problem) => Err(BlobError::InvalidContainer {
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Checks an object name. `/` separates folder-like parts, which must not
/// be empty, `.` or `..`.
pub fn check_object(name: &str) -> Result<(), BlobError> {
    object_problem(name).map_or(Ok(()), |problem| {
        Err(BlobError::InvalidObject {
            name: shorten(name),
            problem,
        })
    })
}

fn object_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > MAX_OBJECT_NAME {
        return Some(format!("is longer than {MAX_OBJECT_NAME} bytes"));
    }
    if name.contains("..") {
        return Some("must not contain \"..\" (no path traversal)".into());
    }
    if name.starts_with('/') {
        return Some("must not start with \"/\"".into());
    }
    if name.contains('\\') {
        return Some("must not contain \"\\\"".into());
    }
    if name.chars().any(char::is_control) {
        return Some("must not contain control characters (NUL, newline, ...)".into());
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return Some("must not end with \"/\" or contain \"//\"".into());
        }
        if segment == "." {
            return Some("must not have \".\" as a part".into());
        }
        if segment.len() > MAX_SEGMENT {
            return Some(format!("has a part longer than {MAX_SEGMENT} bytes"));
        }
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last == MARKER {
        return Some(format!("{MARKER:?} is reserved"));
    }
    // The local store keeps uploads in progress as `<name>#<number>`.
    if let Some((_, suffix)) = last.rsplit_once('#')
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
    {
        return Some("must not end with \"#\" and digits (reserved)".into());
    }
    None
}

/// Names echoed in errors are cut short: a component controls them.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &name[..at]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers() {
        for ok in ["transactions", "a", "results-2024", "a.b_c"] {
            check_container(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "ação", &"x".repeat(64)] {
            let err = check_container(bad).unwrap_err().to_string();
            assert!(err.contains("invalid container name"), "{err}");
        }
    }

    #[test]
    fn objects() {
        for ok in [
            "a",
            "batch-1.json",
            "2024/03/11/batch.json",
            "a.b",
            "ação #1.txt",
            "x#y",
        ] {
            check_object(ok).unwrap();
        }
        let cases = [
            ("", "empty"),
            ("../etc/passwd", ".."),
            ("a/../../b", ".."),
            ("..", ".."),
            ("/etc/passwd", "start with"),
            ("a\\b", "\\"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("a//b", "//"),
            ("a/", "end with"),
            ("./a", "\".\""),
            ("a/.corral-container", "reserved"),
            ("upload#12", "reserved"),
        ];
        for (bad, why) in cases {
            let err = check_object(bad).unwrap_err().to_string();
            assert!(
                err.contains("invalid object name") && err.contains(why),
                "{bad:?}: {err}"
            );
        }
        assert!(check_object(&"x".repeat(MAX_OBJECT_NAME + 1)).is_err());
        assert!(check_object(&format!("{}/b", "x".repeat(MAX_SEGMENT + 1))).is_err());
        let long = check_object(&format!("../{}", "y".repeat(500)))
            .unwrap_err()
            .to_string();
        assert!(long.len() < 200, "{long}");
    }
}
