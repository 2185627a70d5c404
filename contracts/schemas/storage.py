"""Bodies of fal's storage flows.

fal-client: CDN token, then upload to the CDN. @fal-ai/client: initiate, then PUT the bytes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CdnToken(BaseModel):
    """A token for CDN uploads. ``expires_at`` carries a UTC offset: fal-client compares it
    with an aware datetime and fails on a naive one."""

    token: str
    token_type: str = "Bearer"
    base_url: str = Field(description="Origin of the CDN to upload to.")
    expires_at: str = Field(
        description="ISO-8601 with offset", examples=["2099-01-01T00:00:00+00:00"]
    )


class CdnUploadResult(BaseModel):
    """A stored file: ``access_url`` is where it is served."""

    model_config = ConfigDict(extra="allow")

    access_url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None


class CdnMultipartStart(BaseModel):
    """A multipart CDN upload: parts go to ``{access_url}/multipart/{uploadId}/{n}``."""

    model_config = ConfigDict(populate_by_name=True)

    access_url: str
    upload_id: str = Field(alias="uploadId")


class UploadPart(BaseModel):
    """One uploaded part, as both clients send it back on completion."""

    model_config = ConfigDict(populate_by_name=True)

    part_number: int = Field(alias="partNumber", ge=1, le=10_000)
    etag: str


class MultipartComplete(BaseModel):
    """The parts to assemble, in order of ``partNumber``."""

    parts: list[UploadPart] = Field(min_length=1)


class InitiateUpload(BaseModel):
    """What @fal-ai/client (and fal-client's fallback) sends to reserve an upload."""

    content_type: str = Field(default="application/octet-stream", max_length=255)
    file_name: str = Field(default="upload.bin", min_length=1, max_length=255)


class InitiatedUpload(BaseModel):
    """PUT the bytes to ``upload_url``; the file is then served at ``file_url``."""

    upload_url: str
    file_url: str
