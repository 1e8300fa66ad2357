#!/usr/bin/env python
"""Django's command-line utility for a source checkout (same as ``promptmetrics-manage``)."""

from __future__ import annotations

from config.server import manage

if __name__ == "__main__":
    manage()
