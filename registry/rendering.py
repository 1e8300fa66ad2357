"""Mustache rendering of prompt templates.

Prompts are not HTML: ``{{name}}`` interpolates verbatim (no escaping), like ``{{{name}}}``. Values
are turned into text the way the Node original's Mustache does, so a prompt renders the same for
clients of either server: ``null`` is empty, booleans are ``true``/``false``, ``2.0`` is ``2``.
Missing variables render empty; the registry checks required variables before rendering.
"""

from __future__ import annotations

from typing import Any

import pystache


class _PromptRenderer(pystache.Renderer):  # type: ignore[misc]
    def str_coerce(self, val: Any) -> str:
        if val is None:
            return ""
        if isinstance(val, bool):
            return "true" if val else "false"
        if isinstance(val, float) and val.is_integer():
            return str(int(val))
        return str(val)


def _no_escape(text: str) -> str:
    return text


def render_template(template: str, variables: dict[str, Any], partials: dict[str, str] | None = None) -> str:
    """Render one Mustache template with the given variables (and named partials, if any)."""
    renderer = _PromptRenderer(escape=_no_escape, missing_tags="ignore", partials=partials or {})
    return renderer.render(template, variables)
