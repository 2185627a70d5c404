"""fal's webhook signatures: check one in your handler's tests, or make one.

fal signs each webhook with Ed25519 over four lines, ``request_id``, ``user_id``,
``timestamp`` (Unix seconds) and the hex SHA-256 of the raw body, and sends them in the
``X-Fal-Webhook-*`` headers. The public keys are a JWKS: fal's at :data:`FAL_JWKS_URL`, the
mock's at ``/.well-known/jwks.json`` on its REST host (``http://127.0.0.1:PORT/rest/...`` live,
``https://rest.alpha.fal.ai/...`` in-process).

    from contracts.webhooks import verify_webhook, WebhookVerificationError

    verified = verify_webhook(request.headers, raw_body, jwks)   # a JWKS dict, or its URL
    payload = verified.payload()                                   # a WebhookPayload

Any failure raises a :class:`WebhookVerificationError` subclass saying what was wrong: a
missing or malformed header (:class:`WebhookHeaderError`), a timestamp outside the window
(:class:`WebhookTimestampError`), a signature no key verifies (:class:`WebhookSignatureError`), a
JWKS that cannot be fetched or holds no Ed25519 key (:class:`JwksError`). ``now`` is injectable,
so a webhook stamped on the mock's virtual clock verifies in a test.

``cryptography`` and ``httpx`` are imported on first use: importing ``contracts`` stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from contracts.schemas.webhook import WebhookPayload

if TYPE_CHECKING:
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "FAL_JWKS_URL",
    "TIMESTAMP_TOLERANCE",
    "JwksError",
    "VerifiedWebhook",
    "WebhookHeader",
    "WebhookHeaderError",
    "WebhookSignatureError",
    "WebhookTimestampError",
    "WebhookVerificationError",
    "fetch_jwks",
    "jwk_thumbprint",
    "public_jwk",
    "sign_webhook",
    "signed_message",
    "verify_webhook",
]

FAL_JWKS_URL: Final = "https://rest.alpha.fal.ai/.well-known/jwks.json"
"""Where fal publishes the keys its webhooks are signed with."""

TIMESTAMP_TOLERANCE: Final = 300
"""Seconds a webhook's timestamp may be from now, either way (fal's guidance)."""


class WebhookHeader:
    """The signature headers, as fal spells them (HTTP header names are case-insensitive)."""

    REQUEST_ID = "X-Fal-Webhook-Request-Id"
    USER_ID = "X-Fal-Webhook-User-Id"
    TIMESTAMP = "X-Fal-Webhook-Timestamp"
    SIGNATURE = "X-Fal-Webhook-Signature"
    ALL = (REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE)


class WebhookVerificationError(ValueError):
    """A webhook that must not be trusted; the message says why and what to check."""


class WebhookHeaderError(WebhookVerificationError):
    """A signature header is missing or malformed."""


class WebhookTimestampError(WebhookVerificationError):
    """The timestamp is outside the accepted window (a replay, or clocks apart)."""

    def __init__(self, message: str, timestamp: int, now: float, tolerance: float) -> None:
        super().__init__(message)
        self.timestamp = timestamp
        self.now = now
        self.tolerance = tolerance


class WebhookSignatureError(WebhookVerificationError):
    """No key of the JWKS verifies the signature: the body or a header was changed, or the
    webhook was signed with another key (another server, another seed)."""


class JwksError(WebhookVerificationError):
    """The JWKS could not be fetched or parsed, or holds no Ed25519 key."""


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """A webhook whose signature and timestamp checked out."""

    request_id: str
    user_id: str
    timestamp: int
    key_id: str | None
    """``kid`` of the key that verified it (None when the JWK has none)."""
    body: bytes

    def payload(self) -> WebhookPayload:
        """The body as the contract's model (``pydantic.ValidationError`` if it is not one)."""
        return WebhookPayload.model_validate_json(self.body)


def signed_message(request_id: str, user_id: str, timestamp: int | str, body: bytes) -> bytes:
    """What fal signs: the four lines, UTF-8, the last the hex SHA-256 of the raw body."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((request_id, user_id, str(timestamp), digest)).encode()


def sign_webhook(
    private_key: Ed25519PrivateKey, request_id: str, user_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The four signature headers for ``body``, signed with ``private_key`` as fal signs
    (for a handler test that makes its own webhooks; the mock signs with this too)."""
    signature = private_key.sign(signed_message(request_id, user_id, timestamp, body))
    return {
        WebhookHeader.REQUEST_ID: request_id,
        WebhookHeader.USER_ID: user_id,
        WebhookHeader.TIMESTAMP: str(timestamp),
        WebhookHeader.SIGNATURE: signature.hex(),
    }


