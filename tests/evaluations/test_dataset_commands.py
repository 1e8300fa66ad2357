"""``manage.py import_dataset`` (JSONL and CSV, checked with the API's rules, all or nothing) and
``manage.py export_results`` (JSONL and CSV, equal to what the API lists)."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from evaluations.management.commands import import_dataset
from evaluations.models import Dataset, DatasetRow, EvaluationResult
from tenancy.models import AuditLog

EVALUATIONS = "/v1/evaluations"
DATASETS = "/v1/datasets"


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str, match: str | None = None) -> tuple[str, str]:
    """Run a command expected to end in CommandError; return what it printed before that."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=match):
        call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.content)
    return response.json()


@pytest.fixture
def writer(make_key) -> str:
    """A read/write key of workspace ``default`` (which it creates)."""
    return make_key("read,write")[1]


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def stored_rows(dataset_id: int) -> list[tuple[int, Any, Any, Any]]:
    return list(
        DatasetRow.objects.filter(dataset_id=dataset_id)
        .order_by("position")
        .values_list("position", "input", "expected_output", "output")
    )


def imported_id(out: str, name: str, workspace: str = "default") -> int:
    match = re.fullmatch(
        rf'Imported (\d+) rows into dataset "{re.escape(name)}" \(id (\d+)\) in workspace {workspace}\.\n',
        out,
    )
    assert match, out
    return int(match.group(2))


# --- import: JSONL ----------------------------------------------------------------------------------


def test_a_ten_thousand_row_jsonl_file_is_imported_row_by_row(api, writer, tmp_path):
    items = []
    for i in range(10_000):
        item: dict[str, Any] = {"input": {"question": f"q{i}", "n": i, "tags": ["a", i % 7]}}
        if i % 3 == 0:
            item["expectedOutput"] = {"answer": f"a{i}"}
        elif i % 3 == 1:
            item["expected_output"] = f"a{i}"
        if i % 5 == 0:
            item["output"] = [i, None, True]
        items.append(item)
    path = write_jsonl(tmp_path / "big.jsonl", items)

    out, err = run("import_dataset", str(path), "--name", "big", "--description", "ten thousand")

    dataset_id = imported_id(out, "big")
    assert out.startswith("Imported 10000 rows")
    # Progress on stderr, one line per tenth when it is not a terminal, ending at 100 %.
    progress = [line for line in err.splitlines() if line.startswith("rows [")]
    assert progress and "100%" in progress[-1] and "10,000/10,000" in progress[-1]
    assert len(progress) <= 11

    expected = [
        (
            i,
            item["input"],
            item.get("expectedOutput", item.get("expected_output")),
            item.get("output"),
        )
        for i, item in enumerate(items)
    ]
    assert stored_rows(dataset_id) == expected

    body = ok(api.get(f"{DATASETS}/{dataset_id}", key=writer))
    assert body["name"] == "big" and body["description"] == "ten thousand"
    assert body["row_count"] == 10_000
    assert body["preview"][0] == {
        "id": body["preview"][0]["id"],
        "position": 0,
        "input": {"question": "q0", "n": 0, "tags": ["a", 0]},
        "expectedOutput": {"answer": "a0"},
        "output": [0, None, True],
    }
    assert body["preview"][1] == {
        "id": body["preview"][1]["id"],
        "position": 1,
        "input": {"question": "q1", "n": 1, "tags": ["a", 1]},
        "expectedOutput": "a1",
    }
    audit = AuditLog.objects.get(action="create_dataset", target_id=str(dataset_id))
    assert (audit.workspace_id, audit.api_key_name) == ("default", "manage.py")


def test_blank_lines_are_skipped_and_the_format_can_be_forced(workspace, tmp_path):
    workspace("acme")
    path = tmp_path / "rows.txt"
    path.write_text('\n{"input": {"a": 1}}\n\n   \n{"input": {"a": 2}, "output": "x"}\n', encoding="utf-8")
    run_failing("import_dataset", str(path), "--name", "d", match="Cannot tell the format")
    out, _ = run("import_dataset", str(path), "--name", "d", "--workspace", "acme", "--format", "jsonl")
    dataset_id = imported_id(out, "d", "acme")
    assert stored_rows(dataset_id) == [(0, {"a": 1}, None, None), (1, {"a": 2}, None, "x")]
    assert Dataset.objects.get(pk=dataset_id).workspace_id == "acme"


