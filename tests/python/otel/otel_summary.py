"""Reduces what ``otlp_receiver.py`` captured to a canonical JSON summary, so two
exports (our worker's and the reference's, for the same calls) compare with ``==``.

Usage: ``python otel_summary.py CAPTURE.jsonl ROOT_SPAN_ID``. Kept: every span's name,
kind, status, attributes and events, and whether its parent is ROOT_SPAN_ID (the
calling client's span) and its trace that span's; every metric's name, unit,
description, kind and data points (attributes and counts; histogram bucket bounds).
Masked, because they differ run to run by nature: the server id (random per process),
exception stack traces (each language's own), times and durations (histogram sums,
min/max and bucket counts), and the resource (each SDK describes itself).
"""

from __future__ import annotations

import json
import sys


def _value(v: dict) -> object:
    for key in ("string_value", "bool_value", "double_value"):
        if key in v:
            return v[key]
    if "int_value" in v:
        return int(v["int_value"])
    return v


def _attrs(items: list[dict]) -> dict[str, object]:
    out = {}
    for item in items or []:
        value = _value(item.get("value", {}))
        if item["key"] == "rpc.vgi_rpc.server_id":
            value = "<server-id>"
        elif item["key"] == "exception.stacktrace":
            value = "<stacktrace>"
        out[item["key"]] = value
    return out


def summarize(path: str, root_span_id: str, root_trace_id: str) -> dict:
    spans, metrics = [], {}
    for line in open(path, encoding="utf-8"):
        record = json.loads(line)
        body = record["body"]
        if record["path"] == "/v1/traces":
            for rs in body.get("resource_spans", []):
                for ss in rs.get("scope_spans", []):
                    scope = ss.get("scope", {})
                    for span in ss.get("spans", []):
                        spans.append(
                            {
                                "start": int(span["start_time_unix_nano"]),
                                "scope": [scope.get("name"), scope.get("version")],
                                "name": span["name"],
                                "kind": span["kind"],
                                "parent_is_root": span.get("parent_span_id") == root_span_id,
                                "trace_is_root": span["trace_id"] == root_trace_id,
                                "status": span.get("status", {}),
                                "attributes": _attrs(span.get("attributes")),
                                "events": [
                                    {"name": e["name"], "attributes": _attrs(e.get("attributes"))}
                                    for e in span.get("events", [])
                                ],
                            }
                        )
        else:
            for rm in body.get("resource_metrics", []):
                for sm in rm.get("scope_metrics", []):
                    scope = sm.get("scope", {})
                    for metric in sm.get("metrics", []):
                        kind = "sum" if "sum" in metric else "histogram" if "histogram" in metric else "other"
                        data = metric.get(kind, {})
                        points = []
                        for p in data.get("data_points", []):
                            point = {"attributes": _attrs(p.get("attributes"))}
                            if kind == "sum":
                                point["value"] = int(p.get("as_int", 0))
                            elif kind == "histogram":
                                point["count"] = int(p.get("count", 0))
                                point["bounds"] = p.get("explicit_bounds", [])
                            points.append(point)
                        points.sort(key=lambda p: json.dumps(p["attributes"], sort_keys=True))
                        # The last export of a cumulative metric holds the totals.
                        metrics[metric["name"]] = {
                            "scope": [scope.get("name"), scope.get("version")],
                            "unit": metric.get("unit", ""),
                            "description": metric.get("description", ""),
                            "kind": kind,
                            "monotonic": data.get("is_monotonic", False),
                            "temporality": data.get("aggregation_temporality", ""),
                            "points": points,
                        }
    spans.sort(key=lambda s: s["start"])
    for span in spans:
        del span["start"]
    return {"spans": spans, "metrics": metrics}


if __name__ == "__main__":
    print(json.dumps(summarize(sys.argv[1], sys.argv[2], sys.argv[3]), indent=1, sort_keys=True))
