//! `corral:platform/passwords` for one instance: input checks, then the
//! work on the bounded blocking pool ([`super::Hasher::run`]).

use wasmtime::component::{HasSelf, Linker};

use super::hasher::{PasswordError, check_password, check_phc};
use super::{Passwords, PasswordsHandle};
use crate::bindings::corral::platform::passwords as wit;
use crate::capabilities::{CapabilityView, state_of};

type Outcome<T> = wasmtime::Result<Result<T, wit::Error>>;

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<_, HasSelf<PasswordsHandle>>(linker, state_of::<Passwords, T>)?;
    Ok(())
}

impl From<PasswordError> for wit::Error {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Invalid(m) => Self::Invalid(m),
            PasswordError::MalformedHash(m) => Self::MalformedHash(m),
            PasswordError::Busy(m) => Self::Busy(m),
            PasswordError::Failed(m) => Self::Failed(m),
        }
    }
}

impl PasswordsHandle {
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&super::Kdf) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, wit::Error> {
        let prepared = &self.0;
        Ok(prepared.hasher.run(&prepared.share, work).await?)
    }
}

impl wit::Host for PasswordsHandle {
    async fn hash(&mut self, password: String) -> Outcome<String> {
        if let Err(e) = check_password(&password) {
            return Ok(Err(e.into()));
        }
        Ok(self.run(move |kdf| kdf.hash(&password)).await)
    }

    async fn verify(&mut self, password: String, phc: String) -> Outcome<bool> {
        if let Err(e) = check_password(&password).and_then(|()| check_phc(&phc).map(drop)) {
            return Ok(Err(e.into()));
        }
        Ok(self.run(move |kdf| kdf.verify(&password, &phc)).await)
    }

    async fn verify_dummy(&mut self, password: String) -> Outcome<bool> {
        if let Err(e) = check_password(&password) {
            return Ok(Err(e.into()));
        }
        Ok(self.run(move |kdf| kdf.verify_dummy(&password)).await)
    }

    async fn needs_rehash(&mut self, phc: String) -> Outcome<bool> {
        Ok(self.0.hasher.kdf().needs_rehash(&phc).map_err(Into::into))
    }
}
