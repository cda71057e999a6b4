//! `wasi:blobstore/blobstore` and `wasi:blobstore/container`: containers
//! and objects, checked against the component's grant before the store is
//! touched.

use wasmtime::component::{Linker, Resource};

use super::store::{Names, seconds};
use super::values::{IncomingValue, OutgoingValue};
use super::{BlobData, BlobError, BlobView, Blobstore, Granted, names};
use crate::bindings::wasi::blobstore::blobstore as wit;
use crate::bindings::wasi::blobstore::container::{
    self as wit_container, ContainerMetadata, Error, ObjectMetadata,
};
use crate::bindings::wasi::blobstore::types::ObjectId;
use crate::capabilities::{CapabilityView, granted};

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    fn view<T: CapabilityView>(state: &mut T) -> BlobView<'_> {
        let (table, caps) = state.table_and_caps();
        BlobView {
            table,
            blob: granted::<Blobstore>(caps),
        }
    }
    use crate::bindings::wasi::blobstore as all;
    all::types::add_to_linker::<_, BlobData>(linker, view::<T>)?;
    all::container::add_to_linker::<_, BlobData>(linker, view::<T>)?;
    all::blobstore::add_to_linker::<_, BlobData>(linker, view::<T>)?;
    Ok(())
}

/// An open container (`container`): just its name; access was checked when
/// it was opened.
pub struct Container {
    pub(super) name: String,
}

/// A listing in progress (`stream-object-names`).
pub struct ObjectNames {
    names: Names,
    done: bool,
}

/// Most names one `read-stream-object-names` call returns, so that a call
/// stays short whatever `len` the component asks for (fewer than asked is
/// allowed: the stream is not over until it says so).
const MAX_BATCH: u64 = 1000;

type Reply<T> = wasmtime::Result<Result<T, Error>>;

impl wit::Host for BlobView<'_> {
    async fn create_container(&mut self, name: String) -> Reply<Resource<Container>> {
        if let Err(e) = self.blob.check_container(&name) {
            return Ok(Err(e.into()));
        }
        if let Err(e) = self.blob.store.create_container(&name).await {
            return Ok(Err(e.into()));
        }
        Ok(Ok(self.table.push(Container { name })?))
    }

    async fn get_container(&mut self, name: String) -> Reply<Resource<Container>> {
        if let Err(e) = self.blob.check_container(&name) {
            return Ok(Err(e.into()));
        }
        match self.blob.store.container_exists(&name).await {
            Ok(true) => Ok(Ok(self.table.push(Container { name })?)),
            Ok(false) => Ok(Err(missing(&name).into())),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn delete_container(&mut self, name: String) -> Reply<()> {
        if let Err(e) = self.blob.check_container(&name) {
            return Ok(Err(e.into()));
        }
        Ok(self
            .blob
            .store
            .delete_container(&name)
            .await
            .map_err(String::from))
    }

    async fn container_exists(&mut self, name: String) -> Reply<bool> {
        if let Err(e) = self.blob.check_container(&name) {
            return Ok(Err(e.into()));
        }
        Ok(self
            .blob
            .store
            .container_created(&name)
            .await
            .map(|c| c.is_some())
            .map_err(String::from))
    }

    async fn copy_object(&mut self, src: ObjectId, dest: ObjectId) -> Reply<()> {
        Ok(self.blob.copy(src, dest, false).await.map_err(String::from))
    }

    async fn move_object(&mut self, src: ObjectId, dest: ObjectId) -> Reply<()> {
        Ok(self.blob.copy(src, dest, true).await.map_err(String::from))
    }
}

impl Granted {
    /// Copy and move: both ends granted and named properly, and the
    /// destination container must exist (the interface says so).
    async fn copy(
        &self,
        src: ObjectId,
        dest: ObjectId,
        remove_source: bool,
    ) -> Result<(), BlobError> {
        for id in [&src, &dest] {
            self.check_container(&id.container)?;
            names::check_object(&id.object)?;
        }
        if self
            .store
            .container_created(&dest.container)
            .await?
            .is_none()
        {
            return Err(missing(&dest.container));
        }
        let (src, dest) = (
            (&*src.container, &*src.object),
            (&*dest.container, &*dest.object),
        );
        self.store.copy(src, dest, remove_source).await
    }
}

impl BlobView<'_> {
    fn container(&self, container: &Resource<Container>) -> wasmtime::Result<String> {
        Ok(self.table.get(container)?.name.clone())
    }
}

fn missing(container: &str) -> BlobError {
    BlobError::NoContainer(container.to_owned())
}

/// Checks an object name, then runs `$body`; a bad name is the component's
/// error and never reaches the store.
macro_rules! checked {
    ($name:expr, $body:expr) => {
        match names::check_object($name) {
            Ok(()) => Ok($body.map_err(String::from)),
            Err(e) => Ok(Err(e.into())),
        }
    };
}

