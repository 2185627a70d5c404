"""A catalogue of deliberately broken fal servers and clients, for tests only.

Each entry breaks one property that a check in ``contracts.checks`` asserts (and as few others
as it can, listed in ``also_breaks``), so the tests can show that every check fires, while on
the real mock it stays quiet. A broken server is
ASGI middleware around the real mock (``create_app``) that rewrites what the client is sent; a
broken client is a flow that misuses a correct server.

``harness`` runs a live mock behind a broken layer and records what the client saw;
``servers`` holds the broken servers, ``clients`` the broken clients and correct flows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.checks import CheckOptions
from tests.broken_servers.clients import (
    deletes_a_request,
    fetches_result_early,
    forgets_credentials,
    polls_without_sleeping,
    sends_invalid_body,
    stream_status,
    subscribe_expecting_an_error,
    subscribe_with_logs,
)
from tests.broken_servers.harness import (
    APP,
    AUTH,
    LIPSYNC_INPUT,
    ASGIApp,
    Recorder,
    Served,
    forget_fal_client,
    serve,
)
from tests.broken_servers.servers import (
    garbage_file_bytes,
    in_progress_without_logs,
    logs_drop_a_line,
    off_spec_status_url,
    queue_position_increases,
    silent_short_video,
    status_failed,
    status_goes_backwards,
    stream_events_out_of_order,
    wrong_content_type,
    wrong_file_size,
)

__all__ = [
    "APP",
    "AUTH",
    "CATALOGUE",
    "LIPSYNC_INPUT",
    "Broken",
    "Recorder",
    "Served",
    "forget_fal_client",
    "serve",
    "stream_status",
    "subscribe_with_logs",
]

# -- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """One broken server or client, and the check that must catch it."""

    name: str
    breaks: str
    """The name of the check that fires (``contracts.checks.CHECK_NAMES``)."""
    drive: Callable[[Served], None]
    wrap: Callable[[], Callable[[ASGIApp], ASGIApp]] | None = None
    """Makes the broken server's middleware (fresh state per test); None: the real mock."""
    options: CheckOptions = field(default_factory=CheckOptions)
    policy: str = "polls:2"
    files_over_http: bool = False
    """Download output files through the (broken) server rather than from the store."""
    expect_in_report: tuple[str, ...] = ()
    """Text the failure report must contain."""
    also_breaks: tuple[str, ...] = ()
    """Other checks that fire as a consequence (each entry breaks as little as it can)."""


CATALOGUE: tuple[Broken, ...] = (
    Broken(
        "status_goes_backwards",
        "status_never_goes_backwards",
        subscribe_with_logs,
        status_goes_backwards,
        expect_in_report=("sent IN_QUEUE after it had been sent IN_PROGRESS",),
    ),
    Broken(
        "status_failed",
        "status_never_goes_backwards",
        subscribe_expecting_an_error,
        status_failed,
        also_breaks=("responses_conform_to_openapi",),
        expect_in_report=("'FAILED', which fal never sends",),
    ),
    Broken(
        "in_progress_without_logs",
        "responses_conform_to_openapi",
        subscribe_expecting_an_error,
        in_progress_without_logs,
        expect_in_report=(
            "getRequestStatus 202: the body does not match its schema: 'logs' is a required",
        ),
    ),
    Broken(
        "stream_events_out_of_order",
        "status_never_goes_backwards",
        stream_status,
        stream_events_out_of_order,
        expect_in_report=("sent IN_PROGRESS after it had been sent COMPLETED", "event"),
    ),
    Broken(
        "queue_position_increases",
        "queue_position_never_increases",
        subscribe_with_logs,
        queue_position_increases,
        policy="polls:3",
        expect_in_report=("queue_position went from 0", "to 1"),
    ),
    Broken(
        "logs_drop_a_line",
        "logs_only_grow",
        subscribe_with_logs,
        logs_drop_a_line,
        expect_in_report=("line 1 was",),
    ),
    Broken(
        "wrong_file_size",
        "output_files_are_valid",
        subscribe_with_logs,
        wrong_file_size,
        expect_in_report=("file_size says",),
    ),
    Broken(
        "wrong_content_type",
        "output_files_are_valid",
        subscribe_with_logs,
        wrong_content_type,
        expect_in_report=("content_type says 'video/webm', the bytes are video/mp4",),
    ),
    Broken(
        "garbage_file_bytes",
        "output_files_are_valid",
        subscribe_with_logs,
        garbage_file_bytes,
        files_over_http=True,
        expect_in_report=("the bytes are not an mp4", "not a decodable video"),
    ),
    Broken(
        "silent_short_video",
        "output_files_are_valid",
        subscribe_with_logs,
        silent_short_video,
        options=CheckOptions(expected_duration_s=1.0),
        files_over_http=True,
        expect_in_report=("there is no audio stream", "lasts 0.48 s, expected 1 s"),
    ),
    Broken(
        # The real mock, but its placeholder engine does no lip-sync: a broken *lip-sync* server.
        "placeholder_is_not_lipsynced",
        "output_files_are_valid",
        subscribe_with_logs,
        options=CheckOptions(sync_score=True),
        expect_in_report=("its mouth is not in sync with its audio", "no face found"),
    ),
    Broken(
        "off_spec_status_url",
        "requests_conform_to_openapi",
        subscribe_with_logs,
        off_spec_status_url,
        # The client's polls go to the off-spec path, so no status answer it was sent counts.
        also_breaks=("result_fetched_only_after_completed",),
        expect_in_report=("no operation of openapi.yaml has the path", "/state"),
    ),
    Broken(
        "client_fetches_result_early",
        "result_fetched_only_after_completed",
        fetches_result_early,
        expect_in_report=("before any status answer said COMPLETED",),
    ),
    Broken(
        "client_polls_without_sleeping",
        "polling_not_faster_than",
        polls_without_sleeping,
        options=CheckOptions(poll_interval_s=0.05),
        policy="polls:5",
        expect_in_report=("shorter than 0.05 s",),
    ),
    Broken(
        "client_sends_invalid_body",
        "requests_conform_to_openapi",
        sends_invalid_body,
        expect_in_report=("['video_url'] 42 is not of type 'string'",),
    ),
    Broken(
        "client_forgets_credentials",
        "requests_conform_to_openapi",
        forgets_credentials,
        expect_in_report=("the Authorization header is missing",),
    ),
    Broken(
        "client_deletes_a_request",
        "requests_conform_to_openapi",
        deletes_a_request,
        expect_in_report=("DELETE is not an operation",),
    ),
)
