"""The lab's Terraform state store: moto's S3 on loopback, plus an STS/IAM endpoint that rejects.

The STS/IAM endpoint deliberately answers 403: pointing it at moto (which implements STS)
would let a backend without `skip_requesting_account_id` pass here and fail in production
(incident #3 of the homelab brief).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from moto.server import ThreadedMotoServer

REJECTION = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
    b"<Message>lab: STS/IAM are not available; S3-compatible stores have no STS "
    b"(set skip_requesting_account_id and skip_credentials_validation)</Message>"
    b"</Error></ErrorResponse>\n"
)


class RejectingHandler(BaseHTTPRequestHandler):
    """Answers every request with 403 AccessDenied, as an S3-compatible store without STS would."""

    def _reject(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(REJECTION)))
        self.end_headers()
        self.wfile.write(REJECTION)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _reject

    def log_message(self, fmt, *args):
        """Log rejections to the lab log, one line each."""
        sys.stderr.write("sts-reject: " + fmt % args + "\n")


def ensure_bucket(endpoint: str, bucket: str) -> None:
    """Create the state bucket on the local S3 endpoint if it does not exist yet."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="lab",
        aws_secret_access_key="lab",
    )
    names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in names:
        s3.create_bucket(Bucket=bucket)


def serve(s3_port: int, reject_port: int, bucket: str) -> None:
    """Run S3 and the STS/IAM rejector on 127.0.0.1 until SIGTERM or SIGINT."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    moto.start()
    reject = ThreadingHTTPServer(("127.0.0.1", reject_port), RejectingHandler)
    threading.Thread(target=reject.serve_forever, daemon=True).start()
    ensure_bucket(f"http://127.0.0.1:{s3_port}", bucket)
    print(f"s3 http://127.0.0.1:{s3_port} bucket {bucket}; sts/iam reject on http://127.0.0.1:{reject_port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    reject.shutdown()
    moto.stop()


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m lab.s3 --port 9000 --reject-port 9001 --bucket homelab-tfstate."""
    parser = argparse.ArgumentParser(prog="python -m lab.s3", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--reject-port", type=int, default=9001)
    parser.add_argument("--bucket", default="homelab-tfstate")
    args = parser.parse_args(argv)
    serve(args.port, args.reject_port, args.bucket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
