"""Validation of telemetry bodies: one pass, Joi-style messages, no serializer machinery.

Ingest is the hot path (a log per LLM call), so bodies are checked by small functions rather than
DRF serializers, with upstream's rules and messages (``"prompt_name" is required``,
``metadata cannot contain more than 50 keys``). Each ``clean_*`` returns the cleaned values and
the list of messages; an empty list means valid.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# DESIGN.md: UUIDs, OTel hex ids (32/16 hex chars) and prefixed ids like t_… / s_… are all ids.
ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
METADATA_MAX_KEYS = 50
BATCH_MAX = 1000
# Run metadata is flat, as upstream: keys like these, values short strings, numbers or booleans.
FLAT_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}\Z")
FLAT_VALUE_MAX = 1024
# A cost above this is no LLM call; the cap keeps sums (trace totals, hourly rollups) finite, where
# PostgreSQL would refuse a double overflow and JSON cannot carry infinity.
AMOUNT_MAX = 1e12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Beyond year 9999 a datetime cannot represent it.
MAX_TIMESTAMP_MS = 253_402_300_799_999


class Errors(list[str]):
    def required(self, field: str) -> None:
        self.append(f'"{field}" is required')


def new_id() -> str:
    return str(uuid.uuid4())


def text(body: dict[str, Any], field: str, errors: Errors, *, max_length: int, required: bool = False) -> str:
    value = body.get(field)
    if value is None:
        if required:
            errors.required(field)
        return ""
    if not isinstance(value, str):
        errors.append(f'"{field}" must be a string')
        return ""
    if required and not value:
        errors.append(f'"{field}" is not allowed to be empty')
    if len(value) > max_length:
        errors.append(f'"{field}" length must be less than or equal to {max_length} characters long')
    return value


def count(body: dict[str, Any], field: str, errors: Errors) -> int | None:
    """A non-negative integer (tokens, milliseconds). Zero is kept as zero, not null (upstream bug)."""
    value = body.get(field)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())  # also rejects inf (1e400)
    ):
        errors.append(f'"{field}" must be an integer')
        return None
    if value < 0:
        errors.append(f'"{field}" must be greater than or equal to 0')
        return None
    if value > 2**63 - 1:
        errors.append(f'"{field}" must be less than or equal to {2**63 - 1}')
        return None
    return int(value)


def finite(value: int | float) -> bool:
    """math.isfinite, but an integer too large for a double (JSON allows any) is not finite either."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def amount(body: dict[str, Any], field: str, errors: Errors) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not finite(value):
        errors.append(f'"{field}" must be a number')
        return None
    if value < 0:
        errors.append(f'"{field}" must be greater than or equal to 0')
        return None
    if value > AMOUNT_MAX:
        errors.append(f'"{field}" must be less than or equal to {AMOUNT_MAX:.0f}')
        return None
    return float(value)


def obj(
    body: dict[str, Any], field: str, errors: Errors, *, max_keys: int | None = None
) -> dict[str, Any] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append(f'"{field}" must be of type object')
        return None
    if max_keys is not None and len(value) > max_keys:
        errors.append(f"{field} cannot contain more than {max_keys} keys")
    return value


def metadata(body: dict[str, Any], errors: Errors, field: str = "metadata") -> dict[str, Any]:
    return obj(body, field, errors, max_keys=METADATA_MAX_KEYS) or {}


def flat_metadata(body: dict[str, Any], errors: Errors) -> dict[str, Any] | None:
    value = obj(body, "metadata", errors, max_keys=METADATA_MAX_KEYS)
    if value is None:
        return None
    for key, item in value.items():
        if not FLAT_KEY_RE.match(key):
            errors.append(f'"metadata.{key}" is not allowed (keys: letters, digits, "_", ".", "-", ≤ 128)')
        elif isinstance(item, str):
            if len(item) > FLAT_VALUE_MAX:
                errors.append(f'"metadata.{key}" length must be less than or equal to {FLAT_VALUE_MAX}')
        elif isinstance(item, bool) or (isinstance(item, int | float) and finite(item)):
            continue
        else:
            errors.append(f'"metadata.{key}" must be a string, a number or a boolean')
    return value


def client_id(body: dict[str, Any], field: str, errors: Errors) -> str:
    """A client-supplied id, or a fresh UUID when omitted."""
    value = body.get(field)
    if value is None:
        return new_id()
    if not isinstance(value, str) or not ID_RE.match(value):
        errors.append(
            f'"{field}" must be a UUID, an OpenTelemetry hex id or an id of letters, digits and _.:-'
        )
        return ""
    return value


def optional_id(body: dict[str, Any], field: str, errors: Errors) -> str:
    value = body.get(field)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not ID_RE.match(value):
        errors.append(
            f'"{field}" must be a UUID, an OpenTelemetry hex id or an id of letters, digits and _.:-'
        )
        return ""
    return value


def choice(body: dict[str, Any], field: str, errors: Errors, choices: tuple[str, ...], default: str) -> str:
    value = body.get(field, default)
    if value is None:
        return default
    if value not in choices:
        errors.append(f'"{field}" must be one of [{", ".join(choices)}]')
        return default
    return value


def millis(body: dict[str, Any], field: str, errors: Errors) -> datetime | None:
    """Unix milliseconds (upstream's span times) as an aware datetime; fractions keep microseconds."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not finite(value):
        errors.append(f'"{field}" must be a number (Unix milliseconds)')
        return None
    if not 0 <= value <= MAX_TIMESTAMP_MS:
        errors.append(f'"{field}" must be between 0 and {MAX_TIMESTAMP_MS}')
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # In whole microseconds from the epoch: value / 1000 as a double drifts by microseconds in
    # far-off years, so an integer millisecond would come back as a fraction.
    return _EPOCH + timedelta(microseconds=round(value * 1000))


def as_millis(value: datetime | None) -> int | float | None:
    """The wire form of a span time: whole milliseconds, with a fraction when finer (OTLP spans)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    micros = (value - _EPOCH) // _MICROSECOND  # exact: a double timestamp drifts in far-off years
    return micros // 1000 if micros % 1000 == 0 else micros / 1000


def items_of(body: Any, errors: Errors) -> tuple[list[dict[str, Any]], bool]:
    """A single object or a JSON array of up to BATCH_MAX objects; (items, was_batch)."""
    if isinstance(body, list):
        if not body:
            errors.append('"value" must contain at least 1 items')
        elif len(body) > BATCH_MAX:
            errors.append(f'"value" must contain less than or equal to {BATCH_MAX} items')
        elif not all(isinstance(item, dict) for item in body):
            errors.append('"value" items must be objects')
        return ([item for item in body if isinstance(item, dict)] if not errors else []), True
    if not isinstance(body, dict):
        errors.append('"value" must be of type object')
        return [], False
    return [body], False


def prefixed(index: int | None, messages: list[str]) -> list[str]:
    return messages if index is None else [f"[{index}] {message}" for message in messages]
