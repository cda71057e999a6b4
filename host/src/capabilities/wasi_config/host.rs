//! `wasi:config/store` for one instance: reads of its component's values.

use wasmtime::component::{HasData, Linker};

use super::{Values, WasiConfig};
use crate::bindings::wasi::config::store::{self as wit, Error};
use crate::capabilities::{CapabilityView, state_of};

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    fn view<T: CapabilityView>(state: &mut T) -> ConfigView<'_> {
        ConfigView(state_of::<WasiConfig, T>(state))
    }
    wit::add_to_linker::<_, ConfigData>(linker, view::<T>)?;
    Ok(())
}

/// What the generated `wasi:config/store` host functions see.
pub struct ConfigView<'a>(&'a Values);

struct ConfigData;

impl HasData for ConfigData {
    type Data<'a> = ConfigView<'a>;
}

impl wit::Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, Error>> {
        Ok(Ok(self.0.get(&key).map(str::to_owned)))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, Error>> {
        Ok(Ok(self
            .0
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}
