"""Every error leaves in fal's shape: ``{"detail": str}`` or the 422 list form. Never a 500."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mock_server.http.hosts import HOST_KEY

_FASTAPI_BODY_ERROR = "There was an error parsing the body"


class FalError(Exception):
    """Answer with this status, body and headers (the body already in fal's shape)."""

    def __init__(
        self, status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body.get("detail") or body)
        self.status_code = status_code
        self.body = body
        self.headers = headers or {}


def fal_error(status_code: int, detail: str, **extra: Any) -> FalError:
    return FalError(status_code, {"detail": detail, **extra})


def validation_error(
    loc: list[str | int], msg: str, kind: str = "value_error", value: Any = None
) -> FalError:
    return FalError(422, {"detail": [{"loc": loc, "msg": msg, "type": kind, "input": value}]})


def install_error_handlers(app: FastAPI) -> None:
    async def on_fal_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FalError)
        return JSONResponse(exc.body, exc.status_code, headers=exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {**error, "ctx": _plain_ctx(error.get("ctx"))} if "ctx" in error else error
            for error in exc.errors()
        ]
        return JSONResponse({"detail": _finite(jsonable_encoder(errors))}, 422)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail
        if exc.status_code == 400 and detail == _FASTAPI_BODY_ERROR:
            # FastAPI answers 400 for a JSON body that is not UTF-8; fal's shape for any body
            # that does not parse is a 422 json_invalid.
            item = {
                "loc": ["body"],
                "msg": "The body is not valid JSON (not UTF-8 text)",
                "type": "json_invalid",
            }
            return JSONResponse({"detail": [item]}, 422)
        if exc.status_code == 404 and detail == "Not Found":
            detail = _not_found_help(request)
        elif exc.status_code == 405:
            detail = f"Method {request.method} is not allowed on {request.url.path}"
        return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)

    app.add_exception_handler(FalError, on_fal_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: a JSON body may carry them (Python's parser
    takes ``NaN`` and ``1e999``), a JSON answer may not, and echoing one must not turn a 422 into
    a 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _plain_ctx(ctx: Any) -> Any:
    # pydantic puts the raised exception object in ctx; fal bodies carry plain JSON.
    if isinstance(ctx, dict):
        return {k: (str(v) if isinstance(v, Exception) else v) for k, v in ctx.items()}
    return ctx


def _not_found_help(request: Request) -> str:
    if request.scope.get(HOST_KEY) is None:
        return (
            f"No route for {request.method} {request.url.path}. fal's hosts are served by Host "
            "header (queue.fal.run, fal.run, rest.fal.ai, v3.fal.media), under the path "
            "prefixes /queue, /run, /rest and /cdn, or through /api/fal/proxy; the mock's "
            "control plane is under /_mock and its docs at /docs."
        )
    return f"No route for {request.method} {request.url.path}"
