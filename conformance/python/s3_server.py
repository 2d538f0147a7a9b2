"""A real S3-API server (moto's) on a free loopback port, for the external-storage tests.

Creates the buckets named on the command line, then prints ``PORT:<n>`` and serves until
stdin closes or the process is killed. Every request is logged to stderr as werkzeug
logs it (``"GET /bucket/key?... HTTP/1.1" 206 -``), which is how the tests count the
range requests a reader really made.

    python s3_server.py BUCKET [BUCKET ...]
"""

import logging
import sys

import boto3
import werkzeug.serving
from moto.server import ThreadedMotoServer

# Plain log lines (werkzeug colours statuses other than 200 even into a file).
werkzeug.serving._log_add_style = False


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in sys.argv[1:]:
        s3.create_bucket(Bucket=bucket)
    print(f"PORT:{port}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
