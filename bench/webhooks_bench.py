"""What webhooks cost: two hours of retries on the virtual clock, a burst of deliveries, and
signing and verifying one webhook.

``python -m bench.webhooks_bench [--quick] [--json OUT] [--repeat N] [--burst N]``

- ``retries``: a live mock (``virtual`` policy), one submit whose webhook goes to a loopback
  receiver that always answers 503, then one ``POST /_mock/clock/advance`` past two hours and
  ``POST /_mock/webhooks/settle``: wall time for the ten attempts (real HTTP), each run after a
  reset. The first run also starts the dispatcher's thread and client; the median is of them all.
- ``burst``: N submits whose webhooks go to the mock's inbox, one advance, settle: wall time.
- ``crypto``: microseconds to sign one webhook (300-byte body) and to verify it against a JWKS.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.common import AUTH, QUEUE_PATH, SUBMIT_BODY, meta, write_json
from contracts import verify_webhook
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer
from mock_server.webhooks import INBOX_URL, MAX_ATTEMPTS, RETRY_SCHEDULE, signer_for


class _AlwaysFails(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysFails)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _submit(client: httpx.Client, webhook: str) -> None:
    answer = client.post(
        QUEUE_PATH,
        params={"fal_webhook": webhook},
        content=SUBMIT_BODY,
        headers={"content-type": "application/json"},
    )
    answer.raise_for_status()


def _advance_and_settle(client: httpx.Client, seconds: float) -> dict[str, Any]:
    client.post("/_mock/clock/advance", json={"seconds": seconds}).raise_for_status()
    settled = client.post("/_mock/webhooks/settle", json={"timeout": 120})
    settled.raise_for_status()
    view: dict[str, Any] = settled.json()
    return view


def retries(client: httpx.Client, repeat: int) -> dict[str, Any]:
    runs = []
    with _receiver() as url:
        for _ in range(repeat):
            client.post("/_mock/reset", json={}).raise_for_status()
            _submit(client, url)
            started = time.perf_counter()
            view = _advance_and_settle(client, RETRY_SCHEDULE[-1] + 100)
            runs.append(time.perf_counter() - started)
            [delivery] = view["deliveries"]
            if delivery["status"] != "failed" or len(delivery["attempts"]) != MAX_ATTEMPTS:
                raise RuntimeError(f"expected ten failed attempts, got {delivery}")
    return {
        "runs_ms": [round(r * 1000, 1) for r in runs],
        "median_ms": _ms(statistics.median(runs)),
    }


def burst(client: httpx.Client, count: int) -> dict[str, Any]:
    client.post("/_mock/reset", json={}).raise_for_status()
    for _ in range(count):
        _submit(client, INBOX_URL)
    started = time.perf_counter()
    view = _advance_and_settle(client, 600)
    elapsed = time.perf_counter() - started
    delivered = sum(d["status"] == "delivered" for d in view["deliveries"])
    if delivered != count:
        raise RuntimeError(f"{delivered} of {count} webhooks delivered")
    return {"deliveries": count, "ms": _ms(elapsed), "per_delivery_ms": _ms(elapsed / count)}


def crypto(rounds: int) -> dict[str, float]:
    signer = signer_for(0)
    body = b"x" * 300
    stamp = 1_735_689_600
    started = time.perf_counter()
    for _ in range(rounds):
        headers = signer.headers("r", stamp, body)
    signed = time.perf_counter() - started
    jwks = signer.jwks()
    started = time.perf_counter()
    for _ in range(rounds):
        verify_webhook(headers, body, jwks, now=stamp)
    verified = time.perf_counter() - started
    return {
        "sign_us": round(signed / rounds * 1e6, 1),
        "verify_us": round(verified / rounds * 1e6, 1),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--json", dest="json_out", metavar="OUT", help="write the figures here")
    parser.add_argument("--repeat", type=int, default=5, help="retries runs (default 5)")
    parser.add_argument("--burst", type=int, default=100, help="burst deliveries (default 100)")
    args = parser.parse_args(argv)
    repeat, count, rounds = (2, 10, 50) if args.quick else (args.repeat, args.burst, 1000)
    with (
        LiveServer(MockSettings(port=0, policy="virtual")) as live,
        httpx.Client(base_url=live.base_url, headers=dict(AUTH), timeout=120) as client,
    ):
        results = {
            "retries": retries(client, repeat),
            "burst": burst(client, count),
            "crypto": crypto(rounds),
        }
    print(f"retries: 10 attempts over 2 h (virtual), real HTTP: {results['retries']}")
    print(f"burst:   {results['burst']}")
    print(f"crypto:  {results['crypto']}")
    write_json(Path(args.json_out) if args.json_out else None, {**meta("webhooks"), **results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
