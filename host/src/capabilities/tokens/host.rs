//! `corral:platform/tokens` for one instance.

use wasmtime::component::{HasSelf, Linker};

use super::{TokensCapability, TokensHandle};
use crate::bindings::corral::platform::tokens::{self as wit, Error, IssuedToken};
use crate::capabilities::{CapabilityView, state_of};

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<_, HasSelf<TokensHandle>>(linker, state_of::<TokensCapability, T>)?;
    Ok(())
}

impl wit::Host for TokensHandle {
    async fn issue(
        &mut self,
        subject: String,
        extra_claims_json: Option<String>,
    ) -> wasmtime::Result<Result<IssuedToken, Error>> {
        Ok(self.0.issue(&subject, extra_claims_json.as_deref()))
    }

    async fn verify(&mut self, token: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(self.0.verify(&token))
    }
}
