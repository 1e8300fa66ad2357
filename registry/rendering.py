"""Mustache rendering of prompt templates.

Prompts are not HTML: ``{{name}}`` interpolates verbatim (no escaping), like ``{{{name}}}``. Values
are turned into text the way the Node original's Mustache does, so a prompt renders the same for
clients of either server: ``null`` is empty, booleans are ``true``/``false``, ``2.0`` is ``2``.
Missing variables render empty; the registry checks required variables before rendering.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import pystache
from pystache.parser import ParsingError


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

# {{name}}, {{{name}}} and {{&name}}: plain variables, which is all most prompts contain.
_PLAIN_TAG = re.compile(r"\{\{(?:\{\s*([A-Za-z0-9_-]+)\s*\}|&?\s*([A-Za-z0-9_-]+)\s*)\}\}")


class _Plain:
    """A template made only of text and plain variable tags, rendered by joining its pieces: about
    five times cheaper than pystache's general engine, with the same output (top-level names only;
    dotted names, sections and the rest go to pystache)."""

    def __init__(self, pieces: list[str]) -> None:
        self.literals = pieces[0::2]
        self.names = pieces[1::2]

    def render(self, variables: dict[str, Any]) -> str:
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(_RENDERER.str_coerce(variables.get(name)))
            out.append(literal)
        return "".join(out)


def _plain(template: str) -> _Plain | None:
    pieces: list[str] = []
    position = 0
    for match in _PLAIN_TAG.finditer(template):
        pieces += [template[position : match.start()], match.group(1) or match.group(2)]
        position = match.end()
    pieces.append(template[position:])
    literals = pieces[0::2]
    if any("{{" in text or "}}" in text for text in literals):
        return None  # another kind of tag
    if any(a.endswith("{") or b.startswith("}") for a, b in zip(literals, literals[1:], strict=False)):
        return None  # a brace glued to a tag: leave the edge cases to the real parser
    return _Plain(pieces)


class TemplateError(ValueError):
    """A template Mustache cannot parse. Versions are stored as sent (as upstream does), so this is
    found when one is rendered."""


@lru_cache(maxsize=4096)
def _parsed(template: str) -> Any:
    # Prompts are rendered far more often than they change: parse each template text once.
    try:
        return _plain(template) or pystache.parse(template)
    except (ParsingError, IndexError) as exc:  # IndexError: pystache on a malformed "{{= =}}"
        raise TemplateError(str(exc)) from exc


def render_template(template: str, variables: dict[str, Any], partials: dict[str, str] | None = None) -> str:
    """Render one Mustache template with the given variables (and named partials, if any)."""
    if partials:
        renderer = _PromptRenderer(escape=_no_escape, missing_tags="ignore", partials=partials)
        return renderer.render(template, variables)
    parsed = _parsed(template)
    if isinstance(parsed, _Plain):
        return parsed.render(variables)
    return _RENDERER.render(parsed, variables)


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
