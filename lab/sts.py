"""The lab's STS/IAM endpoint: it rejects every call, as an S3-compatible store without STS would.

The endpoint deliberately answers 403: pointing it at a store that implements STS would let a
backend without `skip_requesting_account_id` pass here and fail in production (incident #3 of the
homelab brief). The state store itself is lab/s3.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


def serve(reject_port: int) -> None:
    """Run the STS/IAM rejector on 127.0.0.1 until SIGTERM or SIGINT."""
    reject = ThreadingHTTPServer(("127.0.0.1", reject_port), RejectingHandler)
    threading.Thread(target=reject.serve_forever, daemon=True).start()
    print(f"sts/iam reject on http://127.0.0.1:{reject_port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    reject.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m lab.sts --port 9001."""
    parser = argparse.ArgumentParser(prog="python -m lab.sts", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
