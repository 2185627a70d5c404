"""Build ``openapi.yaml`` from the contract's models and operation table; ``--check`` for CI.

The spec describes fal's contract only, in the live mock's single-origin form: each logical host
(queue, run, rest, cdn) is a path prefix, because queue submit and sync run share a path on
different hosts. The mock's control plane (``/_mock/...``) is deliberately left out.
Regenerate with ``fal-mock openapi`` or ``python -m contracts.openapi``.

This module assembles the document (info, servers, hosts, tags), renders it and checks it; what
each operation takes and answers is in ``contracts.openapi_operations``, and the model schemas
are in ``contracts.openapi_components``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

import yaml

from contracts import operations as ops
from contracts.openapi_components import components
from contracts.openapi_operations import paths, webhook_operation
from contracts.operations import FAL_HOSTS, LogicalHost

SPEC_PATH: Final = Path(__file__).resolve().parent.parent / "openapi.yaml"
"""The committed spec, at the repository root."""

OPENAPI_VERSION: Final = "3.1.0"
CONTRACT_VERSION: Final = "0.1.0"
REGENERATE_COMMAND: Final = "fal-mock openapi"


def _origins(host: LogicalHost) -> list[str]:
    return [f"https://{name}" for name in FAL_HOSTS[host]]


def _tag(host: LogicalHost) -> dict[str, str]:
    mine = ", and the mock's own file URLs" if host is LogicalHost.CDN else ""
    where = f"On the mock these paths live under `/{host.value}`; on fal, drop the prefix."
    return {
        "name": host.value,
        "description": f"fal's {host.value} host ({', '.join(_origins(host))}{mine}). {where}",
    }


def build_spec() -> dict[str, Any]:
    """The OpenAPI document of the fal contract, from the models and the operation table."""
    prefixes = ", ".join(f"`/{h.value}`" for h in LogicalHost)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"{ops.ENDPOINT_ID} on fal.ai (fal-lipsync-mock)",
            "version": CONTRACT_VERSION,
            "summary": f"fal.ai's queue, sync run, storage and CDN API for `{ops.ENDPOINT_ID}`.",
            "description": "Generated from the pydantic models in `contracts/`: do not edit; "
            f"regenerate with `{REGENERATE_COMMAND}`. Paths are in the mock's single-origin form: "
            "each of fal's logical hosts is a path prefix (see `x-fal-logical-hosts`).",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [
            {
                "url": "http://127.0.0.1:{port}",
                "description": f"The mock (`fal-mock serve`): fal's logical hosts are the path "
                f"prefixes {prefixes}. On fal each prefix is its own origin, and is dropped.",
                "variables": {"port": {"default": "8000", "description": "The mock's port."}},
            }
        ],
        "x-fal-logical-hosts": {
            h.value: {"prefix": f"/{h.value}", "origins": _origins(h)} for h in LogicalHost
        },
        "tags": [_tag(h) for h in LogicalHost],
        "paths": paths(),
        "webhooks": {"requestFinished": {"post": webhook_operation()}},
        "components": components(),
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors for shared objects, multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def render_yaml(spec: dict[str, Any]) -> str:
    """The spec as YAML, keys in the (deterministic) order ``build_spec`` wrote them."""
    body = yaml.dump(spec, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"# Generated from contracts/ by `{REGENERATE_COMMAND}`: do not edit.\n{body}"


def main(argv: list[str] | None = None) -> int:
    """Write the spec (by default to the committed ``openapi.yaml``), or ``--check`` it."""
    parser = argparse.ArgumentParser(
        prog="fal-mock openapi", description="Generate openapi.yaml from the contract's models."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", default=str(SPEC_PATH), help="file to write, `-` for stdout")
    args = parser.parse_args(argv)
    text = render_yaml(build_spec())
    if args.output == "-":
        if args.check:
            parser.error("--check compares with a file: give --output PATH, not `-`")
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    if not args.check:
        path.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {path}")
        return 0
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current == text:
        print(f"{path} is up to date.")
        return 0
    state = "is missing" if current is None else "is stale: the models have changed"
    hint = f"python -m contracts.openapi --output {path}"
    print(f"{path} {state}. Regenerate it: `{REGENERATE_COMMAND}` (or `{hint}`).", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
