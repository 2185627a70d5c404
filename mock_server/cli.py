"""``fal-mock``: serve the mock, write or check openapi.yaml."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mock_server.engine.policies import POLICY_HELP


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fal-mock", description="An offline, deterministic fake of fal.ai's fal-ai/lipsync."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the mock (settings also from FAL_MOCK_* env)")
    serve.add_argument("--host", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--seed", type=int, help="seed for ids, timings and outputs (default 0)")
    serve.add_argument("--policy", help=f"job progression: {POLICY_HELP} (default realtime)")
    serve.add_argument("--engine", help="result engine (default placeholder)")
    serve.add_argument("--runners", type=int, help="simulated runners (default 2)")
    serve.add_argument("--keys", help="comma-separated accepted keys (default: any key)")
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        default=None,
        help="accept requests without Authorization",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="serve HTTPS with a local CA (prints SSL_CERT_FILE)",
    )
    serve.add_argument("--tls-dir", type=Path, help="where the CA and certificate live")
    serve.add_argument("--access-log", action="store_true", default=None, help="log every request")

    spec = commands.add_parser("openapi", help="write openapi.yaml from the contract models")
    spec.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    spec.add_argument("--output", help="path to write or check (default: the repo's file)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "openapi":
        from contracts.openapi import main as openapi_main

        forwarded = (["--check"] if args.check else []) + (
            ["--output", args.output] if args.output else []
        )
        status: int = openapi_main(forwarded)
        return status
    return serve(vars(args))


def serve(options: dict[str, Any]) -> int:
    import uvicorn

    from mock_server.app import create_app
    from mock_server.serving import uvicorn_config
    from mock_server.settings import MockSettings

    given = {k: v for k, v in options.items() if k != "command" and v is not None}
    try:
        settings = MockSettings(**given)
        if settings.port == 0:
            settings = settings.model_copy(update={"port": _free_port(settings.host)})
    except ValidationError as exc:
        print(f"fal-mock: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    config = uvicorn_config(app, settings)  # makes the TLS files, if asked, before the banner
    print(banner(settings), flush=True)
    uvicorn.Server(config).run()
    return 0


def banner(settings: Any) -> str:
    from mock_server.clients import fal_client_urls, js_client_snippet, tls_environment

    scheme = "https" if settings.tls else "http"
    base = f"{scheme}://{_display_host(settings.host)}:{settings.port}"
    lines = [
        f"fal-lipsync-mock serving fal-ai/lipsync at {base}",
        f"  policy={settings.policy} seed={settings.seed} engine={settings.engine} "
        f"runners={settings.runners}",
        f"  hosts: {base}/queue  {base}/run  {base}/rest  {base}/cdn",
        f"  proxy: {base}/api/fal/proxy   control: {base}/_mock/state   docs: {base}/docs",
        "",
        "Python (fal-client), in your code or conftest:",
        "  from mock_server.clients import point_fal_client",
        f'  with point_fal_client("{base}"): ...',
        "  # or set fal_client.client constants yourself:",
        *(f"  fal_client.client.{k} = {v!r}" for k, v in fal_client_urls(base).items()),
    ]
    if settings.tls:
        from mock_server.serving import default_tls_dir
        from mock_server.tls import make_tls_files

        files = make_tls_files(settings.tls_dir or default_tls_dir())
        env = tls_environment(base, str(files.ca_bundle))
        lines += [
            "",
            "Python (fal-client) through the environment alone (set before import):",
            *(f"  export {k}={v}" for k, v in env.items()),
        ]
    lines += [
        "",
        "JavaScript (@fal-ai/client):",
        *("  " + line for line in js_client_snippet(base).splitlines()),
    ]
    return "\n".join(lines)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    raise SystemExit(main())
