"""Where webhooks may go: loopback and the inbox by default, refused with fal's 422 otherwise,
more when allowed (settings and CLI); checked again at connect time."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from mock_server.app import create_app
from mock_server.cli import build_parser
from mock_server.netguard import DestinationRefused, Resolver
from mock_server.settings import MockSettings
from mock_server.webhooks.targets import WebhookTargets
from tests.conftest import AUTH, LIPSYNC_INPUT
from tests.webhooks.conftest import Receiver, advance, submit

SUBMIT = "/queue/fal-ai/lipsync"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.1.20:8080/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://0.0.0.0:9/hook", "unspecified"),
        ("https://93.184.215.14/hook", "only loopback"),  # public: not without `public`
        ("https://hook.example/cb", "does not resolve"),  # .example never resolves
    ],
)
def test_a_refused_target_is_a_422_in_fals_shape_and_queues_nothing(
    mock: httpx.Client, url: str, why: str
) -> None:
    answer = mock.post(SUBMIT, params={"fal_webhook": url}, json=LIPSYNC_INPUT)

    assert answer.status_code == 422, answer.text
    [item] = answer.json()["detail"]
    assert item["loc"] == ["query", "fal_webhook"] and item["type"] == "value_error"
    assert why in item["msg"] and item["input"] == url
    assert mock.get("/_mock/requests").json()["requests"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://127.8.9.10:9/hook",
        "http://[::1]:9/hook",
        "http://localhost:9/hook",
        "http://inbox.fal-mock.invalid/any/path?x=1",
        "https://inbox.fal-mock.invalid/",
    ],
)
def test_loopback_and_the_inbox_are_accepted(mock: httpx.Client, url: str) -> None:
    answer = mock.post(SUBMIT, params={"fal_webhook": url}, json=LIPSYNC_INPUT)
    assert answer.status_code == 200, answer.text


async def test_allowed_hosts_open_more_targets_in_process() -> None:
    settings = MockSettings(policy="polls:5", webhook_allow_hosts="10.0.0.0/8,hooks.test,public")
    app = create_app(settings)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        for url in ("http://10.1.2.3/h", "http://hooks.test/h", "https://93.184.215.14/h"):
            answer = await c.post(SUBMIT, params={"fal_webhook": url}, json=LIPSYNC_INPUT)
            assert answer.status_code == 200, (url, answer.text)
        refused = await c.post(
            SUBMIT, params={"fal_webhook": "http://192.168.0.1/h"}, json=LIPSYNC_INPUT
        )
        assert refused.status_code == 422  # `public` is not the private ranges
        metadata = await c.post(
            SUBMIT, params={"fal_webhook": "http://169.254.169.254/"}, json=LIPSYNC_INPUT
        )
        assert metadata.status_code == 422


def test_the_cli_flag_and_the_environment_set_the_allow_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = build_parser().parse_args(
        ["serve", "--webhook-allow-hosts", "10.0.0.0/8, hooks.test", "--webhook-timeout", "2"]
    )
    given = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    settings = MockSettings(**given)
    assert settings.webhook_allow_hosts == frozenset({"10.0.0.0/8", "hooks.test"})
    assert settings.webhook_options().timeout == 2.0
    monkeypatch.setenv("FAL_MOCK_WEBHOOK_ALLOW_HOSTS", "public")
    monkeypatch.setenv("FAL_MOCK_WEBHOOK_TIMESTAMPS", "wall")
    from_env = MockSettings()
    assert (from_env.webhook_allow_hosts, from_env.webhook_timestamps) == ({"public"}, "wall")


def _dns(answers: dict[str, list[Sequence[str]]]) -> Resolver:
    """A resolver that gives each name's answers in turn (the last one repeats)."""

    def resolve(host: str, port: int) -> Sequence[str]:
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return resolve


def test_a_name_that_rebinds_after_the_submit_check_is_refused_at_connect_time() -> None:
    receiver = Receiver()
    port = receiver.server.server_address[1]
    try:
        targets = WebhookTargets(resolve=_dns({"hook.test": [["127.0.0.1"], ["10.9.9.9"]]}))
        url = f"http://hook.test:{port}/h"
        assert targets.refusal(url) is None  # submit: loopback
        with targets.client(timeout=2) as client, pytest.raises(DestinationRefused, match=r"10\.9"):
            client.post(url, content=b"{}")  # delivery: the name now says 10.9.9.9
        assert receiver.received == []

        steady = WebhookTargets(resolve=_dns({"hook.test": [["127.0.0.1"]]}))
        with steady.client(timeout=2) as client:
            assert client.post(url, content=b"{}").status_code == 200  # the control
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def test_the_outbox_view_and_the_inbox_on_the_control_plane(mock: httpx.Client) -> None:
    assert mock.post("/_mock/webhooks/inbox/answers", json={"status_codes": [502]}).json() == {
        "queued": [502]
    }
    bad = mock.post("/_mock/webhooks/inbox/answers", json={"status_codes": [99]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "status_codes"]
    request_id = submit(mock, "http://inbox.fal-mock.invalid/cb")
    advance(mock, 20)  # attempt 1 answered 502, attempt 2 (15 s later) 200

    view = mock.get("/_mock/webhooks").json()
    assert view["inbox_url"] == "http://inbox.fal-mock.invalid/"
    assert view["schedule"][0] == 0 and view["schedule"][-1] == 7200 and len(view["schedule"]) == 10
    assert view["key_id"] == mock.get("/rest/.well-known/jwks.json").json()["keys"][0]["kid"]
    [delivery] = view["deliveries"]
    assert delivery["request_id"] == request_id and delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [502, 200]
    received = mock.get("/_mock/webhooks/inbox").json()["received"]
    assert [r["status_code"] for r in received] == [502, 200]
    assert received[0]["url"] == "http://inbox.fal-mock.invalid/cb"
    assert received[0]["headers"]["X-Fal-Webhook-Request-Id"] == request_id
    assert received[0]["body"] == delivery["body"]
    assert mock.delete("/_mock/webhooks/inbox").json() == {"received": 0}
    assert mock.get("/_mock/webhooks/inbox").json() == {"received": []}
