"""plotly.js as one of our static files, taken from the ``plotly`` Python package (never a CDN)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"


def _package_data() -> Path:
    # Located without importing plotly: its __init__ pulls in narwhals and more for nothing here.
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("the plotly package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs: Any) -> list[CheckMessage]:
        try:
            present = (_package_data() / "plotly.min.js").is_file()
        except LookupError:
            present = False
        return (
            [] if present else [Error("plotly.min.js not found in the plotly package", id="dashboard.E001")]
        )

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if path != PLOTLY_JS:
            return [] if (find_all or kwargs.get("all")) else ""
        found = str(_package_data() / "plotly.min.js")
        return [found] if (find_all or kwargs.get("all")) else found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        storage = FileSystemStorage(location=_package_data())
        storage.prefix = PLOTLY_JS.rsplit("/", 1)[0]  # type: ignore[attr-defined] - read by collectstatic
        yield PLOTLY_JS.rsplit("/", 1)[1], storage
