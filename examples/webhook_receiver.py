"""A dialtone webhook receiver that verifies every signature (Standard Webhooks).

    pip install standardwebhooks
    python examples/webhook_receiver.py --port 8000 --secret whsec_...

Each verified event is printed as one JSON line on stdout and answered 204; a
request whose signature (or timestamp, within 5 minutes) does not verify is
answered 401 and printed nowhere. dialtone delivers at least once: the
`webhook-id` header (the event id) is the same on every retry of one event, so
keep the ids you have handled and skip a repeat. Events of one call (one
CloudEvents `subject`) arrive in order; `aggregateversion` numbers them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20  # dialtone's events are a few kB


def make_handler(secret: str) -> type[BaseHTTPRequestHandler]:
    webhook = Webhook(secret)
    seen: set[str] = set()
    # Requests are handled on several threads at once (dialtone sends many in
    # parallel): one at a time checks `seen` and prints its line whole.
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            if not 0 < length <= MAX_BODY:
                self._answer(413)
                return
            body = self.rfile.read(length)
            try:
                event = webhook.verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                self._answer(401)
                return
            with lock:
                if self.headers["webhook-id"] not in seen:  # a retry of a handled event: skip
                    seen.add(self.headers["webhook-id"])
                    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
                    sys.stdout.flush()
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            print(f"{self.address_string()} {format % args}", file=sys.stderr)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--secret", required=True, help="The subscription's whsec_ secret.")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.secret))
    print(f"listening on http://{args.host}:{server.server_address[1]}/", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
