"""The committed openapi.yaml, fuzzed by schemathesis against the in-process mock (ASGI).

Positive and negative cases, schemathesis' default checks, a small example budget and
deterministic generation, so a run takes seconds and fails the same way every time. Requests
carry ``Authorization: Key test``; the auth checks then probe that authenticated operations
refuse a missing or invalid key.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import settings
from pydantic import TypeAdapter
from schemathesis import GenerationMode
from schemathesis.checks import (
    CheckFunction,
    response_schema_conformance,
)

from contracts import operations as ops
from contracts.openapi import SPEC_PATH
from contracts.operations import WEBHOOK_QUERY
from contracts.schemas import LipsyncOutput, QueueStatus
from mock_server.app import create_app
from mock_server.settings import MockSettings
from mock_server.webhooks.inbox import to_inbox

AUTH = {"Authorization": "Key test"}

schema = schemathesis.openapi.from_path(SPEC_PATH)
schema.app = create_app(MockSettings(policy="immediate"))
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=10,
    deterministic=True,
    # fal ignores unknown headers and query parameters, as HTTP servers do.
    allow_extra_parameters=False,
    # The key is the explicit AUTH header, so the auth checks know a valid one was sent.
    with_security_parameters=False,
)


def _webhook_to_the_inbox(case: schemathesis.Case) -> None:
    """A generated webhook URL goes to the mock's inbox: the mock answers a submit naming any
    other host 422 (its webhook targets are restricted), and sends nothing to strangers."""
    if case.query and isinstance(case.query.get(WEBHOOK_QUERY), str):
        case.query[WEBHOOK_QUERY] = to_inbox(case.query[WEBHOOK_QUERY])


# Valid data that meets the wrong state: a result fetched, or a cancel sent, before or after the
# request completed (400), a Range past the end of a file (416). Not a rejection of the data.
_positive = schema.config.checks.positive_data_acceptance
_positive.expected_statuses = [*_positive.expected_statuses, "400", "416"]


# The spec gives an event stream the string schema its whole body has (OpenAPI 3.1), while
# schemathesis reads a 3.1 event-stream schema as each event's: the events are checked here.
EVENT_DATA: dict[str, TypeAdapter[Any]] = {
    ops.STATUS_STREAM.operation_id: TypeAdapter(QueueStatus),
    ops.RUN_STREAM.operation_id: TypeAdapter(LipsyncOutput),
}


def _event_data(body: str) -> list[Any]:
    lines = body.replace("\r\n", "\n").split("\n")
    return [json.loads(line[len("data:") :]) for line in lines if line.startswith("data:")]


def _operation_id(case: schemathesis.Case) -> str:
    return str(case.operation.definition.raw["operationId"])


def _check_events(response: schemathesis.Response, adapter: TypeAdapter[Any]) -> None:
    assert response.headers["content-type"][0].startswith("text/event-stream")
    events = _event_data(response.text)
    assert events, "an event stream with no events"
    for data in events:
        adapter.validate_python(data)


@schema.parametrize()
def test_the_mock_conforms_to_the_spec(case: schemathesis.Case) -> None:
    _webhook_to_the_inbox(case)
    adapter = EVENT_DATA.get(_operation_id(case))
    excluded: list[CheckFunction] = []
    if adapter is None:
        case.call_and_validate(headers=AUTH, excluded_checks=excluded)
        return
    excluded.append(response_schema_conformance)
    response = case.call_and_validate(headers=AUTH, excluded_checks=excluded)
    if response.status_code == 200:
        _check_events(response, adapter)
    else:  # a JSON error body: schemathesis checks it
        case.validate_response(response, checks=[response_schema_conformance])


class _Workflow(schema.as_state_machine()):
    """Stateful: follows the spec's links, e.g. submit -> status, status stream, result, cancel."""

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        _webhook_to_the_inbox(case)  # (called right before each call)
        return {"headers": AUTH}

    def validate_response(
        self,
        response: schemathesis.Response,
        case: schemathesis.Case,
        additional_checks: list[CheckFunction] | None = None,
        **kwargs: Any,
    ) -> None:
        adapter = EVENT_DATA.get(_operation_id(case))
        excluded: list[CheckFunction] = []
        if adapter is not None:
            excluded.append(response_schema_conformance)
            if response.status_code == 200:
                _check_events(response, adapter)
            else:
                case.validate_response(response, checks=[response_schema_conformance])
        case.validate_response(
            response,
            headers=AUTH,
            additional_checks=additional_checks,
            excluded_checks=excluded,
            transport_kwargs=kwargs or None,
            recorder=self.recorder,
        )


TestStatefulWorkflow = _Workflow.TestCase
TestStatefulWorkflow.settings = settings(
    max_examples=25,
    stateful_step_count=8,
    derandomize=True,
    deadline=None,
)