def public_jwk(public_key: Ed25519PublicKey | bytes) -> dict[str, str]:
    """An Ed25519 public key as a JWK (RFC 8037), its ``kid`` the RFC 7638 thumbprint."""
    raw = public_key if isinstance(public_key, bytes) else _raw_public_bytes(public_key)
    x = _b64url(raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "kid": jwk_thumbprint(x),
        "use": "sig",
        "alg": "EdDSA",
    }


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK with public key ``x`` (base64url SHA-256 of its
    required members, sorted, no whitespace)."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def fetch_jwks(url: str = FAL_JWKS_URL, *, client: httpx.Client | None = None) -> dict[str, Any]:
    """GET a JWKS with httpx (``client``, or a new one with a 10 s timeout); :class:`JwksError`
    when it cannot be had. Verifiers may cache it (fal: up to 24 hours)."""
    import httpx

    try:
        if client is None:
            with httpx.Client(timeout=10.0) as own:
                response = own.get(url)
        else:
            response = client.get(url)
        response.raise_for_status()
        jwks = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise JwksError(f"cannot fetch the JWKS at {url}: {error}") from error
    if not isinstance(jwks, dict):
        raise JwksError(f"the JWKS at {url} is not a JSON object")
    return jwks


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    jwks: Mapping[str, Any] | str,
    *,
    now: float | None = None,
    tolerance: float = TIMESTAMP_TOLERANCE,
    client: httpx.Client | None = None,
) -> VerifiedWebhook:
    """Check a received webhook: its headers (any letter case), its timestamp within
    ``tolerance`` seconds of ``now`` (default: ``time.time()``; pass the mock's clock as Unix
    seconds for a virtual-clock test), and its Ed25519 signature against any key of ``jwks``
    (a JWKS dict, or its URL, fetched with ``client`` or a new httpx client).

    ``body`` must be the raw bytes received (a ``str`` is UTF-8 encoded): re-serialised JSON
    does not verify. Raises a :class:`WebhookVerificationError` subclass."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    request_id, user_id, stamp, signature = (_header(headers, name) for name in WebhookHeader.ALL)
    if not stamp.isascii() or not stamp.isdigit():
        raise WebhookHeaderError(
            f"{WebhookHeader.TIMESTAMP} must be Unix seconds (digits), got {stamp!r}"
        )
    timestamp = int(stamp)
    reference = time.time() if now is None else now
    if abs(reference - timestamp) > tolerance:
        raise WebhookTimestampError(
            f"{WebhookHeader.TIMESTAMP} {timestamp} is {reference - timestamp:+.0f} s from now "
            f"({reference:.0f}); at most {tolerance:g} s is accepted. A replayed webhook, or "
            "clocks apart: under the mock's virtual clock pass now= the mock's time.",
            timestamp,
            reference,
            tolerance,
        )
    try:
        signature_bytes = bytes.fromhex(signature)
    except ValueError:
        raise WebhookHeaderError(
            f"{WebhookHeader.SIGNATURE} is not hex: {signature[:40]!r}"
        ) from None
    keys = _ed25519_keys(fetch_jwks(jwks, client=client) if isinstance(jwks, str) else jwks)
    message = signed_message(request_id, user_id, timestamp, raw)
    from cryptography.exceptions import InvalidSignature

    for key_id, key in keys:
        try:
            key.verify(signature_bytes, message)
        except InvalidSignature:
            continue
        return VerifiedWebhook(request_id, user_id, timestamp, key_id, raw)
    tried = ", ".join(str(key_id) for key_id, _ in keys)
    raise WebhookSignatureError(
        f"no key of the JWKS ({tried}) verifies the signature of webhook {request_id!r}: the "
        "body or a header was changed, or another key signed it (another server or seed). "
        "Verify the raw body bytes as received."
    )


# -- helpers --------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if value is None or not value.strip():
        raise WebhookHeaderError(f"the webhook has no {name} header: is it a fal webhook?")
    return value.strip()


def _ed25519_keys(jwks: Mapping[str, Any]) -> list[tuple[str | None, Ed25519PublicKey]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise JwksError("the JWKS has no `keys` list")
    keys: list[tuple[str | None, Ed25519PublicKey]] = []
    for entry in _mappings(entries):
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue  # other key types may sit beside fal's: skip them
        try:
            raw = _b64url_decode(str(entry.get("x", "")))
            keys.append((entry.get("kid"), Ed25519PublicKey.from_public_bytes(raw)))
        except ValueError as error:
            raise JwksError(f"JWK {entry.get('kid')!r} has an unusable `x`: {error}") from error
    if not keys:
        raise JwksError("the JWKS holds no Ed25519 key (kty OKP, crv Ed25519)")
    return keys


def _mappings(items: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    return (item for item in items if isinstance(item, Mapping))


def _raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not base64url: {error}") from error
