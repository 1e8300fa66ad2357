"""The rule engine of evaluation suites: score one model output against a suite's rule criteria.

A suite's ``criteria`` is a free-form object (upstream stores it as given); only its ``rules`` list
means anything here, other keys are ignored and criteria without ``rules`` have no rules::

    {"rules": [{"type": "regex", "pattern": "^yes", "flags": "i", "name": "starts-yes", "weight": 2}, ...]}

Every rule has a ``type``, an optional ``name`` (reported instead of the type) and an optional
``weight`` (positive, default 1). Unknown keys in a rule are errors: a misspelt option such as
``case_sensitve`` would otherwise silently change results. Null optional keys count as absent.

=================  ==========================================================================
``regex``          ``pattern``; ``flags`` (letters of ``imsx``); ``match`` ``search`` | ``full``
``keyword``        ``keywords`` (non-empty strings); ``mode`` ``all`` | ``any``;
                   ``case_sensitive`` (default false)
``json_schema``    ``schema`` (object): a string output must parse as JSON, any other output is
                   taken as the JSON value itself; the value must validate against the schema
``length``         ``min`` and/or ``max`` (inclusive); ``unit`` ``chars`` | ``words``
``exact_match``    ``value`` (any JSON value), else the expected output; ``case_sensitive``
                   (default true); ``trim`` (default true, strips surrounding whitespace)
``contains``       ``value`` (string), else the expected output, must occur in the output;
                   ``case_sensitive`` (default true)
``numeric_range``  ``min`` and/or ``max`` (inclusive): the output is a number, or a string
                   holding one
=================  ==========================================================================

Each rule yields a check that passes or fails with a reason; the score is the weighted fraction of
passed checks and the outcome passes when every check does. No rules: score 1, passed.

Text coercion (``output_text`` / ``expected_text``): a string is read as it is; any other value as
``json.dumps(value, sort_keys=True, ensure_ascii=False)`` (so equal objects give equal text, and an
output of None reads as ``null``). An expected output that is an object with a single key among
``answer``, ``expected``, ``output`` and ``text`` stands for that key's value, because dataset rows
wrap answers that way (``{"output": "Paris"}``); an expected output of None means there is none.

Limits, because criteria and outputs come from API users and are evaluated inside web workers:

* outputs longer than ``MAX_TEXT_CHARS`` characters (as text) are not evaluated: every check fails;
* regex matching gets ``REGEX_TIME_BUDGET`` seconds per ``score()`` call, shared by all its regex
  rules (the ``regex`` module's timeouts; ``re`` has none); running out fails the check with
  "pattern timed out";
* ``regex`` unrolls ``{m,n}`` repeats when compiling (in C, so no timeout applies): the patterns of
  one criteria may come to at most ``MAX_PATTERN_EXPANSION`` characters unrolled (see
  ``_unrolled_size``); at most ``MAX_RULES`` rules;
* JSON schemas may not use ``pattern``/``patternProperties`` (fastjsonschema runs them with ``re``),
  ``format`` is an annotation only (its built-in regexes include a quadratic one), ``$ref`` resolves
  inside the schema only (never over the network or from files), and defaults are never inserted.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, TypeVar

import fastjsonschema
import regex

MAX_TEXT_CHARS = 1024 * 1024
REGEX_TIME_BUDGET = 0.1
MAX_PATTERN_EXPANSION = 100_000
MAX_RULES = 100
MAX_WEIGHT = 1_000_000

_TIMED_OUT = "pattern timed out"
_REASON_CHARS = 200
_REGEX_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "x": regex.VERBOSE}
_COMMON_KEYS = frozenset({"type", "name", "weight"})
_EXPECTED_WRAPPERS = frozenset({"answer", "expected", "output", "text"})

_Bound = TypeVar("_Bound", int, float)


class RuleError(ValueError):
    """Malformed criteria; the message names the rule and key, e.g. ``rules[2].pattern: ...``."""


@dataclass(frozen=True)
class Check:
    """The result of one rule on one output: ``rule`` is the rule's name, or its type if unnamed."""

    rule: str
    type: str
    passed: bool
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "type": self.type, "passed": self.passed, "reason": self.reason}


