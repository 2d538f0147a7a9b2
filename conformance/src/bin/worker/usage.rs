//! The worker's `--help` text, in the reference worker's argparse layout.

pub(crate) const USAGE: &str = "\
usage: vgi-rpc-conformance-worker [-h] [--pipe | --http [PORT] | --unix PATH | --tcp [HOST:]PORT]
                                  [--describe] [--threaded] [--max-connections N]
                                  [--memory-budget BYTES] [--kind-probe] [--access-log PATH] [--access-log-debug]
                                  [--fake-storage URL] [--externalize-threshold N]
                                  [--s3-bucket B [--s3-endpoint URL] [--s3-region R]
                                   [--s3-prefix P] [--s3-presign-ttl SECS]]
                                  [--compression {none,zstd}] [--max-fetch-bytes N]
                                  [--max-decompressed-fetch-bytes N]
                                  [--reject-localhost-redirects]
                                  [--max-externalized-response-bytes N]
                                  [--host H] [--port N] [--prefix P] [--max-request-bytes N]
                                  [--max-response-bytes N] [--no-compression] [--token-key HEX]
                                  [--cors-origin ORIGIN]
                                  [--identity {off,both,introspect-only,grants}]
                                  [--reject-all-auth] [--fail-serve-start-once]
                                  [--proof-mode {off,allow,require}]
                                  [--proof-origin-id ID] [--proof-secrets KID:HEX,...]
                                  [--proof-skew N] [--proof-no-replay-cache]
                                  [--no-sticky] [--no-sticky-echo] [--sticky-ttl S]
                                  [--sticky-auth]
                                  [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
                                  [--otlp-endpoint URL] [--otel-claim CLAIM=ATTRIBUTE]

vgi-rpc conformance test server (Rust)

options:
  -h, --help                 show this help message and exit
  --pipe                     serve over stdin/stdout pipe (default)
  --http [PORT]              serve over HTTP (PORT 0 or absent: any free port); prints PORT:<n>
  --unix PATH                serve over a Unix domain socket
  --tcp [HOST:]PORT          serve over a TCP socket, host defaults to 127.0.0.1
  --describe                 accepted for compatibility; vgi_rpc.Reflection.v1 is always hosted
  --threaded                 accept connections concurrently (unix/tcp only)
  --max-connections N        max concurrent connections (requires --threaded)
  --kind-probe               also host _KindProbe (report_transport_kind), the shared
                             suite's transport-kind probe
  --memory-budget BYTES      large request bodies held at once across socket connections
                             (default 1 GiB; 0: no budget); over it: RESOURCE_EXHAUSTED
  --access-log PATH          append JSONL access-log records to PATH
  --access-log-debug         log the access channel at DEBUG (payloads are never logged)
  --fake-storage URL         base URL of a fake-storage backend: batches above the
                             threshold are uploaded there and sent as pointers
  --externalize-threshold N  bytes above which batches are externalized (default 4096)
  --s3-bucket B              externalize into S3 bucket B (AWS_ACCESS_KEY_ID and
                             AWS_SECRET_ACCESS_KEY from the environment)
  --s3-endpoint URL          S3-API endpoint (an S3-compatible server; default AWS)
  --s3-region R              region (default AWS_REGION, else us-east-1)
  --s3-prefix P              key prefix of uploaded objects (default vgi-rpc/)
  --s3-presign-ttl SECS      lifetime of the signed GET URLs (default 3600)
  --compression C            none or zstd: how externalized objects are stored
  --max-fetch-bytes N        largest stored object fetched for a pointer input
  --max-decompressed-fetch-bytes N
                             largest pointer input once decompressed
  --reject-localhost-redirects
                             fetch pointer inputs from 127.0.0.1 only (TEST ONLY)
  --max-externalized-response-bytes N
                             HTTP: most one answer may upload to storage
                             (over HTTP --fake-storage also vends upload URLs, and
                             --max-request-bytes defaults to the threshold)
  --host H                   HTTP: address to bind (default 127.0.0.1)
  --port N                   HTTP: port to bind (same as --http N)
  --prefix P                 HTTP: path prefix of every route (default none)
  --max-request-bytes N      HTTP: largest request body (advertised; 413 beyond)
  --max-response-bytes N     HTTP: largest response body (ResponseTooLargeError beyond)
  --no-compression           HTTP: never compress answers (requests are still decoded)
  --cors-origin ORIGIN       HTTP: let browsers on ORIGIN call (repeatable; * for any)
  --identity MODE            host vgi_rpc.Identity.v2 with the conformance fixture policy:
                             both hooks, introspect-only, or grants (sealed grants with the
                             fixture keys, plus conformance.Whoami.v1); over HTTP, the caller
                             comes from X-Conformance-Principal (TEST ONLY: spoofable)
  --proof-mode MODE          HTTP: proxy proof (VGI-Proxy-Proof) off, allow or require
  --proof-origin-id ID       HTTP: this worker's origin id (default conformance-origin)
  --proof-secrets LIST       HTTP: the proxies' secrets, kid:64-hex,kid:64-hex
  --proof-skew N             HTTP: proof time window half-width in seconds (default 30)
  --proof-no-replay-cache    HTTP: accept a replayed proof nonce within the window
  --fail-serve-start-once    fail the first on_serve_start notification, then accept its
                             retry (TEST ONLY)
  --reject-all-auth          HTTP: refuse every request 401 (reason from
                             X-Conformance-Auth-Reason); /health stays open (TEST ONLY)
  --token-key HEX            HTTP: 64 hex digits sealing stream and session tokens;
                             workers sharing it continue each other's streams (default:
                             random)
  --no-sticky                HTTP: no sticky sessions (default: on, as the reference's
                             conformance worker)
  --no-sticky-echo           HTTP: no x-vgi-conformance-echo echo header
  --sticky-ttl S             HTTP: default sticky session TTL in seconds (default 300)
  --sticky-auth              HTTP: the caller comes from X-Conformance-Principal
                             (anonymous without it; TEST ONLY: spoofable)
  --tls-cert PEM             HTTP: serve HTTPS with this certificate chain (needs --tls-key)
  --tls-key PEM              HTTP: the private key of --tls-cert
  --tls-client-ca PEM        HTTP: require client certificates from this CA; the caller is
                             the certificate's CN (domain mtls), and conformance.Whoami.v1
                             is hosted
  --otlp-endpoint URL        export OpenTelemetry spans and metrics of every call over
                             OTLP/HTTP to URL (also on when OTEL_EXPORTER_OTLP_ENDPOINT is set)
  --otel-claim CLAIM=ATTR    put the caller's claim CLAIM on server spans as ATTR (repeatable)";
