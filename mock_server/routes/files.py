"""The cdn host: uploads in one request, in parts, by PUT; and serving files with Range."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse, Response

from contracts.operations import Header, Limits
from contracts.schemas import CdnMultipartStart, CdnUploadResult, MultipartComplete, UploadPart
from mock_server.http.deps import AuthDep, EngineDep, UrlsDep
from mock_server.http.errors import FalError, fal_error
from mock_server.http.hosts import PublicUrls
from mock_server.http.render import json_response
from mock_server.storage import StorageError, StoredFile, safe_file_name

router = APIRouter(prefix="/cdn", tags=["cdn"])

# ``:int`` in the paths keeps ".../complete" out of the part routes (405, not 422, for a PUT).
PartNumber = Annotated[int, Path(ge=1, le=Limits.PART_NUMBER_MAX)]
T = TypeVar("T")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.post("/files/upload")
async def upload(
    request: Request, _auth: AuthDep, engine: EngineDep, urls: UrlsDep
) -> JSONResponse:
    data = await request.body()
    stored = _storage(
        lambda: engine.store.put(
            data, _content_type(request), request.headers.get(Header.FILE_NAME)
        )
    )
    return json_response(_uploaded(stored, urls))


@router.post("/files/upload/multipart")
async def start_multipart(
    request: Request, _auth: AuthDep, engine: EngineDep, urls: UrlsDep
) -> JSONResponse:
    pending = engine.store.reserve(
        _content_type(request), request.headers.get(Header.FILE_NAME), multipart=True
    )
    start = CdnMultipartStart(
        access_url=urls.file_url(pending.file_id, pending.file_name), upload_id=pending.upload_id
    )
    return json_response(start.model_dump(by_alias=True))


@router.put("/files/{file_id}/{file_name}/multipart/{upload_id}/{part_number:int}")
async def put_cdn_part(
    file_id: str,
    file_name: str,
    upload_id: str,
    part_number: PartNumber,
    request: Request,
    engine: EngineDep,
) -> JSONResponse:
    _check_target(engine, upload_id, file_id)
    return _part(engine, upload_id, part_number, await request.body())


@router.post("/files/{file_id}/{file_name}/multipart/{upload_id}/complete")
async def complete_cdn_multipart(
    file_id: str,
    file_name: str,
    upload_id: str,
    body: Annotated[MultipartComplete, Body()],
    engine: EngineDep,
    urls: UrlsDep,
) -> JSONResponse:
    _check_target(engine, upload_id, file_id)
    return _complete(engine, upload_id, body, urls)


@router.put("/uploads/{upload_id}")
async def put_upload(
    upload_id: str, request: Request, engine: EngineDep, urls: UrlsDep
) -> JSONResponse:
    data = await request.body()
    content_type = request.headers.get("content-type")
    stored = _storage(lambda: engine.store.finish_single(upload_id, data, content_type))
    return json_response(_uploaded(stored, urls))


@router.put("/uploads/{upload_id}/{part_number:int}")
async def put_upload_part(
    upload_id: str, part_number: PartNumber, request: Request, engine: EngineDep
) -> JSONResponse:
    return _part(engine, upload_id, part_number, await request.body())


@router.post("/uploads/{upload_id}/complete")
async def complete_upload(
    upload_id: str, body: Annotated[MultipartComplete, Body()], engine: EngineDep, urls: UrlsDep
) -> JSONResponse:
    return _complete(engine, upload_id, body, urls)


@router.head("/files/{file_id}/{file_name}", include_in_schema=False)
@router.get("/files/{file_id}/{file_name}")
async def get_file(file_id: str, file_name: str, request: Request, engine: EngineDep) -> Response:
    found = engine.store.get(file_id)
    if found is None or found[0].file_name != file_name:
        raise fal_error(404, f"File {file_id}/{file_name} not found")
    stored, data = found
    headers = {
        "accept-ranges": "bytes",
        "etag": stored.etag,
        "content-disposition": f'inline; filename="{safe_file_name(stored.file_name)}"',
    }
    wanted = request.headers.get("range")
    if wanted is None:
        return Response(data, 200, headers=headers, media_type=stored.content_type)
    span = _byte_range(wanted, len(data))
    if span is None:
        raise FalError(
            416,
            {"detail": f"Range {wanted!r} not satisfiable for {len(data)} bytes"},
            {"content-range": f"bytes */{len(data)}"},
        )
    start, end = span
    headers["content-range"] = f"bytes {start}-{end}/{len(data)}"
    return Response(data[start : end + 1], 206, headers=headers, media_type=stored.content_type)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """One range of RFC 9110 (``a-b``, ``a-``, ``-n``), inclusive; None if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None or size == 0 or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else None


def _part(engine: EngineDep, upload_id: str, part_number: int, data: bytes) -> JSONResponse:
    etag = _storage(lambda: engine.store.put_part(upload_id, part_number, data))
    body = UploadPart(part_number=part_number, etag=etag).model_dump(by_alias=True)
    return json_response(body, 200, {"etag": etag})


def _complete(
    engine: EngineDep, upload_id: str, body: MultipartComplete, urls: PublicUrls
) -> JSONResponse:
    parts = [(part.part_number, part.etag) for part in body.parts]
    stored = _storage(lambda: engine.store.complete_multipart(upload_id, parts))
    return json_response(_uploaded(stored, urls))


def _check_target(engine: EngineDep, upload_id: str, file_id: str) -> None:
    pending = _storage(lambda: engine.store.pending(upload_id))
    if pending.file_id != file_id:
        raise fal_error(404, f"Upload {upload_id!r} does not belong to file {file_id!r}")


def _uploaded(stored: StoredFile, urls: PublicUrls) -> dict[str, object]:
    return CdnUploadResult(
        access_url=urls.file_url(stored.file_id, stored.file_name),
        content_type=stored.content_type,
        file_name=stored.file_name,
        file_size=stored.size,
    ).model_dump()


def _content_type(request: Request) -> str:
    return request.headers.get("content-type") or "application/octet-stream"


def _storage(action: Callable[[], T]) -> T:
    try:
        return action()
    except StorageError as exc:
        raise fal_error(exc.status_code, exc.detail) from None
