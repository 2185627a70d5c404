"""The rest host: CDN tokens (fal-client) and upload initiation (@fal-ai/client)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from contracts.schemas import CdnToken, InitiatedUpload, InitiateUpload
from mock_server.http.deps import AuthDep, EngineDep, UrlsDep
from mock_server.http.hosts import PublicUrls
from mock_server.http.render import json_response
from mock_server.storage import PendingUpload

router = APIRouter(prefix="/rest", tags=["rest"])

TOKEN_EXPIRES_AT = "2099-12-31T23:59:59+00:00"
"""Fixed, so transcripts replay; far off, because fal-client compares it with the wall clock."""

StorageType = Annotated[str | None, Query(max_length=64)]


@router.post("/storage/auth/token")
async def cdn_token(
    _auth: AuthDep,
    engine: EngineDep,
    urls: UrlsDep,
    storage_type: StorageType = None,
    _body: Annotated[dict[str, Any] | None, Body(description="fal-client sends {}")] = None,
) -> JSONResponse:
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


def _initiated(pending: PendingUpload, urls: PublicUrls) -> dict[str, str]:
    return InitiatedUpload(
        upload_url=f"{urls.cdn}/uploads/{pending.upload_id}",
        file_url=urls.file_url(pending.file_id, pending.file_name),
    ).model_dump()
