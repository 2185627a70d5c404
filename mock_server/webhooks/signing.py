"""The mock's webhook signing key: Ed25519, derived from the seed, so the same seed gives the
same key, the same JWKS and (Ed25519 being deterministic) the same signatures."""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.webhooks import public_jwk, sign_webhook

USER_ID: Final = "fal-mock-user"
"""``X-Fal-Webhook-User-Id`` of every webhook the mock sends (fal: the submitting user's id)."""

_KEY_DERIVATION: Final = "fal-lipsync-mock webhook signing key, seed {seed}"


class WebhookSigner:
    """Signs webhooks with the key of one seed and publishes its public half."""

    def __init__(self, seed: int) -> None:
        secret = hashlib.sha256(_KEY_DERIVATION.format(seed=seed).encode()).digest()
        self.seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(secret)
        self.jwk: dict[str, str] = public_jwk(self._key.public_key())

    @property
    def key_id(self) -> str:
        return self.jwk["kid"]

    def jwks(self) -> dict[str, Any]:
        """The JWKS the mock serves at ``/.well-known/jwks.json``."""
        return {"keys": [dict(self.jwk)]}

    def headers(self, request_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The four ``X-Fal-Webhook-*`` headers for ``body``."""
        return sign_webhook(self._key, request_id, USER_ID, timestamp, body)


@functools.lru_cache(maxsize=8)
def signer_for(seed: int) -> WebhookSigner:
    """The signer of ``seed`` (made once: deriving costs a hash and a key setup)."""
    return WebhookSigner(seed)
