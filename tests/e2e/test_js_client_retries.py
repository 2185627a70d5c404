"""@fal-ai/client 1.10.1's retries (PROTOCOL.md §11) against injected faults: 429 on submit and
500 on a status poll are retried (the status config lists 500; fal-client does not retry it), and
so is a submit whose connection was dropped (undici's "other side closed").

Needs node >= 18 and ``npm ci --prefix tests/e2e/js``; skipped otherwise.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e import js_harness
from tests.e2e.js_harness import ENDPOINT_PATH, drive, entries_for, journal, missing_prerequisite

pytestmark = pytest.mark.node

if (reason := missing_prerequisite()) is not None:
    pytest.skip(reason, allow_module_level=True)

mode = js_harness.mode
base_url = js_harness.base_url


def test_subscribe_rides_over_a_429_and_a_status_500(base_url: str, mode: str) -> None:
    rules = [
        {"kind": "rate_limited", "times": 1, "operations": ["submitLipsync"]},
        {"kind": "internal_error", "times": 1, "operations": ["getRequestStatus"]},
    ]
    httpx.post(f"{base_url}/_mock/faults", json={"rules": rules}).raise_for_status()
    out = drive("subscribe_polling", base_url, mode)
    assert out["data"]["video"]["content_type"] == "video/mp4"
    entries = journal(base_url)
    submits = entries_for(entries, "queue", "POST", ENDPOINT_PATH)
    assert [e["status_code"] for e in submits] == [429, 200]
    request_id = out["requestId"]
    polls = entries_for(entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{request_id}/status")
    assert polls[0]["status_code"] == 500 and polls[0]["extra"]["fault"] == "internal_error"
    assert all(e["status_code"] in (200, 202) for e in polls[1:])


def test_subscribe_rides_over_a_dropped_connection(base_url: str, mode: str) -> None:
    rules = [{"kind": "drop_connection", "times": 1, "operations": ["submitLipsync"]}]
    httpx.post(f"{base_url}/_mock/faults", json={"rules": rules}).raise_for_status()
    out = drive("subscribe_polling", base_url, mode, transport_errors=1)
    assert out["data"]["video"]["content_type"] == "video/mp4"
    [dropped] = [call for call in out["trace"] if "error" in call]
    assert dropped["error"]["cause"]["code"] == "UND_ERR_SOCKET"  # "other side closed"
    submits = entries_for(journal(base_url), "queue", "POST", ENDPOINT_PATH)
    assert [(e["status_code"], e["extra"].get("fault")) for e in submits] == [
        (0, "drop_connection"),
        (200, None),
    ]
