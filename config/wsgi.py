"""WSGI entry point, with chunked request bodies made readable for Django.

OTLP exporters (the Node one in particular) send ``Transfer-Encoding: chunked`` without a
Content-Length. gunicorn de-chunks the stream, but Django reads only CONTENT_LENGTH bytes, so such a
body would arrive empty. We read it here, bounded by MAX_BODY_BYTES (+1 so that the size check in
RequestContextMiddleware can refuse an oversize body with 413).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def read_chunked_bodies(app: WSGIApp, max_bytes: int) -> WSGIApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(max_bytes + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return wrapped


def _build() -> WSGIApp:
    from django.conf import settings

    django_app = get_wsgi_application()
    return read_chunked_bodies(django_app, settings.MAX_BODY_BYTES)


application = _build()
