"""Pydantic models of every body the fal contract exchanges."""

from contracts.schemas.errors import ErrorBody, ValidationErrorBody, ValidationErrorItem
from contracts.schemas.files import MEDIA_URL_PATTERN, File, MediaUrl
from contracts.schemas.lipsync import (
    EXAMPLE_AUDIO_URL,
    EXAMPLE_VIDEO_URL,
    SYNC_MODES,
    LipsyncInput,
    LipsyncOutput,
    SyncMode,
)
from contracts.schemas.queue import (
    CancelResponse,
    CancelStatusName,
    CompletedStatus,
    InProgressStatus,
    InQueueStatus,
    LogLevel,
    Metrics,
    QueueStatus,
    RequestLog,
    RequestUrls,
    SubmitResponse,
)
from contracts.schemas.storage import (
    CdnMultipartStart,
    CdnToken,
    CdnUploadResult,
    InitiatedUpload,
    InitiateUpload,
    MultipartComplete,
    UploadPart,
)
from contracts.schemas.webhook import Jwk, Jwks, WebhookPayload

__all__ = [
    "EXAMPLE_AUDIO_URL",
    "EXAMPLE_VIDEO_URL",
    "MEDIA_URL_PATTERN",
    "SYNC_MODES",
    "CancelResponse",
    "CancelStatusName",
    "CdnMultipartStart",
    "CdnToken",
    "CdnUploadResult",
    "CompletedStatus",
    "ErrorBody",
    "File",
    "InProgressStatus",
    "InQueueStatus",
    "InitiateUpload",
    "InitiatedUpload",
    "Jwk",
    "Jwks",
    "LipsyncInput",
    "LipsyncOutput",
    "LogLevel",
    "MediaUrl",
    "Metrics",
    "MultipartComplete",
    "QueueStatus",
    "RequestLog",
    "RequestUrls",
    "SubmitResponse",
    "SyncMode",
    "UploadPart",
    "ValidationErrorBody",
    "ValidationErrorItem",
    "WebhookPayload",
]
