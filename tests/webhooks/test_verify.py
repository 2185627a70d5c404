"""contracts.webhooks: fal's signature scheme, verified and refused, with no mock involved."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import (
    JwksError,
    WebhookHeader,
    WebhookHeaderError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    fetch_jwks,
    sign_webhook,
    verify_webhook,
)
from contracts.webhooks import jwk_thumbprint, public_jwk, signed_message

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
JWKS = {"keys": [public_jwk(KEY.public_key())]}
BODY = json.dumps({"request_id": "r1", "gateway_request_id": "r1", "status": "OK", "payload": {}})
NOW = 1_750_000_000


def _signed(body: str = BODY, key: Ed25519PrivateKey = KEY, at: int = NOW) -> dict[str, str]:
    return sign_webhook(key, "r1", "user-1", at, body.encode())


def test_the_signed_message_is_four_lines_ending_in_the_body_hash() -> None:
    digest = hashlib.sha256(b"{}").hexdigest()
    assert signed_message("r1", "u", 17, b"{}") == f"r1\nu\n17\n{digest}".encode()


def test_a_signed_webhook_verifies_and_says_what_it_carries() -> None:
    verified = verify_webhook(_signed(), BODY, JWKS, now=NOW + 299)
    assert (verified.request_id, verified.user_id, verified.timestamp) == ("r1", "user-1", NOW)
    assert verified.key_id == JWKS["keys"][0]["kid"]
    assert verified.payload().status == "OK"


def test_header_names_are_case_insensitive_and_bytes_or_text_bodies_work() -> None:
    lower = {name.lower(): value for name, value in _signed().items()}
    assert verify_webhook(lower, BODY.encode(), JWKS, now=NOW).request_id == "r1"
    assert verify_webhook(httpx.Headers(_signed()), BODY, JWKS, now=NOW).request_id == "r1"


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        pytest.param(_signed(), BODY.replace("OK", "ERROR"), WebhookSignatureError, id="tampered"),
        pytest.param(_signed(key=OTHER_KEY), BODY, WebhookSignatureError, id="other-key"),
        pytest.param(
            {**_signed(), WebhookHeader.REQUEST_ID: "r2"}, BODY, WebhookSignatureError, id="id"
        ),
        pytest.param(
            {k: v for k, v in _signed().items() if k != WebhookHeader.SIGNATURE},
            BODY,
            WebhookHeaderError,
            id="unsigned",
        ),
        pytest.param(
            {**_signed(), WebhookHeader.SIGNATURE: "zz"}, BODY, WebhookHeaderError, id="not-hex"
        ),
        pytest.param(
            {**_signed(), WebhookHeader.TIMESTAMP: "soon"}, BODY, WebhookHeaderError, id="stamp"
        ),
    ],
)
def test_what_is_not_fal_signed_is_refused(
    headers: dict[str, str], body: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        verify_webhook(headers, body, JWKS, now=NOW)
    assert isinstance(caught.value, WebhookVerificationError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_timestamp_outside_five_minutes_is_refused(offset: int) -> None:
    with pytest.raises(WebhookTimestampError, match="at most 300 s") as caught:
        verify_webhook(_signed(), BODY, JWKS, now=NOW + offset)
    assert (caught.value.timestamp, caught.value.now) == (NOW, NOW + offset)
    assert verify_webhook(_signed(), BODY, JWKS, now=NOW + offset, tolerance=abs(offset))


def test_the_default_now_is_the_real_time() -> None:
    with pytest.raises(WebhookTimestampError):
        verify_webhook(_signed(at=NOW), BODY, JWKS)  # 2025: long ago


def test_any_key_of_the_jwks_may_verify_and_other_key_types_are_skipped() -> None:
    other = public_jwk(OTHER_KEY.public_key())
    jwks = {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, other, *JWKS["keys"]]}
    assert verify_webhook(_signed(), BODY, jwks, now=NOW).key_id == JWKS["keys"][0]["kid"]


@pytest.mark.parametrize(
    "jwks",
    [
        {},
        {"keys": []},
        {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]},
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "short"}]},
    ],
    ids=["no-keys", "empty", "no-ed25519", "bad-x"],
)
def test_an_unusable_jwks_is_a_jwks_error(jwks: dict[str, Any]) -> None:
    with pytest.raises(JwksError):
        verify_webhook(_signed(), BODY, jwks, now=NOW)


def test_the_jwk_is_rfc_8037_with_an_rfc_7638_thumbprint() -> None:
    jwk = public_jwk(KEY.public_key())
    assert {k: jwk[k] for k in ("kty", "crv", "use", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
    }
    assert len(jwk["x"]) == 43 and "=" not in jwk["x"]  # 32 bytes, base64url, no padding
    # RFC 8037 appendix A.3: the thumbprint of its example key.
    assert (
        jwk_thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_a_jwks_url_is_fetched_with_httpx() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json=JWKS)
        return httpx.Response(404, json={"detail": "nope"})

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        url = "https://keys.test/.well-known/jwks.json"
        assert fetch_jwks(url, client=client) == JWKS
        assert verify_webhook(_signed(), BODY, url, now=NOW, client=client).request_id == "r1"
        with pytest.raises(JwksError, match=re.escape("cannot fetch the JWKS at https://keys")):
            verify_webhook(_signed(), BODY, "https://keys.test/nope", now=NOW, client=client)
