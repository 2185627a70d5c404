"""``fal-mock check --base-url URL``: the contract run for CI, against the mock or any server that
serves fal's queue in the mock's single-origin form (``/queue/...``, ``/run/...``, ...).

Two halves, one JUnit file:

1. **Lifecycle**: the documented example submitted, polled, streamed, fetched and cancelled over
   HTTP; the transcript judged property by property (``cli_check_properties``).
2. **Schemathesis** on the committed openapi.yaml: positive and negative cases, the stateful
   phase through the spec's links (submit -> status, stream, result, cancel), all checks.

Exit 0 when both are clean, 1 on any failure, 2 on a usage error or an unreachable target.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

PHASES = ("examples", "coverage", "fuzzing", "stateful")
DEFAULT_MAX_EXAMPLES = 10
PLACEHOLDER_KEY = "fal-mock-check"
HOOKS_MODULE = "mock_server.cli_check_hooks"
REQUEST_TIMEOUT_S = 60

# How schemathesis is told what fal's contract allows that its defaults do not (each line is a
# choice about the contract, not a way around a finding):
KEY_VARIABLE = "FAL_MOCK_CHECK_KEY"
"""How the key reaches the schemathesis process: its environment, never its command line."""
CONFIG_TOML = f"""\
[headers]
Authorization = "Key ${{{KEY_VARIABLE}}}"

[cache]
# No state carried between runs (a .schemathesis/ directory): a seed replays a run.
enabled = false

[generation]
# fal ignores unknown headers and query parameters, as HTTP servers do.
allow-extra-parameters = false
# The key is the explicit Authorization header, so the auth checks know a valid one was sent.
with-security-parameters = false

