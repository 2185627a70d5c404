"""``fal-mock``: serve the mock, write or check openapi.yaml, score an mp4's lip sync, run the
contract checks against a live server."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mock_server import cli_check, cli_lipsync
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
    serve.add_argument(
        "--engine", help="result engine: placeholder (default) or reference (real lip-sync)"
    )
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
    serve.add_argument(
        "--state-dir",
        type=Path,
        help="keep requests, files and the journal in DIR across restarts (default: memory)",
    )
    serve.add_argument(
        "--state-sync",
        choices=("full", "normal"),
        help="full (default): fsync each submit, upload and completion before answering; "
        "normal: survive a killed process, not a power cut, for less",
    )
    serve.add_argument(
        "--result-retention",
        type=float,
        metavar="SECONDS",
        help="keep a completed request and its files this long (default 3600, as fal)",
    )
    serve.add_argument(
        "--file-retention",
        type=float,
        metavar="SECONDS",
        help="keep an uploaded file this long (default 86400)",
    )
    serve.add_argument(
        "--faults",
        help="faults to inject: a FaultPlan as JSON or @file.json (see contracts.faults)",
    )
    serve.add_argument(
        "--allow-remote-inputs",
        action="store_true",
        default=None,
        help="reference engine: fetch http(s) input URLs (off: offline only)",
    )
    serve.add_argument(
        "--input-root", type=Path, help="reference engine: where file:// input URLs may point"
    )
    serve.add_argument(
        "--allow-private-inputs",
        action="store_true",
        default=None,
        help="remote inputs may be on private and loopback addresses (link-local and cloud "
        "metadata stay refused)",
    )
    serve.add_argument(
        "--allowed-input-hosts",
        metavar="HOSTS",
        help="comma-separated host names, addresses or networks remote inputs may always reach",
    )
    serve.add_argument(
        "--control-token",
        metavar="TOKEN",
        help="token the /_mock control plane requires (prefer FAL_MOCK_CONTROL_TOKEN: a flag "
        "shows in ps); unset: loopback clients only",
    )
    serve.add_argument(
        "--webhook-allow-hosts",
        metavar="HOSTS",
        help="comma-separated webhook targets allowed besides loopback and the inbox: host "
        "names, addresses, networks, or `public` for any public address",
    )
    serve.add_argument(
        "--webhook-timeout",
        type=float,
        metavar="SECONDS",
        help="how long a webhook attempt may take before it counts as failed (default 15)",
    )
    serve.add_argument(
        "--webhook-timestamps",
        choices=("clock", "wall"),
        help="X-Fal-Webhook-Timestamp from the mock's clock (default; deterministic under the "
        "virtual clock) or the real time",
    )
    serve.add_argument(
        "--lipsync-backend",
        choices=("haar", "landmarks"),
        help="reference engine: mouth tracker (default haar; landmarks needs the extra)",
    )

    spec = commands.add_parser("openapi", help="write openapi.yaml from the contract models")
    spec.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    spec.add_argument("--output", help="path to write or check (default: the repo's file)")

    sync = commands.add_parser(
        "syncscore",
        help="check an mp4's structure and how well its mouth follows its audio",
        description="Exit 0 if the file passes, 1 if it does not, 2 if it cannot be read. "
        "A positive lag means the mouth lags the audio.",
    )
    sync.add_argument("file", type=Path, help="the video to check (any mp4, ours or fal's)")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--min-score", type=float, default=0.8, help="pass threshold (default 0.8)")
    sync.add_argument("--max-lag", type=int, default=10, help="lags scanned, in frames (10)")
    sync.add_argument("--expect-fps", type=float, metavar="N", help="expected frame rate")
    sync.add_argument("--expect-size", type=_size, metavar="WxH", help="expected frame size")
    sync.add_argument("--expect-duration", type=float, metavar="S", help="expected seconds")
    cli_lipsync.add_parser(commands)
    cli_check.add_parser(commands)
    return parser


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x480, got {text!r}")
    return int(width), int(height)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "openapi":
        from contracts.openapi import main as openapi_main

        forwarded = (["--check"] if args.check else []) + (
            ["--output", args.output] if args.output else []
        )
        status: int = openapi_main(forwarded)
        return status
    if args.command == "syncscore":
        return syncscore(args)
    if args.command == "lipsync":
        return cli_lipsync.run(args)
    if args.command == "check":
        return cli_check.run(args)
    return serve(vars(args))


def syncscore(args: argparse.Namespace) -> int:
    import json

    # Lazy: PyAV and OpenCV load only for this command.
    from mock_server.lipsync.syncscore import ExpectedOutput, score_file

    width, height = args.expect_size or (None, None)
    expected = ExpectedOutput(
        width=width, height=height, fps=args.expect_fps, duration_s=args.expect_duration
    )
    try:
        report = score_file(
            args.file, expected=expected, min_score=args.min_score, max_lag=args.max_lag
        )
    except (ValueError, OSError) as error:
        print(f"fal-mock syncscore: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0 if report.passed else 1


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
        print(f"fal-mock: invalid settings:\n{settings_errors(exc)}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
    except ValueError as exc:  # e.g. a tracker backend whose extra is not installed
        print(f"fal-mock: {exc}", file=sys.stderr)
        return 2
    config = uvicorn_config(app, settings)  # makes the TLS files, if asked, before the banner
    print(banner(settings), flush=True)
    if (state := getattr(app.state, "state_dir", None)) is not None:
        print(state.summary(), flush=True)
    uvicorn.Server(config).run()
    return 0


def settings_errors(exc: ValidationError) -> str:
    """What is wrong, without the values given: they may be keys or the control token."""
    return "\n".join(
        f"  {'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def _faults_line(settings: Any, base: str) -> list[str]:
    """A mock injecting faults says so: a client failing against it should know why."""
    rules = settings.faults.rules
    if not rules:
        return []
    kinds = ", ".join(sorted({rule.kind for rule in rules}))
    return [f"  FAULTS ON: {len(rules)} rule(s) ({kinds}); counters at {base}/_mock/faults"]


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
        "  control plane: "
        + (
            "its token required (Authorization: Bearer <token> or X-Mock-Control-Token)"
            if settings.control_token is not None
            else "loopback clients only (set FAL_MOCK_CONTROL_TOKEN to use it from elsewhere)"
        ),
        f"  webhooks: JWKS {base}/rest/.well-known/jwks.json   outbox: {base}/_mock/webhooks",
        *_faults_line(settings, base),
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
