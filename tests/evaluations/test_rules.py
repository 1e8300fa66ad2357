"""The rule engine of evaluation suites: every rule type, malformed criteria, coercion and the limits
that keep user patterns, schemas and outputs from pinning or exhausting a worker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from evaluations.rules import (
    MAX_PATTERN_EXPANSION,
    MAX_RULES,
    MAX_TEXT_CHARS,
    Check,
    Outcome,
    RegexBudget,
    RuleError,
    compile_rules,
    expected_text,
    output_text,
    validate_criteria,
)

TYPES = "contains, exact_match, json_schema, keyword, length, numeric_range, regex"


def check(rule: dict[str, Any], output: Any, expected: Any = None) -> Check:
    outcome = compile_rules({"rules": [rule]}).score(output, expected)
    assert len(outcome.checks) == 1
    assert outcome.passed is outcome.checks[0].passed
    assert outcome.score == (1.0 if outcome.passed else 0.0)
    return outcome.checks[0]


def passes(rule: dict[str, Any], output: Any, expected: Any = None) -> bool:
    result = check(rule, output, expected)
    assert (result.reason is None) is result.passed
    return result.passed


def reason(rule: dict[str, Any], output: Any, expected: Any = None) -> str:
    result = check(rule, output, expected)
    assert not result.passed
    assert result.reason
    return result.reason


def error(criteria: Any) -> str:
    """The RuleError message, which validate_criteria must report alike."""
    with pytest.raises(RuleError) as info:
        compile_rules(criteria)
    message = str(info.value)
    assert validate_criteria(criteria) == [message]
    return message


def rule_error(rule: Any) -> str:
    return error({"rules": [rule]})


# --- criteria shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("criteria", [None, {}, {"threshold": 0.8}, {"rules": []}])
def test_no_rules_pass_with_score_one(criteria: Any) -> None:
    outcome = compile_rules(criteria).score("anything")
    assert outcome == Outcome(score=1.0, passed=True, checks=())
    assert validate_criteria(criteria) == []


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ("rules", "criteria must be an object"),
        ([{"type": "regex"}], "criteria must be an object"),
        ({"rules": {"type": "regex"}}, "rules must be a list"),
        ({"rules": None}, "rules must be a list"),
        ({"rules": ["regex"]}, "rules[0] must be an object"),
        ({"rules": [{"type": "length", "max": 3}] * (MAX_RULES + 1)}, f"more than {MAX_RULES} rules"),
    ],
)
def test_malformed_criteria(criteria: Any, message: str) -> None:
    assert message in error(criteria)


@pytest.mark.parametrize("rule", [{}, {"type": "regexp", "pattern": "a"}, {"type": 3}, {"type": None}])
def test_unknown_type_lists_the_types(rule: dict[str, Any]) -> None:
    assert rule_error(rule) == f"rules[0].type must be one of: {TYPES}"


def test_errors_name_the_rule_index_and_validate_reports_each_rule() -> None:
    criteria = {
        "rules": [
            {"type": "length", "max": 3},
            {"type": "regex", "pattern": "(ab"},
            {"type": "keyword", "keywords": []},
        ]
    }
    assert validate_criteria(criteria) == [
        "rules[1].pattern: invalid regular expression: missing ) at position 3",
        "rules[2].keywords must be a non-empty list of non-empty strings",
    ]
    with pytest.raises(RuleError, match=r"^rules\[1\]\.pattern: invalid regular expression: missing \)"):
        compile_rules(criteria)


def test_unknown_keys_are_errors_so_typos_do_not_change_results() -> None:
    message = rule_error({"type": "keyword", "keywords": ["a"], "case_sensitve": True})
    assert message == (
        "rules[0].case_sensitve: unknown key for type keyword "
        "(allowed: case_sensitive, keywords, mode, name, type, weight)"
    )


def test_null_optional_keys_count_as_absent() -> None:
    rule = {"type": "keyword", "keywords": ["Yes"], "mode": None, "case_sensitive": None, "name": None}
    assert passes(rule, "oh yes")


# --- names and weights --------------------------------------------------------------------------------


def test_checks_are_labelled_by_name_else_type() -> None:
    outcome = compile_rules(
        {"rules": [{"type": "length", "max": 5, "name": "short"}, {"type": "contains", "value": "x"}]}
    ).score("abc")
    assert [(c.rule, c.type, c.passed) for c in outcome.checks] == [
        ("short", "length", True),
        ("contains", "contains", False),
    ]


def test_score_is_the_weighted_fraction_and_pass_needs_every_check() -> None:
    criteria = {
        "rules": [
            {"type": "contains", "value": "Paris", "weight": 3},
            {"type": "length", "max": 5},
            {"type": "keyword", "keywords": ["France"], "weight": 0.5},
        ]
    }
    outcome = compile_rules(criteria).score("Paris, France")
    assert [c.passed for c in outcome.checks] == [True, False, True]
    assert outcome.score == pytest.approx(3.5 / 4.5)
    assert outcome.passed is False
    assert compile_rules(criteria).score("Paris").score == pytest.approx(4 / 4.5)
    unweighted = compile_rules({"rules": [{"type": "length", "max": 5}, {"type": "length", "min": 9}]})
    assert unweighted.score("abc").score == 0.5


@pytest.mark.parametrize("weight", [0, -1, "2", True, float("inf"), 10**400, 1_000_001])
def test_malformed_weight(weight: Any) -> None:
    assert rule_error({"type": "length", "max": 3, "weight": weight}).startswith("rules[0].weight must be a ")


@pytest.mark.parametrize("name", ["", 5, ["a"]])
def test_malformed_name(name: Any) -> None:
    assert (
        rule_error({"type": "length", "max": 3, "name": name}) == "rules[0].name must be a non-empty string"
    )


# --- regex ----------------------------------------------------------------------------------------------


def test_regex_searches_by_default() -> None:
    assert passes({"type": "regex", "pattern": r"\d{3}"}, "code 123 ok")
    assert reason({"type": "regex", "pattern": r"\d{3}"}, "code 12") == "pattern not found in output"


def test_regex_flags() -> None:
    assert not passes({"type": "regex", "pattern": "^yes"}, "YES")
    assert passes({"type": "regex", "pattern": "^yes", "flags": "i"}, "YES")
    assert passes({"type": "regex", "pattern": "^b$", "flags": "m"}, "a\nb\nc")
    assert passes({"type": "regex", "pattern": "a.b", "flags": "s"}, "a\nb")
    assert passes({"type": "regex", "pattern": "a b  # a comment", "flags": "xi"}, "AB")


def test_regex_full_match() -> None:
    rule = {"type": "regex", "pattern": r"\d+", "match": "full"}
    assert passes(rule, "123")
    assert reason(rule, "123 apples") == "output does not fully match the pattern"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "regex"}, "rules[0].pattern must be a non-empty string"),
        ({"type": "regex", "pattern": ""}, "rules[0].pattern must be a non-empty string"),
        ({"type": "regex", "pattern": 5}, "rules[0].pattern must be a non-empty string"),
        ({"type": "regex", "pattern": "(ab"}, "rules[0].pattern: invalid regular expression: missing )"),
        ({"type": "regex", "pattern": "a{3,2}"}, "rules[0].pattern: invalid regular expression: min repeat"),
        (
            {"type": "regex", "pattern": "(" * 5000 + ")" * 5000},
            "rules[0].pattern: invalid regular expression",
        ),
        (
            {"type": "regex", "pattern": "a", "flags": "g"},
            "rules[0].flags must be a string of the letters i,",
        ),
        ({"type": "regex", "pattern": "a", "flags": ["i"]}, "rules[0].flags must be a string"),
        ({"type": "regex", "pattern": "a", "flags": False}, "rules[0].flags must be a string"),
        ({"type": "regex", "pattern": "a", "match": "prefix"}, "rules[0].match must be one of: search, full"),
    ],
)
def test_malformed_regex(rule: dict[str, Any], message: str) -> None:
    assert rule_error(rule).startswith(message)


def test_catastrophic_pattern_times_out_as_a_failed_check() -> None:
    # (a|aa)+$ backtracks exponentially in the regex module too (it defuses the classic (a+)+$ itself).
    slow = {"type": "regex", "pattern": "(a|aa)+$"}
    rules = compile_rules({"rules": [slow, {"type": "length", "max": 100}, *[slow] * 20]})
    started = time.monotonic()
    outcome = rules.score("a" * 40 + "b")
    # The time budget is per output, shared by its regex rules: twenty slow patterns cost one budget.
    assert time.monotonic() - started < 1
    assert [(c.type, c.passed, c.reason) for c in outcome.checks] == [
        ("regex", False, "pattern timed out"),
        ("length", True, None),
        *[("regex", False, "pattern timed out")] * 20,
    ]
    assert rules.score("a" * 40).checks[0].passed  # the next output gets a fresh budget


def test_a_shared_budget_bounds_matching_across_outputs() -> None:
    # A request scoring many outputs shares one budget: once it is spent, regex checks fail at
    # once instead of costing 0.1 s per output.
    rules = compile_rules({"rules": [{"type": "regex", "pattern": "(a|aa)+$"}]})
    shared = RegexBudget(0.25)
    started = time.monotonic()
    outcomes = [rules.score("a" * 40 + "b", shared=shared) for _ in range(20)]
    assert time.monotonic() - started < 1.2  # twenty budgets of 0.1 s would be 2 s
    assert shared.remaining <= 0
    assert all(o.checks[0].reason == "pattern timed out" for o in outcomes)
    assert rules.score("a" * 40, shared=RegexBudget(0.25)).passed


def test_classic_nested_quantifier_returns_promptly() -> None:
    started = time.monotonic()
    assert reason({"type": "regex", "pattern": "(a+)+$"}, "a" * 40 + "b") == "pattern not found in output"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "pattern",
    [
        "a{1000000}",
        "(?:(?:a{100}){100}){100}",
        "(a){40000}",
        "[(]{10}(?:[)]{1000}){1000}",
        "(?:a{400}[])]){300}",  # a leading ] in a class is a literal
        # Comments may hold text that looks like syntax: the loose bound applies.
        "(?#[)(?:a{1000}){1000}]",
        "(?x)(?:a{1000}#[\n){1000}]",
        "(?x)a {1000000}",
        # So it does to classes holding [ (POSIX classes, version 1 sets).
        "(?V1)[[a]--[b]]{1000000}",
        "(?V1)(?:a{1000}[[a](]){1000}",
        "[[:alpha:]]{1000000}",
    ],
)
def test_patterns_that_unroll_too_far_are_refused_before_compiling(pattern: str) -> None:
    started = time.monotonic()
    assert rule_error({"type": "regex", "pattern": pattern}) == (
        "rules[0].pattern: repeat counts too large: "
        f"unrolled, the criteria's patterns would exceed {MAX_PATTERN_EXPANSION} characters"
    )
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("pattern", ["a{1 000 000}", "a{1000#c\n000}", "a{ 5}", "a{5,\t}"])
def test_verbose_patterns_may_not_split_repeat_counts(pattern: str) -> None:
    message = "rules[0].pattern: whitespace or comments inside a {m,n} repeat are not supported"
    assert rule_error({"type": "regex", "pattern": pattern.replace("\\n", "\n"), "flags": "x"}) == message
    assert rule_error({"type": "regex", "pattern": "(?x)" + pattern}) == message
    # Without verbose mode such braces are plain text.
    assert passes({"type": "regex", "pattern": r"a\{ 5}"}, "a{ 5}")


def test_the_unrolled_size_limit_covers_all_patterns_of_the_criteria() -> None:
    half = {"type": "regex", "pattern": f"a{{{MAX_PATTERN_EXPANSION // 2 + 1}}}"}
    compile_rules({"rules": [half]})
    assert error({"rules": [half, half]}).startswith("rules[1].pattern: repeat counts too large")


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        r"^\d{10}\s\d{10}\s\d{10}\s\d{10}\s\d{10}$",
        r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z\b",
        r"[]){}]{1000}\){1000}",
        r"a{0,1000000}(?:b{1,100000})+",
    ],
)
def test_ordinary_repeats_compile(pattern: str) -> None:
    assert validate_criteria({"rules": [{"type": "regex", "pattern": pattern}] * 10}) == []


# --- keyword --------------------------------------------------------------------------------------------


def test_keyword_all_is_the_default_and_ignores_case() -> None:
    rule = {"type": "keyword", "keywords": ["Paris", "capital"]}
    assert passes(rule, "PARIS is the Capital")
    assert reason(rule, "Paris is nice") == 'missing keywords: "capital"'


def test_keyword_any() -> None:
    rule = {"type": "keyword", "keywords": ["yes", "sure"], "mode": "any"}
    assert passes(rule, "Sure thing")
    assert reason(rule, "no") == 'no keyword found: "yes", "sure"'


def test_keyword_case_sensitive() -> None:
    rule = {"type": "keyword", "keywords": ["Paris"], "case_sensitive": True}
    assert passes(rule, "in Paris")
    assert reason(rule, "in PARIS") == 'missing keywords: "Paris"'


def test_keyword_reasons_stay_short() -> None:
    keywords = [f"word{i}-" + "x" * 100 for i in range(8)]
    message = reason({"type": "keyword", "keywords": keywords}, "nothing")
    assert message.endswith("(+3 more)")
    assert len(message) < 300


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "keyword"}, "rules[0].keywords must be a non-empty list of non-empty strings"),
        (
            {"type": "keyword", "keywords": []},
            "rules[0].keywords must be a non-empty list of non-empty strings",
        ),
        ({"type": "keyword", "keywords": "Paris"}, "rules[0].keywords must be a non-empty list"),
        ({"type": "keyword", "keywords": ["a", ""]}, "rules[0].keywords must be a non-empty list"),
        ({"type": "keyword", "keywords": ["a", 1]}, "rules[0].keywords must be a non-empty list"),
        ({"type": "keyword", "keywords": ["a"], "mode": "some"}, "rules[0].mode must be one of: all, any"),
        (
            {"type": "keyword", "keywords": ["a"], "case_sensitive": "no"},
            "rules[0].case_sensitive must be true",
        ),
    ],
)
def test_malformed_keyword(rule: dict[str, Any], message: str) -> None:
    assert rule_error(rule).startswith(message)


# --- json_schema ----------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["answer"],
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number", "default": 0.5}},
}


def test_json_schema_parses_string_outputs() -> None:
    rule = {"type": "json_schema", "schema": SCHEMA}
    assert passes(rule, '{"answer": "Paris", "confidence": 0.9}')
    assert (
        reason(rule, '{"confidence": 0.9}')
        == "output does not match the schema: data must contain ['answer'] properties"
    )
    assert reason(rule, '{"answer": 5}') == "output does not match the schema: data.answer must be string"


def test_json_schema_takes_other_outputs_as_json_values() -> None:
    output = {"answer": "Paris"}
    assert passes({"type": "json_schema", "schema": SCHEMA}, output)
    assert output == {"answer": "Paris"}  # no default inserted into the caller's value
    assert passes({"type": "json_schema", "schema": {"type": "array"}}, [1, 2])
    assert passes({"type": "json_schema", "schema": {"type": "null"}}, None)
    assert not passes({"type": "json_schema", "schema": {"type": "array"}}, 5)


@pytest.mark.parametrize("output", ["Paris", "", "{'answer': 1}", '{"answer": "x"', "[" * 100_000])
def test_json_schema_fails_outputs_that_are_not_json(output: str) -> None:
    assert reason({"type": "json_schema", "schema": SCHEMA}, output).startswith("output is not valid JSON: ")


def test_json_schema_formats_are_annotations_only() -> None:
    # fastjsonschema's email regex is quadratic: a long output would pin the worker.
    rule = {"type": "json_schema", "schema": {"type": "string", "format": "email"}}
    started = time.monotonic()
    assert passes(rule, json.dumps("a" + "." * 200_000))
    assert time.monotonic() - started < 1


def test_json_schema_recursive_refs_fail_instead_of_raising() -> None:
    rule = {"type": "json_schema", "schema": {"$ref": "#"}}
    assert reason(rule, "{}") == "schema validation failed: RecursionError"


def test_json_schema_local_refs_resolve_without_touching_the_criteria() -> None:
    criteria = {
        "rules": [
            {
                "type": "json_schema",
                "schema": {
                    "$id": "https://example.com/answer.json",
                    "definitions": {"name": {"type": "string"}},
                    "properties": {"answer": {"$ref": "#/definitions/name"}},
                },
            }
        ]
    }
    original = json.loads(json.dumps(criteria))
    rules = compile_rules(criteria)
    assert criteria == original
    assert rules.score('{"answer": "x"}').passed
    assert not rules.score('{"answer": 1}').passed


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "colour"}, "rules[0].schema: invalid JSON schema: Unknown type"),
        ({"properties": 5}, "rules[0].schema: invalid JSON schema: "),
        ({"maxLength": "3"}, "rules[0].schema: invalid JSON schema: maxLength must be a number"),
        ({"$ref": "#/definitions/missing"}, "rules[0].schema: invalid JSON schema: Unresolvable ref"),
        # No $ref may reach out: not to the network, not to local files.
        ({"$ref": "http://127.0.0.1:9/schema.json"}, "rules[0].schema: invalid JSON schema: $ref outside"),
        ({"$ref": "file:///etc/passwd"}, "rules[0].schema: invalid JSON schema: $ref outside the schema"),
        ({"$id": "http://127.0.0.1:9/a.json", "items": {"$ref": "b.json"}}, "rules[0].schema: invalid JSON "),
        # pattern/patternProperties would run on `re`, without a timeout.
        ({"type": "string", "pattern": "(a|aa)+$"}, 'rules[0].schema: "pattern" and "patternProperties" are'),
        (
            {"items": {"propertyNames": {"pattern": "^a"}}},
            'rules[0].schema: "pattern" and "patternProperties"',
        ),
        ({"patternProperties": {"^a": {}}}, 'rules[0].schema: "pattern" and "patternProperties" are not'),
        ("{}", "rules[0].schema must be an object"),
        (None, "rules[0].schema must be an object"),
        (True, "rules[0].schema must be an object"),
    ],
)
def test_malformed_json_schema(schema: Any, message: str) -> None:
    assert rule_error({"type": "json_schema", "schema": schema}).startswith(message)


def test_property_names_and_data_may_be_called_pattern() -> None:
    schema = {
        "properties": {"pattern": {"type": "string"}, "patternProperties": {"const": {"pattern": "x"}}},
        "examples": [{"pattern": "y"}],
    }
    assert passes(
        {"type": "json_schema", "schema": schema}, {"pattern": "p", "patternProperties": {"pattern": "x"}}
    )


# --- length ---------------------------------------------------------------------------------------------


def test_length_in_characters() -> None:
    rule = {"type": "length", "min": 2, "max": 5}
    assert passes(rule, "héllo")
    assert passes(rule, "ab")
    assert reason(rule, "a") == "length 1 chars is below min 2"
    assert reason(rule, "abcdef") == "length 6 chars is above max 5"
    assert passes({"type": "length", "max": 0}, "")


def test_length_in_words() -> None:
    rule = {"type": "length", "max": 3, "unit": "words"}
    assert passes(rule, "  one two\nthree ")
    assert reason(rule, "one two three four") == "length 4 words is above max 3"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "length"}, "rules[0] must give min, max or both"),
        ({"type": "length", "min": -1}, "rules[0].min must be an integer from 0 to"),
        ({"type": "length", "max": 2.5}, "rules[0].max must be an integer from 0 to"),
        ({"type": "length", "max": True}, "rules[0].max must be an integer from 0 to"),
        ({"type": "length", "max": "5"}, "rules[0].max must be an integer from 0 to"),
        ({"type": "length", "max": 10**5000}, "rules[0].max must be an integer from 0 to"),
        ({"type": "length", "min": 5, "max": 4}, "rules[0].min must not exceed max"),
        ({"type": "length", "max": 4, "unit": "tokens"}, "rules[0].unit must be one of: chars, words"),
    ],
)
def test_malformed_length(rule: dict[str, Any], message: str) -> None:
    assert rule_error(rule).startswith(message)


# --- exact_match and contains ---------------------------------------------------------------------------


def test_exact_match_value_trims_and_is_case_sensitive_by_default() -> None:
    rule = {"type": "exact_match", "value": "Paris"}
    assert passes(rule, "  Paris\n")
    assert reason(rule, "paris") == "output does not equal the rule's value"
    assert passes({**rule, "case_sensitive": False}, "PARIS")
    assert not passes({**rule, "trim": False}, " Paris")


def test_exact_match_falls_back_to_the_expected_output() -> None:
    rule = {"type": "exact_match"}
    assert passes(rule, "Paris", "Paris")
    assert reason(rule, "Lyon", "Paris") == "output does not equal the expected output"
    assert passes(rule, "Paris", {"answer": "Paris"})
    # The rule's value wins over the expected output.
    assert passes({"type": "exact_match", "value": "Lyon"}, "Lyon", "Paris")


def test_exact_match_without_value_or_expected_output_fails_with_a_reason() -> None:
    message = "no value in the rule and no expected output to compare with"
    assert reason({"type": "exact_match"}, "Paris") == message
    assert reason({"type": "exact_match"}, "Paris", {"output": None}) == message
    assert reason({"type": "contains"}, "Paris") == message


def test_exact_match_compares_json_values_canonically() -> None:
    rule = {"type": "exact_match", "value": {"b": 1, "a": [1, "é"]}}
    assert passes(rule, {"a": [1, "é"], "b": 1})
    assert passes(rule, '{"a": [1, "é"], "b": 1}')
    assert not passes(rule, {"a": [1, "é"], "b": 2})
    assert passes({"type": "exact_match"}, 42, 42)
    assert passes({"type": "exact_match"}, "42", 42)


def test_contains_value_and_case() -> None:
    rule = {"type": "contains", "value": "Paris"}
    assert passes(rule, "It is Paris.")
    assert reason(rule, "It is PARIS.") == "output does not contain the rule's value"
    assert passes({**rule, "case_sensitive": False}, "It is PARIS.")


def test_contains_falls_back_to_the_expected_output() -> None:
    assert passes({"type": "contains"}, "The answer is Paris.", {"expected": "Paris"})
    assert reason({"type": "contains"}, "The answer is Lyon.", "Paris") == (
        "output does not contain the expected output"
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "contains", "value": ""}, "rules[0].value must be a non-empty string"),
        ({"type": "contains", "value": 5}, "rules[0].value must be a non-empty string"),
        (
            {"type": "contains", "value": "a", "case_sensitive": 1},
            "rules[0].case_sensitive must be true or false",
        ),
        ({"type": "exact_match", "trim": "yes"}, "rules[0].trim must be true or false"),
        ({"type": "exact_match", "case_sensitive": 0}, "rules[0].case_sensitive must be true or false"),
        ({"type": "exact_match", "expected": "x"}, "rules[0].expected: unknown key for type exact_match"),
    ],
)
def test_malformed_exact_match_and_contains(rule: dict[str, Any], message: str) -> None:
    assert rule_error(rule).startswith(message)


# --- numeric_range --------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", [" 0.82 ", "0.5", "1", 0.82, 1, "8.2e-1"])
def test_numeric_range_passes_numbers_and_numeric_strings(output: Any) -> None:
    assert passes({"type": "numeric_range", "min": 0.5, "max": 1}, output)


def test_numeric_range_fails_out_of_range() -> None:
    rule = {"type": "numeric_range", "min": 0.5, "max": 1}
    assert reason(rule, "0.49") == "0.49 is below min 0.5"
    assert reason(rule, 3) == "3 is above max 1"
    assert passes({"type": "numeric_range", "max": 0}, -(10**30))


@pytest.mark.parametrize(
    "output", ["abc", "", "0.8 points", True, None, [0.8], {"score": 0.8}, "nan", "inf", 10**400]
)
def test_numeric_range_fails_non_numbers(output: Any) -> None:
    assert reason({"type": "numeric_range", "min": 0}, output) == "output is not a finite number"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "numeric_range"}, "rules[0] must give min, max or both"),
        ({"type": "numeric_range", "min": "0"}, "rules[0].min must be a finite number"),
        ({"type": "numeric_range", "max": float("nan")}, "rules[0].max must be a finite number"),
        ({"type": "numeric_range", "max": 10**400}, "rules[0].max must be a finite number"),
        ({"type": "numeric_range", "min": False}, "rules[0].min must be a finite number"),
        ({"type": "numeric_range", "min": 1, "max": 0.5}, "rules[0].min must not exceed max"),
    ],
)
def test_malformed_numeric_range(rule: dict[str, Any], message: str) -> None:
    assert rule_error(rule) == message


# --- coercion -------------------------------------------------------------------------------------------


def test_output_text_keeps_strings_and_dumps_everything_else_canonically() -> None:
    assert output_text("  as is\n") == "  as is\n"
    assert output_text({"b": "é", "a": [1, None]}) == '{"a": [1, null], "b": "é"}'
    assert output_text(None) == "null"
    assert output_text(0.5) == "0.5"
    assert output_text(True) == "true"
    circular: dict[str, Any] = {}
    circular["self"] = circular
    assert output_text(circular) == "<unserialisable dict>"


def test_expected_text_unwraps_single_key_answer_objects() -> None:
    for key in ("output", "text", "answer", "expected"):
        assert expected_text({key: "Paris"}) == "Paris"
    assert expected_text({"answer": {"city": "Paris"}}) == '{"city": "Paris"}'
    assert expected_text({"city": "Paris"}) == '{"city": "Paris"}'
    assert expected_text({"answer": "Paris", "why": "capital"}) == '{"answer": "Paris", "why": "capital"}'
    assert expected_text({"answer": None}) is None
    assert expected_text(None) is None
    assert expected_text(7) == "7"


def test_rules_read_non_string_outputs_as_their_json_text() -> None:
    assert passes({"type": "regex", "pattern": r'"score": 0\.9'}, {"score": 0.9})
    assert passes({"type": "length", "max": 4}, None)  # "null"
    assert passes({"type": "keyword", "keywords": ["PARIS"]}, ["paris"])


# --- robustness -----------------------------------------------------------------------------------------

EVERY_TYPE = {
    "rules": [
        {"type": "regex", "pattern": "a+b"},
        {"type": "keyword", "keywords": ["x"]},
        {"type": "json_schema", "schema": {"type": "object"}},
        {"type": "length", "min": 1},
        {"type": "exact_match"},
        {"type": "contains", "value": "y"},
        {"type": "numeric_range", "max": 1},
    ]
}


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["again"] = value
    return value


@pytest.mark.parametrize(
    "output",
    [
        None,
        0,
        -1.5,
        float("nan"),
        True,
        pytest.param(10**5000, id="int-of-5001-digits"),
        "",
        "\ud800",
        [],
        {"a": {"b": [1, {"c": None}]}},
        {1: "int key", "a": "str key"},
        _deep_list(10_000),
        _circular(),
        {1, 2},
        b"bytes",
        object(),
        "[" * 50_000 + "]" * 50_000,
    ],
)
def test_scoring_never_raises(output: Any) -> None:
    rules = compile_rules(EVERY_TYPE)
    for expected in (None, output, {"answer": output}):
        outcome = rules.score(output, expected)
        assert len(outcome.checks) == 7
        assert 0 <= outcome.score <= 1
        json.dumps(outcome.as_json())


def test_outputs_over_the_cap_are_not_evaluated() -> None:
    rules = compile_rules({"rules": [{"type": "contains", "value": "a"}, {"type": "length", "min": 1}]})
    assert rules.score("a" * MAX_TEXT_CHARS).passed
    outcome = rules.score("a" * (MAX_TEXT_CHARS + 1))
    assert outcome.score == 0
    assert {c.reason for c in outcome.checks} == {
        f"output longer than {MAX_TEXT_CHARS} characters is not evaluated"
    }


def test_as_json_is_compact_and_stable() -> None:
    outcome = compile_rules(
        {"rules": [{"type": "contains", "value": "Paris", "name": "city"}, {"type": "length", "max": 3}]}
    ).score("Paris")
    assert outcome.as_json() == {
        "score": 0.5,
        "passed": False,
        "checks": [
            {"rule": "city", "type": "contains", "passed": True, "reason": None},
            {"rule": "length", "type": "length", "passed": False, "reason": "length 5 chars is above max 3"},
        ],
    }
