"""Input and output of ``fal-ai/lipsync``."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.schemas.files import File, MediaUrl

SyncMode = Literal["cut_off", "loop", "bounce", "silence", "remap"]

SYNC_MODES: Final[tuple[SyncMode, ...]] = ("cut_off", "loop", "bounce", "silence", "remap")

EXAMPLE_VIDEO_URL: Final = "https://fal.media/files/koala/8teUPbRRMtAUTORDvqy0l.mp4"
EXAMPLE_AUDIO_URL: Final = "https://fal.media/files/lion/vyFWygmZsIZlUO4s0nr2n.wav"
"""The example inputs of fal's docs page for the endpoint; the mock serves them offline."""


class LipsyncInput(BaseModel):
    """What a client sends to ``fal-ai/lipsync``. Unknown fields are ignored, as fal does."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}]
        },
    )

    video_url: MediaUrl = Field(description="URL of the video with the face to lip-sync.")
    audio_url: MediaUrl = Field(description="URL of the speech to sync the mouth to.")
    sync_mode: SyncMode = Field(
        default="cut_off",
        description=(
            "What to do when audio and video lengths differ. This is the option fal's sibling "
            "lip-sync endpoints (fal-ai/sync-lipsync) take: cut_off trims to the shorter, loop "
            "repeats the video, bounce plays it back and forth, silence pads the audio with "
            "silence to the video's length, remap stretches the video to the audio's length."
        ),
    )


class LipsyncOutput(BaseModel):
    """What ``fal-ai/lipsync`` answers: the lip-synced video."""

    model_config = ConfigDict(extra="allow")

    video: File = Field(description="The lip-synced video (mp4).")
