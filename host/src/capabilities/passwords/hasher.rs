//! The hashing itself (argon2id, [`Kdf`]) and the bound around it
//! ([`Hasher`]): every hash or verification runs on tokio's blocking pool
//! while it holds a slot of the host-wide semaphore and one of the calling
//! component's share. A caller that gets no slot within `wait_ms`, or
//! finds `max_waiting` callers already waiting, is `busy` at once: a login
//! storm costs at most `max_concurrent` cores and a bounded queue.
//!
//! The slots move into the blocking task, so a caller that goes away (its
//! instance timed out) frees them only when the CPU work has really ended.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::settings::{self, PasswordsSettings};

/// Longest password accepted, in bytes (UTF-8).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest PHC string accepted by `verify`.
pub const MAX_PHC_BYTES: usize = 512;
/// Random salt bytes per hash (argon2's recommendation).
const SALT_BYTES: usize = 16;

/// Why a call failed; the WIT `error` variants, one for one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    MalformedHash(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Failed(String),
}

/// argon2id with the host's parameters; what runs on the blocking pool.
pub struct Kdf {
    params: Params,
    /// A hash of a random secret with the current parameters, made on the
    /// first `verify-dummy` (under a slot, like any hashing).
    dummy: OnceLock<String>,
}

impl Kdf {
    pub fn new(settings: &PasswordsSettings) -> Result<Self, PasswordError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Failed(format!("argon2 parameters: {e}")))?;
        Ok(Self {
            params,
            dummy: OnceLock::new(),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt)
            .map_err(|e| PasswordError::Failed(format!("no randomness for the salt: {e}")))?;
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| PasswordError::Failed(format!("salt: {e}")))?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError::Failed(format!("hashing: {e}")))
    }

    /// Whether `password` matches `phc` (checked with [`check_phc`]
    /// first). The output comparison is constant-time (password-hash's).
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool, PasswordError> {
        let hash = check_phc(phc)?;
        match Argon2::default().verify_password(password.as_bytes(), &hash) {
            Ok(()) => Ok(true),
            Err(password_hash::Error::Password) => Ok(false),
            Err(e) => Err(PasswordError::MalformedHash(format!(
                "the hash cannot be verified: {e}"
            ))),
        }
    }

    /// What `verify` against a hash of the current parameters costs; false.
    pub fn verify_dummy(&self, password: &str) -> Result<bool, PasswordError> {
        let dummy = match self.dummy.get() {
            Some(dummy) => dummy,
            None => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret)
                    .map_err(|e| PasswordError::Failed(format!("no randomness: {e}")))?;
                let made = self.hash(&hex::encode(secret))?;
                self.dummy.get_or_init(|| made)
            }
        };
        self.verify(password, dummy)?;
        Ok(false)
    }

    /// Whether `phc` differs from what [`Kdf::hash`] makes now.
    pub fn needs_rehash(&self, phc: &str) -> Result<bool, PasswordError> {
        let hash = check_phc(phc)?;
        let params = Params::try_from(&hash)
            .map_err(|e| PasswordError::MalformedHash(format!("parameters: {e}")))?;
        Ok(hash.algorithm != argon2::ARGON2ID_IDENT
            || hash.version != Some(Version::V0x13.into())
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost())
    }
}

/// Refuses an empty or over-long password, without repeating it.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Invalid("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Invalid(format!(
            "the password is {} bytes long; the limit is {MAX_PASSWORD_BYTES}",
            password.len()
        )));
    }
    Ok(())
}

/// Parses `phc` as an argon2 hash whose cost is within the host's bounds,
/// so that a stored hash naming gigabytes cannot stall the host.
pub fn check_phc(phc: &str) -> Result<PasswordHash<'_>, PasswordError> {
    let malformed = |m: String| PasswordError::MalformedHash(m);
    if phc.len() > MAX_PHC_BYTES {
        return Err(malformed(format!(
            "the hash is {} bytes long; a PHC string is at most {MAX_PHC_BYTES}",
            phc.len()
        )));
    }
    let hash = PasswordHash::new(phc).map_err(|e| malformed(format!("not a PHC string: {e}")))?;
    Algorithm::try_from(hash.algorithm)
        .map_err(|_| malformed(format!("{} is not an argon2 hash", hash.algorithm)))?;
    let params =
        Params::try_from(&hash).map_err(|e| malformed(format!("bad argon2 parameters: {e}")))?;
    if params.m_cost() > settings::MAX_MEMORY_KIB
        || params.t_cost() > settings::MAX_ITERATIONS
        || params.p_cost() > settings::MAX_PARALLELISM
    {
        return Err(malformed(format!(
            "m={},t={},p={} is beyond this host's limits (m<={}, t<={}, p<={})",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            settings::MAX_MEMORY_KIB,
            settings::MAX_ITERATIONS,
            settings::MAX_PARALLELISM
        )));
    }
    if hash.hash.is_none() {
        return Err(malformed("the PHC string has no hash".into()));
    }
    Ok(hash)
}

/// The host-wide bound and the work it guards.
pub struct Hasher {
    kdf: Arc<Kdf>,
    slots: Arc<Semaphore>,
    wait: Duration,
    max_waiting: usize,
    waiting: AtomicUsize,
}