@dataclass(frozen=True)
class Outcome:
    """All checks of one output: ``score`` is the weighted fraction passed, 1.0 without rules."""

    score: float
    passed: bool
    checks: tuple[Check, ...]

    def as_json(self) -> dict[str, Any]:
        """The form stored as an evaluation result's metadata and returned by the API."""
        return {"score": self.score, "passed": self.passed, "checks": [c.as_json() for c in self.checks]}


@dataclass
class RegexBudget:
    """Matching time left: to one score() call (many slow patterns still cost one budget per
    output), or shared by a whole request, so 1,000 outputs cannot cost 1,000 budgets."""

    remaining: float = REGEX_TIME_BUDGET


@dataclass(frozen=True)
class _Subject:
    """One output as conditions see it, prepared once per score() call."""

    value: Any  # as given: json_schema and numeric_range read values, not text
    text: str
    expected: str | None
    regex_budget: RegexBudget


class _Condition(Protocol):
    KEYS: ClassVar[frozenset[str]]

    @classmethod
    def parse(cls, spec: _Spec) -> Self: ...

    def failure(self, subject: _Subject) -> str | None:
        """Why the output fails this condition, or None if it passes."""
        ...


@dataclass(frozen=True)
class Rule:
    """One compiled rule: ``label`` is its name, or its type if unnamed."""

    label: str
    type: str
    weight: float
    condition: _Condition


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def score(self, output: Any, expected: Any = None, shared: RegexBudget | None = None) -> Outcome:
        """Apply every rule to ``output``; pure, and never raises whatever the values. With a
        ``shared`` budget, this output's matching time is also taken from it."""
        text = output_text(output)
        if len(text) > MAX_TEXT_CHARS:
            reason = f"output longer than {MAX_TEXT_CHARS} characters is not evaluated"
            return _outcome(self.rules, [reason] * len(self.rules))
        allowed = REGEX_TIME_BUDGET if shared is None else min(REGEX_TIME_BUDGET, shared.remaining)
        budget = RegexBudget(allowed)
        subject = _Subject(output, text, expected_text(expected), budget)
        outcome = _outcome(self.rules, [rule.condition.failure(subject) for rule in self.rules])
        if shared is not None:
            shared.remaining -= allowed - budget.remaining
        return outcome


def compile_rules(criteria: Any) -> RuleSet:
    """Validate criteria and compile their patterns and schemas once; raises RuleError."""
    allowance = _PatternAllowance()
    return RuleSet(
        tuple(_parse_rule(index, raw, allowance) for index, raw in enumerate(_raw_rules(criteria)))
    )


def validate_criteria(criteria: Any) -> list[str]:
    """Every problem of the criteria (the first of each rule); empty when they compile."""
    try:
        raw_rules = _raw_rules(criteria)
    except RuleError as exc:
        return [str(exc)]
    errors, allowance = [], _PatternAllowance()
    for index, raw in enumerate(raw_rules):
        try:
            _parse_rule(index, raw, allowance)
        except RuleError as exc:
            errors.append(str(exc))
    return errors


