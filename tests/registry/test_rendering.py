"""The Mustache renderer against the official spec vectors (../shared/conformance/mustache-spec).

Prompt rendering does not HTML-escape. The spec's tests that interpolate ``& " < >`` with
``{{name}}`` expect escaped output; read with escaping turned off, their expected text is the
unescaped one, which is what these tests compare against (explicitly, not by skipping them).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from registry.rendering import render_template

SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "mustache-spec"
SPEC_FILES = ["interpolation", "sections", "inverted", "comments", "delimiters", "partials"]


def _cases() -> list[object]:
    if not SPEC_DIR.is_dir():
        return [pytest.param(None, id="spec-missing")]
    cases = []
    for name in SPEC_FILES:
        for test in json.loads((SPEC_DIR / f"{name}.json").read_text())["tests"]:
            cases.append(pytest.param(test, id=f"{name}: {test['name']}"))
    return cases


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _unescaped_expectation(test: dict) -> str:
    """The expected output with HTML escaping turned off: only data values were ever escaped."""
    if any(c in text for text in _strings(test["data"]) for c in '&"<>'):
        return html.unescape(test["expected"])
    return test["expected"]


def test_only_the_html_escaping_vectors_are_read_unescaped():
    tests = [c for c in _cases() if c.values[0] is not None]
    changed = [c.id for c in tests if _unescaped_expectation(c.values[0]) != c.values[0]["expected"]]
    assert changed == [
        "interpolation: HTML Escaping",
        "interpolation: Implicit Iterators - HTML Escaping",
        "sections: Implicit Iterator - HTML Escaping",
    ]


@pytest.mark.parametrize("test", _cases())
def test_the_mustache_spec(test):
    assert test is not None, f"conformance vectors not found at {SPEC_DIR}"
    rendered = render_template(test["template"], test["data"], test.get("partials"))
    assert rendered == _unescaped_expectation(test), test["desc"]


def test_the_spec_vectors_are_all_there():
    assert sum(1 for c in _cases() if c.values[0] is not None) == 136


def test_html_is_never_escaped():
    assert render_template("{{a}} {{{a}}} {{&a}}", {"a": '<b> & "q"'}) == '<b> & "q" <b> & "q" <b> & "q"'


@pytest.mark.parametrize(
    ("value", "text"), [(None, ""), (True, "true"), (False, "false"), (2.0, "2"), (1.5, "1.5"), (0, "0")]
)
def test_values_render_as_the_node_original_renders_them(value, text):
    assert render_template("[{{v}}]", {"v": value}) == f"[{text}]"


def test_missing_variables_render_empty():
    assert render_template("Hello {{name}}{{#user}}, {{user.name}}{{/user}}!", {}) == "Hello !"


_PLAIN_CASES = [
    "Hello {{name}}!",
    "{{ name }} and {{{name}}} and {{& name}} and {{&name}}",
    "{{missing}}|{{n}}|{{f}}|{{t}}|{{z}}|{{none}}|{{list}}",
    "no tags at all",
    "{{name}}{{name}}",
    "unicode {{name}} ünï — {{n}}",
    "{name} { {name} } {{name}}} {{{name}}",
    "{{a-b}} {{a_b}} {{#t}}section {{name}}{{/t}}",
    "{{=<% %>=}}<% name %>",
    "{{! comment }}{{name}}",
]
_PLAIN_VARIABLES = {
    "name": "Ada <&>",
    "n": 3,
    "f": 2.0,
    "t": True,
    "z": 0,
    "none": None,
    "list": [1, 2],
    "a-b": "dash",
    "a_b": "under",
}


@pytest.mark.parametrize("template", _PLAIN_CASES)
def test_the_plain_variable_fast_path_renders_exactly_like_pystache(template):
    """Templates of only plain variables skip pystache; the output must not change."""
    from registry.rendering import _no_escape, _PromptRenderer

    reference = _PromptRenderer(escape=_no_escape, missing_tags="ignore").render(template, _PLAIN_VARIABLES)

    assert render_template(template, _PLAIN_VARIABLES) == reference
