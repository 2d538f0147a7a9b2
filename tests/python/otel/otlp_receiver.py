"""A minimal OTLP/HTTP receiver for tests: decodes every export request with the
official ``opentelemetry-proto`` messages and appends it, as JSON, to a file.

Usage: ``python otlp_receiver.py OUT.jsonl``; prints ``PORT:<n>`` once listening on
127.0.0.1. Each line of OUT is ``{"path": "/v1/traces" | "/v1/metrics", "body": {...}}``
where ``body`` is the decoded ``Export*ServiceRequest`` (proto field names, ids in hex).
Anything that is not protobuf, or a path other than the two signals, is answered 400 so
that a wrong exporter configuration fails the test instead of passing silently.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_SIGNALS = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}
_lock = threading.Lock()


def _hex_ids(node: object) -> object:
    """Rewrites base64 trace/span ids (JSON mapping of bytes) as lowercase hex."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("trace_id", "span_id", "parent_span_id") and isinstance(value, str):
                out[key] = base64.b64decode(value).hex()
            else:
                out[key] = _hex_ids(value)
        return out
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


class _Handler(BaseHTTPRequestHandler):
    out_path = ""

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        signal = _SIGNALS.get(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if signal is None or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(400)
            self.end_headers()
            return
        request_type, response_type = signal
        message = request_type()
        try:
            message.ParseFromString(body)
        except Exception:  # a decode failure is the test's failure: answer 400
            self.send_response(400)
            self.end_headers()
            return
        decoded = _hex_ids(MessageToDict(message, preserving_proto_field_name=True))
        with _lock, open(self.out_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"path": self.path, "body": decoded}) + "\n")
        reply = response_type().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    _Handler.out_path = sys.argv[1]
    open(_Handler.out_path, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(f"PORT:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
