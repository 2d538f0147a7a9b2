"""The reference client against a worker that externalizes into S3.

    python s3_client.py ROWS WORKER_COMMAND...

Calls ``produce_large_batches(rows_per_batch=ROWS, batch_count=1)`` over a pipe with
the reference's ``ExternalLocationConfig`` (loopback URLs only, default fetch settings:
HEAD or ranged probe, parallel range GETs from 64 MiB), checks every row, and prints
``OK rows=<n> bytes=<b>``.
"""

import sys

import pyarrow.compute as pc

from vgi_rpc.conformance._cli import _loopback_only_validator
from vgi_rpc.conformance._protocol import ConformanceService
from vgi_rpc.external import ExternalLocationConfig
from vgi_rpc.rpc import connect


def main() -> None:
    rows = int(sys.argv[1])
    command = sys.argv[2:]
    config = ExternalLocationConfig(storage=None, url_validator=_loopback_only_validator)
    total = 0
    with connect(ConformanceService, command, external_location=config) as proxy:
        seen = 0
        for batch in proxy.produce_large_batches(rows_per_batch=rows, batch_count=1):
            index = batch.batch.column("index")
            value = batch.batch.column("value")
            n = len(index)
            steps = pc.subtract(index[1:], index[:-1])
            if (
                n == 0
                or index[0].as_py() != seen
                or not pc.all(pc.equal(steps, 1)).as_py()
                or not pc.all(pc.equal(value, pc.multiply(index, 10))).as_py()
            ):
                raise SystemExit(f"wrong rows from {seen}")
            seen += n
            total += batch.batch.nbytes
        if seen != rows:
            raise SystemExit(f"expected {rows} rows, got {seen}")
    print(f"OK rows={seen} bytes={total}", flush=True)


if __name__ == "__main__":
    main()
