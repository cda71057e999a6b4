//! The WIT interfaces on top of [`KeyValueStore`]: `wasi:keyvalue/{store, atomics,
//! batch}`, `corral:platform/keyvalue-ext` and `corral:platform/keyvalue-index`.
//!
//! Domain failures (a store that is down, a bad key) are `error::other` for
//! the component to handle; only host invariants, such as a stale resource
//! handle, trap.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::backend::Failure;
use super::index::{Changes, Position, RangeQuery};
use super::{Bucket, KeyValueStore, Prepared, validate};
use crate::bindings::corral::platform::{keyvalue_ext, keyvalue_index};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::capabilities::{CapabilityView, granted};

use store::{Error, KeyResponse};

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

/// What the generated host functions see: the instance's resource table and
/// its component's grant.
pub struct KeyValueView<'a> {
    table: &'a mut ResourceTable,
    grant: &'a Prepared,
}

struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = KeyValueView<'a>;
}

fn view<T: CapabilityView>(state: &mut T) -> KeyValueView<'_> {
    let (table, caps) = state.table_and_caps();
    KeyValueView {
        table,
        grant: granted::<super::KeyValue>(caps),
    }
}

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    store::add_to_linker::<_, KeyValueData>(linker, view::<T>)?;
    atomics::add_to_linker::<_, KeyValueData>(linker, view::<T>)?;
    batch::add_to_linker::<_, KeyValueData>(linker, view::<T>)?;
    keyvalue_ext::add_to_linker::<_, KeyValueData>(linker, view::<T>)?;
    keyvalue_index::add_to_linker::<_, KeyValueData>(linker, view::<T>)?;
    Ok(())
}

fn other(failure: Failure) -> Error {
    Error::Other(failure.0)
}

impl KeyValueView<'_> {
    /// The bucket's name and the store, for one call. A handle that is not
    /// in the table is a host invariant broken: it traps.
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<(String, &KeyValueStore)> {
        let name = self.table.get(bucket)?.name.clone();
        Ok((name, &self.grant.store))
    }
}

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        if let Err(problem) = validate::bucket_name(&identifier) {
            return Ok(Err(other(problem)));
        }
        if !self.grant.may_open(&identifier) {
            tracing::debug!(
                component = %self.grant.component,
                bucket = %identifier,
                "keyvalue: open of a bucket not granted"
            );
            return Ok(Err(Error::AccessDenied));
        }
        Ok(Ok(self.table.push(Bucket { name: identifier })?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.get(&bucket, &key).await.map_err(other))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.set(&bucket, &key, value, None).await.map_err(other))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.delete(&bucket, &key).await.map_err(other))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.exists(&bucket, &key).await.map_err(other))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Outcome<KeyResponse> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .list_keys(&bucket, cursor)
            .await
            .map(|page| KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(other))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.increment(&bucket, &key, delta).await.map_err(other))
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.get_many(&bucket, keys).await.map_err(other))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .set_many(&bucket, key_values, None)
            .await
            .map_err(other))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.delete_many(&bucket, keys).await.map_err(other))
    }
}

impl keyvalue_ext::Host for KeyValueView<'_> {
    async fn set_with_ttl(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .set(&bucket, &key, value, Some(ttl_ms))
            .await
            .map_err(other))
    }

    async fn set_many_with_ttl(
        &mut self,
        bucket: Resource<Bucket>,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: u64,
    ) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .set_many(&bucket, entries, Some(ttl_ms))
            .await
            .map_err(other))
    }

    async fn set_if_absent(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Outcome<bool> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .set_if_absent(&bucket, &key, value, ttl_ms)
            .await
            .map_err(other))
    }

    async fn set_many_if_absent(
        &mut self,
        bucket: Resource<Bucket>,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Outcome<Vec<bool>> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .set_many_if_absent(&bucket, entries, ttl_ms)
            .await
            .map_err(other))
    }

    async fn ttl(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<u64>> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store.ttl(&bucket, &key).await.map_err(other))
    }
}