[checks.positive_data_acceptance]
# Valid data meeting the wrong state: a result fetched or a cancel sent before or after the
# request completed, a multipart upload completed before its parts (400); a Range past the end
# of a file (416). Not a rejection of the data.
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "416", "429", "5xx"]
"""


def add_parser(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="contract run for CI: schemathesis and lifecycle checks against a live server",
        description="Runs the lifecycle checks and schemathesis (positive, negative and "
        "stateful through the spec's links, all checks) against URL. Exit 0 when clean, 1 on "
        "failures, 2 on a usage error or an unreachable target.",
    )
    check.add_argument(
        "--base-url", required=True, metavar="URL", help="e.g. http://127.0.0.1:8000"
    )
    check.add_argument(
        "--key", help="sent as 'Authorization: Key KEY' (default: $FAL_KEY, else a placeholder)"
    )
    check.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report")
    check.add_argument(
        "--max-examples",
        type=int,
        default=DEFAULT_MAX_EXAMPLES,
        metavar="N",
        help=f"schemathesis cases per operation and phase (default {DEFAULT_MAX_EXAMPLES})",
    )
    check.add_argument(
        "--seed", type=int, metavar="N", help="schemathesis seed (default: random, printed)"
    )
    check.add_argument(
        "--phases", default=",".join(PHASES), help=f"schemathesis phases ({','.join(PHASES)})"
    )
    check.add_argument("--no-stateful", action="store_true", help="skip the stateful phase")
    check.add_argument(
        "--spec", type=Path, metavar="PATH", help="OpenAPI file (default: the committed one)"
    )
    check.add_argument("--exclude-checks", metavar="NAMES", help="schemathesis checks to skip")
    check.add_argument(
        "--lifecycle-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="time for the lifecycle requests to complete (default 120)",
    )
    check.add_argument("--no-lifecycle", action="store_true", help="skip the lifecycle checks")
    check.add_argument("--no-schemathesis", action="store_true", help="skip schemathesis")
    check.add_argument("--ca-bundle", type=Path, metavar="PATH", help="CA file for an https target")
    check.add_argument(
        "--schemathesis-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for 'schemathesis run' (repeatable; --schemathesis-arg=--workers=4)",
    )


class UsageError(Exception):
    """The run cannot start: exit 2 with the message."""


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        return _run(args, started)
    except UsageError as exc:
        print(f"fal-mock check: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, started: float) -> int:
    import importlib.util
    import os

    # Lazy: httpx, the contract models and yaml load only for this command.
    import httpx

    from mock_server.cli_check_target import ClockPump, KeyRefused, Unreachable, probe_target

    base_url = _base_url(args.base_url)
    phases = _phases(args)
    if args.max_examples < 1:
        raise UsageError("--max-examples must be at least 1")
    if args.no_lifecycle and (args.no_schemathesis or not phases):
        raise UsageError("nothing to run: both halves are switched off")
    spec = _load_spec(args.spec) if not args.no_schemathesis and phases else None
    if spec is not None and importlib.util.find_spec("schemathesis") is None:
        raise UsageError("schemathesis is not installed: pip install 'fal-lipsync-mock[test]'")
    key = args.key or os.environ.get("FAL_KEY") or PLACEHOLDER_KEY
    verify: Any = str(args.ca_bundle) if args.ca_bundle else True
    with httpx.Client(
        headers={"Authorization": f"Key {key}"}, verify=verify, timeout=30.0
    ) as client:
        try:
            target = probe_target(client, base_url)
        except Unreachable as exc:
            raise UsageError(str(exc)) from None
        except KeyRefused as exc:
            raise UsageError(f"the target refused the key ({exc}): pass --key or FAL_KEY") from None
        print(f"fal-mock check: {base_url} ({target.describe()})", flush=True)
        with ClockPump(base_url, enabled=target.policy == "virtual", verify=verify):
            verdicts = (
                []
                if args.no_lifecycle
                else _lifecycle(client, base_url, args, target.policy is not None)
            )
            st_status, st_xml = (0, None) if spec is None else _schemathesis(args, spec, key)
    failed = [v for v in verdicts if v.failures]
    skipped = sum(1 for v in verdicts if v.skipped)
    if args.junit:
        _write_junit(args.junit, st_xml, verdicts)
    elapsed = time.perf_counter() - started
    st_word = {0: "clean", 1: "failures"}.get(st_status, f"error (exit {st_status})")
    lifecycle = (
        f"{len(verdicts) - len(failed) - skipped} passed, {len(failed)} failed, {skipped} skipped"
        if verdicts
        else "skipped"
    )
    print(
        f"\nfal-mock check: lifecycle {lifecycle}; "
        f"schemathesis {'skipped' if spec is None else st_word}; {elapsed:.1f} s"
        + (f"; JUnit: {args.junit}" if args.junit else ""),
        flush=True,
    )
    if st_status not in (0, 1):
        return 2
    return 1 if failed or st_status else 0


def _base_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise UsageError(f"--base-url must be an http(s) URL like http://127.0.0.1:8000: {text!r}")
    return text.rstrip("/")


def _phases(args: argparse.Namespace) -> list[str]:
    asked = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(asked) - set(PHASES))
    if unknown:
        raise UsageError(f"unknown phase(s) {unknown}: choose from {','.join(PHASES)}")
    return [p for p in PHASES if p in asked and not (args.no_stateful and p == "stateful")]


def _load_spec(path: Path | None) -> dict[str, Any]:
    import yaml

    from contracts.openapi import SPEC_PATH

    path = path or SPEC_PATH
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the spec {path}: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise UsageError(f"{path} is not an OpenAPI document")
    return for_schemathesis(spec)


def for_schemathesis(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as schemathesis reads it. An OpenAPI 3.1 event stream's ``schema`` is, per the
    spec, the whole body (a string); schemathesis reads it as each event's. The committed spec
    keeps the body's string and names each event's data in ``x-event-data-schema``: here each
    event becomes an object whose ``data`` is JSON of that schema."""
    for item in spec["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                media = response.get("content", {}).get("text/event-stream")
                if isinstance(media, dict) and "x-event-data-schema" in media:
                    data = {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": media["x-event-data-schema"],
                    }
                    media["schema"] = {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"data": data},
                    }
    return spec


