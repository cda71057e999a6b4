//! `wasi:blobstore/types`: the values that carry object contents.
//!
//! Writes are whole-object: an outgoing value collects its body in memory
//! and `container.write-data` stores it with one put, so an object is never
//! half-written, whatever the component does halfway. `write-data` is the
//! moment of truth (its result says whether the object was stored); after
//! it the body is sealed, and `finish` only releases the value. Reads are
//! whole too: `get-data` fetches the bytes at once, so the value stays the
//! same even if the object is deleted afterwards, as the interface asks.

use std::sync::Arc;

use parking_lot::Mutex;

use bytes::{Bytes, BytesMut};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use super::BlobView;
use super::store::MAX_VALUE_BYTES;
use crate::bindings::wasi::blobstore::types::{
    self as wit, Error, IncomingValueAsyncBody, IncomingValueSyncBody,
};

/// An object's contents on their way in (`outgoing-value`).
#[derive(Default)]
pub struct OutgoingValue {
    body: Body,
    /// The body stream is handed out once.
    stream_taken: bool,
}

impl OutgoingValue {
    /// Seals the body and returns it: nothing can be added any more.
    pub fn seal(&self) -> Bytes {
        let mut state = self.body.0.lock();
        state.sealed = true;
        state.bytes.clone().freeze()
    }
}

/// An object's contents on their way out (`incoming-value`).
pub struct IncomingValue(pub Bytes);

/// The body of an outgoing value, shared with its output stream.
#[derive(Clone, Default)]
struct Body(Arc<Mutex<BodyState>>);

#[derive(Default)]
struct BodyState {
    bytes: BytesMut,
    sealed: bool,
}

impl Body {
    fn room(state: &BodyState) -> StreamResult<usize> {
        if state.sealed {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "this value was already stored by write-data; write the whole body first"
            )));
        }
        let left = MAX_VALUE_BYTES as usize - state.bytes.len();
        if left == 0 {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "a value may hold at most {MAX_VALUE_BYTES} bytes"
            )));
        }
        Ok(left)
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Body {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut state = self.0.lock();
        if bytes.len() > Self::room(&state)? {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "a value may hold at most {MAX_VALUE_BYTES} bytes"
            )));
        }
        state.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Self::room(&self.0.lock())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Body {
    /// Memory is always ready.
    async fn ready(&mut self) {}
}

impl wit::Host for BlobView<'_> {}

impl wit::HostOutgoingValue for BlobView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue::default())?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let entry = self.table.get_mut(&value)?;
        if entry.stream_taken || entry.body.0.lock().sealed {
            return Ok(Err(()));
        }
        entry.stream_taken = true;
        let stream: DynOutputStream = Box::new(entry.body.clone());
        // A child: dropping the value before its stream traps, as the
        // interface says.
        Ok(Ok(self.table.push_child(stream, &value)?))
    }

    async fn finish(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.table.delete(value)?;
        Ok(Ok(()))
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

impl wit::HostIncomingValue for BlobView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> wasmtime::Result<Result<IncomingValueSyncBody, Error>> {
        Ok(Ok(self.table.delete(value)?.0.to_vec()))
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> wasmtime::Result<Result<Resource<IncomingValueAsyncBody>, Error>> {
        let bytes = self.table.delete(value)?.0;
        let stream: DynInputStream = Box::new(MemoryInputPipe::new(bytes));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.0.len() as u64)
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}
