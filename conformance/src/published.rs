//! `published_string` answered by reference: the shared suite's pre-published results.
//!
//! The reference's `published_string(value, include_sha256)` publishes `{result: [value]}`
//! once per `(value, include_sha256)` through the worker's own storage (and compression),
//! caches the reference and answers every call with the same pointer batch — with
//! `vgi_rpc.location.sha256` only when asked — whatever the worker's threshold. A typed
//! handler returns a value, not a pointer, so [`Publishing`] wraps the generated
//! `ConformanceServer` and answers that one method itself
//! ([`Response::Published`]); every other method, and `published_string` on a worker
//! without storage (which raises "published_string requires external storage"), goes to
//! the wrapped service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch, StringArray};
use vgi_rpc::external::ExternalConfig;
use vgi_rpc::server::{CallContext, ProtocolSpec, Response, Service};
use vgi_rpc::wire::{Metadata, encode_stream, external};
use vgi_rpc::{Result, RpcError};

/// A service whose `published_string` is answered by reference from `config`'s storage.
pub struct Publishing<S> {
    inner: S,
    config: Arc<ExternalConfig>,
    method: Option<usize>,
    cache: Mutex<HashMap<(String, bool), Metadata>>,
}

impl<S: Service> Publishing<S> {
    /// Wraps `inner`; its `published_string` (if it has one) publishes into `config`.
    pub fn new(inner: S, config: Arc<ExternalConfig>) -> Self {
        let method = inner.spec().method_index("published_string");
        Publishing {
            inner,
            config,
            method,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn publish(&self, method: usize, args: &RecordBatch) -> Result<Response> {
        let value = args
            .column_by_name("value")
            .and_then(|c| c.as_string_opt::<i32>())
            .filter(|c| !c.is_empty() && c.is_valid(0))
            .map(|c| c.value(0).to_owned())
            .ok_or_else(|| RpcError::type_error("published_string needs a value"))?;
        let include_sha256 = args
            .column_by_name("include_sha256")
            .and_then(|c| c.as_boolean_opt())
            .filter(|c| !c.is_empty())
            .is_some_and(|c| c.value(0));
        let key = (value, include_sha256);
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| RpcError::runtime_error("published_string cache poisoned"))?;
        if let Some(pointer) = cache.get(&key) {
            return Ok(Response::Published(pointer.clone()));
        }
        let schema = self.inner.spec().methods[method]
            .result
            .clone()
            .ok_or_else(|| RpcError::runtime_error("published_string has no result schema"))?;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![key.0.as_str()]))],
        )?;
        let object = encode_stream(&schema, &[batch])?;
        let digest = external::sha256_hex(&object);
        let url = self.config.store(object)?;
        let pointer = external::pointer_metadata(&url, include_sha256.then_some(digest.as_str()));
        cache.insert(key, pointer.clone());
        Ok(Response::Published(pointer))
    }
}

impl<S: Service> Service for Publishing<S> {
    fn spec(&self) -> &Arc<ProtocolSpec> {
        self.inner.spec()
    }

    fn call(&self, method: usize, args: &RecordBatch, ctx: &CallContext) -> Result<Response> {
        if Some(method) == self.method && self.config.storage().is_some() {
            return self.publish(method, args);
        }
        self.inner.call(method, args, ctx)
    }

    fn resume(&self, method: usize, saved: &[u8]) -> Result<Response> {
        self.inner.resume(method, saved)
    }
}
