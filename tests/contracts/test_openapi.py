"""openapi.yaml: current, valid, and complete against the operation table."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel

from contracts import operations as ops
from contracts import schemas
from contracts.openapi import SPEC_PATH, build_spec, main, render_yaml
from contracts.operations import OPERATIONS, LogicalHost

SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _operation(op: ops.Operation) -> dict[str, Any]:
    operation: dict[str, Any] = SPEC["paths"][op.prefixed_path][op.method.lower()]
    return operation


def test_committed_spec_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_on_a_stale_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "openapi.yaml"
    shutil.copyfile(SPEC_PATH, copy)
    assert main(["--check", "--output", str(copy)]) == 0
    copy.write_text(copy.read_text(encoding="utf-8").replace("Queue a lip-sync", "Queue a"))
    capsys.readouterr()
    assert main(["--check", "--output", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "fal-mock openapi" in err


def test_check_fails_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--output", str(tmp_path / "nope.yaml")]) == 1
    assert "missing" in capsys.readouterr().err


def test_write_then_check_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "spec.yaml"
    assert main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == SPEC_PATH.read_text(encoding="utf-8")
    assert main(["--check", "--output", str(target)]) == 0


def test_output_dash_writes_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", "-"]) == 0
    assert capsys.readouterr().out == SPEC_PATH.read_text(encoding="utf-8")


def test_rendering_is_deterministic_and_alias_free() -> None:
    text = render_yaml(build_spec())
    assert text == render_yaml(build_spec())
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == SPEC


def test_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    validate(SPEC)


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_every_operation_is_documented(op: ops.Operation) -> None:
    operation = _operation(op)
    assert operation["operationId"] == op.operation_id
    assert operation["tags"] == [op.host.value]
    assert set(operation["responses"]) == {str(code) for code in op.responses}
    assert operation["security"] == ([{"falKey": []}] if op.authenticated else [])
    path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert path_params == {part[1:-1] for part in op.path.split("/") if part.startswith("{")}


def test_operation_ids_are_unique_and_nothing_else_is_documented() -> None:
    documented = [
        (path, method, operation["operationId"])
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
    ]
    expected = [(op.prefixed_path, op.method.lower(), op.operation_id) for op in OPERATIONS]
    assert sorted(documented) == sorted(expected)
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_control_plane_is_not_documented() -> None:
    assert not [path for path in SPEC["paths"] if path.startswith("/_mock")]
    prefixes = tuple(f"/{host.value}/" for host in LogicalHost)
    assert all(path.startswith(prefixes) for path in SPEC["paths"])


def test_logical_hosts_are_documented() -> None:
    assert [tag["name"] for tag in SPEC["tags"]] == [host.value for host in LogicalHost]
    hosts = SPEC["x-fal-logical-hosts"]
    for host in LogicalHost:
        assert hosts[host.value]["prefix"] == f"/{host.value}"
        assert hosts[host.value]["origins"] == [f"https://{n}" for n in ops.FAL_HOSTS[host]]


def test_submit_links_follow_the_request_id() -> None:
    links = _operation(ops.SUBMIT)["responses"]["200"]["links"]
    ids = {op.operation_id: op for op in OPERATIONS}
    assert {link["operationId"] for link in links.values()} == {
        "getRequestStatus",
        "streamRequestStatus",
        "getRequestResult",
        "cancelRequest",
    }
    for link in links.values():
        target = _operation(ids[link["operationId"]])
        names = {p["name"] for p in target["parameters"]}
        assert link["parameters"] == {"request_id": "$response.body#/request_id"}
        assert set(link["parameters"]) <= names


@pytest.mark.parametrize("op", [ops.STATUS_STREAM, ops.RUN_STREAM], ids=lambda op: op.operation_id)
def test_sse_responses_are_event_streams(op: ops.Operation) -> None:
    content = _operation(op)["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["schema"] == {"type": "string"}


def test_every_model_is_a_component() -> None:
    exported = (getattr(schemas, name) for name in schemas.__all__)
    models = {m.__name__ for m in exported if isinstance(m, type) and issubclass(m, BaseModel)}
    assert models <= set(SPEC["components"]["schemas"])
    refs = {
        value.rsplit("/", 1)[-1]
        for value in _walk(SPEC)
        if isinstance(value, str) and value.startswith("#/components/schemas/")
    }
    assert refs <= set(SPEC["components"]["schemas"])


def _walk(node: Any) -> Any:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def _examples() -> list[Any]:
    found = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += list(operation["responses"].items())
            for where, body in bodies:
                for media_type, media in body.get("content", {}).items():
                    if "example" in media:
                        name = f"{method} {path} {where} {media_type}"
                        found.append(pytest.param(name, media["schema"], media["example"], id=name))
    for name, schema in SPEC["components"]["schemas"].items():
        found += [pytest.param(name, schema, ex, id=name) for ex in schema.get("examples", [])]
    return found


@pytest.mark.parametrize(("name", "schema", "example"), _examples())
def test_examples_match_their_schemas(name: str, schema: dict[str, Any], example: Any) -> None:
    root = {**schema, "components": SPEC["components"]}
    Draft202012Validator(root).validate(example)


def test_the_documented_examples_include_the_submit_and_status_answers() -> None:
    names = {param.values[0] for param in _examples()}
    assert f"post {ops.SUBMIT.prefixed_path} 200 application/json" in names
    assert f"get {ops.STATUS.prefixed_path} 202 application/json" in names
    assert f"get {ops.STATUS.prefixed_path} 200 application/json" in names
    assert f"post {ops.SUBMIT.prefixed_path} request application/json" in names
