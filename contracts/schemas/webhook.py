"""What fal POSTs to a ``fal_webhook`` URL when a queued request finishes, and the public keys
(JWKS) its signature is checked against."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class WebhookPayload(BaseModel):
    """OK with the output as ``payload``, or ERROR with ``error`` (and the error body)."""

    request_id: str
    gateway_request_id: str
    status: Literal["OK", "ERROR"]
    payload: dict[str, Any] | None = Field(
        description="The output, or the error body; null when it is not JSON-serialisable."
    )
    error: str | None = None
    payload_error: str | None = Field(default=None, description="Why payload is null, when it is.")


class Jwk(BaseModel):
    """One public key: Ed25519 in JSON Web Key form (RFC 8037)."""

    model_config = ConfigDict(extra="allow")  # a JWKS may carry more members; readers skip them

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(description="The 32-byte public key, base64url without padding.")
    kid: str | None = Field(default=None, description="Key id (the RFC 7638 thumbprint).")
    use: Literal["sig"] | None = None
    alg: Literal["EdDSA"] | None = None


class Jwks(BaseModel):
    """The keys webhook signatures verify against (fal: rest.alpha.fal.ai/.well-known/jwks.json)."""

    keys: list[Jwk]
