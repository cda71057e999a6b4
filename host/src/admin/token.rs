//! The admin bearer token: from the config/env, or generated at start-up
//! and left in the state directory (mode 0600) for the local CLI.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub fn token_file(state_dir: &Path) -> PathBuf {
    state_dir.join("admin-token")
}

/// Returns the configured token, or generates one and writes it to
/// `<state_dir>/admin-token`.
pub fn load_or_generate(configured: Option<&str>, state_dir: &Path) -> anyhow::Result<String> {
    if let Some(token) = configured {
        return Ok(token.to_owned());
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the admin token: {e}"))?;
    let token = hex::encode(bytes);
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;
    let path = token_file(state_dir);
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// Writes `contents` to a fresh temporary file only this user can read,
/// then renames it into place. The temporary file is created exclusively
/// (`O_EXCL`, which also refuses a symlink in its place): whatever another
/// user left at that name (a symlink to a file of ours, a file of theirs
/// that they could read) is removed first, never written through.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Compares without leaking, through timing, how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_file_is_not_written_through() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("admin-token.tmp")).unwrap();
        let token = load_or_generate(None, dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let file = token_file(dir.path());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn generated_token_is_written_privately() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_generate(None, dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(
            std::fs::read_to_string(token_file(dir.path())).unwrap(),
            token
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(token_file(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            load_or_generate(Some("given"), dir.path()).unwrap(),
            "given"
        );
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