def test_bad_rows_are_all_reported_with_their_line_and_nothing_is_stored(workspace, tmp_path):
    workspace("default")
    lines = [
        '{"input": {"ok": 1}}',  # 1: good
        "[1, 2]",  # 2
        '{"expected_output": "x"}',  # 3
        '{"input": "text"}',  # 4
        '{"input": {"a": 1}',  # 5
        '{"input": {"a": NaN}}',  # 6
        '{"input": {"a": 1e400}}',  # 7
        "",  # 8: blank, skipped
        '{"input": null}',  # 9
    ]
    lines += ['{"input": []}'] * 20  # 10..29
    lines += ['{"input": {"ok": 2}}']  # 30: good
    path = tmp_path / "bad.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    out, err = run_failing(
        "import_dataset", str(path), "--name", "bad", match=r"27 bad row\(s\); nothing was imported"
    )

    reported = err.splitlines()
    assert reported[:7] == [
        "line 2: the row must be of type object",
        'line 3: "input" is required',
        'line 4: "input" must be of type object',
        "line 5: not valid JSON (Expecting ',' delimiter at column 19)",
        "line 6: not valid JSON (NaN is not valid JSON)",
        "line 7: not valid JSON (number 1e400 is out of range)",
        'line 9: "input" is required',
    ]
    assert reported[7:20] == [f'line {n}: "input" must be of type object' for n in range(10, 23)]
    assert reported[20:] == ["and 7 more"]
    assert out == ""
    assert not Dataset.objects.exists() and not DatasetRow.objects.exists()
    assert not AuditLog.objects.filter(action="create_dataset").exists()


def test_a_row_that_goes_bad_during_the_insert_rolls_the_whole_dataset_back(workspace, tmp_path):
    """The second read checks again: a file changed after the check leaves no half dataset, even
    with chunks of rows already inserted."""
    workspace("default")
    path = write_jsonl(tmp_path / "rows.jsonl", [{"input": {"i": i}} for i in range(2500)] + [{"x": 1}])
    with mock.patch.object(import_dataset.Command, "_check", return_value=2501):
        run_failing("import_dataset", str(path), "--name", "half", match="line 2501 changed while importing")
    assert not Dataset.objects.exists() and not DatasetRow.objects.exists()


def test_an_unknown_workspace_and_other_unusable_input_are_refused(workspace, tmp_path):
    workspace("default")
    path = write_jsonl(tmp_path / "rows.jsonl", [{"input": {"a": 1}}])
    run_failing(
        "import_dataset", str(path), "--name", "d", "--workspace", "nope", match="'nope' does not exist"
    )
    run_failing("import_dataset", str(tmp_path / "missing.csv"), "--name", "d", match="is not a file")
    run_failing("import_dataset", str(path), "--name", " ", match="--name must not be empty")
    run_failing("import_dataset", str(path), "--name", "x" * 129, match="at most 128 characters")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    run_failing("import_dataset", str(empty), "--name", "d", match="holds no rows")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"input": {"city": "Zürich"}}\n'.encode("latin-1"))
    run_failing("import_dataset", str(latin), "--name", "d", match="not UTF-8 text")
    assert not Dataset.objects.exists()


def test_importing_a_name_again_adds_a_dataset_and_says_so(workspace, tmp_path):
    workspace("default")
    path = write_jsonl(tmp_path / "rows.jsonl", [{"input": {"a": 1}}])
    first = imported_id(run("import_dataset", str(path), "--name", "dup")[0], "dup")
    out, err = run("import_dataset", str(path), "--name", "dup", "--verbosity", "0")
    assert imported_id(out, "dup") != first
    assert 'already has 1 dataset(s) named "dup"' in err
    assert "rows [" not in err  # no progress at verbosity 0


# --- import: CSV --------------------------------------------------------------------------------------


def test_a_csv_file_with_one_column_per_input_key(api, writer, tmp_path):
    path = tmp_path / "capitals.csv"
    rows = [
        ["country", "hint", "expected_output", "output"],
        ["France", "Europe", "Paris", "Paris"],
        ["Japan", "", "42", "true"],
        ["Peru", "multi\nline", '{"answer": "Lima"}', '"quoted"'],
        ["", "", "", ""],  # all empty: skipped
        ["Chile", "x", "not json {", ""],
        ["Mali", "NaN", "NaN", "[1, 2]"],
        ["Kenya"],  # missing trailing cells are empty
    ]
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # with a BOM, as Excel writes
        csv.writer(handle).writerows(rows)

    out, _ = run("import_dataset", str(path), "--name", "capitals")

    dataset_id = imported_id(out, "capitals")
    assert stored_rows(dataset_id) == [
        (0, {"country": "France", "hint": "Europe"}, "Paris", "Paris"),
        (1, {"country": "Japan", "hint": ""}, 42, True),
        (2, {"country": "Peru", "hint": "multi\nline"}, {"answer": "Lima"}, "quoted"),
        (3, {"country": "Chile", "hint": "x"}, "not json {", None),
        (4, {"country": "Mali", "hint": "NaN"}, "NaN", [1, 2]),
        (5, {"country": "Kenya", "hint": ""}, None, None),
    ]
    body = ok(api.get(f"{DATASETS}/{dataset_id}", key=writer))
    assert body["row_count"] == 6
    assert [(row["input"], row.get("expectedOutput"), row.get("output")) for row in body["preview"]] == [
        ({"country": "France", "hint": "Europe"}, "Paris", "Paris"),
        ({"country": "Japan", "hint": ""}, 42, True),
        ({"country": "Peru", "hint": "multi\nline"}, {"answer": "Lima"}, "quoted"),
        ({"country": "Chile", "hint": "x"}, "not json {", None),
        ({"country": "Mali", "hint": "NaN"}, "NaN", [1, 2]),
    ]


