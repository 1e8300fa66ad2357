"""Prompt storage drivers (the registry issue fills this in); for now only their health check."""

from __future__ import annotations

import os

from django.conf import settings


def storage_healthy() -> bool:
    """True when the configured prompt store (the git root) can be written."""
    try:
        settings.GIT_ROOT.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(settings.GIT_ROOT, os.W_OK)
