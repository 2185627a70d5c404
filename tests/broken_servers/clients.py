"""Clients: broken ones that misuse a correct server, and correct flows to drive servers with."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import fal_client
import httpx

from tests.broken_servers.harness import APP, AUTH, LIPSYNC_INPUT, Served

# -- the broken clients ----------------------------------------------------------------------


def submit(base_url: str, client: httpx.Client) -> dict[str, Any]:
    response = client.post(f"{base_url}/queue/{APP}", json=LIPSYNC_INPUT, headers=AUTH)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def poll_until_completed(client: httpx.Client, status_url: str, interval: float) -> None:
    while True:
        answer = client.get(status_url, headers=AUTH).json()
        if answer["status"] == "COMPLETED":
            return
        time.sleep(interval)


def fetches_result_early(served: Served) -> None:
    """Fetches the result right after submitting, then again once COMPLETED."""
    with httpx.Client() as client:
        queued = submit(served.base_url, client)
        client.get(queued["response_url"], headers=AUTH)  # 400: still in progress
        poll_until_completed(client, queued["status_url"], 0.0)
        client.get(queued["response_url"], headers=AUTH).raise_for_status()


def polls_without_sleeping(served: Served) -> None:
    """The official client, told to poll with no interval at all."""
    fal_client.subscribe(APP, arguments=LIPSYNC_INPUT, interval=0.0)


def sends_invalid_body(served: Served) -> None:
    """A number where the video URL goes (the mock answers 422)."""
    with httpx.Client() as client:
        bad = {**LIPSYNC_INPUT, "video_url": 42}
        client.post(f"{served.base_url}/queue/{APP}", json=bad, headers=AUTH)


def forgets_credentials(served: Served) -> None:
    """No Authorization header (the mock answers 401)."""
    with httpx.Client() as client:
        client.post(f"{served.base_url}/queue/{APP}", json=LIPSYNC_INPUT)


def deletes_a_request(served: Served) -> None:
    """DELETE on a request, which the contract has no operation for (cancel is PUT .../cancel)."""
    with httpx.Client() as client:
        queued = submit(served.base_url, client)
        client.delete(queued["response_url"], headers=AUTH)


# -- flows of a correct client ---------------------------------------------------------------


def subscribe_with_logs(served: Served) -> None:
    fal_client.subscribe(APP, arguments=LIPSYNC_INPUT, with_logs=True, on_queue_update=_ignore)


def subscribe_expecting_an_error(served: Served) -> None:
    """For servers that make the official client fail: the transcript is what matters."""
    with suppress(KeyError, ValueError, fal_client.client.FalClientHTTPError):
        subscribe_with_logs(served)


def stream_status(served: Served) -> None:
    """What @fal-ai/client's streaming mode does: submit, one status stream, the result."""
    with httpx.Client() as client:
        queued = submit(served.base_url, client)
        url = f"{queued['status_url']}/stream?logs=1"
        with client.stream("GET", url, headers=AUTH) as response:
            response.read()
        client.get(queued["response_url"], headers=AUTH).raise_for_status()


def _ignore(update: object) -> None:
    return None