/// Counts a caller as waiting while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    pub fn new(settings: &PasswordsSettings) -> Result<Self, PasswordError> {
        Ok(Self {
            kdf: Arc::new(Kdf::new(settings)?),
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            wait: Duration::from_millis(settings.wait_ms),
            max_waiting: settings.max_waiting,
            waiting: AtomicUsize::new(0),
        })
    }

    pub fn kdf(&self) -> &Kdf {
        &self.kdf
    }

    /// Runs `work` on the blocking pool once a slot of `share` (the
    /// component's) and one of the host's are free; `busy` when that takes
    /// longer than `wait_ms` or too many callers wait already.
    pub async fn run<T: Send + 'static>(
        &self,
        share: &Arc<Semaphore>,
        work: impl FnOnce(&Kdf) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permits = match (
            share.clone().try_acquire_owned(),
            self.slots.clone().try_acquire_owned(),
        ) {
            (Ok(mine), Ok(host)) => (mine, host),
            (mine, host) => {
                // Whatever was had is given back while waiting: holding the
                // host's slot while waiting for the share would starve others.
                drop((mine, host));
                self.wait_for(share).await?
            }
        };
        let kdf = self.kdf.clone();
        tokio::task::spawn_blocking(move || {
            let _permits = permits;
            work(&kdf)
        })
        .await
        .map_err(|e| PasswordError::Failed(format!("the hashing task failed: {e}")))?
    }

    async fn wait_for(
        &self,
        share: &Arc<Semaphore>,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), PasswordError> {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if before >= self.max_waiting {
            return Err(PasswordError::Busy(format!(
                "password hashing is busy ({before} callers waiting already); try again"
            )));
        }
        let acquire = async {
            let mine = share.clone().acquire_owned().await;
            let host = self.slots.clone().acquire_owned().await;
            (mine, host)
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok((Ok(mine), Ok(host))) => Ok((mine, host)),
            Ok(_) => Err(PasswordError::Failed("the hashing slots are closed".into())),
            Err(_) => Err(PasswordError::Busy(format!(
                "password hashing is busy (no free slot within {} ms); try again",
                self.wait.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    fn settings() -> PasswordsSettings {
        PasswordsSettings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            wait_ms: 200,
            max_waiting: 8,
        }
    }

    #[test]
    fn hash_and_verify_round_trip_and_a_wrong_password_fails() {
        let kdf = Kdf::new(&settings()).unwrap();
        let phc = kdf.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert!(kdf.verify("correct horse", &phc).unwrap());
        assert!(!kdf.verify("correct horse!", &phc).unwrap());
        assert_ne!(
            kdf.hash("correct horse").unwrap(),
            phc,
            "fresh salt each time"
        );
        assert!(!kdf.needs_rehash(&phc).unwrap());
        let stronger = Kdf::new(&PasswordsSettings {
            iterations: 2,
            ..settings()
        })
        .unwrap();
        assert!(stronger.needs_rehash(&phc).unwrap());
        // A hash of other parameters still verifies.
        assert!(stronger.verify("correct horse", &phc).unwrap());
        assert!(!kdf.verify_dummy("correct horse").unwrap());
    }

    #[test]
    fn malformed_hashes_and_passwords_are_refused() {
        let kdf = Kdf::new(&settings()).unwrap();
        let good = kdf.hash("pw").unwrap();
        for bad in [
            "",
            "plain text",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ",
            "$bcrypt$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            &format!("{good}{}", "A".repeat(600)),
        ] {
            assert!(
                matches!(kdf.verify("pw", bad), Err(PasswordError::MalformedHash(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            check_password(""),
            Err(PasswordError::Invalid(m)) if m.contains("empty")
        ));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let Err(PasswordError::Invalid(m)) = check_password(&long) else {
            panic!("an over-long password was accepted");
        };
        assert!(m.contains("1025") && !m.contains("xxx"), "{m}");
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES)).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_without_a_slot_in_time_is_busy() {
        let hasher = Hasher::new(&PasswordsSettings {
            max_concurrent: 1,
            wait_ms: 50,
            ..settings()
        })
        .unwrap();
        let share = Arc::new(Semaphore::new(4));
        // One hash holds the only slot until told to finish.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let hasher = Arc::new(hasher);
        let holder = {
            let (hasher, share) = (hasher.clone(), share.clone());
            tokio::spawn(async move {
                hasher
                    .run(&share, move |kdf| {
                        started.send(()).unwrap();
                        held.recv().unwrap();
                        kdf.hash("pw")
                    })
                    .await
            })
        };
        running.await.unwrap();
        let busy = hasher.run(&share, |kdf| kdf.hash("pw")).await;
        assert!(
            matches!(&busy, Err(PasswordError::Busy(m)) if m.contains("50 ms")),
            "{busy:?}"
        );
        release.send(()).unwrap();
        assert!(holder.await.unwrap().is_ok());
        // The slot is free again.
        assert!(hasher.run(&share, |kdf| kdf.hash("pw")).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_max_waiting_callers_are_busy_without_waiting() {
        let hasher = Hasher::new(&PasswordsSettings {
            max_concurrent: 1,
            wait_ms: 60_000,
            max_waiting: 0,
            ..settings()
        })
        .unwrap();
        // The component's share is taken: no slot without waiting.
        let share = Arc::new(Semaphore::new(1));
        let _taken = share.clone().try_acquire_owned().unwrap();
        let started = std::time::Instant::now();
        let busy = hasher.run(&share, |kdf| kdf.hash("pw")).await;
        assert!(
            matches!(&busy, Err(PasswordError::Busy(m)) if m.contains("waiting")),
            "{busy:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // Another component's share is untouched by this one's.
        let other = Arc::new(Semaphore::new(1));
        assert!(hasher.run(&other, |kdf| kdf.hash("pw")).await.is_ok());
    }
}
