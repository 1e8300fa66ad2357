"""A hello-world WSGI app: the ceiling gunicorn + wrk reach on this machine at this moment.

bench/auth_read.py runs it under the same gunicorn settings as the server, so that a result can be
read against what the (shared, noisy) machine could do at all when it was taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"id":1,"name":"hello","scopes":"read","workspace_id":"*","expires_at":null}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