impl wit_container::Host for BlobView<'_> {}

impl wit_container::HostContainer for BlobView<'_> {
    async fn name(&mut self, this: Resource<Container>) -> Reply<String> {
        Ok(Ok(self.container(&this)?))
    }

    async fn info(&mut self, this: Resource<Container>) -> Reply<ContainerMetadata> {
        let name = self.container(&this)?;
        Ok(match self.blob.store.container_created(&name).await {
            Ok(Some(created_at)) => Ok(ContainerMetadata { name, created_at }),
            Ok(None) => Err(missing(&name).into()),
            Err(e) => Err(e.into()),
        })
    }

    async fn get_data(
        &mut self,
        this: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> Reply<Resource<IncomingValue>> {
        let container = self.container(&this)?;
        if let Err(e) = names::check_object(&name) {
            return Ok(Err(e.into()));
        }
        match self.blob.store.get(&container, &name, start, end).await {
            Ok(bytes) => Ok(Ok(self.table.push(IncomingValue(bytes))?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn write_data(
        &mut self,
        this: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Reply<()> {
        let container = self.container(&this)?;
        if let Err(e) = names::check_object(&name) {
            return Ok(Err(e.into()));
        }
        let bytes = self.table.get(&data)?.seal();
        Ok(self
            .blob
            .store
            .put(&container, &name, bytes)
            .await
            .map_err(String::from))
    }

    async fn list_objects(&mut self, this: Resource<Container>) -> Reply<Resource<ObjectNames>> {
        let names = self.blob.store.list(&self.container(&this)?);
        Ok(Ok(self.table.push(ObjectNames { names, done: false })?))
    }

    async fn delete_object(&mut self, this: Resource<Container>, name: String) -> Reply<()> {
        let container = self.container(&this)?;
        checked!(
            &name,
            self.blob
                .store
                .delete(&container, std::slice::from_ref(&name))
                .await
        )
    }

    async fn delete_objects(&mut self, this: Resource<Container>, names: Vec<String>) -> Reply<()> {
        let container = self.container(&this)?;
        // All or nothing: one bad name refuses the whole call.
        if let Some(e) = names.iter().find_map(|n| names::check_object(n).err()) {
            return Ok(Err(e.into()));
        }
        Ok(self
            .blob
            .store
            .delete(&container, &names)
            .await
            .map_err(String::from))
    }

    async fn has_object(&mut self, this: Resource<Container>, name: String) -> Reply<bool> {
        let container = self.container(&this)?;
        checked!(
            &name,
            self.blob
                .store
                .head(&container, &name)
                .await
                .map(|m| m.is_some())
        )
    }

    async fn object_info(
        &mut self,
        this: Resource<Container>,
        name: String,
    ) -> Reply<ObjectMetadata> {
        let container = self.container(&this)?;
        checked!(
            &name,
            match self.blob.store.head(&container, &name).await {
                Ok(Some(meta)) => Ok(ObjectMetadata {
                    created_at: seconds(&meta),
                    size: meta.size,
                    name,
                    container,
                }),
                Ok(None) => Err(format!(
                    "looking up {name:?} in container {container:?}: not found"
                )),
                Err(e) => Err(e.into()),
            }
        )
    }

    async fn clear(&mut self, this: Resource<Container>) -> Reply<()> {
        let container = self.container(&this)?;
        Ok(self
            .blob
            .store
            .clear(&container)
            .await
            .map_err(String::from))
    }

    async fn drop(&mut self, this: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl wit_container::HostStreamObjectNames for BlobView<'_> {
    async fn read_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        len: u64,
    ) -> Reply<(Vec<String>, bool)> {
        let store = &self.blob.store;
        let listing = self.table.get_mut(&this)?;
        let mut names = Vec::new();
        while !listing.done && (names.len() as u64) < len.min(MAX_BATCH) {
            match store.next_name(&mut listing.names).await {
                Ok(Some(name)) => names.push(name),
                Ok(None) => listing.done = true,
                Err(e) => return Ok(Err(e.into())),
            }
        }
        Ok(Ok((names, listing.done)))
    }

    async fn skip_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        num: u64,
    ) -> Reply<(u64, bool)> {
        let store = &self.blob.store;
        let listing = self.table.get_mut(&this)?;
        let mut skipped = 0;
        while !listing.done && skipped < num.min(MAX_BATCH) {
            match store.next_name(&mut listing.names).await {
                Ok(Some(_)) => skipped += 1,
                Ok(None) => listing.done = true,
                Err(e) => return Ok(Err(e.into())),
            }
        }
        Ok(Ok((skipped, listing.done)))
    }

    async fn drop(&mut self, this: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