def test_a_csv_file_with_an_input_column_of_json_objects(workspace, tmp_path):
    workspace("default")
    path = tmp_path / "qa.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["input", "expectedOutput", "notes"],
                ['{"q": "2+2", "n": [1, 2]}', "4", "checked"],
                ['{"q": "hi"}', "hello", ""],
            ]
        )
    out, err = run("import_dataset", str(path), "--name", "qa")
    assert "Ignoring column(s) notes" in err
    assert stored_rows(imported_id(out, "qa")) == [
        (0, {"q": "2+2", "n": [1, 2]}, 4, None),
        (1, {"q": "hi"}, "hello", None),
    ]


def test_bad_csv_rows_are_reported_by_the_line_they_start_on(workspace, tmp_path):
    workspace("default")
    path = tmp_path / "bad.csv"
    path.write_text(
        "input,output\n"
        '{"a": 1},"two\nlines"\n'  # lines 2-3: good
        "[1],x\n"  # line 4
        "not json,x\n"  # line 5
        ",x\n"  # line 6
        '{"a": 1},x,extra\n'  # line 7
        '"{""a"": 2}",\n',  # line 8: good
        encoding="utf-8",
    )
    _, err = run_failing("import_dataset", str(path), "--name", "bad", match=r"4 bad row\(s\)")
    assert err.splitlines() == [
        'line 4: "input" must be of type object',
        'line 5: "input" is not valid JSON (Expecting value at column 1)',
        'line 6: "input" is required',
        "line 7: 3 cells, but the header names 2 columns",
    ]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("expected_output,output", "no input column"),
        ("a,expected_output,expectedOutput", "both expected_output and expectedOutput"),
        ("a,b,a", "names a more than once"),
        ("a,,b", "unnamed column"),
    ],
)
def test_csv_headers_that_make_no_sense_are_refused(workspace, tmp_path, header, message):
    workspace("default")
    path = tmp_path / "rows.csv"
    path.write_text(f"{header}\n1,2,3\n", encoding="utf-8")
    run_failing("import_dataset", str(path), "--name", "d", match=message)
    assert not Dataset.objects.exists()


# --- export -------------------------------------------------------------------------------------------


@pytest.fixture
def suite(api, writer) -> dict[str, Any]:
    """A suite of workspace ``default`` with results posted through the API, one of them by a run."""
    criteria = {"rules": [{"type": "contains", "value": "Paris"}]}
    body = {"name": "accuracy", "prompt_name": "qa", "threshold": 0.5, "criteria": criteria}
    created = ok(api.post(EVALUATIONS, key=writer, json=body), 201)
    results = [
        {"score": 0.9, "version_tag": "1.0.0", "run_id": "r1", "metadata": {"model": "gpt-4o", "note": "é"}},
        {"score": 0.2, "version_tag": "1.0.0", "label": "bad", "trace_id": "t_1"},
        {"score": 0.7, "version_tag": "1.1.0", "passed": False},
        {"version_tag": "1.1.0", "label": "unscored", "metadata": {"nested": {"a": [1, 2]}}},
        {"score": -1.5e-7, "version_tag": "1.1.0"},
    ]
    ok(api.post(f"{EVALUATIONS}/{created['id']}/results", key=writer, json=results), 201)
    ok(api.post(f"{EVALUATIONS}/accuracy/run", key=writer, json={"outputs": ["Paris", "Rome"]}), 201)
    return created


def api_results(api: Any, key: str, ref: Any) -> list[dict[str, Any]]:
    items, page = [], 1
    while True:
        body = ok(api.get(f"{EVALUATIONS}/{ref}/results?limit=100&page={page}", key=key))
        items += body["items"]
        if page >= body["totalPages"]:
            return sorted(items, key=lambda item: item["id"])
        page += 1


