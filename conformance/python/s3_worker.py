"""The reference conformance worker over stdin/stdout, externalizing into S3.

The reference's own ``vgi-rpc-conformance`` has only ``--fake-storage``; this is its
``main()`` with the reference's ``S3Storage`` (boto3) instead, so that OUR client meets
what a Python worker really writes to an S3-API server:

    python s3_worker.py ENDPOINT BUCKET THRESHOLD

Credentials and region come from the environment (``AWS_ACCESS_KEY_ID``, ...).
"""

import sys

from vgi_rpc.conformance._cli import _loopback_only_validator
from vgi_rpc.conformance._impl import ConformanceServiceImpl
from vgi_rpc.conformance._protocol import ConformanceService
from vgi_rpc.conformance.secondary import conformance_extra_protocols
from vgi_rpc.external import ExternalLocationConfig
from vgi_rpc.rpc import RpcServer, serve_stdio
from vgi_rpc.s3 import S3Storage


def main() -> None:
    endpoint, bucket, threshold = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = ExternalLocationConfig(
        storage=S3Storage(bucket=bucket, endpoint_url=endpoint, region_name="us-east-1"),
        externalize_threshold_bytes=threshold,
        url_validator=_loopback_only_validator,
    )
    impl = ConformanceServiceImpl(external_storage=config.storage, external_compression=None)
    server = RpcServer(
        ConformanceService,
        impl,
        enable_describe=True,
        external_location=config,
        extra_protocols=conformance_extra_protocols(),
    )
    serve_stdio(server)


if __name__ == "__main__":
    main()
