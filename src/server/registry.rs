//! The set of protocols a server hosts, in registration order, with their hashes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::access_log::{AccessLog, AccessLogLevel};
use super::exception::framework;
use super::hash::protocol_hash;
use super::hook::CallHook;
use super::interceptor::Interceptor;
use super::peer::TransportKind;
use super::reflection::ReflectionService;
use super::service::{ProtocolSpec, Service};
use crate::identity::{Identity, IdentityService};
use crate::wire::{ExternalLocation, Limits, MemoryBudget, Validation};
use crate::{Result, RpcError};

/// One hosted protocol: its dispatcher, description and protocol hash.
pub(crate) struct Binding {
    pub service: Arc<dyn Service>,
    pub spec: Arc<ProtocolSpec>,
    pub hash: String,
    /// Each method's index in `spec.methods` by name (the first of a name), so routing a
    /// call does not compare its name with every method's.
    methods: HashMap<String, usize>,
}

impl Binding {
    fn new(service: Arc<dyn Service>) -> Self {
        let spec = service.spec().clone();
        let hash = protocol_hash(&spec);
        let mut methods = HashMap::with_capacity(spec.methods.len());
        for (index, method) in spec.methods.iter().enumerate() {
            methods.entry(method.name.clone()).or_insert(index);
        }
        Binding {
            service,
            spec,
            hash,
            methods,
        }
    }

    /// The index of the method called `name` in `spec.methods`.
    pub(crate) fn method_index(&self, name: &str) -> Option<usize> {
        self.methods.get(name).copied()
    }
}

/// A server: hosted protocols (the reflection protocol always last) plus settings.
///
/// Build one with [`Server::builder`]; serve it with [`crate::serve_stdio`] or another
/// transport. Cloning is cheap (the protocol set is shared), and one server may serve
/// many connections at once from several threads (it is `Send + Sync`).
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<ServerInner>,
}

pub(crate) struct ServerInner {
    pub bindings: Vec<Binding>,
    pub server_id: String,
    pub include_tracebacks: bool,
    pub limits: Limits,
    /// Observers of every completed call; empty means no statistics are gathered.
    pub hooks: Vec<Arc<dyn CallHook>>,
    /// Run before every call's handler, in order.
    pub interceptors: Vec<Arc<dyn Interceptor>>,
    /// The identity policy, which transports consult to accept identity credentials.
    pub identity: Option<Identity>,
    /// Run once before the first request is served (see [`ServerBuilder::on_serve_start`]).
    pub serve_start: Vec<Arc<ServeStartHook>>,
    /// The transport the serve-start hooks last succeeded for.
    pub started: std::sync::Mutex<Option<TransportKind>>,
    /// `started` as `kind as u8 + 1` (0: not yet), so a started server checks one atomic
    /// per request instead of taking the lock.
    pub started_fast: std::sync::atomic::AtomicU8,
    /// External storage: large answers go out as pointers, pointer inputs are resolved.
    pub external: Option<Arc<dyn ExternalLocation>>,
}

impl ServerInner {
    /// Runs the serve-start hooks for `kind` unless they already succeeded for it.
    ///
    /// # Errors
    /// The first hook that failed; the next call runs them again.
    pub(crate) fn notify_serve_start(&self, kind: TransportKind) -> Result<()> {
        use std::sync::atomic::Ordering;
        let code = kind as u8 + 1;
        if self.serve_start.is_empty() || self.started_fast.load(Ordering::Acquire) == code {
            return Ok(());
        }
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if *started == Some(kind) {
            return Ok(());
        }
        for hook in &self.serve_start {
            if let Err(e) = hook(kind) {
                tracing::error!(error = %e, %kind, "on_serve_start hook failed");
                return Err(e);
            }
        }
        *started = Some(kind);
        self.started_fast.store(code, Ordering::Release);
        Ok(())
    }
}

impl Server {
    /// Starts a server description.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            services: Vec::new(),
            include_tracebacks: true,
            limits: Limits::default(),
            memory_budget: Some(DEFAULT_MEMORY_BUDGET),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            hooks: Vec::new(),
            interceptors: Vec::new(),
            access_log: None,
            identity: None,
            external: None,
            serve_start: Vec::new(),
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

    /// The memory budget large request bodies are counted against (see
    /// [`ServerBuilder::memory_budget`]); its [`MemoryBudget::in_use`] is a live gauge.
    pub fn memory_budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.inner.limits.budget()
    }
}

