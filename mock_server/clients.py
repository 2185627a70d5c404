"""Pointing the official clients at a live mock.

fal-client builds URLs from module constants (read at call time), so reassigning them is all it
takes, ``http://`` included; this is what fal's own unit tests do. Nothing in the installed
package is edited, and the old values come back on exit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Final

FAL_CLIENT_CONSTANTS: Final = ("QUEUE_URL_FORMAT", "RUN_URL_FORMAT", "REST_URL", "CDN_URL")


def fal_client_urls(base_url: str) -> dict[str, str]:
    """The values fal-client's constants take for a mock at ``base_url`` (trailing slashes
    matter: the queue and run formats are concatenated with the app id)."""
    base = base_url.rstrip("/")
    return {
        "QUEUE_URL_FORMAT": f"{base}/queue/",
        "RUN_URL_FORMAT": f"{base}/run/",
        "REST_URL": f"{base}/rest",
        "CDN_URL": f"{base}/cdn",
    }


@contextlib.contextmanager
def point_fal_client(base_url: str) -> Iterator[dict[str, str]]:
    """Route an installed fal_client to the mock for the duration of the block."""
    import fal_client.client as fal_module

    saved = {name: getattr(fal_module, name) for name in FAL_CLIENT_CONSTANTS}
    values = fal_client_urls(base_url)
    for name, value in values.items():
        setattr(fal_module, name, value)
    try:
        yield values
    finally:
        for name, value in saved.items():
            setattr(fal_module, name, value)


def tls_environment(base_url: str, ca_bundle: str) -> dict[str, str]:
    """Environment variables that point fal-client at a TLS mock with no code change. They
    must be set before ``import fal_client``; uploads still need ``point_fal_client``."""
    authority = base_url.split("://", 1)[1].rstrip("/")
    return {
        "FAL_RUN_HOST": f"{authority}/run",
        "FAL_QUEUE_RUN_HOST": f"{authority}/queue",
        "SSL_CERT_FILE": ca_bundle,
        "FAL_KEY": "mock-key",
    }


def js_client_snippet(base_url: str) -> str:
    """@fal-ai/client configuration for a mock at ``base_url``."""
    base = base_url.rstrip("/")
    rewrites = json.dumps(
        [
            ["https://queue.fal.run", f"{base}/queue"],
            ["https://fal.run", f"{base}/run"],
            ["https://rest.fal.ai", f"{base}/rest"],
        ]
    )
    return (
        'import { createFalClient } from "@fal-ai/client";\n'
        f"const MAP = {rewrites};\n"
        "const fal = createFalClient({\n"
        '  credentials: "mock-key",\n'
        "  requestMiddleware: async (req) => {\n"
        "    for (const [from, to] of MAP) if (req.url.startsWith(from))\n"
        "      return { ...req, url: to + req.url.slice(from.length) };\n"
        "    return req;\n"
        "  },\n"
        "});\n"
        "// or, through the proxy route:\n"
        f'// createFalClient({{ credentials: "mock-key",\n'
        f'//   proxyUrl: {{ url: "{base}/api/fal/proxy", when: "always" }} }})\n'
    )
