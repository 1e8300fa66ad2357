"""The prompt document: upstream's JSON format, validated as upstream does, plus text prompts.

A document is stored exactly as validated (unknown keys preserved, ``variables.*.required``
defaulted to false) and serialized pretty-printed with a 2-space indent, as upstream stores files.
Messages follow Joi's wording (``"name" is required``) so clients see upstream's errors.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from registry import semver

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
# Not only dots: "." and ".." are path segments that clients normalize away, so such a label could
# be created but never read or deleted.
LABEL_RE = re.compile(r"^(?!\.+\Z)[A-Za-z0-9_.-]{1,128}\Z")
ROLES = ("system", "user", "assistant")
VARIABLE_TYPES = ("string", "number", "boolean", "array", "object")
PROMPT_TYPES = ("chat", "text")
MAX_CONTENT = 100_000
MAX_TAGS = 20

# (field, minimum, maximum, integer only) — the numeric bounds upstream enforces on model_config.
_MODEL_BOUNDS = (
    ("temperature", 0, 2, False),
    ("max_tokens", 1, None, True),
    ("top_p", 0, 1, False),
    ("frequency_penalty", -2, 2, False),
    ("presence_penalty", -2, 2, False),
)

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def validate_name(name: Any) -> list[str]:
    if name is None:
        return ['"name" is required']
    if not isinstance(name, str):
        return ['"name" must be a string']
    if len(name) > 128:
        return ['"name" length must be less than or equal to 128 characters long']
    if not NAME_RE.match(name):
        return ["name must contain only letters, numbers, hyphens, and underscores"]
    return []


def validate_version(version: Any, field: str = "version") -> list[str]:
    if version is None:
        return [f'"{field}" is required']
    if not isinstance(version, str) or not semver.is_valid(version):
        return [f"{field} must be semantic (e.g., 1.0.0 or 1.1.0-rc.1)"]
    if version.endswith(".lock"):
        # Git refuses ref names ending in ".lock", and every version becomes a tag.
        return [f'{field} cannot end with ".lock"']
    return []


def validate_document(body: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the normalized document and the validation messages (empty when valid)."""
    if not isinstance(body, dict):
        return {}, ['"value" must be of type object']
    doc = dict(body)
    errors = validate_name(doc.get("name")) + validate_version(doc.get("version"))
    kind = doc.get("type", "chat")
    if kind not in PROMPT_TYPES:
        errors.append('"type" must be one of [chat, text]')
    elif kind == "text":
        errors += _check_text(doc)
    else:
        errors += _check_messages(doc.get("messages"))
    if "variables" in doc:
        variables, variable_errors = _check_variables(doc["variables"])
        doc["variables"] = variables
        errors += variable_errors
    errors += _check_model_config(doc.get("model_config"))
    errors += _check_ollama(doc.get("ollama"))
    errors += _check_tags(doc.get("tags"))
    return doc, errors


def _check_content(value: Any, field: str) -> list[str]:
    if value is None:
        return [f'"{field}" is required']
    if not isinstance(value, str):
        return [f'"{field}" must be a string']
    if not value:
        return [f'"{field}" is not allowed to be empty']
    if len(value) > MAX_CONTENT:
        return [f'"{field}" length must be less than or equal to {MAX_CONTENT} characters long']
    return []


def _check_text(doc: dict[str, Any]) -> list[str]:
    errors = _check_content(doc.get("template"), "template")
    if "messages" in doc:
        errors.append('"messages" is not allowed for text prompts (use "template")')
    return errors


def _check_messages(messages: Any) -> list[str]:
    if messages is None:
        return ['"messages" is required']
    if not isinstance(messages, list):
        return ['"messages" must be an array']
    if not messages:
        return ['"messages" must contain at least 1 items']
    errors: list[str] = []
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            errors.append(f'"{field}" must be of type object')
            continue
        if message.get("role") not in ROLES:
            errors.append(f'"{field}.role" must be one of [{", ".join(ROLES)}]')
        errors += _check_content(message.get("content"), f"{field}.content")
        name = message.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 64):
            errors.append(f'"{field}.name" must be a string of at most 64 characters')
    return errors


def _check_variables(variables: Any) -> tuple[Any, list[str]]:
    if not isinstance(variables, dict):
        return variables, ['"variables" must be of type object']
    errors: list[str] = []
    normalized: dict[str, Any] = {}
    for key, definition in variables.items():
        field = f"variables.{key}"
        if not key or len(key) > 128:
            errors.append(f'"{field}" name must be 1 to 128 characters long')
        if not isinstance(definition, dict):
            errors.append(f'"{field}" must be of type object')
            normalized[key] = definition
            continue
        definition = dict(definition)
        if "type" not in definition:
            errors.append(f'"{field}.type" is required')
        elif definition["type"] not in VARIABLE_TYPES:
            errors.append(f'"{field}.type" must be one of [{", ".join(VARIABLE_TYPES)}]')
        definition.setdefault("required", False)
        if not isinstance(definition["required"], bool):
            errors.append(f'"{field}.required" must be a boolean')
        normalized[key] = definition
    return normalized, errors


def _check_model_config(config: Any) -> list[str]:
    if config is None:
        return []
    if not isinstance(config, dict):
        return ['"model_config" must be of type object']
    errors: list[str] = []
    if "model" in config and not isinstance(config["model"], str):
        errors.append('"model_config.model" must be a string')
    for key, low, high, integer in _MODEL_BOUNDS:
        if key not in config:
            continue
        value, field = config[key], f"model_config.{key}"
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and value != int(value)):
            errors.append(f'"{field}" must be {"an integer" if integer else "a number"}')
        elif value < low:
            errors.append(f'"{field}" must be greater than or equal to {low}')
        elif high is not None and value > high:
            errors.append(f'"{field}" must be less than or equal to {high}')
    return errors


def _check_ollama(ollama: Any) -> list[str]:
    if ollama is None:
        return []
    if not isinstance(ollama, dict):
        return ['"ollama" must be of type object']
    errors: list[str] = []
    if "options" in ollama and not isinstance(ollama["options"], dict):
        errors.append('"ollama.options" must be of type object')
    keep_alive = ollama.get("keep_alive")
    if keep_alive is not None and (not isinstance(keep_alive, str) or len(keep_alive) > 16):
        errors.append('"ollama.keep_alive" must be a string of at most 16 characters')
    if "format" in ollama and not isinstance(ollama["format"], str | dict):
        errors.append('"ollama.format" must be a string or an object')
    return errors


def _check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        return ['"tags" must be an array']
    errors = [f'"tags" must contain less than or equal to {MAX_TAGS} items'] if len(tags) > MAX_TAGS else []
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or len(tag) > 64:
            errors.append(f'"tags[{i}]" must be a string of at most 64 characters')
    return errors


def serialize(doc: dict[str, Any]) -> bytes:
    """The stored bytes: pretty-printed like upstream's files, with a trailing newline for Git."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def content_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def variable_type_errors(doc: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Names of supplied variables whose values do not match their declared type."""
    definitions = doc.get("variables") or {}
    bad = []
    for key, value in values.items():
        declared = definitions.get(key)
        if isinstance(declared, dict) and declared.get("type") in _TYPE_CHECKS:
            if not _TYPE_CHECKS[declared["type"]](value):
                bad.append(f'"{key}" must be of type {declared["type"]}')
    return bad


def missing_required(doc: dict[str, Any], values: dict[str, Any]) -> list[str]:
    definitions = doc.get("variables") or {}
    return [
        key
        for key, definition in definitions.items()
        if isinstance(definition, dict) and definition.get("required") is True and key not in values
    ]
