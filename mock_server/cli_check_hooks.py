"""Schemathesis hooks for ``fal-mock check``: loaded by the schemathesis process it starts
(``SCHEMATHESIS_HOOKS``), never imported by ``fal-mock`` itself.

fal's result fetch answers a request's own failure with that failure's status: a request that
did not start within its ``X-Fal-Request-Timeout`` answers 504 (``X-Fal-Request-Timeout-Type:
user``), a runner error 500 or 503, each with ``X-Fal-Error-Type`` (PROTOCOL.md §6). Those are
the contract, not the server failing, so ``not_a_server_error`` is replaced by a check that
accepts exactly them and reports every other 5xx as schemathesis does (ST101).

A generated ``fal_webhook`` URL is replaced by the mock's inbox (``before_call``): no target is
made to POST to whatever host was generated, and a mock accepts it (it sends webhooks to
loopback and its inbox only, and answers a schema-valid submit naming any other host 422).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import ServerError

from contracts.operations import WEBHOOK_QUERY
from mock_server.webhooks.inbox import to_inbox

ERROR_TYPE_HEADER = "x-fal-error-type"


def _relayed_outcome(response: schemathesis.Response, case: schemathesis.Case[Any]) -> bool:
    """A documented 5xx carrying the failed request's machine-readable ``error_type``."""
    raw: dict[str, Any] = case.operation.definition.raw
    documented = str(response.status_code) in raw.get("responses", {})
    headers = {name.lower(): values for name, values in response.headers.items()}
    return documented and bool(headers.get(ERROR_TYPE_HEADER))


@schemathesis.check
def not_a_server_error_unless_relayed(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """No 5xx, except a request's documented failure relayed with its ``X-Fal-Error-Type``."""
    try:
        return not_a_server_error(ctx, response, case)
    except ServerError:
        if _relayed_outcome(response, case):
            return None
        raise


@schemathesis.hook
def before_call(ctx: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: Any) -> None:
    """A submit's generated webhook URL goes to the inbox (malformed values stay malformed).
    Before the call rather than at generation: the coverage phase's values come this way too."""
    query = case.query
    if query and isinstance(query.get(WEBHOOK_QUERY), str):
        query[WEBHOOK_QUERY] = to_inbox(query[WEBHOOK_QUERY])
