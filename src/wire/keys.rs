//! Every `vgi_rpc.*` metadata key and fixed value the protocol uses, in one place.
//!
//! Keys live in the `custom_metadata` of RecordBatch messages (never schema metadata).

/// Method name on a request batch.
pub const METHOD: &str = "vgi_rpc.method";
/// Request protocol version; always [`REQUEST_VERSION_VALUE`].
pub const REQUEST_VERSION: &str = "vgi_rpc.request_version";
/// The only request version this implementation speaks.
pub const REQUEST_VERSION_VALUE: &str = "1";
/// Routing key: the protocol a request addresses.
pub const PROTOCOL: &str = "vgi_rpc.protocol";
/// Version of the addressed protocol, when it declares one.
pub const PROTOCOL_VERSION: &str = "vgi_rpc.protocol_version";
/// Request id (documented; servers mint their own).
pub const REQUEST_ID: &str = "vgi_rpc.request_id";
/// Server identity, 12 hex digits, constant per process.
pub const SERVER_ID: &str = "vgi_rpc.server_id";

/// Log level of a log or EXCEPTION batch.
pub const LOG_LEVEL: &str = "vgi_rpc.log_level";
/// Log message text.
pub const LOG_MESSAGE: &str = "vgi_rpc.log_message";
/// Extra JSON object of a log or EXCEPTION batch.
pub const LOG_EXTRA: &str = "vgi_rpc.log_extra";
/// Canonical error code on EXCEPTION batches.
pub const ERROR_CODE: &str = "vgi_rpc.error_code";
/// Open-set error reason on EXCEPTION batches.
pub const ERROR_KIND: &str = "vgi_rpc.error_kind";
/// JSON array of structured error details on EXCEPTION batches.
pub const ERROR_DETAILS: &str = "vgi_rpc.error_details";

/// Client cancel signal on a stream input batch (presence is the signal).
pub const CANCEL: &str = "vgi_rpc.cancel";

/// External-storage pointer URL.
pub const LOCATION: &str = "vgi_rpc.location";
/// Lowercase hex SHA-256 of the uncompressed object a pointer names (optional).
pub const LOCATION_SHA256: &str = "vgi_rpc.location.sha256";
/// On a resolved batch: how long the fetch took, in milliseconds (one decimal).
pub const LOCATION_FETCH_MS: &str = "vgi_rpc.location.fetch_ms";
/// On a resolved batch: the URL it was fetched from (provenance).
pub const LOCATION_SOURCE: &str = "vgi_rpc.location.source";
/// Shared-memory pointer offset.
pub const SHM_OFFSET: &str = "vgi_rpc.shm_offset";
/// Shared-memory pointer length.
pub const SHM_LENGTH: &str = "vgi_rpc.shm_length";
/// Provenance a resolved shared-memory batch carries instead of the pointer keys: the
/// segment's name.
pub const SHM_SOURCE: &str = "vgi_rpc.shm_source";
/// Shared-memory segment named on a request.
pub const SHM_SEGMENT_NAME: &str = "vgi_rpc.shm_segment_name";
/// Shared-memory segment size named on a request.
pub const SHM_SEGMENT_SIZE: &str = "vgi_rpc.shm_segment_size";
/// HTTP stream continuation state.
pub const STREAM_STATE: &str = "vgi_rpc.stream_state#b64";
/// HTTP call state (the call-token half of a continuation).
pub const CALL_STATE: &str = "vgi_rpc.call_state#b64";
/// Transport option: shared memory supported.
pub const TRANSPORT_SHM: &str = "vgi_rpc.transport.shm";

/// Built-in method answering transport capabilities.
pub const TRANSPORT_OPTIONS_METHOD: &str = "__transport_options__";
/// HTTP control route vending upload/download URL pairs (`POST {prefix}/__upload_url__/init`).
pub const UPLOAD_URL_METHOD: &str = "__upload_url__";
/// Retired built-in method.
pub const DESCRIBE_METHOD: &str = "__describe__";
/// Protocol name of the reflection service every server hosts.
pub const REFLECTION_PROTOCOL: &str = "vgi_rpc.Reflection.v1";

/// Reflection extension (this implementation only, so vendor-prefixed): the method's doc text, as schema-level
/// metadata on the `params_schema_ipc` that `describe` reports. Readers that do not know
/// it ignore it; the protocol hash does not cover it.
pub const DESCRIBE_DOC: &str = "vgi_rpc_rs.doc";
/// Reflection extension (this implementation only): a JSON object mapping each parameter
/// that has a client-side default to that default's JSON text, as schema-level metadata on
/// the reported `params_schema_ipc`. Its presence also says the parameters without an
/// entry are required.
pub const DESCRIBE_PARAM_DEFAULTS: &str = "vgi_rpc_rs.param_defaults";

/// W3C trace context on a request batch (and, on HTTP, the header of the same name): the
/// caller's span, which the server's span for the call is a child of.
pub const TRACEPARENT: &str = "traceparent";
/// The length of a version-00 [`TRACEPARENT`] value (`00-<32 hex>-<16 hex>-<2 hex>`).
pub const TRACEPARENT_LEN: usize = 55;
/// W3C vendor trace state, sent beside [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";