impl keyvalue_index::Host for KeyValueView<'_> {
    async fn add(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        entries: Vec<(String, i64)>,
    ) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .index_add(&bucket, &index, entries)
            .await
            .map_err(other))
    }

    async fn remove(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        members: Vec<String>,
    ) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .index_remove(&bucket, &index, members)
            .await
            .map_err(other))
    }

    async fn range(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        query: keyvalue_index::RangeQuery,
    ) -> Outcome<keyvalue_index::RangePage> {
        let (bucket, store) = self.bucket(&bucket)?;
        let query = RangeQuery {
            min: query.min,
            max: query.max,
            descending: query.descending,
            after: query.after.map(|p| Position {
                score: p.score,
                member: p.member,
            }),
            limit: query.limit,
        };
        Ok(store
            .index_range(&bucket, &index, query)
            .await
            .map(|page| keyvalue_index::RangePage {
                entries: page.entries,
                next: page.next.map(|p| keyvalue_index::Position {
                    score: p.score,
                    member: p.member,
                }),
            })
            .map_err(other))
    }

    async fn count(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Outcome<u64> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .index_count(&bucket, &index, min, max)
            .await
            .map_err(other))
    }

    async fn count_ranges(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        ranges: Vec<(i64, i64)>,
    ) -> Outcome<Vec<u64>> {
        let (bucket, store) = self.bucket(&bucket)?;
        let ranges = ranges
            .into_iter()
            .map(|(min, max)| (Some(min), Some(max)))
            .collect();
        Ok(store
            .index_count_ranges(&bucket, &index, ranges)
            .await
            .map_err(other))
    }

    async fn score(
        &mut self,
        bucket: Resource<Bucket>,
        index: String,
        member: String,
    ) -> Outcome<Option<i64>> {
        let (bucket, store) = self.bucket(&bucket)?;
        Ok(store
            .index_score(&bucket, &index, &member)
            .await
            .map_err(other))
    }

    async fn apply(
        &mut self,
        bucket: Resource<Bucket>,
        changes: keyvalue_index::Changes,
    ) -> Outcome<()> {
        let (bucket, store) = self.bucket(&bucket)?;
        let changes = Changes {
            set: changes.set,
            delete: changes.delete,
            add: changes.add,
            remove: changes.remove,
        };
        Ok(store.index_apply(&bucket, changes).await.map_err(other))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use store::{Host as _, HostBucket as _};

    use super::*;
    use crate::capabilities::Capability as _;
    use crate::capabilities::keyvalue::{Grant, KeyValue, KeyValueSettings};
    use crate::config::ComponentConfig;

    fn component() -> ComponentConfig {
        toml::from_str("name = \"payments\"\nwasm = \"p.wasm\"").unwrap()
    }

    fn keyvalue(dir: &tempfile::TempDir) -> KeyValue {
        let settings = KeyValueSettings {
            path: dir.path().join("kv.redb"),
            ..KeyValueSettings::default()
        };
        KeyValue::from_settings(&settings).unwrap()
    }

    fn grant(buckets: &[&str]) -> Grant {
        Grant {
            buckets: buckets.iter().map(|b| b.to_string()).collect(),
        }
    }

    #[test]
    fn grants_must_name_valid_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let kv = keyvalue(&dir);
        let err = kv
            .prepare(&component(), grant(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("grants.keyvalue.buckets") && err.contains("is empty"),
            "{err}"
        );
        let err = kv
            .prepare(&component(), grant(&["ok", "a:b"]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("payments") && err.contains("\"a:b\""), "{err}");
        assert!(kv.prepare(&component(), grant(&["transactions"])).is_ok());
        // Preparing opens nothing: `corral check` must not create the file.
        assert!(!dir.path().join("kv.redb").exists());
    }

    #[tokio::test]
    async fn open_allows_only_granted_buckets_and_handles_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let prepared = Arc::new(
            keyvalue(&dir)
                .prepare(&component(), grant(&["transactions"]))
                .unwrap(),
        );
        let mut table = ResourceTable::new();
        let mut view = KeyValueView {
            table: &mut table,
            grant: &prepared,
        };
        assert!(matches!(
            view.open("other".into()).await.unwrap(),
            Err(Error::AccessDenied)
        ));
        match view.open("a:b".into()).await.unwrap() {
            Err(Error::Other(message)) => assert!(message.contains("bucket name"), "{message}"),
            other => panic!("{:?}", other.map(|r| r.rep())),
        }
        let bucket = view.open("transactions".into()).await.unwrap().unwrap();
        let rep = bucket.rep();
        let again = Resource::<Bucket>::new_borrow(rep);
        view.set(again, "k".into(), b"v".to_vec())
            .await
            .unwrap()
            .unwrap();
        let again = Resource::<Bucket>::new_borrow(rep);
        assert_eq!(
            view.get(again, "k".into()).await.unwrap().unwrap(),
            Some(b"v".to_vec())
        );
        view.drop(bucket).await.unwrap();
        // A handle that is gone traps instead of reaching the store.
        let stale = Resource::<Bucket>::new_borrow(rep);
        assert!(view.get(stale, "k".into()).await.is_err());
    }
}
