"""``registry.semver``: SemVer 2.0 validation and precedence (semver.org §9-§11), and "latest"."""

from __future__ import annotations

import itertools
import random

import pytest

from registry import semver

# semver.org §11.4, verbatim.
SPEC_CHAIN = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.pairwise(SPEC_CHAIN)))
def test_the_spec_precedence_chain(lower, higher):
    assert semver.precedence(lower) < semver.precedence(higher)
    assert not semver.precedence(higher) < semver.precedence(lower)


def test_sorting_a_shuffled_spec_chain_restores_it():
    shuffled = SPEC_CHAIN[:]
    random.Random(11).shuffle(shuffled)
    assert sorted(shuffled, key=semver.precedence) == SPEC_CHAIN
    assert sorted(reversed(SPEC_CHAIN), key=semver.precedence) == SPEC_CHAIN


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        # §11.2: major, minor, patch compared numerically.
        ("1.0.0", "2.0.0"),
        ("2.0.0", "2.1.0"),
        ("2.1.0", "2.1.1"),
        ("1.9.0", "1.10.0"),
        ("1.0.9", "1.0.10"),
        ("9.99.999", "10.0.0"),
        ("0.0.1", "0.1.0"),
        # §11.3: a pre-release is lower than its release, but higher than earlier releases.
        ("1.0.0-rc.1", "1.0.0"),
        ("0.9.9", "1.0.0-alpha"),
        ("1.0.0", "1.0.1-alpha"),
        # §11.4: numeric identifiers compare numerically, lower than alphanumeric ones.
        ("1.0.0-2", "1.0.0-10"),
        ("1.0.0-99", "1.0.0-a"),
        ("1.0.0-rc.9", "1.0.0-rc.10"),
        ("1.0.0-1.a", "1.0.0-1.b"),
        # Alphanumeric identifiers compare in ASCII order (upper case before lower case).
        ("1.0.0-Beta", "1.0.0-alpha"),
        ("1.0.0-a.b", "1.0.0-a-b"),  # "a" < "a-b": a shorter prefix sorts first
        ("1.0.0-alpha-1", "1.0.0-alpha1"),
        # A larger set of identifiers is higher when all preceding ones are equal.
        ("1.0.0-alpha", "1.0.0-alpha.0"),
        ("1.0.0-a.b", "1.0.0-a.b.c"),
        # Large numbers do not overflow or compare as strings.
        ("1.0.0", "18446744073709551616.0.0"),
    ],
)
def test_precedence(lower, higher):
    assert semver.precedence(lower) < semver.precedence(higher)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0+build.1", "1.0.0+build.2"),
        ("1.0.0", "1.0.0+20130313144700"),
        ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"),
        ("1.0.0-alpha+001", "1.0.0-alpha+zzz"),
    ],
)
def test_build_metadata_is_ignored_in_precedence(a, b):
    assert semver.precedence(a) == semver.precedence(b)


@pytest.mark.parametrize(
    "version",
    [
        "0.0.0",
        "1.2.3",
        "10.20.30",
        "1.1.2-prerelease+meta",
        "1.1.2+meta",
        "1.1.2+meta-valid",
        "1.0.0-alpha",
        "1.0.0-alpha.beta.1",
        "1.0.0-alpha0.valid",
        "1.0.0-alpha.0valid",
        "1.0.0-rc.1+build.1",
        "2.0.0-rc.1+build.123",
        "1.2.3-beta",
        "10.2.3-DEV-SNAPSHOT",
        "1.2.3-SNAPSHOT-123",
        "2.0.0+build.1848",
        "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
        "1.0.0-0A.is.legal",
        "1.0.0--",
        "1.0.0-0",
        "1.0.0+01",  # leading zeros are fine in build metadata
        "1.0.0-x-y-z.--",
    ],
)
def test_valid_versions(version):
    assert semver.is_valid(version)
    semver.precedence(version)  # does not raise


@pytest.mark.parametrize(
    "version",
    [
        "1",
        "1.2",
        "1.2.3.4",
        "01.1.1",
        "1.01.1",
        "1.1.01",
        "00.0.0",
        "1.0.0-01",  # numeric pre-release identifiers may not have leading zeros
        "1.0.0-alpha.01",
        "1.2.3-0123",
        "1.2.3-0123.0123",
        "v1.0.0",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-alpha..1",
        "1.0.0-alpha_beta",
        "1.0.0+build+1",
        "1.0.0-+",
        "+invalid",
        "-invalid",
        "alpha",
        "1.2.3.DEV",
        "1.2-SNAPSHOT",
        "-1.0.0",
        " 1.0.0",
        "1.0.0 ",
        "1.0.0\n",
        "1.0.0-é",
        "١.٠.٠",  # Arabic-Indic digits are \\d in Python regexes, not SemVer digits
        "",
    ],
)
def test_invalid_versions(version):
    assert not semver.is_valid(version)
    with pytest.raises(ValueError):
        semver.precedence(version)


def test_the_length_limit():
    longest = "1.0.0-" + "a" * (semver.MAX_LENGTH - 6)
    assert len(longest) == semver.MAX_LENGTH
    assert semver.is_valid(longest)
    assert not semver.is_valid(longest + "a")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.0.0", False),
        ("1.0.0+build", False),
        ("1.0.0-rc.1", True),
        ("1.0.0-0", True),
        ("1.0.0-rc.1+build", True),
        ("1.0.0+build-with-hyphen", False),
    ],
)
def test_is_prerelease(version, expected):
    assert semver.is_prerelease(version) is expected


# --- latest() ---


def test_latest_of_nothing_is_none():
    assert semver.latest([]) is None


def test_latest_is_the_highest_release_by_precedence_not_by_string_or_order():
    assert semver.latest(["1.9.0", "1.10.0", "1.2.0"]) == "1.10.0"
    assert semver.latest(["1.10.0", "1.9.0"]) == "1.10.0"
    assert semver.latest(["10.0.0", "9.0.0"]) == "10.0.0"


def test_latest_ignores_pre_releases_when_a_release_exists():
    assert semver.latest(["1.0.0", "2.0.0-rc.1", "2.0.0-beta"]) == "1.0.0"
    assert semver.latest(["0.0.1", "99.0.0-alpha"]) == "0.0.1"


def test_latest_is_the_release_over_its_own_pre_releases():
    assert semver.latest(SPEC_CHAIN) == "1.0.0"
    assert semver.latest(list(reversed(SPEC_CHAIN))) == "1.0.0"


def test_latest_among_pre_releases_only_is_the_highest_pre_release():
    assert semver.latest(SPEC_CHAIN[:-1]) == "1.0.0-rc.1"
    assert semver.latest(["1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-alpha"]) == "1.0.0-beta.11"
    assert semver.latest(["2.0.0-alpha", "1.5.0-rc.9"]) == "2.0.0-alpha"


def test_latest_treats_build_metadata_as_a_release():
    assert semver.latest(["1.0.0", "1.0.1+build.5"]) == "1.0.1+build.5"
    assert semver.latest(["1.0.1+build.5", "1.0.1-rc.1"]) == "1.0.1+build.5"


def test_latest_of_versions_equal_in_precedence_is_one_of_them():
    assert semver.latest(["1.0.0+a", "1.0.0+b"]) in {"1.0.0+a", "1.0.0+b"}


def test_latest_of_a_single_version():
    assert semver.latest(["0.1.0-alpha"]) == "0.1.0-alpha"
    assert semver.latest(["3.2.1"]) == "3.2.1"
