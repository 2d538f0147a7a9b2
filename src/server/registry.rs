//! The set of protocols a server hosts, in registration order, with their hashes.

use std::sync::Arc;

use super::hash::protocol_hash;
use super::reflection::ReflectionService;
use super::service::{ProtocolSpec, Service};
use crate::Result;
use crate::wire::Limits;

/// One hosted protocol: its dispatcher, description and protocol hash.
pub(crate) struct Binding {
    pub service: Arc<dyn Service>,
    pub spec: Arc<ProtocolSpec>,
    pub hash: String,
}

/// A server: hosted protocols (the reflection protocol always last) plus settings.
///
/// Build one with [`Server::builder`]; serve it with [`crate::serve_stdio`] or another
/// transport. Cloning is cheap (the protocol set is shared).
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<ServerInner>,
}

pub(crate) struct ServerInner {
    pub bindings: Vec<Binding>,
    pub server_id: String,
    pub include_tracebacks: bool,
    pub limits: Limits,
}

impl Server {
    /// Starts a server description.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            services: Vec::new(),
            include_tracebacks: true,
            limits: Limits::default(),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The server's identity (12 hex digits, new per process).
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    /// Hosted protocol names, in registration order (reflection last).
    pub fn protocols(&self) -> Vec<&str> {
        self.inner
            .bindings
            .iter()
            .map(|b| b.spec.name.as_str())
            .collect()
    }

    /// The protocol hash of a hosted protocol.
    pub fn protocol_hash(&self, protocol: &str) -> Option<&str> {
        self.inner.binding(protocol).map(|b| b.hash.as_str())
    }
}

impl ServerInner {
    pub(crate) fn binding(&self, protocol: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.spec.name == protocol)
    }
}

/// Builder for [`Server`].
pub struct ServerBuilder {
    services: Vec<Arc<dyn Service>>,
    include_tracebacks: bool,
    limits: Limits,
    server_version: String,
}

impl ServerBuilder {
    /// Hosts a protocol. The first registered is the primary one.
    pub fn service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Whether EXCEPTION batches carry a (synthesized) traceback; default `true`.
    pub fn include_tracebacks(mut self, include: bool) -> Self {
        self.include_tracebacks = include;
        self
    }

    /// Size limits applied to every message a client sends.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The version reported by reflection's `list_protocols` (default: this crate's).
    pub fn server_version(mut self, version: impl Into<String>) -> Self {
        self.server_version = version.into();
        self
    }

    /// Finishes the server, appending the `vgi_rpc.Reflection.v1` protocol.
    ///
    /// # Errors
    /// Fails when the reflection answers cannot be encoded.
    pub fn build(self) -> Result<Server> {
        let mut bindings: Vec<Binding> = self
            .services
            .into_iter()
            .map(|service| {
                let spec = service.spec().clone();
                let hash = protocol_hash(&spec);
                Binding {
                    service,
                    spec,
                    hash,
                }
            })
            .collect();
        let reflection_spec = Arc::new(ReflectionService::spec());
        let reflection_hash = protocol_hash(&reflection_spec);
        let mut listed: Vec<(Arc<ProtocolSpec>, String)> = bindings
            .iter()
            .map(|b| (b.spec.clone(), b.hash.clone()))
            .collect();
        listed.push((reflection_spec, reflection_hash));
        let server_id = super::ids::random_hex(12);
        let reflection = ReflectionService::new(&server_id, &self.server_version, &listed)?;
        let spec = reflection.spec().clone();
        let hash = protocol_hash(&spec);
        bindings.push(Binding {
            service: Arc::new(reflection),
            spec,
            hash,
        });
        Ok(Server {
            inner: Arc::new(ServerInner {
                bindings,
                server_id,
                include_tracebacks: self.include_tracebacks,
                limits: self.limits,
            }),
        })
    }
}
