"""SemVer 2.0 versions: validation and precedence (semver.org §11), for "latest" and ordering.

Upstream accepted only ``MAJOR.MINOR.PATCH`` and compared versions as strings in some drivers
("1.10.0" < "1.9.0"); here any SemVer 2.0 string is accepted and ordered by precedence.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# The regular expression published on semver.org (numeric identifiers without leading zeros).
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)
MAX_LENGTH = 64


class Precedence(NamedTuple):
    major: int
    minor: int
    patch: int
    # A release sorts after every pre-release of the same version: (1,) > (0, ...).
    release: int
    prerelease: tuple[tuple[int, int | str], ...]


def is_valid(version: str) -> bool:
    return len(version) <= MAX_LENGTH and SEMVER_RE.match(version) is not None


def is_prerelease(version: str) -> bool:
    match = SEMVER_RE.match(version)
    return bool(match and match.group(4))


def precedence(version: str) -> Precedence:
    """A sort key: build metadata is ignored, numeric identifiers sort before alphanumeric ones."""
    match = SEMVER_RE.match(version)
    if match is None:
        raise ValueError(f"not a SemVer version: {version!r}")
    major, minor, patch, pre = match.group(1), match.group(2), match.group(3), match.group(4)
    identifiers: tuple[tuple[int, int | str], ...] = ()
    if pre:
        identifiers = tuple((0, int(part)) if part.isdigit() else (1, part) for part in pre.split("."))
    return Precedence(int(major), int(minor), int(patch), 0 if pre else 1, identifiers)


def latest(versions: list[str]) -> str | None:
    """The highest release, or the highest pre-release when there is no release yet."""
    releases = [v for v in versions if not is_prerelease(v)]
    candidates = releases or versions
    # Versions differing only in build metadata have equal precedence: break the tie by the text.
    return max(candidates, key=lambda v: (precedence(v), v)) if candidates else None