def _lifecycle(
    client: Any, base_url: str, args: argparse.Namespace, control_plane: bool
) -> list[Any]:
    from mock_server.checking import probe_media
    from mock_server.cli_check_lifecycle import drive
    from mock_server.cli_check_properties import judge

    print("\n== lifecycle: submit, poll, stream, result, files, cancel ==", flush=True)
    started = time.perf_counter()
    record = drive(client, base_url, timeout=args.lifecycle_timeout, control_plane=control_plane)
    verdicts = judge(record, base_url, seconds=time.perf_counter() - started, probe=probe_media)
    for verdict in verdicts:
        mark = "SKIP" if verdict.skipped else ("PASS" if verdict.passed else "FAIL")
        print(f"  {mark} {verdict.name}" + (f" ({verdict.skipped})" if verdict.skipped else ""))
        for failure in verdict.failures:
            print("       " + failure.replace("\n", "\n       "))
    print(f"  ({len(record.exchanges)} exchanges)", flush=True)
    return verdicts


def _schemathesis(args: argparse.Namespace, spec: dict[str, Any], key: str) -> tuple[int, Any]:
    """Run ``schemathesis run`` in a subprocess; its exit status and JUnit tree (or None)."""
    import json
    import os
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    with tempfile.TemporaryDirectory(prefix="fal-mock-check-") as work:
        spec_path, config, junit = (Path(work) / n for n in ("spec.json", "st.toml", "st.xml"))
        if args.junit:  # schemathesis writes there, the lifecycle suite is added after
            junit = args.junit.resolve()
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.unlink(missing_ok=True)  # a stale report must not pass for this run's
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        config.write_text(CONFIG_TOML, encoding="utf-8")
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            str(spec_path), "--url", _base_url(args.base_url),
            "--phases", ",".join(_phases(args)),
            "--checks", "all",
            # Replaced by the hooks' not_a_server_error_unless_relayed (see that module).
            "--exclude-checks", ",".join(["not_a_server_error", *_names(args.exclude_checks)]),
            "--max-examples", str(args.max_examples),
            # A status stream that never closes fails the run instead of hanging CI.
            "--request-timeout", str(REQUEST_TIMEOUT_S),
            "--report", "junit", "--report-junit-path", str(junit),
        ]  # fmt: skip
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        if args.ca_bundle:
            command += ["--tls-verify", str(args.ca_bundle)]
        command += args.schemathesis_arg
        env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS_MODULE, KEY_VARIABLE: key}
        print(f"\n== schemathesis: {', '.join(_phases(args))} ==", flush=True)
        done = subprocess.run(command, env=env, check=False)
        tree = ET.parse(junit) if junit.is_file() else None
    return done.returncode, tree


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _write_junit(path: Path, schemathesis_tree: Any, verdicts: list[Any]) -> None:
    """One JUnit file: schemathesis' suite (one case per operation, one for the stateful
    phase), then a ``fal-mock lifecycle`` suite with one case per property."""
    import xml.etree.ElementTree as ET

    if schemathesis_tree is not None:
        root = schemathesis_tree.getroot()
    else:
        root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name="fal-mock lifecycle")
    for verdict in verdicts:
        case = ET.SubElement(
            suite,
            "testcase",
            name=verdict.name,
            classname="lifecycle",
            time=f"{verdict.seconds:.6f}",
        )
        if verdict.skipped:
            ET.SubElement(case, "skipped", message=verdict.skipped)
        elif verdict.failures:
            failure = ET.SubElement(case, "failure", message=verdict.doc, type="AssertionError")
            failure.text = "\n".join(verdict.failures)
    counts: dict[str, Any] = {"tests": len(verdicts), "errors": 0}
    counts["time"] = f"{sum(v.seconds for v in verdicts):.6f}"
    counts["failures"] = sum(1 for v in verdicts if v.failures)
    counts["skipped"] = sum(1 for v in verdicts if v.skipped)
    suite.attrib.update({k: str(v) for k, v in counts.items()})
    for name in ("tests", "failures", "errors", "skipped"):
        root.set(name, str(sum(int(s.get(name, "0")) for s in root.iter("testsuite"))))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in root.iter('testsuite')):.6f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