impl ServerInner {
    /// The primary (first registered) protocol's name, or `""`.
    pub(crate) fn primary_protocol(&self) -> &str {
        self.bindings
            .first()
            .map(|b| b.spec.name.as_str())
            .unwrap_or("")
    }

    /// Tells every hook that the transport's authentication refused a request.
    pub(crate) fn auth_failed(&self, remote_addr: Option<&str>, error_type: &str, reason: &str) {
        let failure = super::AuthFailure {
            protocol: self.primary_protocol(),
            remote_addr,
            error_type,
            reason,
        };
        for hook in &self.hooks {
            hook.on_auth_failure(&failure);
        }
    }

    pub(crate) fn binding(&self, protocol: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.spec.name == protocol)
    }

    /// The hosted protocols' names, in registration order.
    pub(crate) fn hosted(&self) -> Vec<&str> {
        self.bindings.iter().map(|b| b.spec.name.as_str()).collect()
    }

    /// The hosted method `protocol.method`, or why there is none (with the reference's
    /// error texts: every transport refuses alike).
    pub(crate) fn find_method(
        &self,
        protocol: &str,
        method: &str,
    ) -> std::result::Result<(&Binding, usize), MissingMethod> {
        let Some(binding) = self.binding(protocol) else {
            return Err(MissingMethod::Protocol(Box::new(
                framework::protocol_not_supported(protocol, &self.hosted()),
            )));
        };
        match binding.method_index(method) {
            Some(index) => Ok((binding, index)),
            None => {
                let names: Vec<&str> = binding
                    .spec
                    .methods
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                Err(MissingMethod::Method(Box::new(framework::no_such_method(
                    protocol, method, &names,
                ))))
            }
        }
    }
}

/// Why [`ServerInner::find_method`] found nothing.
pub(crate) enum MissingMethod {
    /// The protocol is not hosted.
    Protocol(Box<RpcError>),
    /// The protocol is hosted but has no such method.
    Method(Box<RpcError>),
}

impl MissingMethod {
    pub(crate) fn into_error(self) -> RpcError {
        match self {
            MissingMethod::Protocol(e) | MissingMethod::Method(e) => *e,
        }
    }
}

/// Default [`ServerBuilder::memory_budget`]: 1 GiB of large request bodies in flight
/// across a server's socket connections.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;

/// Builder for [`Server`].
pub struct ServerBuilder {
    services: Vec<Arc<dyn Service>>,
    include_tracebacks: bool,
    limits: Limits,
    memory_budget: Option<u64>,
    server_version: String,
    hooks: Vec<Arc<dyn CallHook>>,
    interceptors: Vec<Arc<dyn Interceptor>>,
    access_log: Option<(PathBuf, AccessLogLevel)>,
    identity: Option<Identity>,
    external: Option<Arc<dyn ExternalLocation>>,
    serve_start: Vec<Arc<ServeStartHook>>,
}

