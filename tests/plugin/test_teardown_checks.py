"""The contract checks at fixture teardown, and ``check()`` on demand."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import module

EARLY_FETCH = """
def fetch_early(fal_mock):
    fal_mock.set_policy("polls:50")
    handle = fal_client.submit(APP, arguments=ARGS)
    # The client bug under test: fetching the result before COMPLETED.
    assert handle.client.get(handle.response_url).status_code == 400
    return handle
"""


@pytest.mark.parametrize("fixture", ["fal_mock", "fal_mock_server"])
def test_a_violation_fails_the_test_at_teardown(inner: pytest.Pytester, fixture: str) -> None:
    pointed = "fal_mock.pointed()" if fixture == "fal_mock_server" else "contextlib.nullcontext()"
    inner.makepyfile(
        module(
            EARLY_FETCH.replace("fal_mock", fixture)
            + f"""
import contextlib

def test_client_fetches_early({fixture}):
    with {pointed.replace("fal_mock", fixture)}:
        fetch_early({fixture})

@pytest.mark.fal_mock(checks=False)
def test_checks_off_by_marker({fixture}):
    with {pointed.replace("fal_mock", fixture)}:
        fetch_early({fixture})

@pytest.mark.fal_mock(checks={{"skip": ["result_fetched_only_after_completed"]}})
def test_one_check_skipped({fixture}):
    with {pointed.replace("fal_mock", fixture)}:
        fetch_early({fixture})

def test_a_clean_client({fixture}):
    with {pointed.replace("fal_mock", fixture)}:
        fal_client.subscribe(APP, arguments=ARGS, with_logs=True)
"""
        )
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_client_fetches_early*",
            "*result_fetched_only_after_completed*",
        ]
    )
    assert result.stdout.str().count("ERROR at teardown") == 1


def test_check_on_demand_and_not_after_a_failure(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            EARLY_FETCH
            + """
from contracts.checks import ContractViolation, ResultFetchedEarly

def test_check_now(fal_mock):
    fal_mock.check()  # nothing yet
    fetch_early(fal_mock)
    with pytest.raises(ContractViolation) as raised:
        fal_mock.check()
    assert isinstance(raised.value, AssertionError)
    assert [type(f) for f in raised.value.failures] == [ResultFetchedEarly]
    fal_mock.check(skip=["result_fetched_only_after_completed"])
    fal_mock.reset()  # forget it, so teardown finds nothing

def test_failing_body_gets_no_teardown_report(fal_mock):
    fetch_early(fal_mock)
    assert False, "the test's own failure"
"""
        )
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    assert "ERROR at teardown" not in result.stdout.str()
