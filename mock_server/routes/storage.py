"""The rest host: CDN tokens (fal-client) and upload initiation (@fal-ai/client)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from contracts.operations import Limits
from contracts.schemas import CdnToken, InitiatedUpload, InitiateUpload
from mock_server.http.deps import AuthDep, EngineDep, UrlsDep
from mock_server.http.errors import validation_error
from mock_server.http.hosts import PublicUrls
from mock_server.http.render import json_response
from mock_server.storage import PendingUpload

router = APIRouter(prefix="/rest", tags=["rest"])

TOKEN_EXPIRES_AT = "2099-12-31T23:59:59+00:00"
"""Fixed, so transcripts replay; far off, because fal-client compares it with the wall clock."""

StorageType = Annotated[str | None, Query(max_length=Limits.STORAGE_TYPE_LENGTH)]


@router.post("/storage/auth/token")
async def cdn_token(
    _auth: AuthDep,
    engine: EngineDep,
    urls: UrlsDep,
    request: Request,
    storage_type: StorageType = None,
) -> JSONResponse:
    await _optional_json_object(request)
    token = CdnToken(
        token=engine.issue_token(),
        token_type="Bearer",
        base_url=urls.cdn,
        expires_at=TOKEN_EXPIRES_AT,
    )
    return json_response(token.model_dump(mode="json"))


@router.post("/storage/upload/initiate")
async def initiate_upload(
    _auth: AuthDep,
    engine: EngineDep,
    urls: UrlsDep,
    body: Annotated[InitiateUpload, Body()],
    storage_type: StorageType = None,
) -> JSONResponse:
    pending = engine.store.reserve(body.content_type, body.file_name, multipart=False)
    return json_response(_initiated(pending, urls))


@router.post("/storage/upload/initiate-multipart")
async def initiate_multipart(
    _auth: AuthDep,
    engine: EngineDep,
    urls: UrlsDep,
    body: Annotated[InitiateUpload, Body()],
    storage_type: StorageType = None,
) -> JSONResponse:
    pending = engine.store.reserve(body.content_type, body.file_name, multipart=True)
    return json_response(_initiated(pending, urls))


async def _optional_json_object(request: Request) -> None:
    """fal-client sends ``{}``; no body is fine too, anything but an object is not."""
    raw = await request.body()
    if not raw.strip():
        return
    try:
        body = json.loads(raw)
    except ValueError:
        raise validation_error(["body"], "The body is not valid JSON", "json_invalid") from None
    if not isinstance(body, dict):
        raise validation_error(["body"], "Input should be a JSON object", "dict_type", body)


def _initiated(pending: PendingUpload, urls: PublicUrls) -> dict[str, str]:
    return InitiatedUpload(
        upload_url=f"{urls.cdn}/uploads/{pending.upload_id}",
        file_url=urls.file_url(pending.file_id, pending.file_name),
    ).model_dump()
