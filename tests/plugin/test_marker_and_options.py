"""The ``fal_mock`` marker (merged test > class > module), the options and the header."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import module

SHOW = """
def show(fal_mock):
    config = fal_mock.engine.config
    return (str(config.policy), config.seed, config.engine, fal_mock.checks)
"""


def test_marker_keywords_merge_test_over_class_over_module(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            SHOW
            + """
pytestmark = pytest.mark.fal_mock(policy="polls:5", seed=11, checks=False)

def test_module_only(fal_mock):
    assert show(fal_mock) == ("polls:5", 11, "placeholder", False)

@pytest.mark.fal_mock(policy="virtual")
class TestClass:
    def test_class_over_module(self, fal_mock):
        assert show(fal_mock) == ("virtual", 11, "placeholder", False)

    @pytest.mark.fal_mock(seed=3, checks=True)
    def test_test_over_class(self, fal_mock):
        assert show(fal_mock) == ("virtual", 3, "placeholder", True)

@pytest.mark.fal_mock(seed=5)
@pytest.mark.fal_mock(seed=6, policy="immediate")
def test_nearest_decorator_wins(fal_mock):
    assert show(fal_mock) == ("immediate", 6, "placeholder", False)
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_defaults_without_a_marker(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            SHOW
            + """
def test_defaults(fal_mock):
    assert show(fal_mock) == ("polls:1", 0, "placeholder", True)
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_marker_is_registered_with_help(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.fal_mock(policy=..., seed=..., engine=..., faults=..., checks=...): "
            "set up the fal mock for this test; keywords merge test > class > module.*"
        ]
    )
    # --strict-markers is on in INNER_INI: using the marker is no error.
    inner.makepyfile("import pytest\n@pytest.mark.fal_mock(seed=1)\ndef test_a(): pass\n")
    inner.runpytest().assert_outcomes(passed=1)


def test_bad_marker_use_is_a_clear_setup_error(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
@pytest.mark.fal_mock(speed=3)
def test_unknown_keyword(fal_mock):
    pass

@pytest.mark.fal_mock("polls:1")
def test_positional(fal_mock):
    pass

@pytest.mark.fal_mock(policy="fast")
def test_bad_policy(fal_mock):
    pass

@pytest.mark.fal_mock(engine="gpu")
def test_bad_engine(fal_mock_server):
    pass

@pytest.mark.fal_mock(checks={"skip": ["nope"]})
def test_bad_checks(fal_mock):
    pass
"""
        )
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=5)
    out = result.stdout.str()
    assert (
        "unknown @pytest.mark.fal_mock keyword(s) ['speed']: "
        "expected policy, seed, engine, faults, checks" in out
    )
    assert "@pytest.mark.fal_mock takes keywords only" in out and "('polls:1',)" in out
    assert "fal_mock: policy='fast' is refused: unknown progression policy 'fast'" in out
    assert "fal_mock: engine='gpu' is refused: unknown engine 'gpu'" in out
    assert "fal_mock: checks={'skip': ['nope']} is refused: unknown check name(s)" in out
    assert "Traceback" not in out and "pydantic" not in out


def test_faults_from_the_marker_reach_the_engine(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
@pytest.mark.fal_mock(faults={"rules": [{"kind": "rate_limited", "times": 2}]})
def test_faulty(fal_mock):
    fal_client.submit("fal-ai/lipsync", arguments=ARGS)  # retried twice, then served
    assert [e.status_code for e in fal_mock.journal] == [429, 429, 200]

@pytest.mark.fal_mock(faults='{"rules": [{"kind": "internal_error"}]}')
def test_not_retried(fal_mock):
    with pytest.raises(fal_client.client.FalClientHTTPError):
        fal_client.submit("fal-ai/lipsync", arguments=ARGS)
    assert [e.status_code for e in fal_mock.journal] == [500]

def test_cleared_for_the_next_test(fal_mock):
    fal_client.submit("fal-ai/lipsync", arguments=ARGS)
    assert [e.status_code for e in fal_mock.journal] == [200]
"""
        )
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_seed_option_is_the_default_and_a_marker_beats_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        module(
            """
def test_from_option(fal_mock, fal_mock_server):
    assert fal_mock.engine.config.seed == 42
    assert fal_mock_server.engine.config.seed == 42

@pytest.mark.fal_mock(seed=1)
def test_from_marker(fal_mock):
    assert fal_mock.engine.config.seed == 1
"""
        )
    )
    result = inner.runpytest("--fal-mock-seed=42")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["fal-mock: seed 42, contract checks at teardown on"])


EARLY_FETCH = """
@pytest.fixture
def early(fal_mock):
    fal_mock.set_policy("polls:50")
    handle = fal_client.submit(APP, arguments=ARGS)
    # A client bug: fetching the result before COMPLETED.
    assert handle.client.get(handle.response_url).status_code == 400
"""


def test_no_checks_option_turns_teardown_checks_off(inner: pytest.Pytester) -> None:
    inner.makepyfile(module(EARLY_FETCH + "\ndef test_bug(early):\n    pass\n"))
    inner.runpytest().assert_outcomes(passed=1, errors=1)
    result = inner.runpytest("--fal-mock-no-checks")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["fal-mock: seed 0 (default), contract checks at teardown off (--fal-mock-no-checks)"]
    )


def test_header_and_help(inner: pytest.Pytester) -> None:
    result = inner.runpytest()
    result.stdout.fnmatch_lines(
        [
            "fal-mock: in-process (fal's hosts routed into the mock, no network)",
            "fal-mock: seed 0 (default), contract checks at teardown on",
        ]
    )
    result = inner.runpytest("--fal-target=http://127.0.0.1:9/api/fal/proxy")
    result.stdout.fnmatch_lines(
        ["fal-mock: target proxy http://127.0.0.1:9/api/fal/proxy (x-fal-target-url)"]
    )
    help_text = inner.runpytest("--help")
    help_text.stdout.fnmatch_lines(
        [
            "fal-lipsync-mock (fixtures fal_mock, fal_mock_server):",
            "  --fal-mock-seed=N*",
            "  --fal-mock-no-checks*",
            "  --fal-target=URL*",
        ]
    )


def test_bad_target_is_a_usage_error(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = inner.runpytest("--fal-target=queue.fal.run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*expected 'fal' or an http(s) URL*"])
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("FAL_KEY_ID", raising=False)
    result = inner.runpytest("--fal-target=fal")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fal-target=fal sends real requests: set FAL_KEY first*"])
    monkeypatch.setenv("FAL_KEY", "real-looking-key")
    result = inner.runpytest("--fal-target=fal")
    result.stdout.fnmatch_lines(
        ["fal-mock: target fal itself (real requests, FAL_KEY from the environment)"]
    )
