"""fal-lipsync-mock's server: ``create_app``, ``MockSettings``, ``LiveServer``, client helpers.

Names load on first use, so importing the plain-Python engine does not pull in the web stack.

PYTEST_DONT_REWRITE: the pytest plugin (entry point ``fal_mock``) makes pytest mark this
package for assertion rewriting; it is imported before that (by the plugin itself, or by a
pytester run inside a test session), and nothing here relies on rewritten asserts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_server.app import create_app
    from mock_server.clients import point_fal_client, tls_environment
    from mock_server.settings import MockSettings
    from mock_server.testing import LiveServer

__all__ = ["LiveServer", "MockSettings", "create_app", "point_fal_client", "tls_environment"]

_HOMES = {
    "create_app": "mock_server.app",
    "MockSettings": "mock_server.settings",
    "LiveServer": "mock_server.testing",
    "point_fal_client": "mock_server.clients",
    "tls_environment": "mock_server.clients",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