def test_jsonl_and_csv_exports_hold_what_the_api_lists(api, writer, suite, tmp_path):
    listed = api_results(api, writer, suite["id"])
    assert len(listed) == 7 and any(item["eval_run_id"] for item in listed)

    jsonl = tmp_path / "results.jsonl"
    out, err = run("export_results", str(suite["id"]), "--output", str(jsonl))
    assert out == (
        f'Exported 7 result(s) of evaluation "accuracy" (id {suite["id"]}) in workspace default to {jsonl}.\n'
    )
    assert "results [" in err and "100%" in err
    exported = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert exported == listed  # oldest first: in id order here
    assert [(r["created_at"], r["id"]) for r in exported] == sorted(
        (r["created_at"], r["id"]) for r in exported
    )

    table = tmp_path / "results.csv"
    run("export_results", "accuracy", "--output", str(table))  # .csv: the format follows the extension
    with table.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == (
            "id",
            "created_at",
            "version_tag",
            "score",
            "passed",
            "label",
            "run_id",
            "trace_id",
            "eval_run_id",
            "metadata",
        )
        rows = list(reader)
    assert len(rows) == len(listed)
    for row, item in zip(rows, listed, strict=True):
        assert int(row["id"]) == item["id"]
        assert int(datetime.fromisoformat(row["created_at"]).timestamp()) == item["created_at"]
        assert datetime.fromisoformat(row["created_at"]).utcoffset() == timedelta(0)
        assert (row["version_tag"] or None) == item["version_tag"]
        assert (float(row["score"]) if row["score"] else None) == item["score"]
        assert {"true": True, "false": False, "": None}[row["passed"]] == item["passed"]
        assert (row["label"] or None) == item["label"]
        assert (row["run_id"] or None) == item["run_id"]
        assert (row["trace_id"] or None) == item["trace_id"]
        assert (int(row["eval_run_id"]) if row["eval_run_id"] else None) == item["eval_run_id"]
        assert (json.loads(row["metadata"]) if row["metadata"] else None) == item["metadata"]


def test_export_to_stdout_by_name_with_filters(api, writer, suite, make_key):
    # A suite of the same name elsewhere is not this one.
    other = make_key("read,write", workspace="acme")[1]
    body = {"name": "accuracy", "prompt_name": "qa"}
    ok(api.post(EVALUATIONS, key=other, workspace="acme", json=body), 201)
    ok(api.post(f"{EVALUATIONS}/accuracy/results", key=other, workspace="acme", json={"score": 1}), 201)

    out, err = run("export_results", "accuracy")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == api_results(api, writer, suite["id"])
    assert err.startswith("Exported 7 result(s)") and err.endswith("to stdout.\n")  # no progress bar

    out, _ = run("export_results", "accuracy", "--version", "1.1.0", "--format", "csv")
    table = list(csv.DictReader(StringIO(out)))
    assert [row["version_tag"] for row in table] == ["1.1.0"] * 3

    out, _ = run("export_results", "accuracy", "--workspace", "acme")
    assert [json.loads(line)["score"] for line in out.splitlines()] == [1.0]

    # --since: unix seconds or ISO; results are exported oldest first.
    ids = sorted(EvaluationResult.objects.filter(evaluation_id=suite["id"]).values_list("id", flat=True))
    base = timezone.now().replace(microsecond=0) - timedelta(days=10)
    for day, pk in enumerate(reversed(ids)):  # the newest id gets the oldest time
        EvaluationResult.objects.filter(pk=pk).update(created_at=base + timedelta(days=day))
    cutoff = base + timedelta(days=4)
    for since in (
        str(int(cutoff.timestamp())),
        cutoff.isoformat(),
        cutoff.astimezone(UTC).replace(tzinfo=None).isoformat(),
    ):
        out, _ = run("export_results", "accuracy", "--since", since)
        assert [json.loads(line)["id"] for line in out.splitlines()] == list(reversed(ids))[4:]
    run_failing("export_results", "accuracy", "--since", "last tuesday", match="--since")


def test_export_refuses_to_overwrite_unless_forced(suite, tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("keep me\n", encoding="utf-8")
    run_failing("export_results", "accuracy", "--output", str(target), match="exists; nothing was written")
    assert target.read_text(encoding="utf-8") == "keep me\n"
    out, _ = run("export_results", "accuracy", "--output", str(target), "--force")
    assert out.startswith("Exported 7 result(s)")
    assert len(target.read_text(encoding="utf-8").splitlines()) == 7
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left behind
    run_failing("export_results", "accuracy", "--output", str(tmp_path), match="is a directory")
    run_failing(
        "export_results", "accuracy", "--output", str(tmp_path / "no" / "x.csv"), match="not a directory"
    )


def test_export_of_an_unknown_suite_or_workspace_is_refused(suite, tmp_path):
    run_failing("export_results", "nope", match="Evaluation 'nope' not found in workspace 'default'")
    run_failing("export_results", "999999", match="not found")
    run_failing("export_results", "accuracy", "--workspace", "nope", match="Workspace 'nope' does not exist")
    assert not list(tmp_path.iterdir())
