"""fal's ``File`` object and the URL forms an input file may take."""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

# Whitespace and control characters, spelled out: ``\s`` means different sets in Python, ECMA-262
# (JSON Schema) and Rust regexes, and the validator and the spec must agree on every string.
_NOT_URL: Final = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
MEDIA_URL_PATTERN: Final = (
    rf"^(https?://[^{_NOT_URL}/?#@]+[^{_NOT_URL}]*|data:[^,{_NOT_URL}]*,[^{_NOT_URL}]*)$"
)
"""http(s) URLs with a host, and data: URIs. Written once: the validator and the spec share it."""

_MEDIA_URL = re.compile(MEDIA_URL_PATTERN)


def _check_media_url(value: str) -> str:
    if not _MEDIA_URL.fullmatch(value):  # not match(): Python's $ also matches before "\n"
        scheme = value.split(":", 1)[0] if ":" in value else ""
        if scheme and scheme.isalpha() and scheme.lower() not in ("http", "https", "data"):
            raise ValueError(
                f"unsupported URL scheme {scheme!r}: use an http(s) URL or a data: URI"
            )
        raise ValueError("must be an http(s) URL or a data: URI")
    return value


MediaUrl = Annotated[
    str,
    AfterValidator(_check_media_url),
    WithJsonSchema({"type": "string", "pattern": MEDIA_URL_PATTERN}),
]
"""A URL fal will fetch an input file from: ``http(s)://...`` or ``data:<mime>;base64,...``."""


class File(BaseModel):
    """A file fal stores or returns: where to download it and what it is."""

    model_config = ConfigDict(extra="allow")

    url: str = Field(description="Where to download the file.")
    content_type: str | None = Field(
        default=None, description="The file's MIME type.", examples=["video/mp4"]
    )
    file_name: str | None = Field(
        default=None, description="The file's name.", examples=["output.mp4"]
    )
    file_size: int | None = Field(
        default=None, ge=0, description="Size in bytes.", examples=[123456]
    )
    file_data: str | None = Field(
        default=None, description="The file's bytes, base64-encoded, when fal inlines them."
    )