def output_text(value: Any) -> str:
    """The text rules read from a value: strings as they are, anything else as canonical JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except Exception:  # circular or too deep values, keys of mixed types, ints over 4300 digits...
        return f"<unserialisable {type(value).__name__}>"


def expected_text(expected: Any) -> str | None:
    """The text an expected output stands for (see the module docstring), None if there is none."""
    if isinstance(expected, Mapping) and len(expected) == 1:
        ((key, inner),) = expected.items()
        if key in _EXPECTED_WRAPPERS:
            expected = inner
    return None if expected is None else output_text(expected)


def _raw_rules(criteria: Any) -> list[Any]:
    if criteria is None:
        return []
    if not isinstance(criteria, Mapping):
        raise RuleError("criteria must be an object")
    if "rules" not in criteria:
        return []
    rules = criteria["rules"]
    if not isinstance(rules, list):
        raise RuleError("rules must be a list")
    if len(rules) > MAX_RULES:
        raise RuleError(f"rules must not hold more than {MAX_RULES} rules")
    return rules


def _parse_rule(index: int, raw: Any, allowance: _PatternAllowance) -> Rule:
    if not isinstance(raw, Mapping):
        raise RuleError(f"rules[{index}] must be an object")
    spec = _Spec(index, raw, allowance)
    kind = raw.get("type")
    condition = _CONDITIONS.get(kind) if isinstance(kind, str) else None
    if condition is None:
        raise spec.must("type", f"be one of: {', '.join(sorted(_CONDITIONS))}")
    allowed = _COMMON_KEYS | condition.KEYS
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        allowed_list = ", ".join(sorted(allowed))
        raise spec.invalid(_clip(unknown[0], 40), f"unknown key for type {kind} (allowed: {allowed_list})")
    name = spec.text("name", required=False)
    weight = spec.number("weight")
    if weight is None:
        weight = 1.0
    elif not 0 < weight <= MAX_WEIGHT:
        raise spec.must("weight", f"be a positive number up to {MAX_WEIGHT}")
    return Rule(name or kind, kind, weight, condition.parse(spec))


def _outcome(rules: tuple[Rule, ...], failures: list[str | None]) -> Outcome:
    checks = tuple(
        Check(rule.label, rule.type, reason is None, reason)
        for rule, reason in zip(rules, failures, strict=True)
    )
    total = sum(rule.weight for rule in rules)
    earned = sum(rule.weight for rule, check in zip(rules, checks, strict=True) if check.passed)
    return Outcome(earned / total if total else 1.0, all(check.passed for check in checks), checks)


@dataclass
class _PatternAllowance:
    """Unrolled pattern size the rest of one criteria may still use: compiled patterns keep it in memory."""

    remaining: int = MAX_PATTERN_EXPANSION


@dataclass(frozen=True)
class _Spec:
    """One raw rule and its index: typed reads that report errors as ``rules[i].key``."""

    index: int
    raw: Mapping[str, Any]
    allowance: _PatternAllowance

    def where(self, key: str | None) -> str:
        return f"rules[{self.index}]" + (f".{key}" if key else "")

    def must(self, key: str | None, requirement: str) -> RuleError:
        return RuleError(f"{self.where(key)} must {requirement}")

    def invalid(self, key: str | None, problem: str) -> RuleError:
        return RuleError(f"{self.where(key)}: {problem}")

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise self.must(key, "be a non-empty string")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.must(key, "be true or false")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        """One of ``options``; the first is the default."""
        value = self.raw.get(key)
        if value is None:
            return options[0]
        if value not in options:
            raise self.must(key, f"be one of: {', '.join(options)}")
        return value

    def number(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.must(key, "be a finite number")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number):
            raise self.must(key, "be a finite number")
        return number

    def count(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= sys.maxsize:
            raise self.must(key, f"be an integer from 0 to {sys.maxsize}")
        return value

    def bounds(self, read: Callable[[str], _Bound | None]) -> tuple[_Bound | None, _Bound | None]:
        low, high = read("min"), read("max")
        if low is None and high is None:
            raise self.must(None, "give min, max or both")
        if low is not None and high is not None and low > high:
            raise self.must("min", "not exceed max")
        return low, high


@dataclass(frozen=True)
class _Regex:
    KEYS: ClassVar[frozenset[str]] = frozenset({"pattern", "flags", "match"})
    pattern: regex.Pattern[str]
    full: bool

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        source = spec.text("pattern")
        letters = spec.raw.get("flags")
        letters = "" if letters is None else letters
        if not isinstance(letters, str) or not set(letters) <= _REGEX_FLAGS.keys():
            raise spec.must("flags", f"be a string of the letters {', '.join(_REGEX_FLAGS)}")
        flags = 0
        for letter in letters:
            flags |= _REGEX_FLAGS[letter]
        full = spec.choice("match", ("search", "full")) == "full"
        return cls(_compile_pattern(spec, source, flags), full)

    def failure(self, subject: _Subject) -> str | None:
        budget = subject.regex_budget
        if budget.remaining <= 0:
            return _TIMED_OUT
        find = self.pattern.fullmatch if self.full else self.pattern.search
        started = time.monotonic()
        try:
            # concurrent: release the GIL while matching, so a slow pattern stalls no other thread.
            found = find(subject.text, timeout=budget.remaining, concurrent=True)
        except TimeoutError:
            return _TIMED_OUT
        finally:
            budget.remaining -= time.monotonic() - started
        if found:
            return None
        return "output does not fully match the pattern" if self.full else "pattern not found in output"


# A counted repeat as regex parses it: `{m}`, `{m,}`, `{,n}`, `{m,n}`, ASCII digits only.
_COUNTED_REPEAT = re.compile(r"\{([0-9]*)(?:,[0-9]*)?\}")
# Verbose mode lets whitespace and comments split a count (`{1 000 000}`): reject those braces then.
_SPACED_REPEAT = re.compile(r"(?<!\\)(?:\\\\)*\{[0-9]*(?:,[0-9]*)?[\s#]")
_INLINE_VERBOSE = re.compile(r"\(\?[\^\w-]*x")
_INLINE_COMMENT = re.compile(r"\(\?#")


def _compile_pattern(spec: _Spec, source: str, flags: int) -> regex.Pattern[str]:
    verbose = bool(flags & regex.VERBOSE) or _INLINE_VERBOSE.search(source) is not None
    if verbose and _SPACED_REPEAT.search(source):
        raise spec.invalid("pattern", "whitespace or comments inside a {m,n} repeat are not supported")
    # Comments, inline or verbose mode's "#...", may hold brackets and parentheses that _unrolled_size
    # would read as syntax: the loose bound needs no parsing.
    unmodelled = verbose or _INLINE_COMMENT.search(source) is not None
    size = _loose_unrolled_size(source) if unmodelled else _unrolled_size(source)
    if size > spec.allowance.remaining:
        unrolled = f"unrolled, the criteria's patterns would exceed {MAX_PATTERN_EXPANSION} characters"
        raise spec.invalid("pattern", f"repeat counts too large: {unrolled}")
    spec.allowance.remaining -= size
    try:
        # Not cached: the module-wide cache would keep up to 500 users' patterns alive.
        return regex.compile(source, flags, cache_pattern=False)
    except regex.error as exc:
        raise spec.invalid("pattern", f"invalid regular expression: {exc}") from exc
    except RecursionError as exc:
        raise spec.invalid("pattern", "invalid regular expression: nested too deeply") from exc


def _unrolled_size(source: str) -> int:
    """An upper bound of the pattern text ``regex`` builds when compiling ``source`` (version 0 syntax).

    ``regex`` copies the body of a ``{m,n}`` repeat ``m`` times, in C and holding the GIL:
    ``a{1000000}`` takes ~270 MB and ``(?:(?:(?:a{100}){100}){100}){100}`` exhausts memory. Sizes are
    text lengths, groups count their parentheses, and each repeat multiplies the item before it.
    """
    sizes, last, total, pos = [0], 0, 0, 0  # open groups' sizes; the item a repeat would copy
    while pos < len(source) and total <= MAX_PATTERN_EXPANSION:
        char = source[pos]
        repeat = _COUNTED_REPEAT.match(source, pos) if char == "{" else None
        if char == "(":
            sizes.append(2)
            total, end = total + 2, pos + 1
        elif char == ")" and len(sizes) > 1:
            last = sizes.pop()
            sizes[-1] += last
            end = pos + 1
        elif repeat:
            extra = last * (max(int(repeat.group(1) or 0), 1) - 1)
            sizes[-1], last, total, end = sizes[-1] + extra, last + extra, total + extra, repeat.end()
        else:
            end = _atom_end(source, pos)
            if end is None:
                return _loose_unrolled_size(source)
            last = end - pos
            sizes[-1], total = sizes[-1] + last, total + last
        pos = end
    return total


def _atom_end(source: str, pos: int) -> int | None:
    """Where the atom at ``pos`` ends: an escape, a character class or one character. None for a
    class holding ``[`` (POSIX classes, version 1 sets), whose end this scanner does not model."""
    if source[pos] == "\\":
        return pos + 2
    if source[pos] != "[":
        return pos + 1
    pos += 2 if source.startswith("^", pos + 1) else 1
    pos += 1 if source.startswith("]", pos) else 0  # a leading ] is a literal
    while pos < len(source):
        if source[pos] == "[":
            return None
        if source[pos] == "]":
            return pos + 1
        pos += 2 if source[pos] == "\\" else 1
    return pos


def _loose_unrolled_size(source: str) -> int:
    """A parse-free upper bound for syntax ``_unrolled_size`` does not model: a repeat can only copy
    text before it, so every character counts once per product of the repeat minimums after it."""
    total, factor, end = 0, 1, len(source)
    for match in reversed(list(_COUNTED_REPEAT.finditer(source))):
        total += (end - match.end()) * factor
        factor = min(factor * max(int(match.group(1) or 0), 1), MAX_PATTERN_EXPANSION + 1)
        end = match.start()
    return total + end * factor


@dataclass(frozen=True)
class _Keyword:
    KEYS: ClassVar[frozenset[str]] = frozenset({"keywords", "mode", "case_sensitive"})
    keywords: tuple[str, ...]
    any_of: bool
    case_sensitive: bool

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        keywords = spec.raw.get("keywords")
        if (
            not isinstance(keywords, list)
            or not keywords
            or not all(isinstance(k, str) and k for k in keywords)
        ):
            raise spec.must("keywords", "be a non-empty list of non-empty strings")
        any_of = spec.choice("mode", ("all", "any")) == "any"
        return cls(tuple(keywords), any_of, spec.boolean("case_sensitive", False))

    def failure(self, subject: _Subject) -> str | None:
        fold = _identity if self.case_sensitive else str.casefold
        text = fold(subject.text)
        missing = [keyword for keyword in self.keywords if fold(keyword) not in text]
        if (len(missing) < len(self.keywords)) if self.any_of else not missing:
            return None
        return ("no keyword found: " if self.any_of else "missing keywords: ") + _listing(missing)


class _RemoteRefsRefused(Mapping[str, Callable[[str], Any]]):
    """fastjsonschema's ``handlers``, claiming every URI scheme so that a ``$ref`` outside the schema
    is refused instead of fetched with urlopen (http to internal hosts, file:///dev/zero...)."""

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse_remote_ref

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _refuse_remote_ref(uri: str) -> Any:
    raise fastjsonschema.JsonSchemaDefinitionException(f"$ref outside the schema is not allowed: {uri}")


_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
_NAMED_SUBSCHEMAS = frozenset({"$defs", "definitions", "dependencies", "dependentSchemas", "properties"})


def _uses_patterns(schema: Any) -> bool:
    """Whether a schema has ``pattern``/``patternProperties``, which fastjsonschema runs with ``re``.

    Walks everything but literal data and property names, iteratively: nesting depth is the user's.
    """
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                if key == "patternProperties" or (key == "pattern" and isinstance(value, str)):
                    return True
                if key in _NAMED_SUBSCHEMAS and isinstance(value, Mapping):
                    pending.extend(value.values())
                elif key not in _DATA_KEYWORDS:
                    pending.append(value)
    return False


@dataclass(frozen=True)
class _JsonSchema:
    KEYS: ClassVar[frozenset[str]] = frozenset({"schema"})
    validate: Callable[[Any], Any]

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        schema = spec.raw.get("schema")
        if not isinstance(schema, Mapping):
            raise spec.must("schema", "be an object")
        if _uses_patterns(schema):
            raise spec.invalid(
                "schema", '"pattern" and "patternProperties" are not supported; use a regex rule'
            )
        try:
            validate = fastjsonschema.compile(
                copy.deepcopy(dict(schema)),  # compiling rewrites $ref values in place
                handlers=_RemoteRefsRefused(),
                use_default=False,  # validating would otherwise insert defaults into the output
                use_formats=False,
            )
        except Exception as exc:  # fastjsonschema reports some bad schemas as AttributeError, TypeError...
            raise spec.invalid("schema", f"invalid JSON schema: {_clip(str(exc))}") from exc
        return cls(validate)

    def failure(self, subject: _Subject) -> str | None:
        value = subject.value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError) as exc:
                return f"output is not valid JSON: {_clip(str(exc))}"
        try:
            self.validate(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            return f"output does not match the schema: {_clip(exc.message)}"
        except Exception as exc:  # generated code on hostile input: recursive $ref, deep nesting...
            return f"schema validation failed: {type(exc).__name__}"
        return None


@dataclass(frozen=True)
class _Length:
    KEYS: ClassVar[frozenset[str]] = frozenset({"min", "max", "unit"})
    minimum: int | None
    maximum: int | None
    words: bool

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        minimum, maximum = spec.bounds(spec.count)
        return cls(minimum, maximum, spec.choice("unit", ("chars", "words")) == "words")

    def failure(self, subject: _Subject) -> str | None:
        size = len(subject.text.split()) if self.words else len(subject.text)
        unit = "words" if self.words else "chars"
        if self.minimum is not None and size < self.minimum:
            return f"length {size} {unit} is below min {self.minimum}"
        if self.maximum is not None and size > self.maximum:
            return f"length {size} {unit} is above max {self.maximum}"
        return None


@dataclass(frozen=True)
class _ExactMatch:
    KEYS: ClassVar[frozenset[str]] = frozenset({"value", "case_sensitive", "trim"})
    value: str | None
    case_sensitive: bool
    trim: bool

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        value = spec.raw.get("value")
        text = None if value is None else output_text(value)
        return cls(text, spec.boolean("case_sensitive", True), spec.boolean("trim", True))

    def failure(self, subject: _Subject) -> str | None:
        target, what = _reference(self.value, subject)
        if target is None:
            return what
        if self._normal(subject.text) == self._normal(target):
            return None
        return f"output does not equal {what}"

    def _normal(self, text: str) -> str:
        text = text.strip() if self.trim else text
        return text if self.case_sensitive else text.casefold()


@dataclass(frozen=True)
class _Contains:
    KEYS: ClassVar[frozenset[str]] = frozenset({"value", "case_sensitive"})
    value: str | None
    case_sensitive: bool

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        return cls(spec.text("value", required=False), spec.boolean("case_sensitive", True))

    def failure(self, subject: _Subject) -> str | None:
        target, what = _reference(self.value, subject)
        if target is None:
            return what
        fold = _identity if self.case_sensitive else str.casefold
        return None if fold(target) in fold(subject.text) else f"output does not contain {what}"


def _reference(value: str | None, subject: _Subject) -> tuple[str | None, str]:
    """What exact_match/contains compare with and how reasons call it; no target: the reason why."""
    if value is not None:
        return value, "the rule's value"
    if subject.expected is not None:
        return subject.expected, "the expected output"
    return None, "no value in the rule and no expected output to compare with"


@dataclass(frozen=True)
class _NumericRange:
    KEYS: ClassVar[frozenset[str]] = frozenset({"min", "max"})
    minimum: float | None
    maximum: float | None

    @classmethod
    def parse(cls, spec: _Spec) -> Self:
        return cls(*spec.bounds(spec.number))

    def failure(self, subject: _Subject) -> str | None:
        number = _as_number(subject.value)
        if number is None:
            return "output is not a finite number"
        if self.minimum is not None and number < self.minimum:
            return f"{_show(number)} is below min {_show(self.minimum)}"
        if self.maximum is not None and number > self.maximum:
            return f"{_show(number)} is above max {_show(self.maximum)}"
        return None


def _as_number(value: Any) -> float | None:
    """A JSON number, or a string holding one with optional surrounding whitespace; finite only."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_CONDITIONS: dict[str, type[_Condition]] = {
    "contains": _Contains,
    "exact_match": _ExactMatch,
    "json_schema": _JsonSchema,
    "keyword": _Keyword,
    "length": _Length,
    "numeric_range": _NumericRange,
    "regex": _Regex,
}


def _identity(text: str) -> str:
    return text


def _show(number: float) -> str:
    return f"{number:.15g}"


def _clip(text: str, limit: int = _REASON_CHARS) -> str:
    """Reasons are stored with every result: keep echoes of user data short."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listing(items: list[str]) -> str:
    shown = ", ".join(json.dumps(_clip(item, 40), ensure_ascii=False) for item in items[:5])
    return shown + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
