//! The generated token secret: on embedded defaults nobody sets one, so the
//! host makes one on first start and keeps it in `<state_dir>/jwt-secret`
//! (mode 0600), so that tokens survive a restart and the CLI on the same
//! machine signs with the same key.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::settings::check_secret;

/// Why the secret file could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot create the token secret {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the token secret {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token secret {path} {problem}; delete it to have a new one generated")]
    Invalid { path: PathBuf, problem: String },
    #[error("no randomness for the token secret: {0}")]
    Random(String),
}

pub fn secret_file(state_dir: &Path) -> PathBuf {
    state_dir.join("jwt-secret")
}

/// Reads `<state_dir>/jwt-secret`, creating it first if it does not exist.
/// The file is created exclusively (`O_EXCL`), so two processes starting at
/// once agree on one secret: the second reads the first one's.
pub fn load_or_generate(state_dir: &Path) -> Result<Vec<u8>, SecretError> {
    let path = secret_file(state_dir);
    let create = |source| SecretError::Create {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(create)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
            let secret = hex::encode(bytes);
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(create)?;
            tracing::info!(file = %path.display(), "token secret generated");
            Ok(secret.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(create(e)),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim().as_bytes().to_vec();
    check_secret(&secret).map_err(|problem| SecretError::Invalid {
        path: path.to_owned(),
        problem,
    })?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_privately_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = load_or_generate(&state).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_generate(&state).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(secret_file(&state))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_generate(other.path()).unwrap(), first);
    }

    #[test]
    fn a_short_secret_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(secret_file(dir.path()), "short\n").unwrap();
        let err = load_or_generate(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("jwt-secret") && err.contains("5 bytes"),
            "{err}"
        );
    }
}
