"""Mustache rendering of prompt templates.

Prompts are not HTML: ``{{name}}`` interpolates verbatim (no escaping), like ``{{{name}}}``. Values
are turned into text the way the Node original's Mustache does, so a prompt renders the same for
clients of either server: ``null`` is empty, booleans are ``true``/``false``, ``2.0`` is ``2``.
Missing variables render empty; the registry checks required variables before rendering.
"""

from __future__ import annotations

from functools import lru_cache
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


_RENDERER = _PromptRenderer(escape=_no_escape, missing_tags="ignore")


@lru_cache(maxsize=4096)
def _parsed(template: str) -> Any:
    # Prompts are rendered far more often than they change: parse each template text once.
    return pystache.parse(template)


def render_template(template: str, variables: dict[str, Any], partials: dict[str, str] | None = None) -> str:
    """Render one Mustache template with the given variables (and named partials, if any)."""
    if partials:
        renderer = _PromptRenderer(escape=_no_escape, missing_tags="ignore", partials=partials)
        return renderer.render(template, variables)
    return _RENDERER.render(_parsed(template), variables)


def render_document(document: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """A copy of a prompt document with its templates rendered; assistant messages stay literal
    (few-shot examples keep their braces). The cached original is never modified."""
    rendered = dict(document)
    if document.get("type") == "text":
        rendered["template"] = render_template(document["template"], variables)
        return rendered
    rendered["messages"] = [
        message
        if message.get("role") == "assistant"
        else {**message, "content": render_template(message["content"], variables)}
        for message in document.get("messages", [])
    ]
    return rendered