/// A serve-start hook: worker setup that depends on the transport (see
/// [`ServerBuilder::on_serve_start`]).
pub(crate) type ServeStartHook = dyn Fn(TransportKind) -> Result<()> + Send + Sync;

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

    /// How many bytes of large request bodies (1 MiB and up) may be held at once across
    /// every connection of the server; default [`DEFAULT_MEMORY_BUDGET`], `None`: no
    /// budget. A body that does not fit is read and discarded, and its call is answered
    /// `RESOURCE_EXHAUSTED` with a retry hint, on a connection that stays usable. One body
    /// larger than the whole budget is admitted while no other holds any of it. The
    /// budget covers the socket transports; a worker's stdio (the one process that
    /// started it) is exempt, as it is from [`Limits::max_untrusted_body`]. A budget set
    /// through [`ServerBuilder::limits`] ([`Limits::with_budget`]) takes precedence, and
    /// may be shared by several servers.
    pub fn memory_budget(mut self, bytes: impl Into<Option<u64>>) -> Self {
        self.memory_budget = bytes.into();
        self
    }

    /// Sets how much of each received batch is checked (default [`Validation::Full`]).
    /// A cheaper level applies only on stdio (the client that started this worker); Unix
    /// and TCP connections are always fully validated.
    ///
    /// # Safety
    /// As [`Limits::with_validation`]: the client must be trusted to send well-formed
    /// Arrow data; a malformed batch read unchecked is undefined behaviour.
    #[must_use]
    #[allow(unsafe_code)]
    pub unsafe fn validation(mut self, validation: Validation) -> Self {
        // SAFETY: the caller upholds `Limits::with_validation`'s contract (ours).
        self.limits = unsafe { self.limits.with_validation(validation) };
        self
    }

    /// The version reported by reflection's `list_protocols` (default: this crate's).
    pub fn server_version(mut self, version: impl Into<String>) -> Self {
        self.server_version = version.into();
        self
    }

    /// Attaches a hook called after every call; several may be attached, and run in
    /// the order attached.
    pub fn hook(mut self, hook: Arc<dyn CallHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Adds an interceptor run before every call's handler (after routing and parameter
    /// validation); interceptors run in the order added and the first refusal wins.
    pub fn interceptor(mut self, interceptor: impl Interceptor + 'static) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Writes an [`AccessLog`] to `path` (`{pid}` and `{server_id}` are expanded), opened
    /// when the server is built.
    pub fn access_log(mut self, path: impl Into<PathBuf>, level: AccessLogLevel) -> Self {
        self.access_log = Some((path.into(), level));
        self
    }

    /// Hosts `vgi_rpc.Identity.v2` with `identity`'s hooks (only the methods whose hooks
    /// are configured; nothing when none is). HTTP also accepts the identity's sealed
    /// grants and resolvable credentials as bearers.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// External storage (`vgi_rpc::external::ExternalConfig`, feature `external`): on
    /// byte-stream transports, data batches above its threshold (unary results, stream
    /// headers, each stream turn with its logs) go to storage and a pointer batch takes
    /// their place, unless the call uses shared memory; pointer inputs (requests,
    /// exchange batches) are resolved under its URL policy.
    pub fn external(mut self, external: Arc<dyn ExternalLocation>) -> Self {
        self.external = Some(external);
        self
    }

    /// Runs `hook` once before the first request is served, with the transport serving
    /// it: when a byte-stream server accepts its first connection (stdio: when it starts),
    /// and on HTTP at the first request of the process. A failure is retried: byte
    /// streams stop serving with the error; HTTP answers that request 500 and tries the
    /// hook again on the next, so a transient startup failure leaves the worker usable.
    /// Hooks run in the order added, and should be idempotent.
    pub fn on_serve_start(
        mut self,
        hook: impl Fn(TransportKind) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.serve_start.push(Arc::new(hook));
        self
    }

    /// Finishes the server, appending the `vgi_rpc.Reflection.v1` protocol (and
    /// `vgi_rpc.Identity.v2` after it when configured).
    ///
    /// # Errors
    /// Fails when the reflection answers cannot be encoded or the access log cannot be
    /// opened.
    pub fn build(self) -> Result<Server> {
        let mut bindings: Vec<Binding> = self.services.into_iter().map(Binding::new).collect();
        let reflection_spec = Arc::new(ReflectionService::spec());
        let reflection_hash = protocol_hash(&reflection_spec);
        let mut listed: Vec<(Arc<ProtocolSpec>, String)> = bindings
            .iter()
            .map(|b| (b.spec.clone(), b.hash.clone()))
            .collect();
        listed.push((reflection_spec, reflection_hash));
        let identity = self.identity.clone().and_then(IdentityService::new);
        if let Some(identity) = &identity {
            listed.push((identity.spec().clone(), protocol_hash(identity.spec())));
        }
        let server_id = super::ids::random_hex(12);
        let reflection = ReflectionService::new(&server_id, &self.server_version, &listed)?;
        let services: [Option<Arc<dyn Service>>; 2] = [
            Some(Arc::new(reflection)),
            identity.map(|i| Arc::new(i) as Arc<dyn Service>),
        ];
        bindings.extend(services.into_iter().flatten().map(Binding::new));
        let mut hooks = self.hooks;
        if let Some((path, level)) = &self.access_log {
            let log = AccessLog::create(path, &server_id)?.with_level(*level);
            hooks.push(Arc::new(log));
        }
        Ok(Server {
            inner: Arc::new(ServerInner {
                bindings,
                server_id,
                include_tracebacks: self.include_tracebacks,
                limits: match (self.limits.budget(), self.memory_budget) {
                    (None, Some(bytes)) => {
                        self.limits.with_budget(Arc::new(MemoryBudget::new(bytes)))
                    }
                    _ => self.limits,
                },
                hooks,
                interceptors: self.interceptors,
                identity: self.identity,
                external: self.external,
                serve_start: self.serve_start,
                started: std::sync::Mutex::new(None),
                started_fast: std::sync::atomic::AtomicU8::new(0),
            }),
        })
    }
}
